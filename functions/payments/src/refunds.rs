//! Refunds through the gateway that took the money. A refund is first written to the ledger as
//! `pending` (one per payment at most), then sent with the row id as the gateway's idempotency
//! key, so overlapping runs and retries can never refund twice. The `payments-reconcile` timer
//! sends every due refund: cancellations (amount set by the cancellation policy), mentor
//! no-shows, late payments, and earlier attempts that failed.

use domain::notifications::{self, Notice};
use platform::invocation::{TimerFunction, TimerInfo};
use platform::{AppState, Result};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::gateways::{self, Gateway};

pub const TIMER: TimerFunction = TimerFunction {
    name: "payments-reconcile",
    run: |state, info| Box::pin(reconcile(state, info)),
};

/// A refund attempt is retried when its lease (last attempt) is older than this.
const LEASE: &str = "30 seconds";

/// Writes a pending refund of `amount` for a payment (no-op if one exists).
pub async fn queue(
    connection: &mut PgConnection,
    payment_order_id: Uuid,
    booking_id: Option<Uuid>,
    package_id: Option<Uuid>,
    amount: Decimal,
) -> Result<()> {
    sqlx::query(
        r#"INSERT INTO payment_transactions (payment_transaction_id, kind, gateway, payment_order_id, booking_id,
                                             package_id, amount, status, updated_at)
           SELECT $1, 'refund', gateway, $2, $3, $4, $5, 'pending', now() - interval '1 hour'
           FROM payment_orders WHERE payment_order_id = $2
           ON CONFLICT DO NOTHING"#,
    )
    .bind(Uuid::new_v4())
    .bind(payment_order_id)
    .bind(booking_id)
    .bind(package_id)
    .bind(amount)
    .execute(connection)
    .await?;
    Ok(())
}

/// A refund reported by a gateway webhook: settles our ledger row, or records a refund made
/// elsewhere (say, in the gateway's dashboard) so the ledger stays complete.
pub async fn record_reported(
    state: &AppState,
    gateway: Gateway,
    payment_id: &str,
    refund_id: &str,
    amount_minor: i64,
    succeeded: bool,
) -> Result<()> {
    sqlx::query(
        r#"INSERT INTO payment_transactions (payment_transaction_id, kind, gateway, gateway_reference, payment_order_id,
                                             booking_id, package_id, amount, status)
           SELECT $1, 'refund', o.gateway, $3, o.payment_order_id, o.booking_id, o.package_id, $4, $5
           FROM payment_orders o WHERE o.gateway = $2 AND o.gateway_payment_id = $6
           ON CONFLICT (payment_order_id) WHERE kind = 'refund'
           DO UPDATE SET status = EXCLUDED.status, gateway_reference = EXCLUDED.gateway_reference, updated_at = now()"#,
    )
    .bind(Uuid::new_v4())
    .bind(gateway.name())
    .bind(refund_id)
    .bind(Decimal::new(amount_minor, 2))
    .bind(if succeeded { "succeeded" } else { "failed" })
    .bind(payment_id)
    .execute(&state.db)
    .await?;
    Ok(())
}

async fn reconcile(state: AppState, _info: TimerInfo) -> Result<Vec<String>> {
    let queued = queue_policy_refunds(&state).await?;
    let (sent, failed) = process_due(&state).await?;
    Ok(vec![format!(
        "queued {queued} refunds; sent {sent}, failed {failed}"
    )])
}

/// Queues refunds for paid bookings that were cancelled or missed with a refund amount.
async fn queue_policy_refunds(state: &AppState) -> Result<u64> {
    let queued = sqlx::query(
        r#"INSERT INTO payment_transactions (payment_transaction_id, kind, gateway, payment_order_id, booking_id,
                                             amount, status, updated_at)
           SELECT gen_random_uuid(), 'refund', o.gateway, o.payment_order_id, b.booking_id, b.refund_amount,
                  'pending', now() - interval '1 hour'
           FROM bookings b JOIN payment_orders o ON o.booking_id = b.booking_id AND o.status = 'paid'
           WHERE b.status IN ('cancelled', 'no_show') AND b.refund_amount > 0
           ON CONFLICT DO NOTHING"#,
    )
    .execute(&state.db)
    .await?;
    Ok(queued.rows_affected())
}

#[derive(sqlx::FromRow)]
struct DueRefund {
    payment_transaction_id: Uuid,
    gateway: String,
    gateway_payment_id: String,
    student_id: Uuid,
    booking_id: Option<Uuid>,
    amount: Decimal,
}

/// Sends every due refund once; returns (sent, failed).
pub async fn process_due(state: &AppState) -> Result<(usize, usize)> {
    // Taking the lease is one statement, so two runs never send the same refund together.
    let due: Vec<DueRefund> = sqlx::query_as(&format!(
        r#"UPDATE payment_transactions t SET updated_at = now()
           FROM payment_orders o
           WHERE t.payment_transaction_id IN (
                   SELECT payment_transaction_id FROM payment_transactions
                   WHERE kind = 'refund' AND status IN ('pending', 'failed') AND updated_at < now() - interval '{LEASE}'
                   ORDER BY created_at LIMIT 50 FOR UPDATE SKIP LOCKED)
             AND o.payment_order_id = t.payment_order_id
           RETURNING t.payment_transaction_id, t.gateway, o.gateway_payment_id, o.student_id, t.booking_id, t.amount"#
    ))
    .fetch_all(&state.db)
    .await?;
    let (mut sent, mut failed) = (0, 0);
    for refund in due {
        match send(state, &refund).await {
            Ok(refund_id) => {
                sent += 1;
                let mut transaction = state.db.begin().await?;
                sqlx::query(
                    "UPDATE payment_transactions SET status = 'succeeded', gateway_reference = $2, last_error = NULL, updated_at = now() WHERE payment_transaction_id = $1",
                )
                .bind(refund.payment_transaction_id)
                .bind(&refund_id)
                .execute(&mut *transaction)
                .await?;
                let body = format!(
                    "We refunded ₹{:.2} to your original payment method.",
                    refund.amount
                );
                notifications::notify(
                    &mut transaction,
                    &Notice {
                        user_id: refund.student_id,
                        kind: "refund_issued",
                        title: "Refund issued",
                        body: &body,
                        booking_id: refund.booking_id,
                        email_category: Some("payment"),
                    },
                )
                .await?;
                transaction.commit().await?;
            }
            Err(error) => {
                failed += 1;
                sqlx::query("UPDATE payment_transactions SET status = 'failed', last_error = $2 WHERE payment_transaction_id = $1")
                    .bind(refund.payment_transaction_id)
                    .bind(format!("{:?}", error.code()))
                    .execute(&state.db)
                    .await?;
            }
        }
    }
    Ok((sent, failed))
}

async fn send(state: &AppState, refund: &DueRefund) -> Result<String> {
    let paise = gateways::to_paise(refund.amount);
    let key = refund.payment_transaction_id.simple().to_string();
    match Gateway::parse(&refund.gateway) {
        Some(Gateway::Razorpay) => {
            gateways::razorpay_refund(
                gateways::razorpay(state).await?,
                &refund.gateway_payment_id,
                paise,
                &key,
            )
            .await
        }
        Some(Gateway::Stripe) => {
            gateways::stripe_refund(
                gateways::stripe(state).await?,
                &refund.gateway_payment_id,
                paise,
                &key,
            )
            .await
        }
        None => Err(anyhow::anyhow!("unknown gateway {}", refund.gateway).into()),
    }
}
