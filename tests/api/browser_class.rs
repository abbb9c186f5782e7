//! A real class in real browsers: two headless Chromium pages (Debian's, driven by
//! `playwright-core`, `tests/browser/run.mjs`) log in with the typed client, connect with
//! Microsoft's Web PubSub client to the local hub, join the class through the API, reach a WebRTC
//! `connected` state with video decoded both ways, chat, survive a dropped WebSocket, and the
//! mentor's page records with MediaRecorder straight to storage; a stranger's page is refused.
//! Then, from the database and storage: the stats reached the admin summary, and the recording,
//! once merged, is WebM about as long as the recording ran. `infra/local/up.sh` installs
//! Chromium and the pinned npm packages.

use std::path::{Path, PathBuf};
use std::time::Duration;

use azure_clients::pubsub::{PubSubService, RealtimeConfig};
use reqwest::StatusCode;

use crate::helpers::*;

fn browser_package() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    assert!(
        dir.join("node_modules/playwright-core").exists()
            && Path::new("/usr/bin/chromium").exists(),
        "run infra/local/up.sh first (it installs Chromium and {})",
        dir.display()
    );
    dir
}

#[tokio::test]
async fn a_class_runs_between_two_browsers_with_video_chat_presence_and_a_recording() {
    let dir = browser_package();
    // The pages' own server (in run.mjs) listens here; the API admits its origin.
    let page_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let app = spawn_app_with(Options {
        realtime: Some(RealtimeConfig {
            service: Some(PubSubService::LocalHub { port: 0 }),
            hub: "codeconnect".into(),
        }),
        allowed_origins: vec![format!("http://localhost:{page_port}")],
        ..Options::default()
    })
    .await;
    let (_, admin) = app.admin().await;
    let (mentor_id, _, totp_secret) = app
        .signed_in_mentor("browser-mentor@example.com", &admin)
        .await;
    let (student_id, _) = app.student("browser-student@example.com").await;
    app.student("browser-stranger@example.com").await;
    // A regular class that began five minutes ago: its video is open, its recording too.
    let booking = app
        .insert_booking(
            mentor_id,
            student_id,
            chrono::Utc::now() - chrono::Duration::minutes(5),
            "confirmed",
        )
        .await;
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();

    // The page script type-checks against the typed client before it runs.
    let typecheck = tokio::process::Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/api-client/node_modules/.bin/tsc"),
    )
    .args(["-p", "."])
    .current_dir(&dir)
    .output()
    .await
    .expect("run tsc");
    assert!(
        typecheck.status.success(),
        "the class page does not type-check:\n{}",
        String::from_utf8_lossy(&typecheck.stdout)
    );
    let run = tokio::process::Command::new("node")
        .arg("run.mjs")
        .current_dir(&dir)
        .env("API_BASE_URL", app.url(""))
        .env("PAGE_PORT", page_port.to_string())
        .env("BOOKING_ID", booking.to_string())
        .env("PASSWORD", PASSWORD)
        .env("MENTOR_EMAIL", "browser-mentor@example.com")
        // The next step's code: enrolment just used the current one, and a code works once.
        .env("MENTOR_TOTP", totp_at(&totp_secret, 30))
        .env("STUDENT_EMAIL", "browser-student@example.com")
        .env("STRANGER_EMAIL", "browser-stranger@example.com")
        .env("SCREENSHOTS", &screenshots)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(150), run)
        .await
        .expect("the browsers finish within 150 s")
        .expect("run node");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(
        output.status.success() && report.contains("all checks passed"),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for page in ["mentor", "student"] {
        let shot = screenshots.join(format!("{page}-connected.png"));
        assert!(
            std::fs::metadata(&shot).is_ok_and(|file| file.len() > 1000),
            "{shot:?}"
        );
    }

    // Both pages' stats reached the admin's summary.
    let summary = app
        .get("/api/admin/webrtc/summary", Some(&admin))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let host = summary["connectionTypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["connectionType"] == "host")
        .unwrap_or_else(|| panic!("host samples in {summary}"));
    assert!(host["samples"].as_i64().unwrap() >= 4, "{summary}");
    assert_eq!(host["classes"], 1);
    let senders: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT user_id) FROM webrtc_stats WHERE booking_id = $1",
    )
    .bind(booking)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(senders, 2);

    // The class ends; the recordings timer merges its parts; the student downloads WebM.
    let parts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM recording_parts WHERE booking_id = $1 AND uploaded_at IS NOT NULL",
    )
    .bind(booking)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(parts >= 3, "{parts} parts");
    app.execute(
        r#"UPDATE bookings SET scheduled_at = now() - interval '2 hours', ends_at = now() - interval '65 minutes',
                              blocked_until = now() - interval '60 minutes', status = 'completed',
                              completed_at = now() - interval '65 minutes'
           WHERE booking_id = $1"#,
        booking,
    )
    .await;
    app.invoke_timer("recordings", false).await;
    let student = app.login("browser-student@example.com").await;
    let mine = app
        .get("/api/recordings", Some(&student))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let recording = &mine["items"][0];
    assert_eq!(recording["bookingId"], booking.to_string(), "{mine}");
    assert_eq!(recording["partCount"], parts);
    let url = app
        .get(
            &format!(
                "/api/recordings/{}/url",
                recording["recordingId"].as_str().unwrap()
            ),
            Some(&student),
        )
        .await
        .expect_status(StatusCode::OK)
        .await;
    let file = reqwest::get(url["url"].as_str().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        &file[..4],
        [0x1A, 0x45, 0xDF, 0xA3],
        "an EBML (WebM) header"
    );
    let seconds = webm::duration_seconds(&file).expect("clusters with timecodes");
    let recorded: f64 = report
        .lines()
        .find_map(|line| line.strip_prefix("# recorded seconds: "))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("the page reports how long it recorded:\n{report}"));
    println!("{seconds:.2} s of video for {recorded:.2} s recorded");
    // The file spans the recording, less at most a frame interval and the last part's tail.
    assert!(
        recorded > 3.0 && (seconds - recorded).abs() < 1.5,
        "{seconds:.2} s of video for {recorded:.2} s recorded"
    );
}

