//! Admin-tuned settings (product-spec §4, §9): typed, with the spec's defaults in code, stored as
//! one JSON document per setting and read through the cache, since bookings and payments read
//! them on hot paths. A write invalidates the cached copy on every instance.

use std::time::Duration;

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use platform::error::Result;
use platform::rate_limit::Quota;
use platform::state::AppState;
use platform::validation::{Validator, is_upi_id};

const TTL: Duration = Duration::from_secs(5 * 60);

/// One setting: its storage key, its defaults (`Default`) and its rules.
pub trait Setting: Serialize + DeserializeOwned + Default + Send + Sync + Unpin + 'static {
    const KEY: &'static str;
    fn validate(&self, validator: &mut Validator);
}

/// The stored value, or the default when an admin never set it.
pub async fn load<T: Setting>(state: &AppState) -> Result<T> {
    let key = cache_key(T::KEY);
    if let Some(value) = state.cache.get::<T>(&key).await {
        return Ok(value);
    }
    let stored: Option<sqlx::types::Json<T>> =
        sqlx::query_scalar("SELECT value FROM platform_settings WHERE setting_key = $1")
            .bind(T::KEY)
            .fetch_optional(&state.db)
            .await?;
    let value = stored.map(|json| json.0).unwrap_or_default();
    state.cache.fill(&key, &value, TTL).await;
    Ok(value)
}

/// Validates and stores a full replacement, then drops every cached copy.
pub async fn save<T: Setting>(state: &AppState, value: &T, admin_id: Uuid) -> Result<()> {
    let mut validator = Validator::new();
    value.validate(&mut validator);
    validator.finish()?;
    sqlx::query(
        r#"INSERT INTO platform_settings (setting_key, value, updated_at, updated_by) VALUES ($1, $2, now(), $3)
           ON CONFLICT (setting_key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = $3"#,
    )
    .bind(T::KEY)
    .bind(sqlx::types::Json(value))
    .bind(admin_id)
    .execute(&state.db)
    .await?;
    state.cache.invalidate(&[cache_key(T::KEY)], TTL).await;
    Ok(())
}

fn cache_key(key: &str) -> String {
    format!("setting:{key}")
}

/// Footer link toggles, help centre and dashboard links (GET is public).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UiConfig {
    pub show_about: bool,
    pub show_careers: bool,
    pub show_blog: bool,
    pub show_help_centre: bool,
    pub help_centre_url: Option<String>,
    pub dashboard_links: Vec<DashboardLink>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DashboardLink {
    pub label: String,
    pub url: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            show_about: true,
            show_careers: false,
            show_blog: false,
            show_help_centre: true,
            help_centre_url: None,
            dashboard_links: Vec::new(),
        }
    }
}

impl Setting for UiConfig {
    const KEY: &'static str = "ui-config";

    fn validate(&self, validator: &mut Validator) {
        if let Some(url) = &self.help_centre_url {
            validator.check(is_web_url(url), "helpCentreUrl", "must be an http(s) URL");
        }
        validator.check(
            self.dashboard_links.len() <= 20,
            "dashboardLinks",
            "at most 20 links",
        );
        for (index, link) in self.dashboard_links.iter().enumerate() {
            validator
                .length(
                    &link.label,
                    &format!("dashboardLinks[{index}].label"),
                    1,
                    60,
                )
                .check(
                    is_web_url(&link.url),
                    &format!("dashboardLinks[{index}].url"),
                    "must be an http(s) URL",
                );
        }
    }
}

/// Fees and gateways. Percentages are decimal strings, always shown with two places (`"15.00"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentConfig {
    #[serde(serialize_with = "crate::money::two_places")]
    #[schema(value_type = String, example = "15.00")]
    pub platform_fee_percent: Decimal,
    #[serde(serialize_with = "crate::money::two_places")]
    #[schema(value_type = String, example = "18.00")]
    pub gst_percent: Decimal,
    pub razorpay_enabled: bool,
    pub stripe_enabled: bool,
    pub razorpay_mode: RazorpayMode,
    pub admin_upi_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RazorpayMode {
    Test,
    Live,
}

impl Default for PaymentConfig {
    fn default() -> Self {
        Self {
            platform_fee_percent: Decimal::new(1500, 2),
            gst_percent: Decimal::new(1800, 2),
            razorpay_enabled: true,
            stripe_enabled: true,
            razorpay_mode: RazorpayMode::Test,
            admin_upi_id: None,
        }
    }
}

impl Setting for PaymentConfig {
    const KEY: &'static str = "payment-config";

