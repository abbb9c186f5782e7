//! Mentor media: uploads sent straight to Azurite with a write URL for one blob, completion
//! that checks the stored file (type, size, magic bytes) and writes nothing for a refused one,
//! read URLs, replacement, the admin review queue and its effect on Find Mentors.

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
    /// Begins an upload of `kind`, declaring `content_type` and `size`.
    async fn begin(&self, kind: &str, content_type: &str, size: usize, token: &str) -> Response {
        self.post(
            &format!("/api/mentors/me/media/{kind}/uploads"),
            &json!({"contentType": content_type, "sizeBytes": size}),
            Some(token),
        )
        .await
    }

    async fn complete(&self, kind: &str, upload: &Value, token: &str) -> Response {
        let upload_id = upload["uploadId"].as_str().expect("an upload id");
        self.post(
            &format!("/api/mentors/me/media/{kind}/uploads/{upload_id}/complete"),
            &json!({}),
            Some(token),
        )
        .await
    }

    /// The whole flow as a client runs it: begin, PUT the file to storage, complete. Answers
    /// with the first refusal, else the completion.
    async fn upload(&self, kind: &str, content_type: &str, body: Vec<u8>, token: &str) -> Response {
        let begun = self.begin(kind, content_type, body.len(), token).await;
        if begun.status() != StatusCode::CREATED {
            return begun;
        }
        let upload: Value = begun.json().await.unwrap();
        assert_eq!(
            put_to_storage(&upload["target"], body).await,
            StatusCode::CREATED
        );
        self.complete(kind, &upload, token).await
    }

    async fn media_rows(&self, mentor_id: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM mentor_media WHERE mentor_id = $1")
            .bind(mentor_id)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }
}

impl TestApp {
    /// Whether the blob an upload target writes exists (the write URL itself may not read).
    async fn target_blob_exists(&self, target: &Value) -> bool {
        let url = reqwest::Url::parse(target["url"].as_str().unwrap()).unwrap();
        // `/devstoreaccount1/<container>/<name>` on Azurite.
        let path = url.path().trim_start_matches('/');
        let mut segments = path.splitn(3, '/');
        let (_, container, name) = (
            segments.next(),
            segments.next().unwrap(),
            segments.next().unwrap(),
        );
        self.state
            .blobs
            .properties(container, name)
            .await
            .unwrap()
            .is_some()
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

    let view = app
        .upload("photo", "image/png", photo.clone(), &token)
        .await
        .expect_status(StatusCode::OK)
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

    let listed = app
        .get("/api/mentors/me/media", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(fetch(&url_of(&listed[0])).await.1, photo);
}

#[tokio::test]
async fn a_video_sent_straight_to_storage_is_stored_whole() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, token) = app.visible_mentor("video@example.com", &admin).await;
    let video = webm(9 * MIB + 123);
    let view = app
        .upload("intro-video", "video/webm", video.clone(), &token)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(view["kind"], "intro-video");
    assert_eq!(view["sizeBytes"], video.len());
    assert_eq!(fetch(&url_of(&view)).await.1, video);
}

