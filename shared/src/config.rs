//! Typed configuration, read once from the environment (Azure app settings, or the `Values` of
//! `local.settings.json` under `func start`). Nothing else in the code base reads the environment.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::blob::StorageAccount;

/// A value that must never appear in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Interface the handler binds to (`HANDLER_BIND_ADDRESS`, default 127.0.0.1: the Functions
    /// host always calls loopback).
    pub bind_address: String,
    /// `FUNCTIONS_CUSTOMHANDLER_PORT`, set by the Functions host; 7071 when run alone; 0 picks a
    /// free port (tests).
    pub port: u16,
    pub database: DatabaseConfig,
    pub cache: CacheConfig,
    /// Browser origins allowed to call the API with credentials (`CORS_ALLOWED_ORIGINS`,
    /// comma-separated).
    pub cors_allowed_origins: Vec<String>,
    /// `RUST_LOG`-style filter for the JSON logs (`LOG_LEVEL`, default `info`).
    pub log_filter: String,
    pub payments: PaymentsConfig,
    pub mail: MailConfig,
    pub blob: BlobConfig,
    /// `TIMERS_IN_PROCESS`, default false: fire the timers on their `function.json` schedules
    /// in this process, for runs without the Functions host (which otherwise fires them).
    pub timers_in_process: bool,
    pub realtime: RealtimeConfig,
    /// `TURN_URLS` (comma-separated) and `TURN_SHARED_SECRET`: TURN servers for video classes,
    /// with time-limited credentials (TURN REST). None: STUN-only ICE servers.
    pub turn: Option<TurnConfig>,
}

/// Azure Web PubSub: the managed identity in Azure (`WEBPUBSUB_ENDPOINT`), or an access key
/// (`WEBPUBSUB_CONNECTION_STRING`). Neither: the handler's own local hub. `None` (tests only):
/// real time is off.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    pub service: Option<PubSubService>,
    /// `WEBPUBSUB_HUB`, default `codeconnect`.
    pub hub: String,
}

/// `event_keys` (`WEBPUBSUB_EVENT_KEYS`, comma-separated; default: the connection string's key)
/// are the access keys that sign upstream events (`ce-signature`): list both the primary and
/// the secondary key, and a rotation never rejects a genuine event.
#[derive(Debug, Clone)]
pub enum PubSubService {
    ManagedIdentity {
        endpoint: String,
        event_keys: Vec<Secret>,
    },
    AccessKey {
        endpoint: String,
        key: Secret,
        event_keys: Vec<Secret>,
    },
    /// The local default: a compatible hub the handler serves on `LOCAL_PUBSUB_PORT` (7072).
    LocalHub { port: u16 },
}

#[derive(Debug, Clone)]
pub struct TurnConfig {
    pub urls: Vec<String>,
    pub shared_secret: Secret,
}

/// Blob storage: Azure with the managed identity (`AZURE_STORAGE_ACCOUNT_URL`), Azure or Azurite
/// with an account key (`AZURE_STORAGE_CONNECTION_STRING`), else a local folder.
#[derive(Debug, Clone)]
pub struct BlobConfig {
    pub backend: BlobBackend,
    /// `BLOB_MEDIA_CONTAINER`, default `media`.
    pub media_container: String,
    /// `BLOB_RECORDINGS_CONTAINER`, default `recordings`.
    pub recordings_container: String,
    /// `PUBLIC_BASE_URL`, default `http://127.0.0.1:7071`: where clients reach this app (the
    /// local-folder store's read URLs point there).
    pub public_base_url: String,
}

#[derive(Debug, Clone)]
pub enum BlobBackend {
    /// `AZURE_STORAGE_ACCOUNT_URL`: `https://<account>.blob.core.windows.net`.
    ManagedIdentity { account_url: String },
    /// `AZURE_STORAGE_CONNECTION_STRING` (`UseDevelopmentStorage=true` for Azurite).
    SharedKey(StorageAccount),
    /// `LOCAL_BLOB_DIR`, default `.local/blobs`.
    LocalFolder { dir: PathBuf },
}

/// Email delivery. Without a SendGrid key, emails stay in the outbox table (local default).
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub sendgrid: Option<SendGridConfig>,
    /// `EMAIL_FROM`, default `no-reply@codeconnect.example`.
    pub from: String,
}

#[derive(Debug, Clone)]
pub struct SendGridConfig {
    /// `SENDGRID_API_KEY`.
    pub api_key: Secret,
    /// `SENDGRID_BASE_URL`, default `https://api.sendgrid.com` (EU: `https://api.eu.sendgrid.com`).
    pub base_url: String,
}

/// Gateway credentials. A gateway without its keys is unavailable whatever the admin enables.
#[derive(Debug, Clone, Default)]
pub struct PaymentsConfig {
    pub razorpay: Option<RazorpayConfig>,
    pub stripe: Option<StripeConfig>,
}

