//! Real time (product-spec §5-6) over Azure Web PubSub: chat per booking (stored, then pushed),
//! negotiation of client connections and their personal groups, the upstream event handler
//! (connection ownership, presence), video-class joins with per-connection rights and TURN
//! credentials, and WebRTC quality data. Owns `/api/realtime/*`, `/api/webrtc/*`, the chat and
//! video routes under `/api/bookings/{id}/` (served through the `bookings` function) and
//! `/api/admin/webrtc/summary` (through `admin`).

mod chat;
mod connections;
mod participants;
mod video;
mod webrtc;

use platform::AppState;
use platform::invocation::FunctionDefinition;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const FUNCTIONS: &[FunctionDefinition] = &[
    FunctionDefinition {
        name: "realtime",
        function_json: include_str!("../azure/realtime/function.json"),
    },
    FunctionDefinition {
        name: "webrtc",
        function_json: include_str!("../azure/webrtc/function.json"),
    },
];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(connections::negotiate))
        .routes(routes!(
            connections::allow_events,
            connections::handle_event
        ))
        .routes(routes!(chat::post_message, chat::list_messages))
        .routes(routes!(chat::subscribe))
        .routes(routes!(chat::unread))
        .routes(routes!(chat::mark_read))
        .routes(routes!(video::join))
        .routes(routes!(video::set_fallback_link))
        .routes(routes!(webrtc::post_stats))
        .routes(routes!(webrtc::post_events))
        .routes(routes!(webrtc::summary))
}
