//! Bookings (product-spec §3): creating classes under every rule, holds and the status machine,
//! idempotency, the fee split, lists and detail, reschedule, cancel with the one refund policy,
//! packages of six classes, reviews, and the admin's booking search. Owns `/api/bookings/*`,
//! `/api/packages/*` and `/api/admin/bookings`, and the
//! `booking-lifecycle`, `reminders` and `rating-recalc` timers.
//!
//! Overlaps are impossible by construction: exclusion constraints on the buffered time range per
//! mentor and per student (see the migrations) decide races; this crate maps their violations to
//! `SLOT_TAKEN` and `STUDENT_CONFLICT`.

mod cancel;
mod create;
mod lifecycle;
mod list;
mod oversight;
mod packages;
mod policy;
mod reminders;
mod reschedule;
mod reviews;
mod view;

use platform::AppState;
use platform::invocation::{FunctionDefinition, TimerFunction};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const FUNCTIONS: &[FunctionDefinition] = &[
    FunctionDefinition {
        name: "bookings",
        function_json: include_str!("../azure/bookings/function.json"),
    },
    FunctionDefinition {
        name: "packages",
        function_json: include_str!("../azure/packages/function.json"),
    },
    FunctionDefinition {
        name: "booking-lifecycle",
        function_json: include_str!("../azure/booking-lifecycle/function.json"),
    },
    FunctionDefinition {
        name: "reminders",
        function_json: include_str!("../azure/reminders/function.json"),
    },
    FunctionDefinition {
        name: "rating-recalc",
        function_json: include_str!("../azure/rating-recalc/function.json"),
    },
];

pub const TIMERS: &[TimerFunction] = &[lifecycle::TIMER, reminders::TIMER, reviews::RATING_TIMER];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create::create_booking, list::list_bookings))
        .routes(routes!(list::booking_detail))
        .routes(routes!(oversight::search_bookings))
        .routes(routes!(cancel::cancel_booking))
        .routes(routes!(reschedule::reschedule_booking))
        .routes(routes!(reviews::review_booking))
        .routes(routes!(packages::buy_package, packages::list_packages))
        .routes(routes!(packages::schedule_package_class))
}
