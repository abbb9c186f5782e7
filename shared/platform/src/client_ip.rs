//! The caller's IP address, for per-IP limits. Behind the Functions host the TCP peer is always
//! loopback; Azure's front end appends the real client address to `X-Forwarded-For`, so the
//! last entry is the one a client cannot forge. Behind Azure Front Door that entry is Front
//! Door's own address, shared by every user at its edge: there the client's address is
//! `X-Azure-ClientIP`, trusted only on requests that carry our profile's `X-Azure-FDID`
//! (`FRONT_DOOR_ID`), which Front Door adds and never shows to clients.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(through_front_door) = parts.extensions.get::<ClientIp>() {
            return Ok(*through_front_door);
        }
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|entry| parse_forwarded_entry(entry.trim()))
            .next_back();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip());
        Ok(ClientIp(
            forwarded.or(peer).unwrap_or(IpAddr::from([127, 0, 0, 1])),
        ))
    }
}

/// The client's address as our Front Door reports it: `X-Azure-ClientIP`, when the request
/// carries our profile's id in `X-Azure-FDID`. The handler stores it in the request's
/// extensions, where [`ClientIp`] looks first.
pub fn through_front_door(headers: &HeaderMap, front_door_id: &str) -> Option<ClientIp> {
    let ours = headers
        .get("x-azure-fdid")
        .is_some_and(|id| id.as_bytes().eq_ignore_ascii_case(front_door_id.as_bytes()));
    if !ours {
        return None;
    }
    headers
        .get("x-azure-clientip")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_forwarded_entry(value.trim()))
        .map(ClientIp)
}

/// Accepts `1.2.3.4`, `1.2.3.4:5678`, `::1` and `[::1]:5678`.
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|address| address.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_entries_with_and_without_ports_parse() {
        for (entry, expected) in [
            ("203.0.113.9", "203.0.113.9"),
            ("203.0.113.9:443", "203.0.113.9"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
        ] {
            assert_eq!(
                parse_forwarded_entry(entry),
                Some(expected.parse().unwrap()),
                "entry {entry}"
            );
        }
        assert_eq!(parse_forwarded_entry("unknown"), None);
    }
}
