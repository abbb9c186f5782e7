//! Find Mentors: the public list (filters, rating order, keyset pages) and a mentor's detail
//! page, both cached under the mentor-list generation since they are the hottest reads, and
//! reviews. Only visible mentors are ever shown.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use domain::credentials::{Qualification, Specialty};
use domain::media::{self, MEDIA_URL_TTL};
use platform::cache::{MENTOR_LIST, Snapshot};
use platform::pagination::{Page, PageQuery, TimeCursor};
use platform::{AppState, Error, Json, Path, Query, Result};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::visibility::{self, VISIBLE_MENTOR};

const LIST_TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct MentorFilter {
    /// Teaches this subject (case-insensitive).
    subject: Option<String>,
    /// Some subject's class fee is at least this (with `subject`: that subject's fee).
    #[param(value_type = Option<f64>, minimum = 0)]
    min_fee: Option<Decimal>,
    /// Some subject's class fee is at most this (the same subject as `minFee`); not below `minFee`.
    #[param(value_type = Option<f64>, minimum = 0)]
    max_fee: Option<Decimal>,
    /// Rating at least this, 0 to 5.
    #[param(value_type = Option<f64>, minimum = 0, maximum = 5)]
    min_rating: Option<Decimal>,
    /// Years of experience in a subject: `le2`, `3to5` or `gt5`.
    #[param(inline)]
    experience: Option<ExperienceBucket>,
    /// Words in the name, title, description or subjects.
    q: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub enum ExperienceBucket {
    #[serde(rename = "le2")]
    UpToTwo,
    #[serde(rename = "3to5")]
    ThreeToFive,
    #[serde(rename = "gt5")]
    OverFive,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MentorCard {
    mentor_id: Uuid,
    first_name: String,
    last_name: String,
    country: Option<String>,
    title: Option<String>,
    time_zone: String,
    #[schema(value_type = String, example = "4.50")]
    #[serde(serialize_with = "domain::money::two_places")]
    rating: Decimal,
    review_count: i32,
    student_count: i32,
    demo_enabled: bool,
    /// What the mentor teaches, by subject name.
    #[schema(value_type = Vec<SubjectOffer>)]
    subjects: sqlx::types::Json<Vec<SubjectOffer>>,
    #[serde(skip)]
    photo_blob: Option<String>,
    /// Read URL of the approved photo; valid for at least 15 minutes after it is served.
    #[sqlx(skip)]
    photo_url: Option<String>,
}

/// One subject a mentor teaches: the id to book it by, years of experience and the class fee.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubjectOffer {
    subject_id: Uuid,
    subject: String,
    experience_years: i32,
    #[schema(example = "500.00")]
    class_fee: String,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MentorDetail {
    #[sqlx(flatten)]
    #[serde(flatten)]
    card: MentorCard,
    description: Option<String>,
    #[schema(value_type = Vec<Qualification>)]
    qualifications: Value,
    #[schema(value_type = Vec<Specialty>)]
    specialties: Value,
    package_discount_percent: i32,
    #[serde(skip)]
    intro_video_blob: Option<String>,
    /// Read URL of the approved intro video; valid for at least 15 minutes after it is served.
    #[sqlx(skip)]
    intro_video_url: Option<String>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewView {
    review_id: Uuid,
    rating: i32,
    comment: Option<String>,
    student_first_name: String,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RatingCursor {
    rating: Decimal,
    id: Uuid,
}

const CARD_COLUMNS: &str = r#"u.user_id AS mentor_id, u.first_name, u.last_name, u.country, p.title,
    p.time_zone, p.rating, p.review_count, p.student_count, p.demo_enabled,
    (SELECT m.blob_name FROM mentor_media m
     WHERE m.mentor_id = u.user_id AND m.kind = 'photo' AND m.status = 'approved') AS photo_blob,
    (SELECT coalesce(json_agg(json_build_object(
                'subjectId', s.teacher_subject_id, 'subject', s.subject,
                'experienceYears', s.experience_years, 'classFee', s.class_fee::text)
            ORDER BY lower(s.subject)), '[]')
     FROM teacher_subjects s WHERE s.mentor_id = u.user_id) AS subjects"#;

/// Find Mentors
///
/// Approved, complete mentor profiles, filtered by subject, fee range, rating, experience and
/// free text (`q`: name, title, description, subject), a page at a time. No sign-in needed.
#[utoipa::path(
    get, path = "/mentors", tag = "mentors",
    params(MentorFilter, PageQuery),
    responses((status = 200, body = Page<MentorCard>), (status = 400, description = "INVALID_QUERY, INVALID_CURSOR"))
)]
pub async fn list_mentors(
    State(state): State<AppState>,
    Query(filter): Query<MentorFilter>,
    Query(page): Query<PageQuery>,
) -> Result<impl IntoResponse> {
    let filter = filter.normalized()?;
    let limit = page.limit()?;
    let cursor = page.cursor::<RatingCursor>()?;
    let generation = state.cache.generation(MENTOR_LIST).await;
    let key = format!(
        "mentors:{generation}:{}:{limit}:{}",
        serde_json::to_string(&filter)?,
        page.cursor.as_deref().unwrap_or("")
    );
    let snapshot = state
        .cache
        .get_or_fill_snapshot(&key, LIST_TTL, || async {
            let page = query_page(&state, &filter, limit, cursor).await?;
            Ok(serde_json::to_string(&page)?)
        })
        .await?;
    Ok(public(snapshot))
}

/// A public read browsers and CDNs may keep a minute and serve stale while revalidating for 4
/// more (the server's copy lives 5; a change retires it at once here, there within 5 minutes).
const PUBLIC_FOR_A_MINUTE: &str = "public, max-age=60, stale-while-revalidate=240";

/// A cached public read, with its ETag computed once.
fn public(snapshot: Snapshot) -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(PUBLIC_FOR_A_MINUTE),
            ),
            (header::ETAG, snapshot.etag),
        ],
        snapshot.body,
    )
}

