//! Password hashing with argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane), on the
//! blocking pool so a login never stalls the async workers.

use std::sync::OnceLock;

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use tracing::Instrument;

use crate::error::Result;

/// The login's parameters, also used by the load test's argon2 ceiling.
pub fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a password is refused, or `None` when it meets the policy
/// (8 to 128 characters, with an upper-case letter, a lower-case letter and a digit).
pub fn weakness(password: &str) -> Option<&'static str> {
    let length = password.chars().count();
    if !(8..=128).contains(&length) {
        return Some("must be between 8 and 128 characters");
    }
    let has = |test: fn(char) -> bool| password.chars().any(test);
    if !(has(char::is_uppercase) && has(char::is_lowercase) && has(|c| c.is_ascii_digit())) {
        return Some("must contain an upper-case letter, a lower-case letter and a digit");
    }
    None
}

pub async fn hash(password: String) -> Result<String> {
    blocking(move || hash_now(&password)).await?
}

/// Checks `password` against `stored`. With no stored hash (unknown account) it still spends the
/// same time on a dummy hash, so response times don't reveal which emails exist.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool> {
    blocking(move || {
        let known = stored.is_some();
        let stored = match stored {
            Some(stored) => stored,
            None => dummy_hash()?.to_owned(),
        };
        let parsed = PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    })
    .await?
}

fn hash_now(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = hasher()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hash password: {e}"))?;
    Ok(hash.to_string())
}

fn dummy_hash() -> Result<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash);
    }
    let hash = hash_now("not a real password, only spends the same time")?;
    Ok(DUMMY.get_or_init(|| hash))
}

/// Hashes in flight at once: one per core. Each argon2id hash holds 19 MiB, so an unbounded
/// burst of logins would exhaust memory; beyond this they queue, which costs no throughput
/// (the cores are already busy).
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let _slot = hashing_slots()
        .acquire()
        .await
        .context("password hashing slots closed")?;
    let span = tracing::Span::current();
    let result = tokio::task::spawn_blocking(move || span.in_scope(work))
        .instrument(tracing::Span::current())
        .await
        .context("password hashing task")?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_what_is_missing() {
        assert_eq!(weakness("Abcdefg1"), None);
        assert!(weakness("Abcde1").is_some(), "too short");
        assert!(weakness("abcdefg1").is_some(), "no upper case");
        assert!(weakness("ABCDEFG1").is_some(), "no lower case");
        assert!(weakness("Abcdefgh").is_some(), "no digit");
        assert!(
            weakness(&format!("Ab1{}", "x".repeat(126))).is_some(),
            "too long"
        );
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let stored = hash("Secret123".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            verify("Secret123".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("Secret124".into(), Some(stored)).await.unwrap());
        assert!(!verify("Secret123".into(), None).await.unwrap());
    }
}
