//! End-to-end tests: the real handler over HTTP, against Postgres through PgBouncer and Redis.

mod helpers;

mod accounts;
mod admin_users;
mod bad_input;
mod lockout;
mod mentor_login;
mod operations;
mod password_reset;
mod resilience;
mod sessions;
mod timers;
