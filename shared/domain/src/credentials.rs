//! A mentor's stated credentials: qualifications and specialties (display only; bookable
//! subjects are separate). Given at signup and edited on the profile, validated the same way.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use platform::validation::Validator;

const MAX_ITEMS: usize = 20;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Qualification {
    pub qualification: String,
    pub specialization: String,
    pub score: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Specialty {
    pub subject: String,
    /// Years of experience.
    #[schema(maximum = 60)]
    pub experience: u8,
}

/// Records every problem with the lists in `validator` (at most 20 items each, bounded texts).
pub fn validate(
    validator: &mut Validator,
    qualifications: &[Qualification],
    specialties: &[Specialty],
) {
    validator
        .check(
            qualifications.len() <= MAX_ITEMS,
            "qualifications",
            "at most 20 items",
        )
        .check(
            specialties.len() <= MAX_ITEMS,
            "specialties",
            "at most 20 items",
        );
    for (index, item) in qualifications.iter().enumerate() {
        let field = |name: &str| format!("qualifications[{index}].{name}");
        validator
            .length(&item.qualification, &field("qualification"), 1, 200)
            .length(&item.specialization, &field("specialization"), 1, 200)
            .length(&item.score, &field("score"), 1, 50);
    }
    for (index, item) in specialties.iter().enumerate() {
        let field = |name: &str| format!("specialties[{index}].{name}");
        validator
            .length(&item.subject, &field("subject"), 1, 100)
            .check(
                item.experience <= 60,
                &field("experience"),
                "at most 60 years",
            );
    }
}
