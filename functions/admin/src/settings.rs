//! Platform settings: admin GET/PUT for each (full replacement, validated), the public UI
//! config, and the public fee and checkout configuration.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use domain::platform_settings::{
    self, BookingLimits, Lookups, MarketplaceSettings, PaymentConfig, PaymentMethods, RateLimits,
    RazorpayMode, Setting, UiConfig,
};
use platform::auth::AdminUser;
use platform::cache::MENTOR_LIST;
use platform::{AppState, Json, Result};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

/// Admin-only GET and PUT for one setting.
macro_rules! admin_setting {
    (get: $get:ident, put: $put:ident, $setting:ty, $path:literal, $name:literal, $about:literal) => {
        #[utoipa::path(
            get, path = $path, tag = "admin",
            summary = concat!("Read ", $name), description = concat!("Admin only. ", $about),
            security(("session" = [])),
            responses((status = 200, body = $setting), (status = 401, description = "UNAUTHENTICATED"), (status = 403, description = "FORBIDDEN_ROLE"))
        )]
        pub async fn $get(
            State(state): State<AppState>,
            _admin: AdminUser,
        ) -> Result<Json<$setting>> {
            Ok(Json(platform_settings::load::<$setting>(&state).await?))
        }

        put_setting!($put, $setting, $path, $name, $about);
    };
}

/// Admin-only PUT (full replacement) for one setting.
macro_rules! put_setting {
    ($put:ident, $setting:ty, $path:literal, $name:literal, $about:literal) => {
        #[utoipa::path(
            put, path = $path, tag = "admin",
            summary = concat!("Replace ", $name),
            description = concat!("Admin only. The whole setting, validated; it applies at once. ", $about),
            security(("session" = [])),
            request_body = $setting,
            responses(
                (status = 200, description = "The stored value", body = $setting),
                (status = 400, description = "MALFORMED_JSON"),
                (status = 401, description = "UNAUTHENTICATED"),
                (status = 403, description = "FORBIDDEN_ROLE"),
                (status = 422, description = "INVALID_BODY (wrong shape) or VALIDATION_FAILED (per field)")
            )
        )]
        pub async fn $put(
            State(state): State<AppState>,
            AdminUser(admin): AdminUser,
            Json(value): Json<$setting>,
        ) -> Result<Json<$setting>> {
            platform_settings::save(&state, &value, admin.user_id).await?;
            after_change::<$setting>(&state).await;
            Ok(Json(value))
        }
    };
}

admin_setting!(
    get: payment_config, put: update_payment_config, PaymentConfig, "/admin/payment-config",
    "the payment configuration",
    "Platform fee and GST percentages, which gateways are enabled (Razorpay in test or live mode), and the admin UPI id."
);
admin_setting!(
    get: payment_methods, put: update_payment_methods, PaymentMethods, "/admin/payment-methods",
    "the payment methods",
    "The payment methods checkout offers: UPI, cards, net banking, Stripe."
);
admin_setting!(
    get: booking_limits, put: update_booking_limits, BookingLimits, "/admin/booking-limits",
    "the booking limits",
    "How many classes a student may book per day, week (when enabled) and month, the active packages allowed, and the buffer between a mentor's classes."
);
admin_setting!(
    get: marketplace_settings, put: update_marketplace_settings, MarketplaceSettings, "/admin/settings",
    "the marketplace settings",
    "Whether mentors need an approved photo or intro video to be listed."
);
admin_setting!(
    get: rate_limits, put: update_rate_limits, RateLimits, "/admin/rate-limits",
    "the request budgets",
    "Requests allowed per client address, per session and per sensitive route, each as a limit per window."
);
admin_setting!(
    get: admin_lookups, put: update_lookups, Lookups, "/admin/lookups",
    "the signup and filter lists",
    "Subjects, qualifications and specializations that signup's pickers and the mentor filters offer, in display order (`GET /api/lookups` serves them to everyone)."
);
put_setting!(
    update_ui_config,
    UiConfig,
    "/admin/ui-config",
    "the public UI configuration",
    "Footer link toggles, help centre and dashboard links shown to every visitor."
);

/// Public reads that may be kept for 5 minutes: a change shows within that.
const KEEP_FIVE_MINUTES: (header::HeaderName, &str) =
    (header::CACHE_CONTROL, "public, max-age=300");
