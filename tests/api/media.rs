//! Mentor media: uploads streamed to Azurite (and the local folder), type and size limits that
//! write nothing, read URLs, replacement, the admin review queue and its effect on Find Mentors.

use bytes::Bytes;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

const MIB: usize = 1024 * 1024;

/// A file that starts like a PNG, `len` bytes long, its content varying with `seed`.
fn png(len: usize, seed: u8) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..len.saturating_sub(8)).map(|i| (i as u8).wrapping_mul(31) ^ seed));
    bytes
}

fn webm(len: usize) -> Vec<u8> {
    let mut bytes = vec![0x1A, 0x45, 0xDF, 0xA3];
    bytes.extend((0..len - 4).map(|i| (i % 251) as u8));
    bytes
}

impl TestApp {
    async fn upload(&self, kind: &str, content_type: &str, body: Vec<u8>, token: &str) -> Response {
        self.client
            .put(self.url(&format!("/api/mentors/me/media/{kind}")))
            .bearer_auth(token)
            .header("content-type", content_type)
            // As browsers and the Functions host send it, `0` included.
            .header("content-length", body.len())
            .body(body)
            .send()
            .await
            .expect("upload")
    }

    /// Sends `body` in 64 KiB chunks without a Content-Length (chunked transfer encoding).
    async fn upload_chunked(&self, content_type: &str, body: Vec<u8>, token: &str) -> Response {
        let chunks: Vec<Result<Bytes, std::io::Error>> = body
            .chunks(64 * 1024)
            .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
            .collect();
        self.client
            .put(self.url("/api/mentors/me/media/photo"))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .send()
            .await
            .expect("chunked upload")
    }

    async fn media_rows(&self, mentor_id: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM mentor_media WHERE mentor_id = $1")
            .bind(mentor_id)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }
}

async fn fetch(url: &str) -> (StatusCode, Vec<u8>) {
    let response = reqwest::get(url).await.expect("fetch read URL");
    let status = response.status();
    (status, response.bytes().await.unwrap().to_vec())
}

fn url_of(view: &Value) -> String {
    view["url"].as_str().expect("a read URL").to_owned()
}

