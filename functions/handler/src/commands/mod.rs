//! Operator commands of the handler binary, besides serving.

mod admin;
mod package;
mod seed;

pub use admin::create_admin;
pub use package::package;
pub use seed::seed_demo;