/// Public reads a browser or CDN may keep but must revalidate (`ETag`, 304) before each use:
/// what prices are shown from.
const REVALIDATE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "public, no-cache");

/// Public UI configuration
///
/// No sign-in needed: footer link toggles, help centre and dashboard links for every visitor,
/// as the admin set them. Browsers and CDNs may keep it for 5 minutes (`ETag` for revalidation).
#[utoipa::path(get, path = "/admin/ui-config", tag = "admin", responses((status = 200, body = UiConfig)))]
pub async fn ui_config(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let config = platform_settings::load::<UiConfig>(&state).await?;
    Ok(([KEEP_FIVE_MINUTES], Json(config)))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeeConfig {
    /// Fraction of the class fee, e.g. `"0.15"`.
    #[schema(value_type = String, example = "0.15")]
    platform_fee_rate: Decimal,
    /// Fraction of the platform fee, e.g. `"0.18"`.
    #[schema(value_type = String, example = "0.18")]
    gst_rate: Decimal,
}

/// Platform fee and GST
///
/// No sign-in needed: the platform fee and GST as fractions (decimal strings, `"0.15"` is 15
/// %), derived from the admin payment config. GST applies to the platform fee, not the class
/// fee. Cacheable, revalidated before each use (`ETag`, 304).
#[utoipa::path(get, path = "/fee-config", tag = "payments", responses((status = 200, body = FeeConfig)))]
pub async fn fee_config(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let config = platform_settings::load::<PaymentConfig>(&state).await?;
    let rate = |percent: Decimal| (percent / Decimal::ONE_HUNDRED).normalize();
    let fees = FeeConfig {
        platform_fee_rate: rate(config.platform_fee_percent),
        gst_rate: rate(config.gst_percent),
    };
    Ok(([REVALIDATE], Json(fees)))
}

/// Signup and filter lists
///
/// No sign-in needed: the subjects, qualifications and specializations signup's pickers and the
/// mentor filters offer, in display order. Browsers and CDNs may keep it for 5 minutes (`ETag`
/// for revalidation).
#[utoipa::path(get, path = "/lookups", tag = "mentors", responses((status = 200, body = Lookups)))]
pub async fn lookups(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let lookups = platform_settings::load::<Lookups>(&state).await?;
    Ok(([KEEP_FIVE_MINUTES], Json(lookups)))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutConfig {
    razorpay: RazorpayCheckout,
    stripe: StripeCheckout,
    methods: PaymentMethods,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RazorpayCheckout {
    enabled: bool,
    mode: RazorpayMode,
    /// Public key for Razorpay Checkout, when enabled.
    key_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StripeCheckout {
    enabled: bool,
    publishable_key: Option<String>,
}

/// What checkout can offer
///
/// No sign-in needed: the gateways that are both configured and enabled, their public keys, and
/// the payment methods on offer. Never secrets. Cacheable, revalidated before each use (`ETag`,
/// 304).
#[utoipa::path(get, path = "/payment-config", tag = "payments", responses((status = 200, body = CheckoutConfig)))]
pub async fn checkout_config(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let config = platform_settings::load::<PaymentConfig>(&state).await?;
    let methods = platform_settings::load::<PaymentMethods>(&state).await?;
    let keys = &state.config.payments;
    let razorpay_key = keys
        .razorpay
        .as_ref()
        .filter(|_| config.razorpay_enabled)
        .map(|r| r.key_id.clone());
    let stripe_key = keys
        .stripe
        .as_ref()
        .filter(|_| config.stripe_enabled)
        .map(|s| s.publishable_key.clone());
    let checkout = CheckoutConfig {
        razorpay: RazorpayCheckout {
            enabled: razorpay_key.is_some(),
            mode: config.razorpay_mode,
            key_id: razorpay_key,
        },
        stripe: StripeCheckout {
            enabled: stripe_key.is_some(),
            publishable_key: stripe_key,
        },
        methods,
    };
    Ok(([REVALIDATE], Json(checkout)))
}

/// Settings that change who is listed retire the cached mentor list.
async fn after_change<T: Setting>(state: &AppState) {
    if T::KEY == MarketplaceSettings::KEY {
        state.cache.bump_generation(MENTOR_LIST).await;
    }
}
