//! Every state and kind type names exactly the values its column's CHECK constraint allows, as
//! sqlx writes and reads them: a value added on one side only fails here, not in production.

use domain::booking_status::BookingStatus;
use domain::media::{MediaKind, MediaStatus};
use domain::package_status::PackageStatus;
use domain::schedule::SessionType;
use domain::users::ApprovalStatus;
use platform::auth::Role;
use platform::auth::session::SessionKind;
use platform::outbox::OutboxStatus;
use sqlx::{Decode, Encode, Postgres, Type};

use crate::helpers::*;

/// Every variant of `$type`; the match without a wildcard stops compiling when one is added.
macro_rules! every {
    ($type:ident: $($variant:ident),+) => {{
        fn listed(value: $type) {
            match value {
                $($type::$variant)|+ => {}
            }
        }
        let _ = listed;
        vec![$($type::$variant),+]
    }};
}

/// The values `constraint` (a `column = ANY (ARRAY[…])` check) allows.
async fn allowed(app: &TestApp, constraint: &str) -> Vec<String> {
    let definition: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1",
    )
    .bind(constraint)
    .fetch_one(&app.db)
    .await
    .unwrap_or_else(|error| panic!("no constraint {constraint}: {error}"));
    let list = definition
        .split_once("ARRAY[")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .unwrap_or_else(|| panic!("{constraint} is not a list: {definition}"));
    list.split(", ")
        .map(|item| {
            item.trim_end_matches("::text")
                .trim_matches('\'')
                .to_owned()
        })
        .collect()
}

/// Asserts that `variants`, written by sqlx, are exactly what `constraint` allows, and that each
/// allowed value reads back as a variant.
async fn same_values<T>(app: &TestApp, constraint: &str, variants: Vec<T>)
where
    T: for<'r> Encode<'r, Postgres> + for<'r> Decode<'r, Postgres> + Type<Postgres>,
    T: Send + Sync + Unpin + PartialEq + std::fmt::Debug + 'static,
{
    let mut written = Vec::new();
    for variant in variants {
        let text: String = sqlx::query_scalar("SELECT $1::text")
            .bind(&variant)
            .fetch_one(&app.db)
            .await
            .unwrap();
        let read: T = sqlx::query_scalar("SELECT $1::text")
            .bind(&text)
            .fetch_one(&app.db)
            .await
            .unwrap_or_else(|error| panic!("{text:?} does not read back: {error}"));
        assert_eq!(read, variant);
        written.push(text);
    }
    let mut allowed = allowed(app, constraint).await;
    allowed.sort();
    written.sort();
    assert_eq!(written, allowed, "{constraint}");
}

#[tokio::test]
async fn every_state_type_matches_its_columns_check_constraint() {
    let app = spawn_app().await;
    same_values(
        &app,
        "bookings_status_check",
        every!(BookingStatus: PendingPayment, Confirmed, Completed, Cancelled, Expired, NoShow),
    )
    .await;
    same_values(
        &app,
        "bookings_session_type_check",
        every!(SessionType: Demo, Regular),
    )
    .await;
    same_values(
        &app,
        "packages_status_check",
        every!(PackageStatus: PendingPayment, Active, Exhausted, Cancelled, Expired),
    )
    .await;
    same_values(
        &app,
        "mentor_media_status_check",
        every!(MediaStatus: Pending, Approved, Rejected),
    )
    .await;
    same_values(
        &app,
        "mentor_media_kind_check",
        every!(MediaKind: Photo, IntroVideo),
    )
    .await;
    same_values(
        &app,
        "media_uploads_kind_check",
        every!(MediaKind: Photo, IntroVideo),
    )
    .await;
    same_values(
        &app,
        "email_outbox_status_check",
        every!(OutboxStatus: Pending, Sent, Failed),
    )
    .await;
    same_values(
        &app,
        "users_approval_status_check",
        every!(ApprovalStatus: Pending, Approved, Rejected),
    )
    .await;
    same_values(
        &app,
        "users_role_check",
        every!(Role: Student, Mentor, Admin),
    )
    .await;
    same_values(
        &app,
        "sessions_kind_check",
        every!(SessionKind: Session, TotpEnrollment),
    )
    .await;
}
