//! Blob SAS for one blob, signed here rather than by the SDK so the signed version (`sv`) and the
//! string-to-sign are pinned and tested: a service SAS (account key) or a user delegation SAS
//! (a key obtained with the managed identity).
//!
//! String-to-sign for `sv` 2020-12-06 and later, up to (excluding) 2025-07-05, per
//! learn.microsoft.com/rest/api/storageservices/create-service-sas and
//! create-user-delegation-sas, and as Azurite validates it.

use chrono::{DateTime, SecondsFormat, Utc};
use data_encoding::BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signed version of every SAS we issue.
pub(super) const SAS_VERSION: &str = "2022-11-02";

/// What a SAS grants: `permissions` on one blob until `expiry`.
pub(super) struct Grant<'a> {
    pub account: &'a str,
    pub container: &'a str,
    pub name: &'a str,
    /// `r` to read; `cw` to create or write (Put Blob, Put Block, Put Block List).
    pub permissions: &'static str,
    pub expiry: DateTime<Utc>,
    /// `https`, or `https,http` for the emulator.
    pub protocol: &'static str,
}

/// A user delegation key as the service returned it; the `sk*` fields go into the SAS verbatim.
pub(super) struct DelegationKey {
    pub object_id: String,
    pub tenant_id: String,
    pub start: String,
    pub expiry: String,
    pub service: String,
    pub version: String,
    /// The base64-decoded key value.
    pub value: Vec<u8>,
}

/// The query parameters of a service SAS signed with the (base64-decoded) account key.
pub(super) fn service_sas(grant: &Grant<'_>, account_key: &[u8]) -> Vec<(&'static str, String)> {
    let expiry = format_time(grant.expiry);
    let string_to_sign = [
        grant.permissions,
        "",
        &expiry,
        &canonical_resource(grant),
        "", // signed identifier
        "", // signed IP
        grant.protocol,
        SAS_VERSION,
        "b",
        "", // snapshot time
        "", // encryption scope
        "", // rscc
        "", // rscd
        "", // rsce
        "", // rscl
        "", // rsct
    ]
    .join("\n");
    vec![
        ("sv", SAS_VERSION.to_owned()),
        ("sr", "b".to_owned()),
        ("sp", grant.permissions.to_owned()),
        ("se", expiry),
        ("spr", grant.protocol.to_owned()),
        ("sig", sign(account_key, &string_to_sign)),
    ]
}

/// The query parameters of a user delegation SAS.
pub(super) fn user_delegation_sas(
    grant: &Grant<'_>,
    key: &DelegationKey,
) -> Vec<(&'static str, String)> {
    let expiry = format_time(grant.expiry);
    let string_to_sign = [
        grant.permissions,
        "",
        &expiry,
        &canonical_resource(grant),
        &key.object_id,
        &key.tenant_id,
        &key.start,
        &key.expiry,
        &key.service,
        &key.version,
        "", // signed authorized user object id
        "", // signed unauthorized user object id
        "", // signed correlation id
        "", // signed IP
        grant.protocol,
        SAS_VERSION,
        "b",
        "", // snapshot time
        "", // encryption scope
        "", // rscc
        "", // rscd
        "", // rsce
        "", // rscl
        "", // rsct
    ]
    .join("\n");
    vec![
        ("sv", SAS_VERSION.to_owned()),
        ("sr", "b".to_owned()),
        ("sp", grant.permissions.to_owned()),
        ("se", expiry),
        ("spr", grant.protocol.to_owned()),
        ("skoid", key.object_id.clone()),
        ("sktid", key.tenant_id.clone()),
        ("skt", key.start.clone()),
        ("ske", key.expiry.clone()),
        ("sks", key.service.clone()),
        ("skv", key.version.clone()),
        ("sig", sign(&key.value, &string_to_sign)),
    ]
}

/// ISO 8601 in UTC to the second (`2024-05-01T12:00:00Z`), the form SAS times take.
pub(super) fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn canonical_resource(grant: &Grant<'_>) -> String {
    format!("/blob/{}/{}/{}", grant.account, grant.container, grant.name)
}

fn sign(key: &[u8], string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    BASE64.encode(&mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMULATOR_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn grant() -> Grant<'static> {
        Grant {
            account: "devstoreaccount1",
            container: "media",
            name: "videos/intro.mp4",
            permissions: "r",
            expiry: DateTime::parse_from_rfc3339("2030-01-02T03:04:05Z")
                .unwrap()
                .with_timezone(&Utc),
            protocol: "https,http",
        }
    }

    fn param<'p>(params: &'p [(&'static str, String)], name: &str) -> &'p str {
        params
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or_else(|| panic!("no {name}"))
    }

    // Expected signatures were computed with Azurite 3.35.0's own validator
    // (`generateBlobSASSignature` and `generateBlobSASSignatureWithUDK` in
    // dist/src/blob/authentication/IBlobSASSignatureValues.js) from the same values.

    #[test]
    fn service_sas_matches_azurites_signature() {
        let key = BASE64.decode(EMULATOR_KEY.as_bytes()).unwrap();
        let params = service_sas(&grant(), &key);
        assert_eq!(param(&params, "se"), "2030-01-02T03:04:05Z");
        assert_eq!(param(&params, "sv"), "2022-11-02");
        assert_eq!(param(&params, "sig"), SERVICE_SAS_SIGNATURE);
    }

    #[test]
    fn user_delegation_sas_matches_azurites_signature() {
        let key = DelegationKey {
            object_id: "11111111-2222-3333-4444-555555555555".into(),
            tenant_id: "66666666-7777-8888-9999-000000000000".into(),
            start: "2029-12-31T00:00:00Z".into(),
            expiry: "2030-01-07T00:00:00Z".into(),
            service: "b".into(),
            version: "2022-11-02".into(),
            value: BASE64
                .decode(b"dXNlci1kZWxlZ2F0aW9uLWtleS1mb3ItdGVzdHMtb25seS0zMmI=")
                .unwrap(),
        };
        let params = user_delegation_sas(&grant(), &key);
        assert_eq!(param(&params, "skoid"), key.object_id);
        assert_eq!(param(&params, "skt"), "2029-12-31T00:00:00Z");
        assert_eq!(param(&params, "sig"), USER_DELEGATION_SAS_SIGNATURE);
    }

    const SERVICE_SAS_SIGNATURE: &str = "NULGp5Sra5OAy66daQ38RBm288SDse1Ot7DO6evwP+Q=";
    const USER_DELEGATION_SAS_SIGNATURE: &str = "Cjo6pwBpg6agJ7JOYA6sfRl/ypNphJznRIMlohHo43Q=";
}