/// A mentor's public profile
///
/// The card plus description, qualifications, specialties, package discount and the approved
/// intro video. No sign-in needed.
#[utoipa::path(
    get, path = "/mentors/{mentor_id}", tag = "mentors",
    params(("mentor_id" = Uuid, Path)),
    responses((status = 200, description = "Cached like the list; read URLs last at least 15 minutes", body = MentorDetail), (status = 404, description = "MENTOR_NOT_FOUND"))
)]
pub async fn mentor_detail(
    State(state): State<AppState>,
    Path(mentor_id): Path<Uuid>,
) -> Result<impl IntoResponse> {
    let generation = state.cache.generation(MENTOR_LIST).await;
    let snapshot = state
        .cache
        .get_or_fill_snapshot(
            &format!("mentor:{generation}:{mentor_id}"),
            LIST_TTL,
            || async {
                Ok(serde_json::to_string(
                    &query_detail(&state, mentor_id).await?,
                )?)
            },
        )
        .await?;
    Ok(public(snapshot))
}

async fn query_detail(state: &AppState, mentor_id: Uuid) -> Result<MentorDetail> {
    let media_required = visibility::media_approval_required(state).await?;
    let detail: Option<MentorDetail> = sqlx::query_as(&format!(
        r#"SELECT {CARD_COLUMNS}, p.description, p.qualifications, p.specialties, p.package_discount_percent,
                  (SELECT m.blob_name FROM mentor_media m
                   WHERE m.mentor_id = u.user_id AND m.kind = 'intro_video' AND m.status = 'approved') AS intro_video_blob
           FROM users u JOIN mentor_profiles p USING (user_id)
           WHERE {VISIBLE_MENTOR} AND u.user_id = $2"#
    ))
    .bind(media_required)
    .bind(mentor_id)
    .fetch_optional(&state.db)
    .await?;
    let mut detail = detail.ok_or_else(not_found)?;
    // Cached as long as the list, so its URLs outlive the cache by a full MEDIA_URL_TTL.
    let ttl = LIST_TTL + MEDIA_URL_TTL;
    detail.card.photo_url = signed(state, detail.card.photo_blob.as_deref(), ttl).await?;
    detail.intro_video_url = signed(state, detail.intro_video_blob.as_deref(), ttl).await?;
    Ok(detail)
}

/// A read URL for an approved media blob, if there is one.
async fn signed(state: &AppState, blob: Option<&str>, ttl: Duration) -> Result<Option<String>> {
    match blob {
        Some(blob) => Ok(Some(media::read_url(state, blob, ttl).await?)),
        None => Ok(None),
    }
}

/// A mentor's reviews
///
/// Published reviews, newest first, a page at a time. No sign-in needed; browsers and CDNs may
/// keep a page a minute (a new review shows within five).
#[utoipa::path(
    get, path = "/mentors/{mentor_id}/reviews", tag = "mentors",
    params(("mentor_id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<ReviewView>), (status = 404, description = "MENTOR_NOT_FOUND"))
)]
pub async fn mentor_reviews(
    State(state): State<AppState>,
    Path(mentor_id): Path<Uuid>,
    Query(page): Query<PageQuery>,
) -> Result<impl IntoResponse> {
    let limit = page.limit()?;
    let cursor = page.cursor::<TimeCursor>()?;
    ensure_visible(&state, mentor_id).await?;
    let rows: Vec<ReviewView> = sqlx::query_as(
        r#"SELECT r.review_id, r.rating, r.comment, s.first_name AS student_first_name, r.created_at
           FROM reviews r JOIN users s ON s.user_id = r.student_id
           WHERE r.mentor_id = $1
             AND ($2::timestamptz IS NULL OR (r.created_at, r.review_id) < ($2, $3))
           ORDER BY r.created_at DESC, r.review_id DESC
           LIMIT $4"#,
    )
    .bind(mentor_id)
    .bind(cursor.map(|c| c.time))
    .bind(cursor.map(|c| c.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(&state.db)
    .await?;
    let page = Page::from_rows(rows, limit, |review| TimeCursor {
        time: review.created_at,
        id: review.review_id,
    });
    // The ETag comes from the body (the conditional-GET middleware).
    Ok(([(header::CACHE_CONTROL, PUBLIC_FOR_A_MINUTE)], Json(page)))
}

/// 404 unless the mentor is visible in Find Mentors.
pub async fn ensure_visible(state: &AppState, mentor_id: Uuid) -> Result<()> {
    let media_required = visibility::media_approval_required(state).await?;
    let visible: bool = sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM users u JOIN mentor_profiles p USING (user_id) WHERE {VISIBLE_MENTOR} AND u.user_id = $2)"
    ))
    .bind(media_required)
    .bind(mentor_id)
    .fetch_one(&state.db)
    .await?;
    if visible { Ok(()) } else { Err(not_found()) }
}

