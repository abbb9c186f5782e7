//! Accounts and sessions (product-spec §1): signup, login with lockout and mentor 2FA, the
//! current user, logout, password change and reset. Owns `/api/auth/*` and the `auth-cleanup`
//! timer. Session mechanics and role guards live in `platform::auth`; this crate owns the rules.

mod cleanup;
mod cookie;
mod lockout;
mod login;
mod logout;
mod me;
mod password_change;
mod password_reset;
mod signup;
pub mod totp;
mod two_factor;

use platform::AppState;
use platform::invocation::{FunctionDefinition, TimerFunction};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const FUNCTIONS: &[FunctionDefinition] = &[
    FunctionDefinition {
        name: "auth",
        function_json: include_str!("../azure/auth/function.json"),
    },
    FunctionDefinition {
        name: "auth-cleanup",
        function_json: include_str!("../azure/auth-cleanup/function.json"),
    },
];

pub const TIMERS: &[TimerFunction] = &[cleanup::TIMER];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup::signup))
        .routes(routes!(login::login))
        .routes(routes!(logout::logout))
        .routes(routes!(me::me))
        .routes(routes!(password_change::change_password))
        .routes(routes!(password_reset::forgot_password))
        .routes(routes!(password_reset::reset_password))
        .routes(routes!(two_factor::setup))
        .routes(routes!(two_factor::verify))
}
