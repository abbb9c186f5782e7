//! `sqlx::migrate!` embeds `shared/migrations/` at compile time; rebuild when a migration is added.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
