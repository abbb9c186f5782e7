//! Password hashing with argon2id at OWASP's parameters, on the hashing threads so a login never
//! stalls the async workers. Hashes are standard PHC strings; a hash made with other parameters
//! still verifies, and a login that matches one gets the password hashed anew to store.

use std::sync::OnceLock;

use anyhow::anyhow;
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;

use super::hashing_threads::{self, Priority, blocks};
use crate::error::Result;

/// The login's parameters, also used by the load test's argon2 ceiling.
pub fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

/// OWASP's 12 MiB, 3 passes, 1 lane, which it rates an equal defence to its 19 MiB and 2 passes
/// (this product's choice before) at about the same time per hash, holding 7 MiB less per
/// hashing thread: memory an instance with thousands of connections needs while it hashes.
fn params() -> Params {
    Params::new(12 * 1024, 3, 1, None).unwrap_or_default()
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
    hashing_threads::run(Priority::New, move |memory| hash_with(&password, memory)).await?
}

/// The outcome of checking a password.
#[derive(Debug)]
pub struct Checked {
    pub matches: bool,
    /// The password hashed with today's parameters, when it matched a hash made with others:
    /// store it in place of the old one.
    pub rehashed: Option<String>,
}

/// Checks `password` against `stored`. With no stored hash (unknown account) it still spends the
/// same time on a dummy hash, so response times don't reveal which emails exist.
pub async fn verify(password: String, stored: Option<String>) -> Result<Checked> {
    hashing_threads::run(Priority::Check, move |memory| {
        let Some(stored) = stored else {
            let dummy = dummy_hash(memory)?;
            matches(&password, dummy, memory)?;
            return Ok(Checked {
                matches: false,
                rehashed: None,
            });
        };
        let matches = matches(&password, &stored, memory)?;
        let rehashed = match matches && !is_current(&stored) {
            true => Some(hash_with(&password, memory)?),
            false => None,
        };
        Ok(Checked { matches, rehashed })
    })
    .await?
}

/// Whether `stored` (a hash that parsed) was made by [`hash`] with today's parameters.
fn is_current(stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|stored| {
        stored.algorithm == Algorithm::Argon2id.ident()
            && stored.version == Some(Version::V0x13.into())
            && stored
                .hash
                .is_some_and(|hash| hash.len() == Params::DEFAULT_OUTPUT_LEN)
            && Params::try_from(&stored).is_ok_and(|stored| {
                let today = params();
                (stored.m_cost(), stored.t_cost(), stored.p_cost())
                    == (today.m_cost(), today.t_cost(), today.p_cost())
            })
    })
}

fn hash_with(password: &str, memory: &mut Vec<Block>) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let params = params();
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let blocks = blocks(memory, params.block_count());
    hasher()
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut output, blocks)
        .map_err(|e| anyhow!("hash password: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow!("salt: {e}"))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow!("params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output).map_err(|e| anyhow!("output: {e}"))?),
    };
    Ok(hash.to_string())
}

/// Recomputes `stored`'s hash of `password` with the parameters, salt and length it names, and
/// compares in constant time.
fn matches(password: &str, stored: &str, memory: &mut Vec<Block>) -> Result<bool> {
    let stored = PasswordHash::new(stored).map_err(|e| anyhow!("stored hash: {e}"))?;
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return Err(anyhow!("stored hash has no salt or no output").into());
    };
    let algorithm = Algorithm::try_from(stored.algorithm).map_err(|e| anyhow!("{e}"))?;
    let version = match stored.version {
        Some(version) => Version::try_from(version).map_err(|e| anyhow!("{e}"))?,
        None => Version::default(),
    };
    let params = Params::try_from(&stored).map_err(|e| anyhow!("stored params: {e}"))?;
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow!("stored salt: {e}"))?;
    let mut actual = vec![0u8; expected.len()];
    let blocks = blocks(memory, params.block_count());
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut actual, blocks)
        .map_err(|e| anyhow!("hash password: {e}"))?;
    let actual = Output::new(&actual).map_err(|e| anyhow!("output: {e}"))?;
    Ok(actual == expected)
}

fn dummy_hash(memory: &mut Vec<Block>) -> Result<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash);
    }
    let hash = hash_with("not a real password, only spends the same time", memory)?;
    Ok(DUMMY.get_or_init(|| hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher;

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
        assert!(stored.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"));
        let right = verify("Secret123".into(), Some(stored.clone()))
            .await
            .unwrap();
        assert!(right.matches);
        assert_eq!(right.rehashed, None, "already current");
        assert!(!matched("Secret124", Some(stored)).await);
        assert!(!matched("Secret123", None).await);
    }

    async fn matched(password: &str, stored: Option<String>) -> bool {
        verify(password.into(), stored).await.unwrap().matches
    }

    /// OWASP's 19 MiB and 2 passes (this product's parameters before): still accepted, and a
    /// match comes with the password hashed at today's parameters; a wrong one gets nothing.
    #[tokio::test]
    async fn a_match_against_older_parameters_is_rehashed() {
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let older = Params::new(19 * 1024, 2, 1, None).unwrap();
        let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, older)
            .hash_password(b"Secret123", &salt)
            .unwrap()
            .to_string();

        let right = verify("Secret123".into(), Some(stored.clone()))
            .await
            .unwrap();
        assert!(right.matches);
        let rehashed = right.rehashed.expect("a hash at today's parameters");
        assert!(rehashed.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"));
        assert!(matched("Secret123", Some(rehashed)).await);

        let wrong = verify("Secret124".into(), Some(stored)).await.unwrap();
        assert!(!wrong.matches);
        assert_eq!(wrong.rehashed, None);
    }

    #[tokio::test]
    async fn hashes_are_interchangeable_with_the_argon2_crates_own() {
        use argon2::password_hash::PasswordVerifier;

        let ours = hash("Secret123".into()).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(hasher().verify_password(b"Secret123", &parsed).is_ok());
        assert!(hasher().verify_password(b"Secret124", &parsed).is_err());

        // Other parameters (an older or stronger policy) still verify, with more memory.
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let stronger = Params::new(32 * 1024, 3, 1, Some(24)).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, stronger)
            .hash_password(b"Secret123", &salt)
            .unwrap()
            .to_string();
        assert!(matched("Secret123", Some(theirs.clone())).await);
        assert!(!matched("Secret124", Some(theirs)).await);
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_error_not_a_match() {
        assert!(
            verify("Secret123".into(), Some("$argon2id$v=19$nonsense".into()))
                .await
                .is_err()
        );
    }
}
