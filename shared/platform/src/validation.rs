//! Field-level validation that collects every problem before answering, so a client fixes its
//! input in one round trip.

use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` against `field` unless `ok` holds.
    pub fn check(&mut self, ok: bool, field: &str, message: &str) -> &mut Self {
        if !ok {
            self.errors.push(FieldError {
                field: field.to_owned(),
                message: message.to_owned(),
            });
        }
        self
    }

    /// Checks that `value` looks like an e-mail address ([`is_plausible_email`]).
    pub fn email(&mut self, value: &str, field: &str) -> &mut Self {
        self.check(
            is_plausible_email(value),
            field,
            "must be a valid email address",
        )
    }

    /// Checks that a trimmed string has between `min` and `max` characters.
    pub fn length(&mut self, value: &str, field: &str, min: usize, max: usize) -> &mut Self {
        let length = value.trim().chars().count();
        let message = format!("must be between {min} and {max} characters");
        self.check((min..=max).contains(&length), field, &message)
    }

    pub fn finish(&mut self) -> Result<(), Error> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::validation(std::mem::take(&mut self.errors)))
        }
    }
}

/// A deliberately loose e-mail check (one `@`, a dotted domain, sane length): the reset e-mail
/// is the real proof of ownership. Every place that takes an address uses this one.
pub fn is_plausible_email(email: &str) -> bool {
    let email = email.trim();
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

/// `handle@provider`, as UPI virtual payment addresses are written.
pub fn is_upi_id(upi_id: &str) -> bool {
    let Some((handle, provider)) = upi_id.split_once('@') else {
        return false;
    };
    (2..=256).contains(&handle.len())
        && handle
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && (2..=64).contains(&provider.len())
        && provider.chars().all(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upi_ids() {
        for good in ["ravi.k@okaxis", "9876543210@ybl", "mentor_1@paytm"] {
            assert!(is_upi_id(good), "{good}");
        }
        for bad in [
            "",
            "ravi",
            "@okaxis",
            "r@",
            "ravi@ok axis",
            "ravi@ok@axis",
            "ravi@123",
        ] {
            assert!(!is_upi_id(bad), "{bad}");
        }
    }

    #[test]
    fn email_plausibility() {
        for good in ["a@b.co", "first.last+tag@sub.example.org"] {
            assert!(is_plausible_email(good), "{good}");
        }
        for bad in [
            "", "a", "a@b", "@b.co", "a@@b.co", "a b@c.co", "a@.co", "a@b.co.",
        ] {
            assert!(!is_plausible_email(bad), "{bad}");
        }
    }
}