    fn validate(&self, validator: &mut Validator) {
        let percent = |value: Decimal, max: i64| {
            value >= Decimal::ZERO && value <= Decimal::from(max) && value.scale() <= 2
        };
        validator
            .check(
                percent(self.platform_fee_percent, 50),
                "platformFeePercent",
                "must be 0 to 50 with at most 2 decimals",
            )
            .check(
                percent(self.gst_percent, 40),
                "gstPercent",
                "must be 0 to 40 with at most 2 decimals",
            );
        if let Some(upi) = &self.admin_upi_id {
            validator.check(
                is_upi_id(upi),
                "adminUpiId",
                "must be a UPI id such as name@bank",
            );
        }
    }
}

/// Which payment methods checkout offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentMethods {
    pub upi: bool,
    pub cards: bool,
    pub netbanking: bool,
    pub stripe: bool,
}

impl Default for PaymentMethods {
    fn default() -> Self {
        Self {
            upi: true,
            cards: true,
            netbanking: true,
            stripe: true,
        }
    }
}

impl Setting for PaymentMethods {
    const KEY: &'static str = "payment-methods";

    fn validate(&self, _validator: &mut Validator) {}
}

/// Student booking limits and the buffer between classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BookingLimits {
    pub daily_limit: i64,
    pub weekly_limit: i64,
    pub weekly_limit_enabled: bool,
    pub monthly_limit: i64,
    pub max_active_packages: i64,
    pub buffer_minutes: i64,
}

impl Default for BookingLimits {
    fn default() -> Self {
        Self {
            daily_limit: 3,
            weekly_limit: 10,
            weekly_limit_enabled: false,
            monthly_limit: 15,
            max_active_packages: 2,
            buffer_minutes: 5,
        }
    }
}

impl Setting for BookingLimits {
    const KEY: &'static str = "booking-limits";

    fn validate(&self, validator: &mut Validator) {
        validator
            .check(
                (1..=20).contains(&self.daily_limit),
                "dailyLimit",
                "must be 1 to 20",
            )
            .check(
                (1..=100).contains(&self.weekly_limit),
                "weeklyLimit",
                "must be 1 to 100",
            )
            .check(
                (1..=300).contains(&self.monthly_limit),
                "monthlyLimit",
                "must be 1 to 300",
            )
            .check(
                (0..=10).contains(&self.max_active_packages),
                "maxActivePackages",
                "must be 0 to 10",
            )
            .check(
                (0..=60).contains(&self.buffer_minutes),
                "bufferMinutes",
                "must be 0 to 60",
            );
    }
}

/// Marketplace rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarketplaceSettings {
    /// Mentors need an approved photo or intro video to be listed.
    pub media_approval_required: bool,
}

impl Setting for MarketplaceSettings {
    const KEY: &'static str = "settings";

    fn validate(&self, _validator: &mut Validator) {}
}

/// The lists signup's pickers and the mentor filters offer, in display order. Free text is
/// still accepted where they are used; these are what the pickers suggest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lookups {
    pub subjects: Vec<String>,
    pub qualifications: Vec<String>,
    pub specializations: Vec<String>,
}

impl Default for Lookups {
    fn default() -> Self {
        let list = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect();
        Self {
            subjects: list(&[
                "Mathematics",
                "Physics",
                "Chemistry",
                "Biology",
                "Computer Science",
                "Programming",
                "Data Science",
                "English",
                "Hindi",
                "Economics",
                "Accountancy",
                "Business Studies",
                "History",
                "Geography",
                "Political Science",
            ]),
            qualifications: list(&[
                "Higher Secondary",
                "Diploma",
                "BA",
                "BSc",
                "BCom",
                "BTech",
                "BE",
                "BCA",
                "MA",
                "MSc",
                "MCom",
                "MTech",
                "ME",
                "MCA",
                "MBA",
                "PhD",
            ]),
            specializations: list(&[
                "Mathematics",
                "Physics",
                "Chemistry",
                "Biology",
                "Computer Science",
                "Electronics",
                "Mechanical Engineering",
                "Civil Engineering",
                "English Literature",
                "Economics",
                "Commerce",
                "Finance",
                "History",
                "Statistics",
            ]),
        }
    }
}

impl Setting for Lookups {
    const KEY: &'static str = "lookups";

    fn validate(&self, validator: &mut Validator) {
        for (field, items) in [
            ("subjects", &self.subjects),
            ("qualifications", &self.qualifications),
            ("specializations", &self.specializations),
        ] {
            validator.check(
                (1..=200).contains(&items.len()),
                field,
                "must have 1 to 200 items",
            );
            let mut seen = std::collections::HashSet::new();
            for (index, item) in items.iter().enumerate() {
                let name = format!("{field}[{index}]");
                validator
                    .length(item, &name, 1, 100)
                    .check(
                        item.trim() == item,
                        &name,
                        "must not start or end with spaces",
                    )
                    .check(seen.insert(item.to_lowercase()), &name, "is listed twice");
            }
        }
    }
}

