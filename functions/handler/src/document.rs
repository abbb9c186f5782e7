//! The OpenAPI document's parts that belong to the whole API rather than one route: its
//! description, the session scheme, the refusals every route shares (401 without a session, 429
//! past a budget, 503 with the database out of reach) and the problem+json body of every error answer.

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, InfoBuilder, OpenApi, Ref, RefOr, Response, Schema};

use crate::rate_limits;

/// The media type of every error answer (`platform::Error`).
const PROBLEM_JSON: &str = "application/problem+json";

/// Completes the document generated from the route annotations.
pub fn finish(document: &mut OpenApi) {
    document.info = InfoBuilder::new()
        .title("CodeConnect API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Mentoring marketplace backend. Errors are application/problem+json with a stable `code`. \
             Every operation but the health probes, webhooks and Web PubSub events spends request \
             budgets: answers carry `RateLimit-Policy` and `RateLimit`, and past a budget the \
             answer is 429 `RATE_LIMITED` with `Retry-After`.",
        ))
        .build();
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "session",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("Session token from login (or the cc_session cookie)"))
                .build(),
        ),
    );
    components
        .schemas
        .insert("Problem".into(), RefOr::T(problem_schema()));
    describe_shared_refusals(document);
    describe_error_bodies(document);
}

/// Every operation that needs a session may answer 401 `UNAUTHENTICATED`, every one that spends
/// request budgets 429 `RATE_LIMITED`, and any 503 `UNAVAILABLE`: listed where a route's own
/// annotation does not.
fn describe_shared_refusals(document: &mut OpenApi) {
    for (path, item) in &mut document.paths.paths {
        let budgeted = !rate_limits::exempt(path);
        for operation in operations(item) {
            let signed_in = operation
                .security
                .as_ref()
                .is_some_and(|requirements| !requirements.is_empty());
            let responses = &mut operation.responses.responses;
            if signed_in {
                responses.entry("401".into()).or_insert_with(|| {
                    refusal("UNAUTHENTICATED: no session, or it has ended; sign in again")
                });
            }
            if budgeted {
                responses.entry("429".into()).or_insert_with(|| {
                    refusal("RATE_LIMITED: past a request budget; retry after Retry-After")
                });
            }
            add_unavailable(responses);
        }
    }
}

/// Any operation may find the database out of reach (a restart, a failover): 503 `UNAVAILABLE`,
/// added to a route's own 503 where it has one.
fn add_unavailable(responses: &mut std::collections::BTreeMap<String, RefOr<Response>>) {
    const UNAVAILABLE: &str =
        "UNAVAILABLE: the database is briefly out of reach; retry after Retry-After";
    match responses
        .entry("503".into())
        .or_insert_with(|| refusal(UNAVAILABLE))
    {
        RefOr::T(response) if !response.description.contains(UNAVAILABLE) => {
            response.description = format!("{}; or {UNAVAILABLE}", response.description);
        }
        _ => {}
    }
}

fn refusal(description: &str) -> RefOr<Response> {
    RefOr::T(Response::new(description))
}

/// The operations of a path, whatever their methods.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

/// Gives each 4xx and 5xx answer that names no body the `Problem` body the handler sends.
fn describe_error_bodies(document: &mut OpenApi) {
    for item in document.paths.paths.values_mut() {
        for operation in operations(item) {
            for (status, response) in &mut operation.responses.responses {
                let is_error = status.starts_with('4') || status.starts_with('5');
                if let (true, RefOr::T(response)) = (is_error, response)
                    && response.content.is_empty()
                {
                    response.content.insert(
                        PROBLEM_JSON.into(),
                        Content::new(Some(Ref::from_schema_name("Problem"))),
                    );
                }
            }
        }
    }
}

/// RFC 9457 problem details with the handler's stable `code`; some codes add members (a
/// validation failure's `errors`, a lockout's `lockoutEndsAt`, a limit's `retryAt`).
fn problem_schema() -> Schema {
    let text = |example: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .examples([example])
            .build()
    };
    ObjectBuilder::new()
        .description(Some(
            "An error. Switch on `code`, which is stable; `detail` is for people.",
        ))
        .property("type", text("urn:codeconnect:problem:SLOT_TAKEN"))
        .property("title", text("Conflict"))
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .examples([409]),
        )
        .property("detail", text("That start is no longer free."))
        .property("code", text("SLOT_TAKEN"))
        .required("type")
        .required("title")
        .required("status")
        .required("detail")
        .required("code")
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .into()
}
