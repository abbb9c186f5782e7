//! Operator commands of the handler binary, besides serving.

mod admin;
mod app_role;
mod hub;
mod package;
mod replay;
mod seed;
mod smoke;

pub use admin::create_admin;
pub use app_role::grant_app_role;
pub use hub::hub;
pub use package::package;
pub use replay::replay;
pub use seed::seed_demo;
pub use smoke::{Report, SmokeOptions, Step, smoke};