impl MentorFilter {
    /// Canonical form (so equal searches share a cache entry) and range checks.
    fn normalized(self) -> Result<Self> {
        let clean = |text: Option<String>| {
            text.map(|t| t.trim().to_lowercase())
                .filter(|t| !t.is_empty())
        };
        let filter = MentorFilter {
            subject: clean(self.subject),
            q: clean(self.q),
            ..self
        };
        if filter.q.as_ref().is_some_and(|q| q.chars().count() > 100) {
            return Err(Error::bad_request(
                "INVALID_QUERY",
                "q is at most 100 characters",
            ));
        }
        if let (Some(min), Some(max)) = (filter.min_fee, filter.max_fee)
            && min > max
        {
            return Err(Error::bad_request(
                "INVALID_QUERY",
                "minFee is more than maxFee",
            ));
        }
        Ok(filter)
    }

    fn experience_range(&self) -> (Option<i32>, Option<i32>) {
        match self.experience {
            None => (None, None),
            Some(ExperienceBucket::UpToTwo) => (Some(0), Some(2)),
            Some(ExperienceBucket::ThreeToFive) => (Some(3), Some(5)),
            Some(ExperienceBucket::OverFive) => (Some(6), Some(60)),
        }
    }
}

async fn query_page(
    state: &AppState,
    filter: &MentorFilter,
    limit: u32,
    cursor: Option<RatingCursor>,
) -> Result<Page<MentorCard>> {
    let media_required = visibility::media_approval_required(state).await?;
    let (min_experience, max_experience) = filter.experience_range();
    let pattern = filter.q.as_deref().map(|q| format!("%{}%", escape_like(q)));
    let mut rows: Vec<MentorCard> = sqlx::query_as(&format!(
        r#"SELECT {CARD_COLUMNS}
           FROM users u JOIN mentor_profiles p USING (user_id)
           WHERE {VISIBLE_MENTOR}
             AND EXISTS (
                 SELECT 1 FROM teacher_subjects s WHERE s.mentor_id = u.user_id
                   AND ($2::text IS NULL OR lower(s.subject) = $2)
                   AND ($3::numeric IS NULL OR s.class_fee >= $3)
                   AND ($4::numeric IS NULL OR s.class_fee <= $4)
                   AND ($5::int IS NULL OR s.experience_years BETWEEN $5 AND $6))
             AND ($7::numeric IS NULL OR p.rating >= $7)
             AND ($8::text IS NULL
                  OR concat_ws(' ', u.first_name, u.last_name, p.title, p.description) ILIKE $8
                  OR EXISTS (SELECT 1 FROM teacher_subjects s WHERE s.mentor_id = u.user_id AND s.subject ILIKE $8))
             AND ($9::numeric IS NULL OR (p.rating, u.user_id) < ($9, $10))
           ORDER BY p.rating DESC, u.user_id DESC
           LIMIT $11"#
    ))
    .bind(media_required)
    .bind(filter.subject.as_deref())
    .bind(filter.min_fee)
    .bind(filter.max_fee)
    .bind(min_experience)
    .bind(max_experience)
    .bind(filter.min_rating)
    .bind(pattern)
    .bind(cursor.as_ref().map(|c| c.rating))
    .bind(cursor.as_ref().map(|c| c.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(&state.db)
    .await?;
    // Pages stay cached for LIST_TTL, so their URLs outlive it by a full MEDIA_URL_TTL.
    for card in &mut rows {
        card.photo_url =
            signed(state, card.photo_blob.as_deref(), LIST_TTL + MEDIA_URL_TTL).await?;
    }
    Ok(Page::from_rows(rows, limit, |mentor| RatingCursor {
        rating: mentor.rating,
        id: mentor.mentor_id,
    }))
}

/// Makes `%`, `_` and `\` in user text match literally in `ILIKE`.
fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn not_found() -> Error {
    Error::not_found("MENTOR_NOT_FOUND", "No such mentor.")
}
