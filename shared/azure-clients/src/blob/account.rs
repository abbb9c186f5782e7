//! Storage connection strings: `UseDevelopmentStorage=true` (Azurite) or
//! `DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…;BlobEndpoint=…;`.

use azure_storage::ConnectionString;
use data_encoding::BASE64;
use reqwest::Url;
use secrecy::SecretString;

/// Azurite's well-known account and key (public, documented by Microsoft).
const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const EMULATOR_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// A storage account reached with its account key.
#[derive(Debug, Clone)]
pub struct StorageAccount {
    pub name: String,
    /// The account key as given (base64); it signs requests and service SAS.
    pub key: SecretString,
    /// The blob endpoint without a trailing slash, such as
    /// `https://acct.blob.core.windows.net` or `http://127.0.0.1:10000/devstoreaccount1`.
    pub blob_endpoint: String,
}

impl StorageAccount {
    /// Parses a connection string with `azure_storage`'s parser. Errors name the problem, never
    /// the string's content (the parser's own errors quote it, key included, so they are not
    /// passed on).
    pub fn from_connection_string(connection_string: &str) -> Result<Self, String> {
        let parsed = ConnectionString::new(connection_string.trim()).map_err(|_| {
            "the connection string is not `Name=value;...` with a storage setting's names"
                .to_owned()
        })?;
        let development = parsed.use_development_storage == Some(true);
        let name = parsed
            .account_name
            .or(development.then_some(EMULATOR_ACCOUNT))
            .ok_or("the connection string has no AccountName")?;
        let key = parsed
            .account_key
            .or(development.then_some(EMULATOR_KEY))
            .ok_or("the connection string has no AccountKey (a key is needed to sign URLs)")?;
        if BASE64.decode(key.as_bytes()).is_err() {
            return Err("the connection string's AccountKey is not base64".into());
        }
        let blob_endpoint = match parsed.blob_endpoint {
            Some(endpoint) => endpoint.to_owned(),
            None if development => EMULATOR_BLOB_ENDPOINT.to_owned(),
            None => format!(
                "{}://{name}.blob.{}",
                parsed
                    .default_endpoints_protocol
                    .map_or_else(|| "https".to_owned(), |protocol| protocol.to_string()),
                parsed.endpoint_suffix.unwrap_or("core.windows.net")
            ),
        };
        let blob_endpoint = blob_endpoint.trim_end_matches('/').to_owned();
        check_endpoint(&blob_endpoint)?;
        Ok(Self {
            name: name.to_owned(),
            key: SecretString::from(key),
            blob_endpoint,
        })
    }
}

/// An endpoint must be HTTPS, except the emulator on this machine.
pub(super) fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let url = Url::parse(endpoint).map_err(|_| format!("{endpoint:?} is not a URL"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        _ => Err(format!(
            "{endpoint:?} must use https (plain http only for an emulator on 127.0.0.1)"
        )),
    }
}

pub(super) fn is_loopback(url: &Url) -> bool {
    matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn development_storage_means_azurite() {
        let account = StorageAccount::from_connection_string("UseDevelopmentStorage=true").unwrap();
        assert_eq!(account.name, "devstoreaccount1");
        assert_eq!(
            account.blob_endpoint,
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(account.key.expose_secret(), EMULATOR_KEY);
    }

    #[test]
    fn full_connection_strings_are_read() {
        let account = StorageAccount::from_connection_string(&format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={EMULATOR_KEY};\
             BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
        ))
        .unwrap();
        assert_eq!(
            account.blob_endpoint,
            "http://127.0.0.1:10000/devstoreaccount1"
        );

        let azure = StorageAccount::from_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net",
        )
        .unwrap();
        assert_eq!(azure.blob_endpoint, "https://acct.blob.core.windows.net");
    }

    #[test]
    fn bad_connection_strings_are_refused_without_echoing_the_key() {
        let cases = [
            ("AccountName=acct", "no AccountKey"),
            ("AccountName=acct;AccountKey=not base64!", "not base64"),
            (
                "AccountName=acct;AccountKey=a2V5;BlobEndpoint=http://storage.example/acct",
                "must use https",
            ),
            ("garbage", "not `Name=value"),
        ];
        for (connection_string, expected) in cases {
            let error = StorageAccount::from_connection_string(connection_string).unwrap_err();
            assert!(error.contains(expected), "{connection_string}: {error}");
            assert!(
                !error.contains("a2V5") && !error.contains("base64!"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_key_stays_out_of_debug_output() {
        let account = StorageAccount::from_connection_string("UseDevelopmentStorage=true").unwrap();
        assert!(!format!("{account:?}").contains("Eby8"));
    }
}