#[tokio::test]
async fn declared_types_and_sizes_are_refused_before_any_url_is_handed_out() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, token) = app.visible_mentor("limits@example.com", &admin).await;

    for (kind, content_type, size, status, code) in [
        (
            "photo",
            "image/gif",
            100,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        // A video is not a photo, whatever it is called.
        (
            "photo",
            "video/webm",
            100,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "photo",
            "image/png",
            0,
            StatusCode::BAD_REQUEST,
            "EMPTY_BODY",
        ),
        (
            "photo",
            "image/png",
            5 * MIB + 1,
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            "intro-video",
            "video/mp4",
            200_000_000,
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            "avatar",
            "image/png",
            100,
            StatusCode::BAD_REQUEST,
            "INVALID_PATH",
        ),
    ] {
        let refused = app
            .begin(kind, content_type, size, &token)
            .await
            .expect_problem(status, code)
            .await;
        if code == "PAYLOAD_TOO_LARGE" {
            assert!(refused["maxBytes"].as_u64().unwrap() < size as u64);
        }
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM media_uploads")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 0, "no upload begun");
    assert_eq!(app.media_rows(mentor_id).await, 0);
}

#[tokio::test]
async fn what_arrives_in_storage_is_checked_and_a_refused_file_is_deleted() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (mentor_id, token) = app.visible_mentor("stored@example.com", &admin).await;

    // Completing before anything arrived: the upload stays open.
    let upload = app
        .begin("photo", "image/png", 1000, &token)
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    assert_eq!(upload["target"]["headers"]["x-ms-blob-type"], "BlockBlob");
    assert_eq!(upload["target"]["maxBytes"], 5 * MIB);
    app.complete("photo", &upload, &token)
        .await
        .expect_problem(StatusCode::CONFLICT, "UPLOAD_INCOMPLETE")
        .await;

    // Declared 1,000 bytes, sent one byte over the limit: refused at completion, blob deleted,
    // and the upload is over.
    assert_eq!(
        put_to_storage(&upload["target"], png(5 * MIB + 1, 1)).await,
        StatusCode::CREATED
    );
    let too_big = app
        .complete("photo", &upload, &token)
        .await
        .expect_problem(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE")
        .await;
    assert_eq!(too_big["maxBytes"], 5 * MIB);
    assert!(!app.target_blob_exists(&upload["target"]).await);
    app.complete("photo", &upload, &token)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "UPLOAD_NOT_FOUND")
        .await;

    // The bytes must be what was declared.
    let upload = app
        .begin("photo", "image/jpeg", 1000, &token)
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    assert_eq!(
        put_to_storage(&upload["target"], png(1000, 1)).await,
        StatusCode::CREATED
    );
    app.complete("photo", &upload, &token)
        .await
        .expect_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "CONTENT_TYPE_MISMATCH")
        .await;
    assert!(!app.target_blob_exists(&upload["target"]).await);

    // Stored under another content type than declared: browsers would be told the wrong type.
    let upload = app
        .begin("photo", "image/png", 1000, &token)
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    let mut target = upload["target"].clone();
    target["headers"]["Content-Type"] = json!("text/html");
    assert_eq!(
        put_to_storage(&target, png(1000, 1)).await,
        StatusCode::CREATED
    );
    app.complete("photo", &upload, &token)
        .await
        .expect_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "CONTENT_TYPE_MISMATCH")
        .await;
    assert_eq!(app.media_rows(mentor_id).await, 0, "nothing recorded");

    // Exactly 5 MiB is allowed, and completing twice records it once.
    let upload = app
        .begin("photo", "image/png", 5 * MIB, &token)
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    assert_eq!(
        put_to_storage(&upload["target"], png(5 * MIB, 3)).await,
        StatusCode::CREATED
    );
    let (first, second) = tokio::join!(
        app.complete("photo", &upload, &token),
        app.complete("photo", &upload, &token)
    );
    let mut statuses = [first.status(), second.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::NOT_FOUND]);
    assert_eq!(app.media_rows(mentor_id).await, 1);
    assert!(
        app.target_blob_exists(&upload["target"]).await,
        "the winner's blob stays"
    );
}

