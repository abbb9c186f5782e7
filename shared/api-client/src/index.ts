/**
 * The CodeConnect API's typed client: every path, parameter, body and answer of the handler's
 * OpenAPI document as TypeScript types (`schema.d.ts`, generated), requests through
 * openapi-fetch. Errors are `Problem` bodies: switch on `code`.
 */
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";

/** Every named schema of the API: `Schemas["BookingView"]`, `Schemas["MentorCard"]`, ... */
export type Schemas = components["schemas"];

/** An error answer (application/problem+json); `code` is stable, `detail` is for people. */
export type Problem = components["schemas"]["Problem"];

/** The client: `GET`, `POST`, `PUT` and `DELETE` take a path of the API and its typed options. */
export type CodeConnectClient = Client<paths>;

export interface ClientOptions {
  /** The API's origin, e.g. `https://api.codeconnect.example` (paths begin with `/api`). */
  baseUrl: string;
  /**
   * The session token from login or signup, sent as `Authorization: Bearer`. A function is
   * asked on every request, so one client follows sign-in and sign-out. Browsers may leave it
   * out and use the `cc_session` cookie instead, with `credentials: "include"`.
   */
  token?: string | (() => string | undefined);
  /** `include` sends the session cookie cross-origin (the API's CORS allows its frontends). */
  credentials?: RequestCredentials;
  /** A fetch to use instead of the global one. */
  fetch?: typeof globalThis.fetch;
}

/** A client for one API origin. */
export function createCodeConnectClient(options: ClientOptions): CodeConnectClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl,
    credentials: options.credentials,
    fetch: options.fetch,
  });
  const { token } = options;
  if (token !== undefined) {
    client.use({
      onRequest({ request }) {
        const value = typeof token === "function" ? token() : token;
        if (value) {
          request.headers.set("Authorization", `Bearer ${value}`);
        }
        return request;
      },
    });
  }
  return client;
}

/** Whether an answer's error is a problem with this `code`. */
export function hasCode(error: unknown, code: string): error is Problem {
  return typeof error === "object" && error !== null && (error as Problem).code === code;
}
