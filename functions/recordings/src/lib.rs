//! Class recordings (product-spec §7): the mentor's part uploads during the class, straight to
//! blob storage as blocks of one blob (`/api/bookings/{id}/recording/parts/{n}/*`), the
//! `recordings` timer that commits them in part order and deletes old recordings, and
//! `/api/recordings/*` for participants and admins.

mod access;
mod merge;
mod parts;

use platform::AppState;
use platform::invocation::{FunctionDefinition, TimerFunction};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The part uploads live under `/api/bookings/*`, which the `bookings` function forwards.
pub const FUNCTIONS: &[FunctionDefinition] = &[
    FunctionDefinition {
        name: "recordings-api",
        function_json: include_str!("../azure/recordings-api/function.json"),
    },
    FunctionDefinition {
        name: "recordings",
        function_json: include_str!("../azure/recordings/function.json"),
    },
];

pub const TIMERS: &[TimerFunction] = &[merge::TIMER];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(parts::start_part))
        .routes(routes!(parts::complete_part))
        .routes(routes!(access::list_recordings))
        .routes(routes!(access::recording_url))
}