#[tokio::test]
async fn a_write_url_is_for_its_one_blob_and_its_mentors_upload() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, token) = app.visible_mentor("scoped@example.com", &admin).await;
    let (_, other, _) = app
        .signed_in_mentor("scoped-other@example.com", &admin)
        .await;
    let upload = app
        .begin("photo", "image/png", 1000, &token)
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    let url = upload["target"]["url"].as_str().unwrap();

    // Another blob name under the same signature, or a tampered signature: storage refuses.
    let mut elsewhere = upload["target"].clone();
    elsewhere["url"] = json!(url.replacen("/mentors/", "/mentors-x/", 1));
    assert_eq!(
        put_to_storage(&elsewhere, png(1000, 1)).await,
        StatusCode::FORBIDDEN
    );
    let mut tampered = upload["target"].clone();
    tampered["url"] = json!(url.replacen("sig=", "sig=A", 1));
    assert_eq!(
        put_to_storage(&tampered, png(1000, 1)).await,
        StatusCode::FORBIDDEN
    );
    assert!(!app.target_blob_exists(&upload["target"]).await);

    // Another mentor cannot complete it, nor under another kind.
    assert_eq!(
        put_to_storage(&upload["target"], png(1000, 1)).await,
        StatusCode::CREATED
    );
    app.complete("photo", &upload, &other)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "UPLOAD_NOT_FOUND")
        .await;
    app.complete("intro-video", &upload, &token)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "UPLOAD_NOT_FOUND")
        .await;
    app.complete("photo", &upload, &token)
        .await
        .expect_status(StatusCode::OK)
        .await;
}

#[tokio::test]
async fn uploads_never_completed_are_swept_a_day_after_their_url_expired() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, token) = app.visible_mentor("sweep@example.com", &admin).await;
    let abandoned = app
        .begin("photo", "image/png", 1000, &token)
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    assert_eq!(
        put_to_storage(&abandoned["target"], png(1000, 1)).await,
        StatusCode::CREATED
    );
    let recent = app
        .begin("photo", "image/png", 1000, &token)
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    assert_eq!(
        put_to_storage(&recent["target"], png(1000, 2)).await,
        StatusCode::CREATED
    );
    sqlx::query(
        "UPDATE media_uploads SET expires_at = now() - interval '25 hours' WHERE upload_id = $1",
    )
    .bind(Uuid::parse_str(abandoned["uploadId"].as_str().unwrap()).unwrap())
    .execute(&app.db)
    .await
    .unwrap();

    let answer = app.invoke_timer("media-uploads", false).await;
    assert!(
        answer
            .to_string()
            .contains("deleted 1 abandoned media uploads"),
        "{answer}"
    );
    assert!(!app.target_blob_exists(&abandoned["target"]).await);
    app.complete("photo", &abandoned, &token)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "UPLOAD_NOT_FOUND")
        .await;
    assert!(app.target_blob_exists(&recent["target"]).await);
    app.complete("photo", &recent, &token)
        .await
        .expect_status(StatusCode::OK)
        .await;
}

