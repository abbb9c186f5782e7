//! End-to-end tests: the real handler over HTTP, against Postgres through PgBouncer and Redis.

mod helpers;
mod tls_front;

mod accounts;
mod admin_users;
mod availability;
mod bad_input;
mod booking_changes;
mod booking_races;
mod booking_rules;
mod booking_timers;
mod cache_credentials;
mod chat;
mod database_credentials;
mod discovery;
mod lockout;
mod media;
mod mentor_login;
mod mentor_self_service;
mod notifications;
mod operations;
mod password_reset;
mod payments;
mod platform_settings;
mod pubsub_sdk;
mod rate_limits;
mod realtime;
mod recordings;
mod resilience;
mod schema;
mod schemathesis;
mod sessions;
mod smoke;
mod telemetry;
mod timers;
mod webrtc;
