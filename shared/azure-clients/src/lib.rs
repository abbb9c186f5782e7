//! The Azure services the app calls, as plain clients: Blob Storage (`blob`), Web PubSub's data
//! plane and its upstream event tokens (`pubsub`), and Entra ID tokens, both the app's own
//! managed identity and the validation of tokens Azure sends us (`entra`); and outbound HTTP as
//! traced dependency calls (`outbound`).
//!
//! It owns the wire contracts of those services and the settings each client needs, and nothing
//! else: it knows no route, no HTTP problem type and no product rule, and depends on no other
//! crate of this workspace. Errors are `anyhow` errors; the platform turns them into 500s.

pub mod blob;
pub mod entra;
pub mod outbound;
pub mod pubsub;