/// An absolute http(s) URL with a host, so a link can't smuggle `javascript:` or a bare path.
fn is_web_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    url.len() <= 500
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        && !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_spec_and_pass_their_own_rules() {
        let limits = BookingLimits::default();
        assert_eq!(
            (
                limits.daily_limit,
                limits.monthly_limit,
                limits.buffer_minutes
            ),
            (3, 15, 5)
        );
        assert_eq!(
            serde_json::to_value(PaymentConfig::default()).unwrap()["platformFeePercent"],
            "15.00"
        );
        let mut validator = Validator::new();
        limits.validate(&mut validator);
        PaymentConfig::default().validate(&mut validator);
        UiConfig::default().validate(&mut validator);
        assert!(validator.finish().is_ok());
    }

    #[test]
    fn percentages_always_leave_with_two_places() {
        let config = PaymentConfig {
            platform_fee_percent: Decimal::new(125, 1),
            gst_percent: Decimal::from(18),
            ..PaymentConfig::default()
        };
        let json = serde_json::to_value(config).unwrap();
        assert_eq!(
            (&json["platformFeePercent"], &json["gstPercent"]),
            (&"12.50".into(), &"18.00".into())
        );
    }

    #[test]
    fn only_absolute_web_urls_with_a_host_are_links() {
        for good in [
            "https://help.codeconnect.example",
            "http://localhost:3000/help?topic=fees#top",
            "https://codeconnect.example/guide",
        ] {
            assert!(is_web_url(good), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "https://",
            "https:///path",
            "ftp://files.example",
            "//codeconnect.example",
            "https://user@evil.example",
            "https://codeconnect.example/a b",
            "/relative/path",
        ] {
            assert!(!is_web_url(bad), "{bad}");
        }
    }
}

/// Request budgets (product-spec §12), each `limit` requests per `windowSeconds`: general ones
/// per client IP and per session, generous enough that honest heavy use never meets them, and
/// tighter ones per route where a call is expensive (a password hash) or abusable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimits {
    /// Every `/api` request from one client IP (a school's NAT included).
    pub per_ip: Quota,
    /// Every `/api` request with one session.
    pub per_session: Quota,
    /// Signups from one IP.
    pub signup_per_ip: Quota,
    /// Sign-ins from one IP (failures also count toward the login lockout).
    pub login_per_ip: Quota,
    /// Forgot-password and reset-password from one IP.
    pub recovery_per_ip: Quota,
    /// 2FA setup and verification per session.
    pub two_factor_per_session: Quota,
    /// Razorpay orders and Stripe intents per session.
    pub checkout_per_session: Quota,
    /// Web PubSub client URLs per session.
    pub negotiate_per_session: Quota,
    /// Upload URLs (media and recording parts) per session.
    pub uploads_per_session: Quota,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_ip: Quota::new(3000, 60),
            per_session: Quota::new(600, 60),
            signup_per_ip: Quota::new(10, 600),
            login_per_ip: Quota::new(100, 600),
            recovery_per_ip: Quota::new(10, 600),
            two_factor_per_session: Quota::new(10, 300),
            checkout_per_session: Quota::new(30, 600),
            negotiate_per_session: Quota::new(60, 60),
            uploads_per_session: Quota::new(60, 600),
        }
    }
}

impl Setting for RateLimits {
    const KEY: &'static str = "rate-limits";

    fn validate(&self, validator: &mut Validator) {
        for (field, quota) in [
            ("perIp", self.per_ip),
            ("perSession", self.per_session),
            ("signupPerIp", self.signup_per_ip),
            ("loginPerIp", self.login_per_ip),
            ("recoveryPerIp", self.recovery_per_ip),
            ("twoFactorPerSession", self.two_factor_per_session),
            ("checkoutPerSession", self.checkout_per_session),
            ("negotiatePerSession", self.negotiate_per_session),
            ("uploadsPerSession", self.uploads_per_session),
        ] {
            validator
                .check(
                    (1..=1_000_000).contains(&quota.limit),
                    &format!("{field}.limit"),
                    "must be 1 to 1000000",
                )
                .check(
                    (1..=86_400).contains(&quota.window_seconds),
                    &format!("{field}.windowSeconds"),
                    "must be 1 to 86400 (a day)",
                );
        }
    }
}