/// Just enough of Matroska/WebM to measure a recording: MediaRecorder writes the segment and
/// its clusters with unknown sizes and no duration, so the length is the last cluster's
/// timecode plus its last block's offset.
mod webm {
    const SEGMENT: u32 = 0x1853_8067;
    const CLUSTER: u32 = 0x1F43_B675;
    const TIMECODE: u32 = 0xE7;
    const SIMPLE_BLOCK: u32 = 0xA3;
    const TIMECODE_SCALE: u32 = 0x2A_D7B1;
    const INFO: u32 = 0x1549_A966;

    /// Seconds from the first to the last block.
    pub fn duration_seconds(file: &[u8]) -> Option<f64> {
        let mut scale_ns = 1_000_000u64;
        let mut cluster_time = 0u64;
        let (mut first, mut last) = (None::<u64>, 0u64);
        let mut at = 0;
        while at < file.len() {
            let (id, id_len) = element_id(&file[at..])?;
            let (size, size_len) = element_size(&file[at + id_len..])?;
            let body = at + id_len + size_len;
            match id {
                // Containers: step inside (their sizes may be unknown).
                SEGMENT | CLUSTER | INFO => {
                    at = body;
                    continue;
                }
                TIMECODE_SCALE => scale_ns = uint(file.get(body..body + size?)?),
                TIMECODE => cluster_time = uint(file.get(body..body + size?)?),
                SIMPLE_BLOCK => {
                    let block = file.get(body..body + size?)?;
                    let (_, track_len) = element_size(block)?;
                    let offset =
                        i16::from_be_bytes([*block.get(track_len)?, *block.get(track_len + 1)?]);
                    let time = cluster_time.checked_add_signed(i64::from(offset))?;
                    first.get_or_insert(time);
                    last = last.max(time);
                }
                _ => {}
            }
            at = body + size?;
        }
        Some((last - first?) as f64 * scale_ns as f64 / 1e9)
    }

    fn element_id(bytes: &[u8]) -> Option<(u32, usize)> {
        let length = bytes.first()?.leading_zeros() as usize + 1;
        (length <= 4).then_some(())?;
        let id = bytes
            .get(..length)?
            .iter()
            .fold(0u32, |id, byte| (id << 8) | u32::from(*byte));
        Some((id, length))
    }

    /// A size, or `None` in the first place for "unknown" (all value bits set).
    fn element_size(bytes: &[u8]) -> Option<(Option<usize>, usize)> {
        let length = bytes.first()?.leading_zeros() as usize + 1;
        (length <= 8).then_some(())?;
        let mut value = u64::from(*bytes.first()?) & (0xFF >> length);
        for byte in bytes.get(1..length)? {
            value = (value << 8) | u64::from(*byte);
        }
        let unknown = value == (1u64 << (7 * length)) - 1;
        Some(((!unknown).then_some(value as usize), length))
    }

    fn uint(bytes: &[u8]) -> u64 {
        bytes
            .iter()
            .fold(0, |value, byte| (value << 8) | u64::from(*byte))
    }
}
