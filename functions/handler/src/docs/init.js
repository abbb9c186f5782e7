// The reference reads the document this API serves; "Try it out" calls the same origin, with
// the session token given under "Authorize". No validator badge: it would call a third party.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#reference",
    deepLinking: true,
    validatorUrl: null,
    displayOperationId: false,
    defaultModelsExpandDepth: 0,
  });
});
