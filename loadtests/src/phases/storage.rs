//! Phase 8: recording storage. Each class's mentor uploads recording parts of a class in
//! progress (`PUT /api/bookings/{id}/recording/parts/{n}`, 128 KiB of WebM each, streamed to
//! blob storage) and asks for the read URL of a finished recording
//! (`GET /api/recordings/{id}/url`), alternately.

use std::sync::Arc;

use bytes::Bytes;

use super::{StepResult, Target, VirtualUser, expect_ok};

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
        let request = if self.step % 2 == 1 {
            let n = self.first_part + (self.step / 2) % PARTS_PER_USER;
            client
                .put(format!(
                    "{base}/api/bookings/{}/recording/parts/{n}",
                    class.booking_id
                ))
                .header(reqwest::header::CONTENT_TYPE, "video/webm")
                .body(self.part.clone())
        } else {
            client.get(format!("{base}/api/recordings/{}/url", class.recording_id))
        };
        expect_ok(request.bearer_auth(&class.mentor_token).send().await)
    }
}