#[derive(Debug, Clone)]
pub struct RazorpayConfig {
    /// `RAZORPAY_KEY_ID` (public, sent to checkout).
    pub key_id: String,
    /// `RAZORPAY_KEY_SECRET`: API basic auth and checkout signatures.
    pub key_secret: Secret,
    /// `RAZORPAY_WEBHOOK_SECRET`: webhook signatures (a different secret).
    pub webhook_secret: Secret,
    /// `RAZORPAY_BASE_URL`, default `https://api.razorpay.com` (tests point it at a mock).
    pub base_url: String,
}

#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `STRIPE_PUBLISHABLE_KEY` (public, sent to checkout).
    pub publishable_key: String,
    /// `STRIPE_SECRET_KEY`.
    pub secret_key: Secret,
    /// `STRIPE_WEBHOOK_SECRET` (`whsec_…`).
    pub webhook_secret: Secret,
    /// `STRIPE_BASE_URL`, default `https://api.stripe.com`.
    pub base_url: String,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`: the pooled endpoint (PgBouncer, port 6432 in Azure).
    pub url: Secret,
    /// `DATABASE_DIRECT_URL`: the direct Postgres port, used only for migrations and admin
    /// commands, because sqlx's migrator holds a session advisory lock.
    pub direct_url: Option<Secret>,
    /// `DATABASE_MAX_CONNECTIONS`: client connections this instance opens to PgBouncer.
    pub max_connections: u32,
    /// `DATABASE_ACQUIRE_TIMEOUT_SECS`: how long a request waits for a pooled connection.
    pub acquire_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// `REDIS_URL` (`rediss://` in Azure). Unset: the in-process cache only.
    pub redis_url: Option<Secret>,
    /// `REDIS_KEY_PREFIX`: namespaces every key, so several environments can share one Redis.
    pub key_prefix: String,
    /// `REDIS_TIMEOUT_MS`: per-command timeout before the fallback takes over.
    pub redis_timeout: Duration,
}

/// Every required setting that is missing or malformed, named, so a misconfigured deployment
/// fails at start with one clear message.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {}", .problems.join("; "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The name of every setting the app reads, derived from [`Config::from_lookup`] itself so
    /// the list can't drift (used to check the Bicep app settings and `local.settings.json`).
    pub fn setting_names() -> Vec<String> {
        let names = std::cell::RefCell::new(Vec::new());
        let _ = Self::from_lookup(|name| {
            names.borrow_mut().push(name.to_owned());
            None
        });
        names.into_inner()
    }

    /// Reads the configuration through `lookup`, so tests can supply their own settings.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut reader = Reader {
            lookup: &lookup,
            problems: Vec::new(),
        };
        let config = Config {
            bind_address: reader
                .optional("HANDLER_BIND_ADDRESS")
                .unwrap_or_else(|| "127.0.0.1".into()),
            port: reader.parsed("FUNCTIONS_CUSTOMHANDLER_PORT", 7071),
            database: DatabaseConfig {
                url: Secret::new(reader.required("DATABASE_URL")),
                direct_url: reader.optional("DATABASE_DIRECT_URL").map(Secret::new),
                max_connections: reader.parsed("DATABASE_MAX_CONNECTIONS", 20),
                acquire_timeout: Duration::from_secs(
                    reader.parsed("DATABASE_ACQUIRE_TIMEOUT_SECS", 30),
                ),
            },
            cache: CacheConfig {
                redis_url: reader.optional("REDIS_URL").map(Secret::new),
                key_prefix: reader
                    .optional("REDIS_KEY_PREFIX")
                    .unwrap_or_else(|| "cc:".into()),
                redis_timeout: Duration::from_millis(reader.parsed("REDIS_TIMEOUT_MS", 1000)),
            },
            cors_allowed_origins: reader
                .optional("CORS_ALLOWED_ORIGINS")
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|origin| !origin.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            log_filter: reader
                .optional("LOG_LEVEL")
                .unwrap_or_else(|| "info".into()),
            mail: MailConfig {
                sendgrid: reader
                    .optional("SENDGRID_API_KEY")
                    .map(|api_key| SendGridConfig {
                        api_key: Secret::new(api_key),
                        base_url: reader
                            .optional("SENDGRID_BASE_URL")
                            .unwrap_or_else(|| "https://api.sendgrid.com".into()),
                    }),
                from: reader
                    .optional("EMAIL_FROM")
                    .unwrap_or_else(|| "no-reply@codeconnect.example".into()),
            },
            payments: PaymentsConfig {
                razorpay: reader
                    .all_or_none(&[
                        "RAZORPAY_KEY_ID",
                        "RAZORPAY_KEY_SECRET",
                        "RAZORPAY_WEBHOOK_SECRET",
                    ])
                    .map(|[key_id, key_secret, webhook_secret]| RazorpayConfig {
                        key_id,
                        key_secret: Secret::new(key_secret),
                        webhook_secret: Secret::new(webhook_secret),
                        base_url: reader
                            .optional("RAZORPAY_BASE_URL")
                            .unwrap_or_else(|| "https://api.razorpay.com".into()),
                    }),
                stripe: reader
                    .all_or_none(&[
                        "STRIPE_PUBLISHABLE_KEY",
                        "STRIPE_SECRET_KEY",
                        "STRIPE_WEBHOOK_SECRET",
                    ])
                    .map(
                        |[publishable_key, secret_key, webhook_secret]| StripeConfig {
                            publishable_key,
                            secret_key: Secret::new(secret_key),
                            webhook_secret: Secret::new(webhook_secret),
                            base_url: reader
                                .optional("STRIPE_BASE_URL")
                                .unwrap_or_else(|| "https://api.stripe.com".into()),
                        },
                    ),
            },
            blob: reader.blob(),
            timers_in_process: reader.parsed("TIMERS_IN_PROCESS", false),
            realtime: reader.realtime(),
            turn: reader.turn(),
        };
        if reader.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                problems: reader.problems,
            })
        }
    }
}

struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

impl Reader<'_> {
    fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    fn required(&mut self, name: &str) -> String {
        self.optional(name).unwrap_or_else(|| {
            self.problems
                .push(format!("{name} is required but not set"));
            String::new()
        })
    }

    /// All three settings, or none (a partial set is a misconfiguration, named).
    fn all_or_none(&mut self, names: &[&str; 3]) -> Option<[String; 3]> {
        let values = names.map(|name| self.optional(name));
        match &values {
            [Some(_), Some(_), Some(_)] => Some(values.map(Option::unwrap_or_default)),
            [None, None, None] => None,
            _ => {
                let missing: Vec<&str> = names
                    .iter()
                    .zip(&values)
                    .filter(|(_, value)| value.is_none())
                    .map(|(name, _)| *name)
                    .collect();
                self.problems.push(format!(
                    "{} must be set together with {}",
                    missing.join(", "),
                    names.join(", ")
                ));
                None
            }
        }
    }

    fn realtime(&mut self) -> RealtimeConfig {
        let endpoint = self.optional("WEBPUBSUB_ENDPOINT");
        let connection_string = self.optional("WEBPUBSUB_CONNECTION_STRING");
        let event_keys: Vec<Secret> = self
            .optional("WEBPUBSUB_EVENT_KEYS")
            .map(|keys| {
                keys.split(',')
                    .map(str::trim)
                    .filter(|key| !key.is_empty())
                    .map(Secret::new)
                    .collect()
            })
            .unwrap_or_default();
        let service = match (endpoint, connection_string) {
            (Some(_), Some(_)) => {
                self.problems.push(
                    "set only one of WEBPUBSUB_ENDPOINT and WEBPUBSUB_CONNECTION_STRING".into(),
                );
                None
            }
            (Some(endpoint), None) => Some(PubSubService::ManagedIdentity {
                endpoint: endpoint.trim_end_matches('/').to_owned(),
                event_keys,
            }),
            (None, Some(connection_string)) => {
                match crate::pubsub::parse_connection_string(&connection_string) {
                    Ok((endpoint, key)) => Some(PubSubService::AccessKey {
                        endpoint,
                        key: key.clone(),
                        event_keys: if event_keys.is_empty() {
                            vec![key]
                        } else {
                            event_keys
                        },
                    }),
                    Err(problem) => {
                        self.problems
                            .push(format!("WEBPUBSUB_CONNECTION_STRING: {problem}"));
                        None
                    }
                }
            }
            (None, None) => Some(PubSubService::LocalHub {
                port: self.parsed("LOCAL_PUBSUB_PORT", 7072),
            }),
        };
        RealtimeConfig {
            service,
            hub: self
                .optional("WEBPUBSUB_HUB")
                .unwrap_or_else(|| "codeconnect".into()),
        }
    }

    fn turn(&mut self) -> Option<TurnConfig> {
        let urls = self.optional("TURN_URLS");
        let secret = self.optional("TURN_SHARED_SECRET");
        match (urls, secret) {
            (Some(urls), Some(secret)) => Some(TurnConfig {
                urls: urls
                    .split(',')
                    .map(str::trim)
                    .filter(|url| !url.is_empty())
                    .map(str::to_owned)
                    .collect(),
                shared_secret: Secret::new(secret),
            }),
            (None, None) => None,
            _ => {
                self.problems
                    .push("set both TURN_URLS and TURN_SHARED_SECRET, or neither".into());
                None
            }
        }
    }

    fn blob(&mut self) -> BlobConfig {
        let account_url = self.optional("AZURE_STORAGE_ACCOUNT_URL");
        let connection_string = self.optional("AZURE_STORAGE_CONNECTION_STRING");
        let local_dir = self.optional("LOCAL_BLOB_DIR");
        let backend = match (account_url, connection_string) {
            (Some(_), Some(_)) => {
                self.problems.push(
                    "set only one of AZURE_STORAGE_ACCOUNT_URL and AZURE_STORAGE_CONNECTION_STRING"
                        .into(),
                );
                None
            }
            (Some(account_url), None) => Some(BlobBackend::ManagedIdentity { account_url }),
            (None, Some(connection_string)) => {
                match StorageAccount::from_connection_string(&connection_string) {
                    Ok(account) => Some(BlobBackend::SharedKey(account)),
                    Err(problem) => {
                        self.problems
                            .push(format!("AZURE_STORAGE_CONNECTION_STRING: {problem}"));
                        None
                    }
                }
            }
            (None, None) => None,
        };
        BlobConfig {
            backend: backend.unwrap_or_else(|| BlobBackend::LocalFolder {
                dir: local_dir.unwrap_or_else(|| ".local/blobs".into()).into(),
            }),
            media_container: self
                .optional("BLOB_MEDIA_CONTAINER")
                .unwrap_or_else(|| "media".into()),
            recordings_container: self
                .optional("BLOB_RECORDINGS_CONTAINER")
                .unwrap_or_else(|| "recordings".into()),
            public_base_url: self
                .optional("PUBLIC_BASE_URL")
                .unwrap_or_else(|| "http://127.0.0.1:7071".into()),
        }
    }

    fn parsed<T: std::str::FromStr>(&mut self, name: &str, default: T) -> T {
        match self.optional(name) {
            None => default,
            Some(raw) => raw.trim().parse().unwrap_or_else(|_| {
                self.problems
                    .push(format!("{name} has an invalid value {raw:?}"));
                default
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config_from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn every_setting_read_is_listed_once() {
        let names = Config::setting_names();
        assert!(names.contains(&"DATABASE_URL".to_owned()));
        assert!(names.contains(&"REDIS_URL".to_owned()));
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }

    #[test]
    fn missing_required_settings_are_named() {
        let error = config_from(&[]).unwrap_err();
        assert_eq!(error.problems, vec!["DATABASE_URL is required but not set"]);
    }

    #[test]
    fn malformed_numbers_are_named_with_their_value() {
        let error = config_from(&[
            ("DATABASE_URL", "postgres://x"),
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "seventy"),
        ])
        .unwrap_err();
        assert_eq!(
            error.problems,
            vec![r#"FUNCTIONS_CUSTOMHANDLER_PORT has an invalid value "seventy""#]
        );
    }

    #[test]
    fn defaults_apply_and_secrets_stay_out_of_debug_output() {
        let config = config_from(&[
            ("DATABASE_URL", "postgres://user:hunter2@db/app"),
            (
                "CORS_ALLOWED_ORIGINS",
                "https://a.example, https://b.example,",
            ),
        ])
        .unwrap();
        assert_eq!(config.port, 7071);
        assert_eq!(
            config.cors_allowed_origins,
            vec!["https://a.example", "https://b.example"]
        );
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(matches!(
            config.blob.backend,
            BlobBackend::LocalFolder { ref dir } if dir == std::path::Path::new(".local/blobs")
        ));
    }

    #[test]
    fn blob_settings_choose_the_backend_and_keep_the_key_secret() {
        let config = config_from(&[
            ("DATABASE_URL", "postgres://x"),
            (
                "AZURE_STORAGE_CONNECTION_STRING",
                "UseDevelopmentStorage=true",
            ),
        ])
        .unwrap();
        assert!(matches!(config.blob.backend, BlobBackend::SharedKey(_)));
        assert!(!format!("{config:?}").contains("Eby8"));

        let config = config_from(&[
            ("DATABASE_URL", "postgres://x"),
            (
                "AZURE_STORAGE_ACCOUNT_URL",
                "https://acct.blob.core.windows.net/",
            ),
        ])
        .unwrap();
        assert!(matches!(
            config.blob.backend,
            BlobBackend::ManagedIdentity { .. }
        ));

        let error = config_from(&[
            ("DATABASE_URL", "postgres://x"),
            (
                "AZURE_STORAGE_ACCOUNT_URL",
                "https://acct.blob.core.windows.net/",
            ),
            (
                "AZURE_STORAGE_CONNECTION_STRING",
                "AccountName=a;AccountKey=c2VjcmV0",
            ),
        ])
        .unwrap_err();
        assert_eq!(
            error.problems,
            vec!["set only one of AZURE_STORAGE_ACCOUNT_URL and AZURE_STORAGE_CONNECTION_STRING"]
        );
    }
}
