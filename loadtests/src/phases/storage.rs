//! Phase 8: recording storage. Each class's mentor sends recording parts of a class in
//! progress as the client does (128 KiB of WebM each: `POST .../recording/parts/{n}/upload` for
//! the part's write URL, a Put Block straight to blob storage, `POST .../parts/{n}/complete`),
//! and asks for the read URL of a finished recording (`GET /api/recordings/{id}/url`),
//! alternately.

use std::sync::Arc;

use bytes::Bytes;

use super::{StepResult, Target, VirtualUser, expect_ok, expect_status};

/// One part's size: a couple of seconds of a low-bitrate MediaRecorder stream.
const PART_BYTES: usize = 128 * 1024;
/// Part numbers run 1 to 999; two users of one class use halves of that range.
const PARTS_PER_USER: usize = 499;

pub struct User {
    target: Arc<Target>,
    class: usize,
    first_part: usize,
    step: usize,
    part: Bytes,
}

pub fn users(target: &Arc<Target>) -> Vec<Result<User, String>> {
    let classes = target.data.classes.len().min(target.connections).max(1);
    // WebM starts with the EBML magic; the rest is filler of the right size.
    let mut part = vec![0u8; PART_BYTES];
    part[..4].copy_from_slice(&[0x1A, 0x45, 0xDF, 0xA3]);
    let part = Bytes::from(part);
    (0..target.connections)
        .map(|user| {
            Ok(User {
                target: target.clone(),
                class: user % classes,
                first_part: 1 + (user / classes % 2) * PARTS_PER_USER,
                step: 0,
                part: part.clone(),
            })
        })
        .collect()
}

impl VirtualUser for User {
    async fn step(&mut self) -> StepResult {
        self.step += 1;
        let Target {
            client, base, data, ..
        } = &*self.target;
        let class = &data.classes[self.class];
        if self.step.is_multiple_of(2) {
            let url = format!("{base}/api/recordings/{}/url", class.recording_id);
            return expect_ok(
                client
                    .get(url)
                    .bearer_auth(&class.mentor_token)
                    .send()
                    .await,
            );
        }
        let n = self.first_part + (self.step / 2) % PARTS_PER_USER;
        let part = format!(
            "{base}/api/bookings/{}/recording/parts/{n}",
            class.booking_id
        );
        let send = |url: String| client.post(url).bearer_auth(&class.mentor_token).send();
        let target: serde_json::Value = expect_status(
            send(format!("{part}/upload")).await,
            reqwest::StatusCode::OK,
        )?
        .json()
        .await
        .map_err(|_| "unreadable upload target".to_owned())?;
        let url = target["url"].as_str().ok_or("no upload URL")?;
        expect_status(
            client.put(url).body(self.part.clone()).send().await,
            reqwest::StatusCode::CREATED,
        )
        .map_err(|error| format!("storage: {error}"))?;
        expect_ok(send(format!("{part}/complete")).await)
    }
}
