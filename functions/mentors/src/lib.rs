//! The mentor marketplace (product-spec §2): mentor self-service under `/api/mentors/me`
//! (profile, bookable subjects, weekly slots, UPI id, demo toggle, package discount, photo and
//! intro video) and public
//! discovery (`/api/mentors`, detail, reviews, availability). Owns `/api/mentors/*`, and the
//! `media-uploads` timer that clears uploads begun and never completed.
//!
//! Every write that can change what discovery shows retires the cached mentor list
//! (`Cache::bump_generation(MENTOR_LIST)`) after it commits.

mod availability;
mod discovery;
mod media;
mod profile;
mod slots;
mod subjects;
mod visibility;

use platform::AppState;
use platform::invocation::{FunctionDefinition, TimerFunction};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const FUNCTIONS: &[FunctionDefinition] = &[
    FunctionDefinition {
        name: "mentors",
        function_json: include_str!("../azure/mentors/function.json"),
    },
    FunctionDefinition {
        name: "media-uploads",
        function_json: include_str!("../azure/media-uploads/function.json"),
    },
];

pub const TIMERS: &[TimerFunction] = &[media::TIMER];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(discovery::list_mentors))
        .routes(routes!(discovery::mentor_detail))
        .routes(routes!(discovery::mentor_reviews))
        .routes(routes!(availability::availability))
        .routes(routes!(profile::my_profile, profile::update_profile))
        .routes(routes!(profile::update_upi))
        .routes(routes!(profile::update_demo))
        .routes(routes!(profile::update_package_discount))
        .routes(routes!(profile::profile_completion))
        .routes(routes!(subjects::list_subjects, subjects::add_subject))
        .routes(routes!(subjects::update_subject, subjects::delete_subject))
        .routes(routes!(slots::list_slots, slots::add_slot))
        .routes(routes!(slots::update_slot, slots::delete_slot))
        .routes(routes!(media::my_media))
        .routes(routes!(media::delete_media))
        .routes(routes!(media::start_upload))
        .routes(routes!(media::complete_upload))
}
