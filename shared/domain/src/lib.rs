//! The marketplace rules more than one endpoint group needs, each in one home: money and the fee
//! split (`money`, `fees`), slot maths in mentors' time zones (`schedule`), booking states
//! (`booking_status`, `package_status`) and the push that tells both sides of a booking it changed
//! (`booking_changes`), notices and their texts (`notifications`), admin-editable platform
//! settings (`platform_settings`), account rules (`users`, `credentials`), media states
//! (`media`) and the checks a direct upload passes before it is kept (`uploads`).
//!
//! It builds on `platform` and the Azure clients and is used by the groups; it serves no route
//! itself. A rule one group alone uses stays in that group.

pub mod booking_changes;
pub mod booking_status;
pub mod credentials;
pub mod fees;
pub mod media;
pub mod money;
pub mod notifications;
pub mod package_status;
pub mod platform_settings;
pub mod schedule;
pub mod uploads;
pub mod users;