#[tokio::test]
async fn a_photo_round_trips_through_azurite_and_its_read_url() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, token) = app.visible_mentor("media@example.com", &admin).await;
    let photo = png(300 * 1024, 7);

    let view = expect_status(
        app.upload("photo", "image/png", photo.clone(), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(view["kind"], "photo");
    assert_eq!(view["status"], "pending");
    assert_eq!(view["mentorId"], mentor_id.to_string());
    assert_eq!(view["contentType"], "image/png");
    assert_eq!(view["sizeBytes"], photo.len());
    let url = url_of(&view);
    assert!(url.contains("sig="), "a SAS URL: {url}");
    assert!(url.starts_with("http://127.0.0.1:10000/"), "Azurite: {url}");
    assert_eq!(fetch(&url).await, (StatusCode::OK, photo.clone()));

    // Without its signature the same blob is not readable: media is never public.
    let unsigned = url.split('?').next().unwrap();
    assert_ne!(fetch(unsigned).await.0, StatusCode::OK);

    let listed = expect_status(
        app.get("/api/mentors/me/media", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(fetch(&url_of(&listed[0])).await.1, photo);
}

#[tokio::test]
async fn a_streamed_video_is_stored_whole() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, token) = app.visible_mentor("video@example.com", &admin).await;
    let video = webm(9 * MIB + 123);
    let view = expect_status(
        app.upload("intro-video", "video/webm", video.clone(), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(view["kind"], "intro-video");
    assert_eq!(view["sizeBytes"], video.len());
    assert_eq!(fetch(&url_of(&view)).await.1, video);
}

#[tokio::test]
async fn type_and_size_limits_refuse_and_write_nothing() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, token) = app.visible_mentor("limits@example.com", &admin).await;

    let gif = b"GIF89a\x01\0\x01\0\0\0".to_vec();
    expect_problem(
        app.upload("photo", "image/gif", gif, &token).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    // A video is not a photo, whatever it is called.
    expect_problem(
        app.upload("photo", "video/webm", webm(1000), &token).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    // The bytes must be what the header says.
    expect_problem(
        app.upload("photo", "image/jpeg", png(1000, 1), &token)
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "CONTENT_TYPE_MISMATCH",
    )
    .await;
    expect_problem(
        app.upload("photo", "image/png", Vec::new(), &token).await,
        StatusCode::BAD_REQUEST,
        "EMPTY_BODY",
    )
    .await;
    expect_problem(
        app.upload("avatar", "image/png", png(1000, 1), &token)
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_PATH",
    )
    .await;
    // Through the Functions host a body without Content-Length arrives empty: refuse it.
    expect_problem(
        app.upload_chunked("image/png", png(1000, 2), &token).await,
        StatusCode::LENGTH_REQUIRED,
        "LENGTH_REQUIRED",
    )
    .await;
    // Exactly 5 MiB is allowed; one byte more is not.
    let too_big = expect_problem(
        app.upload("photo", "image/png", png(5 * MIB + 1, 2), &token)
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert_eq!(too_big["maxBytes"], 5 * MIB);
    assert_eq!(app.media_rows(mentor_id).await, 0, "nothing recorded");
    expect_status(
        app.upload("photo", "image/png", png(5 * MIB, 3), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(app.media_rows(mentor_id).await, 1);
}

#[tokio::test]
async fn a_declared_oversize_is_refused_before_the_body_is_read() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, token) = app.visible_mentor("declared@example.com", &admin).await;
    // Headers only: the answer must come without the server waiting for 200 MB.
    let head = app
        .put_headers_only(
            "/api/mentors/me/media/intro-video",
            &token,
            "video/mp4",
            200_000_000,
        )
        .await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("PAYLOAD_TOO_LARGE"), "{head}");
    assert_eq!(app.media_rows(mentor_id).await, 0);
}

#[tokio::test]
async fn a_new_upload_replaces_the_old_file_and_needs_approval_again() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, token) = app.visible_mentor("replace@example.com", &admin).await;
    let first = expect_status(
        app.upload("photo", "image/png", png(2000, 1), &token).await,
        StatusCode::OK,
    )
    .await;
    let first_id = first["mediaId"].as_str().unwrap().to_owned();
    expect_status(
        app.post(
            &format!("/api/admin/media/{first_id}/approve"),
            &json!({}),
            Some(&admin),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    let second_photo = png(3000, 2);
    let second = expect_status(
        app.upload("photo", "image/png", second_photo.clone(), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(second["status"], "pending");
    assert_ne!(second["mediaId"], first["mediaId"]);
    assert_eq!(
        fetch(&url_of(&first)).await.0,
        StatusCode::NOT_FOUND,
        "old blob deleted"
    );
    assert_eq!(fetch(&url_of(&second)).await.1, second_photo);
    // A decision about the old file cannot land on the new one.
    expect_problem(
        app.post(
            &format!("/api/admin/media/{first_id}/reject"),
            &json!({"reason": "blurry"}),
            Some(&admin),
        )
        .await,
        StatusCode::NOT_FOUND,
        "MEDIA_NOT_FOUND",
    )
    .await;

    expect_status(
        app.delete("/api/mentors/me/media/photo", Some(&token))
            .await,
        StatusCode::NO_CONTENT,
    )
    .await;
    assert_eq!(fetch(&url_of(&second)).await.0, StatusCode::NOT_FOUND);
    expect_problem(
        app.delete("/api/mentors/me/media/photo", Some(&token))
            .await,
        StatusCode::NOT_FOUND,
        "MEDIA_NOT_FOUND",
    )
    .await;
}

fn listed_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|mentor| mentor["mentorId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn review_decisions_drive_find_mentors_when_approval_is_required() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, token) = app.visible_mentor("review@example.com", &admin).await;
    let id = mentor_id.to_string();
    expect_status(
        app.put(
            "/api/admin/settings",
            &json!({"mediaApprovalRequired": true}),
            Some(&admin),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let list =
        || async { expect_status(app.get("/api/mentors", None).await, StatusCode::OK).await };
    assert!(
        !listed_ids(&list().await).contains(&id),
        "no approved media yet"
    );

    let photo = png(4000, 9);
    let uploaded = expect_status(
        app.upload("photo", "image/png", photo.clone(), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        !listed_ids(&list().await).contains(&id),
        "pending is not approved"
    );

    let queue = expect_status(
        app.get("/api/admin/media", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(queue["items"].as_array().unwrap().len(), 1);
    assert_eq!(queue["items"][0]["mediaId"], uploaded["mediaId"]);
    assert_eq!(
        fetch(&url_of(&queue["items"][0])).await.1,
        photo,
        "the admin can look at it"
    );

    let media_id = uploaded["mediaId"].as_str().unwrap();
    let approved = expect_status(
        app.post(
            &format!("/api/admin/media/{media_id}/approve"),
            &json!({}),
            Some(&admin),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(approved["status"], "approved");
    let page = list().await;
    let card = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|mentor| mentor["mentorId"] == id)
        .expect("visible at once after approval")
        .clone();
    assert_eq!(fetch(card["photoUrl"].as_str().unwrap()).await.1, photo);
    let detail = expect_status(
        app.get(&format!("/api/mentors/{id}"), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(fetch(detail["photoUrl"].as_str().unwrap()).await.1, photo);
    assert_eq!(detail["introVideoUrl"], Value::Null);
    let pending = expect_status(
        app.get("/api/admin/media", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    assert!(pending["items"].as_array().unwrap().is_empty());

    let rejected = expect_status(
        app.post(
            &format!("/api/admin/media/{media_id}/reject"),
            &json!({"reason": "  Face not visible "}),
            Some(&admin),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (&rejected["status"], &rejected["rejectionReason"]),
        (&json!("rejected"), &json!("Face not visible"))
    );
    assert!(
        !listed_ids(&list().await).contains(&id),
        "hidden at once after rejection"
    );
    let mine = expect_status(
        app.get("/api/mentors/me/media", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(mine[0]["status"], "rejected");
    let notices = expect_status(
        app.get("/api/notifications", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert!(
        notices.to_string().contains("Face not visible"),
        "{notices}"
    );
    let rejected_queue = expect_status(
        app.get("/api/admin/media?status=rejected", Some(&admin))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(rejected_queue["items"][0]["mediaId"], uploaded["mediaId"]);

    expect_problem(
        app.post(
            &format!("/api/admin/media/{media_id}/reject"),
            &json!({"reason": ""}),
            Some(&admin),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    expect_problem(
        app.get("/api/admin/media?status=maybe", Some(&admin)).await,
        StatusCode::BAD_REQUEST,
        "INVALID_QUERY",
    )
    .await;
}

#[tokio::test]
async fn media_routes_enforce_roles() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, student) = app.student("s@example.com").await;
    let (_, mentor) = app.visible_mentor("m@example.com", &admin).await;
    let uploaded = expect_status(
        app.upload("photo", "image/png", png(1000, 1), &mentor)
            .await,
        StatusCode::OK,
    )
    .await;
    let media_id = uploaded["mediaId"].as_str().unwrap();
    let approve = format!("/api/admin/media/{media_id}/approve");
    let reject = format!("/api/admin/media/{media_id}/reject");

    for (token, expected) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(student.as_str()), StatusCode::FORBIDDEN),
        (Some(admin.as_str()), StatusCode::FORBIDDEN),
    ] {
        let mut upload = app
            .client
            .put(app.url("/api/mentors/me/media/photo"))
            .header("content-type", "image/png")
            .body(png(1000, 2));
        if let Some(token) = token {
            upload = upload.bearer_auth(token);
        }
        assert_eq!(upload.send().await.unwrap().status(), expected);
        assert_eq!(
            app.get("/api/mentors/me/media", token).await.status(),
            expected
        );
        assert_eq!(
            app.delete("/api/mentors/me/media/photo", token)
                .await
                .status(),
            expected
        );
    }
    for (token, expected) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(student.as_str()), StatusCode::FORBIDDEN),
        (Some(mentor.as_str()), StatusCode::FORBIDDEN),
    ] {
        assert_eq!(app.get("/api/admin/media", token).await.status(), expected);
        assert_eq!(
            app.post(&approve, &json!({}), token).await.status(),
            expected
        );
        assert_eq!(
            app.post(&reject, &json!({"reason": "x"}), token)
                .await
                .status(),
            expected
        );
    }
    // Another mentor sees and touches only their own media.
    let (_, other, _) = app.signed_in_mentor("other@example.com", &admin).await;
    let theirs = expect_status(
        app.get("/api/mentors/me/media", Some(&other)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs, json!([]));
    expect_problem(
        app.delete("/api/mentors/me/media/photo", Some(&other))
            .await,
        StatusCode::NOT_FOUND,
        "MEDIA_NOT_FOUND",
    )
    .await;
    let still = expect_status(
        app.get("/api/mentors/me/media", Some(&mentor)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        still[0]["status"], "pending",
        "no refused call changed anything"
    );
}

#[tokio::test]
async fn the_local_folder_store_serves_signed_urls_only() {
    let dir = std::env::temp_dir().join(format!("cc-media-{}", Uuid::new_v4().simple()));
    let app = spawn_app_with(Options {
        blob_dir: Some(dir.clone()),
        ..Options::default()
    })
    .await;
    let (_, admin) = app.admin().await;
    let (_, token) = app.visible_mentor("local@example.com", &admin).await;
    let photo = png(10_000, 4);
    let view = expect_status(
        app.upload("photo", "image/png", photo.clone(), &token)
            .await,
        StatusCode::OK,
    )
    .await;
    // The URL names PUBLIC_BASE_URL; the test's app listens elsewhere, so keep path and query.
    let url = url_of(&view);
    let path = &url[url.find("/api/blobs/").expect("a local read URL")..];
    let response = app.get(path, None).await;
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.bytes().await.unwrap().to_vec(), photo);

    let tampered = path.replace("sig=", "sig=00");
    expect_problem(
        app.get(&tampered, None).await,
        StatusCode::FORBIDDEN,
        "BLOB_URL_INVALID",
    )
    .await;
    let unsigned = path.split('?').next().unwrap();
    expect_problem(
        app.get(unsigned, None).await,
        StatusCode::BAD_REQUEST,
        "INVALID_QUERY",
    )
    .await;
    std::fs::remove_dir_all(dir).ok();
}