#[tokio::test]
async fn a_new_upload_replaces_the_old_file_and_needs_approval_again() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, token) = app.visible_mentor("replace@example.com", &admin).await;
    let first = app
        .upload("photo", "image/png", png(2000, 1), &token)
        .await
        .expect_status(StatusCode::OK)
        .await;
    let first_id = first["mediaId"].as_str().unwrap().to_owned();
    app.post(
        &format!("/api/admin/media/{first_id}/approve"),
        &json!({}),
        Some(&admin),
    )
    .await
    .expect_status(StatusCode::OK)
    .await;

    let second_photo = png(3000, 2);
    let second = app
        .upload("photo", "image/png", second_photo.clone(), &token)
        .await
        .expect_status(StatusCode::OK)
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
    app.post(
        &format!("/api/admin/media/{first_id}/reject"),
        &json!({"reason": "blurry"}),
        Some(&admin),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "MEDIA_NOT_FOUND")
    .await;

    app.delete("/api/mentors/me/media/photo", Some(&token))
        .await
        .expect_status(StatusCode::NO_CONTENT)
        .await;
    assert_eq!(fetch(&url_of(&second)).await.0, StatusCode::NOT_FOUND);
    app.delete("/api/mentors/me/media/photo", Some(&token))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "MEDIA_NOT_FOUND")
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
    app.put(
        "/api/admin/settings",
        &json!({"mediaApprovalRequired": true}),
        Some(&admin),
    )
    .await
    .expect_status(StatusCode::OK)
    .await;
    let list = || async {
        app.get("/api/mentors", None)
            .await
            .expect_status(StatusCode::OK)
            .await
    };
    assert!(
        !listed_ids(&list().await).contains(&id),
        "no approved media yet"
    );

    let photo = png(4000, 9);
    let uploaded = app
        .upload("photo", "image/png", photo.clone(), &token)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert!(
        !listed_ids(&list().await).contains(&id),
        "pending is not approved"
    );

    let queue = app
        .get("/api/admin/media", Some(&admin))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(queue["items"].as_array().unwrap().len(), 1);
    assert_eq!(queue["items"][0]["mediaId"], uploaded["mediaId"]);
    assert_eq!(
        fetch(&url_of(&queue["items"][0])).await.1,
        photo,
        "the admin can look at it"
    );

    let media_id = uploaded["mediaId"].as_str().unwrap();
    let approved = app
        .post(
            &format!("/api/admin/media/{media_id}/approve"),
            &json!({}),
            Some(&admin),
        )
        .await
        .expect_status(StatusCode::OK)
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
    let detail = app
        .get(&format!("/api/mentors/{id}"), None)
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(fetch(detail["photoUrl"].as_str().unwrap()).await.1, photo);
    assert_eq!(detail["introVideoUrl"], Value::Null);
    let pending = app
        .get("/api/admin/media", Some(&admin))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert!(pending["items"].as_array().unwrap().is_empty());

    let rejected = app
        .post(
            &format!("/api/admin/media/{media_id}/reject"),
            &json!({"reason": "  Face not visible "}),
            Some(&admin),
        )
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(
        (&rejected["status"], &rejected["rejectionReason"]),
        (&json!("rejected"), &json!("Face not visible"))
    );
    assert!(
        !listed_ids(&list().await).contains(&id),
        "hidden at once after rejection"
    );
    let mine = app
        .get("/api/mentors/me/media", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(mine[0]["status"], "rejected");
    let notices = app
        .get("/api/notifications", Some(&token))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert!(
        notices.to_string().contains("Face not visible"),
        "{notices}"
    );
    let rejected_queue = app
        .get("/api/admin/media?status=rejected", Some(&admin))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(rejected_queue["items"][0]["mediaId"], uploaded["mediaId"]);

    app.post(
        &format!("/api/admin/media/{media_id}/reject"),
        &json!({"reason": ""}),
        Some(&admin),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
    .await;
    app.get("/api/admin/media?status=maybe", Some(&admin))
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "INVALID_QUERY")
        .await;
}

#[tokio::test]
async fn media_routes_enforce_roles() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, student) = app.student("s@example.com").await;
    let (_, mentor) = app.visible_mentor("m@example.com", &admin).await;
    let uploaded = app
        .upload("photo", "image/png", png(1000, 1), &mentor)
        .await
        .expect_status(StatusCode::OK)
        .await;
    let media_id = uploaded["mediaId"].as_str().unwrap();
    let approve = format!("/api/admin/media/{media_id}/approve");
    let reject = format!("/api/admin/media/{media_id}/reject");

    for (token, expected) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(student.as_str()), StatusCode::FORBIDDEN),
        (Some(admin.as_str()), StatusCode::FORBIDDEN),
    ] {
        let begin = app
            .post(
                "/api/mentors/me/media/photo/uploads",
                &json!({"contentType": "image/png", "sizeBytes": 1000}),
                token,
            )
            .await;
        assert_eq!(begin.status(), expected);
        let complete = format!(
            "/api/mentors/me/media/photo/uploads/{}/complete",
            Uuid::new_v4()
        );
        assert_eq!(
            app.post(&complete, &json!({}), token).await.status(),
            expected
        );
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
    let theirs = app
        .get("/api/mentors/me/media", Some(&other))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(theirs, json!([]));
    app.delete("/api/mentors/me/media/photo", Some(&other))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "MEDIA_NOT_FOUND")
        .await;
    let still = app
        .get("/api/mentors/me/media", Some(&mentor))
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(
        still[0]["status"], "pending",
        "no refused call changed anything"
    );
}
