//! Payments (product-spec §4): Razorpay orders and checkout verification, Stripe
//! PaymentIntents, both gateways' webhooks, settling each payment exactly once, refunds through
//! the gateway that took the money, the ledger (and the admin's view of it), and mentor payouts.
//! Owns `/api/payments/*`, `/api/admin/payouts*`, `/api/admin/ledger`, `/api/mentors/me/payouts`
//! and the `payments-reconcile` timer. Amounts always come from the server.

mod checkout;
mod gateways;
mod ledger;
mod payouts;
mod refunds;
mod settle;
pub mod signatures;
mod webhooks;

use platform::AppState;
use platform::invocation::{FunctionDefinition, TimerFunction};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const FUNCTIONS: &[FunctionDefinition] = &[
    FunctionDefinition {
        name: "payments",
        function_json: include_str!("../azure/payments/function.json"),
    },
    FunctionDefinition {
        name: "payments-reconcile",
        function_json: include_str!("../azure/payments-reconcile/function.json"),
    },
];

pub const TIMERS: &[TimerFunction] = &[refunds::TIMER];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(checkout::razorpay_order))
        .routes(routes!(checkout::razorpay_verify))
        .routes(routes!(checkout::stripe_intent))
        .routes(routes!(webhooks::razorpay_webhook))
        .routes(routes!(webhooks::stripe_webhook))
        .routes(routes!(payouts::due_payouts))
        .routes(routes!(payouts::mark_paid))
        .routes(routes!(ledger::ledger))
        .routes(routes!(payouts::my_payouts))
}
