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
