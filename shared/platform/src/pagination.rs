//! Keyset pagination (`?limit=&cursor=`): stable under inserts, unlike offsets. The cursor is
//! an opaque token holding the sort key of the row a page ended on.

use chrono::{DateTime, Utc};
use data_encoding::BASE64URL_NOPAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{Error, Result};

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 100, default 20.
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when more items follow.
    pub next_cursor: Option<String>,
}

/// A position in a list ordered by `(time, id)`, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeCursor {
    pub time: DateTime<Utc>,
    pub id: Uuid,
}

impl PageQuery {
    pub fn limit(&self) -> Result<u32> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
            Some(_) => Err(Error::bad_request(
                "INVALID_QUERY",
                "limit must be between 1 and 100",
            )),
        }
    }

    /// The decoded cursor: the sort key of the row the previous page ended on.
    pub fn cursor<C: DeserializeOwned>(&self) -> Result<Option<C>> {
        self.cursor.as_deref().map(decode_cursor).transpose()
    }
}

/// An opaque cursor token for a sort key.
pub fn encode_cursor(key: &impl Serialize) -> String {
    let json = serde_json::to_vec(key).unwrap_or_default();
    BASE64URL_NOPAD.encode(&json)
}

fn decode_cursor<C: DeserializeOwned>(raw: &str) -> Result<C> {
    BASE64URL_NOPAD
        .decode(raw.as_bytes())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| Error::bad_request("INVALID_CURSOR", "cursor is not one this API issued"))
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says that more follow.
    pub fn from_rows<C: Serialize>(
        mut rows: Vec<T>,
        limit: u32,
        cursor_of: impl Fn(&T) -> C,
    ) -> Self {
        let limit = limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|row| encode_cursor(&cursor_of(row)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = TimeCursor {
            time: Utc::now(),
            id: Uuid::new_v4(),
        };
        assert_eq!(
            decode_cursor::<TimeCursor>(&encode_cursor(&cursor)).unwrap(),
            cursor
        );
        let garbage = decode_cursor::<TimeCursor>("nonsense").unwrap_err();
        assert_eq!(garbage.code(), Some("INVALID_CURSOR"));
    }

    #[test]
    fn a_page_says_whether_more_follow() {
        let full = Page::from_rows(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(full.items, vec![1, 2]);
        assert!(full.next_cursor.is_some());
        let last = Page::from_rows(vec![1, 2], 2, |n| *n);
        assert!(last.next_cursor.is_none());
    }
}
