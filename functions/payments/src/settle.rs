//! Settling payments exactly once, whichever of checkout verification and webhook arrives first
//! and however often: the ledger's unique payment row decides, and only the transaction that
//! writes it confirms the booking (or activates the package) and tells people.

use domain::notifications::{self, Notice};
use platform::{AppState, Result};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::gateways::Gateway;
use crate::refunds;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// This call recorded the payment and confirmed what it paid for.
    Confirmed,
    /// Already recorded by an earlier call (verify or webhook).
    AlreadyRecorded,
    /// Paid after the hold lapsed (or the booking was cancelled): refunded in full.
    RefundedLate,
    /// No order of ours has that id.
    UnknownOrder,
}

#[derive(sqlx::FromRow)]
struct Order {
    payment_order_id: Uuid,
    booking_id: Option<Uuid>,
    package_id: Option<Uuid>,
    student_id: Uuid,
    amount_minor: i64,
}

pub async fn record_payment(
    state: &AppState,
    gateway: Gateway,
    gateway_order_id: &str,
    payment_id: &str,
) -> Result<Settlement> {
    let mut transaction = state.db.begin().await?;
    let order: Option<Order> = sqlx::query_as(
        r#"SELECT payment_order_id, booking_id, package_id, student_id, amount_minor
           FROM payment_orders WHERE gateway = $1 AND gateway_order_id = $2 FOR UPDATE"#,
    )
    .bind(gateway.name())
    .bind(gateway_order_id)
    .fetch_optional(&mut *transaction)
    .await?;
    let Some(order) = order else {
        return Ok(Settlement::UnknownOrder);
    };
    let amount = Decimal::new(order.amount_minor, 2);
    let recorded: Option<Uuid> = sqlx::query_scalar(
        r#"INSERT INTO payment_transactions (payment_transaction_id, kind, gateway, gateway_reference, payment_order_id,
                                             booking_id, package_id, amount, status)
           VALUES ($1, 'payment', $2, $3, $4, $5, $6, $7, 'succeeded')
           ON CONFLICT DO NOTHING
           RETURNING payment_transaction_id"#,
    )
    .bind(Uuid::new_v4())
    .bind(gateway.name())
    .bind(payment_id)
    .bind(order.payment_order_id)
    .bind(order.booking_id)
    .bind(order.package_id)
    .bind(amount)
    .fetch_optional(&mut *transaction)
    .await?;
    if recorded.is_none() {
        return Ok(Settlement::AlreadyRecorded);
    }
    sqlx::query("UPDATE payment_orders SET status = 'paid', gateway_payment_id = $2, updated_at = now() WHERE payment_order_id = $1")
        .bind(order.payment_order_id)
        .bind(payment_id)
        .execute(&mut *transaction)
        .await?;

    let fulfilled = fulfil(&mut transaction, &order).await?;
    if !fulfilled {
        refunds::queue(
            &mut transaction,
            order.payment_order_id,
            order.booking_id,
            order.package_id,
            amount,
        )
        .await?;
    }
    transaction.commit().await?;

    let mut people = vec![order.student_id];
    if let Some(booking_id) = order.booking_id {
        let mentor_id: Option<Uuid> =
            sqlx::query_scalar("SELECT mentor_id FROM bookings WHERE booking_id = $1")
                .bind(booking_id)
                .fetch_optional(&state.db)
                .await?;
        people.extend(mentor_id);
    }
    domain::booking_changes::announce(state, &people).await;
    if fulfilled {
        Ok(Settlement::Confirmed)
    } else {
        // Give the money back now rather than at the next reconciliation run.
        refunds::process_due(state).await?;
        Ok(Settlement::RefundedLate)
    }
}

/// Marks an order failed (the booking keeps its hold until it lapses) and tells the student.
pub async fn record_failure(
    state: &AppState,
    gateway: Gateway,
    gateway_order_id: &str,
) -> Result<()> {
    let mut transaction = state.db.begin().await?;
    let failed: Option<(Uuid, Option<Uuid>)> = sqlx::query_as(
        r#"UPDATE payment_orders SET status = 'failed', updated_at = now()
           WHERE gateway = $1 AND gateway_order_id = $2 AND status = 'created'
           RETURNING student_id, booking_id"#,
    )
    .bind(gateway.name())
    .bind(gateway_order_id)
    .fetch_optional(&mut *transaction)
    .await?;
    if let Some((student_id, booking_id)) = failed {
        notifications::notify(
            &mut transaction,
            &Notice {
                user_id: student_id,
                kind: "payment_failed",
                title: "Payment failed",
                body: "Your payment did not go through. Your slot stays held until its hold ends; try again.",
                booking_id,
                email_category: Some("payment"),
            },
        )
        .await?;
    }
    transaction.commit().await?;
    Ok(())
}

/// Confirms the booking (only while its hold lasts) or activates the package, if it is still
/// waiting for this payment.
async fn fulfil(connection: &mut PgConnection, order: &Order) -> Result<bool> {
    if let Some(booking_id) = order.booking_id {
        let confirmed = sqlx::query(
            r#"UPDATE bookings SET status = 'confirmed', hold_expires_at = NULL, updated_at = now()
               WHERE booking_id = $1 AND status = 'pending_payment' AND hold_expires_at > now()"#,
        )
        .bind(booking_id)
        .execute(&mut *connection)
        .await?;
        if confirmed.rows_affected() == 0 {
            return Ok(false);
        }
        notifications::class_confirmed(connection, booking_id).await?;
        return Ok(true);
    }
    let activated = sqlx::query("UPDATE packages SET status = 'active', updated_at = now() WHERE package_id = $1 AND status = 'pending_payment'")
        .bind(order.package_id)
        .execute(&mut *connection)
        .await?;
    Ok(activated.rows_affected() == 1)
}
