//! Platform administration under `/api/admin/*` (product-spec §9), admin role only (except the
//! public UI config): accounts (create admins, list, deactivate, reactivate), the mentor
//! approval queue, the media review queue, platform settings, the e-mail outbox and the
//! removal of the smoke check's accounts; plus the public `/api/fee-config`,
//! `/api/payment-config` and `/api/lookups` derived from those settings.
//!
//! The Functions host disables any function whose route *text* starts with `admin`, so this
//! group's `function.json` matches `{area:regex(^admin$)}/{*rest}`: same URLs, no reserved prefix.

mod approvals;
mod media;
mod outbox;
mod settings;
mod smoke_accounts;
mod users;

use platform::AppState;
use platform::invocation::FunctionDefinition;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const FUNCTIONS: &[FunctionDefinition] = &[
    FunctionDefinition {
        name: "admin",
        function_json: include_str!("../azure/admin/function.json"),
    },
    FunctionDefinition {
        name: "fee-config",
        function_json: include_str!("../azure/fee-config/function.json"),
    },
    FunctionDefinition {
        name: "payment-config",
        function_json: include_str!("../azure/payment-config/function.json"),
    },
    FunctionDefinition {
        name: "lookups",
        function_json: include_str!("../azure/lookups/function.json"),
    },
];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(users::list_users, users::create_admin))
        .routes(routes!(users::deactivate_user))
        .routes(routes!(users::reactivate_user))
        .routes(routes!(approvals::pending_mentors))
        .routes(routes!(approvals::approve_mentor))
        .routes(routes!(approvals::reject_mentor))
        .routes(routes!(media::media_queue))
        .routes(routes!(media::approve_media))
        .routes(routes!(media::reject_media))
        .routes(routes!(outbox::list_outbox))
        .routes(routes!(outbox::retry_email))
        .routes(routes!(smoke_accounts::remove_smoke_accounts))
        .routes(routes!(settings::ui_config, settings::update_ui_config))
        .routes(routes!(
            settings::payment_config,
            settings::update_payment_config
        ))
        .routes(routes!(
            settings::payment_methods,
            settings::update_payment_methods
        ))
        .routes(routes!(
            settings::booking_limits,
            settings::update_booking_limits
        ))
        .routes(routes!(
            settings::marketplace_settings,
            settings::update_marketplace_settings
        ))
        .routes(routes!(settings::rate_limits, settings::update_rate_limits))
        .routes(routes!(settings::admin_lookups, settings::update_lookups))
        .routes(routes!(settings::lookups))
        .routes(routes!(settings::fee_config))
        .routes(routes!(settings::checkout_config))
}
