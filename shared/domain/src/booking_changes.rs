//! What every booking change does after it commits (created, paid, cancelled, rescheduled,
//! completed, expired): retire the cached booking lists of the people involved (product-spec
//! §11) and push `{"type": "schedule.changed"}` to their personal groups, so their open
//! schedules refresh at once (§6). Only the people involved hear of it.

use serde_json::json;
use uuid::Uuid;

use azure_clients::pubsub::personal_group;
use platform::AppState;
use platform::cache::bookings_of;

pub async fn announce(state: &AppState, people: &[Uuid]) {
    let mut people = people.to_vec();
    people.sort_unstable();
    people.dedup();
    let message = json!({"type": "schedule.changed"});
    for person in people {
        state.cache.bump_generation(&bookings_of(person)).await;
        state.pubsub.push(&personal_group(person), &message).await;
    }
}
