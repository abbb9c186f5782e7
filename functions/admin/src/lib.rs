//! Platform administration under `/api/admin/*` (product-spec §9), admin role only: accounts
//! (create admins, list, deactivate, reactivate) and the mentor approval queue.
//!
//! The Functions host disables any function whose route *text* starts with `admin`, so this
//! group's `function.json` matches `{area:regex(^admin$)}/{*rest}`: same URLs, no reserved prefix.

mod approvals;
mod users;

use shared::AppState;
use shared::invocation::FunctionDefinition;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const FUNCTIONS: &[FunctionDefinition] = &[FunctionDefinition {
    name: "admin",
    function_json: include_str!("../azure/admin/function.json"),
}];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(users::list_users, users::create_admin))
        .routes(routes!(users::deactivate_user))
        .routes(routes!(users::reactivate_user))
        .routes(routes!(approvals::pending_mentors))
        .routes(routes!(approvals::approve_mentor))
        .routes(routes!(approvals::reject_mentor))
}
