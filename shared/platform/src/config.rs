//! Typed configuration, read once from the environment (Azure app settings, or the `Values` of
//! `local.settings.json` under `func start`). Nothing else in the code base reads the environment.

use std::path::PathBuf;
use std::time::Duration;

use azure_clients::blob::{BlobBackend, BlobConfig, StorageAccount};
use azure_clients::entra::{ManagedIdentity, TokenRules};
use azure_clients::pubsub::{PubSubEndpoint, PubSubService, RealtimeConfig};

/// A value that must never appear in logs or `Debug` output: read it with
/// [`ExposeSecret::expose_secret`], where it is needed and nowhere else.
pub use secrecy::{ExposeSecret, SecretString as Secret};

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
    /// Browser origins allowed to call the API with credentials (`API_ALLOWED_ORIGINS`,
    /// comma-separated). The handler owns CORS; on Flex Consumption the host itself owns the
    /// name `CORS_ALLOWED_ORIGINS` (a JSON array it writes from the site's CORS settings).
    pub cors_allowed_origins: Vec<String>,
    /// `FRONT_DOOR_ID`: the Azure Front Door profile in front of the API, if any; requests that
    /// carry it (`X-Azure-FDID`) are counted per `X-Azure-ClientIP` (`client_ip`).
    pub front_door_id: Option<String>,
    /// `RUST_LOG`-style filter for the JSON logs (`LOG_LEVEL`, default `info`).
    pub log_filter: String,
    /// `APPLICATIONINSIGHTS_CONNECTION_STRING`: traces and metrics go to Application Insights
    /// when set; none are sent otherwise.
    pub telemetry: Option<TelemetryConfig>,
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
    /// `RESET_CODE_KEY` (required, at least 32 characters; a Key Vault secret in Azure): the HMAC
    /// key password-reset codes are stored under. Replacing it voids the codes in flight (they
    /// live 15 minutes).
    pub reset_code_key: Secret,
}

/// Trace and metric export to Application Insights (`telemetry`), with the app's identity.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Its `IngestionEndpoint` and key; not a secret, ingestion needs an Entra token.
    pub connection_string: String,
    /// `OTEL_METRIC_EXPORT_INTERVAL`, in milliseconds (default one minute).
    pub metric_interval: Duration,
    /// `TELEMETRY_CA_FILE`: PEM certificates the uploads trust besides the public roots (a
    /// TLS-inspecting proxy; the load test's local ingestion endpoint). Unset in Azure.
    pub ca_file: Option<PathBuf>,
    /// `TELEMETRY_TRACES_PER_SECOND` (default 10): traces started here (not by a caller's
    /// `traceparent`) recorded per second and instance, at most.
    pub traces_per_second: u64,
}

#[derive(Debug, Clone)]
pub struct TurnConfig {
    pub urls: Vec<String>,
    pub shared_secret: Secret,
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
    /// `DATABASE_READ_URL`: where reads that may lag a little go (the dashboards): a read
    /// replica's pooled endpoint. Unset, or the same as `DATABASE_URL`, they share its pool.
    pub read_url: Option<Secret>,
    /// `DATABASE_MAX_CONNECTIONS`: client connections this instance opens to PgBouncer.
    pub max_connections: u32,
    /// `DATABASE_ACQUIRE_TIMEOUT_SECS`: how long a request waits for a pooled connection.
    pub acquire_timeout: Duration,
    /// `DATABASE_AUTH`: how the request pool signs in.
    pub auth: SignIn,
}

/// How the app signs in to Postgres (`DATABASE_AUTH`) or Redis (`REDIS_AUTH`).
#[derive(Debug, Clone)]
pub enum SignIn {
    /// `password` (the default): with what the URL carries, if anything.
    Url,
    /// `entra`: the URL carries no password; the app identity's Entra token for the service
    /// is the credential, renewed 5 minutes before it expires (`platform::db::entra`,
    /// `platform::cache::entra`).
    Entra(ManagedIdentity),
}

#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// `REDIS_URL` (`rediss://` in Azure). Unset: the in-process cache only.
    pub redis_url: Option<Secret>,
    /// `REDIS_KEY_PREFIX`: namespaces every key, so several environments can share one Redis.
    pub key_prefix: String,
    /// `REDIS_TIMEOUT_MS`: per-command timeout before the fallback takes over.
    pub redis_timeout: Duration,
    /// `REDIS_AUTH`: how the cache signs in to Redis.
    pub auth: SignIn,
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
        let mut reader = Reader::new(&lookup);
        let config = Config {
            bind_address: reader
                .optional("HANDLER_BIND_ADDRESS")
                .unwrap_or_else(|| "127.0.0.1".into()),
            port: reader.parsed("FUNCTIONS_CUSTOMHANDLER_PORT", 7071),
            database: reader.database(),
            cache: CacheConfig {
                redis_url: reader.optional("REDIS_URL").map(Secret::from),
                key_prefix: reader
                    .optional("REDIS_KEY_PREFIX")
                    .unwrap_or_else(|| "cc:".into()),
                redis_timeout: Duration::from_millis(reader.parsed("REDIS_TIMEOUT_MS", 1000)),
                auth: reader.sign_in("REDIS_AUTH", &["REDIS_URL"]),
            },
            cors_allowed_origins: reader
                .optional("API_ALLOWED_ORIGINS")
                .map(|origins| list(&origins))
                .unwrap_or_default(),
            front_door_id: reader
                .optional("FRONT_DOOR_ID")
                .map(|id| id.trim().to_owned()),
            log_filter: reader
                .optional("LOG_LEVEL")
                .unwrap_or_else(|| "info".into()),
            telemetry: reader.telemetry(),
            mail: MailConfig {
                sendgrid: reader
                    .optional("SENDGRID_API_KEY")
                    .map(|api_key| SendGridConfig {
                        api_key: Secret::from(api_key),
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
                        key_secret: Secret::from(key_secret),
                        webhook_secret: Secret::from(webhook_secret),
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
                            secret_key: Secret::from(secret_key),
                            webhook_secret: Secret::from(webhook_secret),
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
            reset_code_key: reader.key("RESET_CODE_KEY"),
        };
        reader.finish(config)
    }
}

impl DatabaseConfig {
    /// Only the database settings, for the operator commands (migrate, create-admin,
    /// seed-demo), which need nothing else.
    pub fn from_env() -> Result<Self, ConfigError> {
        let lookup = |name: &str| std::env::var(name).ok();
        let mut reader = Reader::new(&lookup);
        let database = reader.database();
        reader.finish(database)
    }

    /// The URL operator commands use: the direct port when set, else the pooled one.
    pub fn operator_url(&self) -> &Secret {
        self.direct_url.as_ref().unwrap_or(&self.url)
    }
}

/// The non-empty items of a comma-separated setting.
fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(String::from)
        .collect()
}

/// Shortest server key accepted: 32 characters of `openssl rand -base64 32` carry 192 bits.
const MIN_KEY_LENGTH: usize = 32;

const KEY_VAULT_REFERENCE: &str = "@Microsoft.KeyVault(";

fn unresolved_reference(name: &str) -> String {
    format!(
        "{name} is an unresolved Key Vault reference (the platform could not read the secret): \
         check that the secret exists and is enabled, that the app's identity has the Key Vault \
         Secrets User role on the vault, and that the vault is reachable from the app (firewall, \
         private endpoint); the portal shows each reference's status under Environment variables"
    )
}

struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
    /// Settings holding a Key Vault reference the platform could not resolve (it passes the
    /// reference through as text); each becomes one problem, read as unset meanwhile.
    unresolved: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl<'a> Reader<'a> {
    fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Reader {
            lookup,
            problems: Vec::new(),
            unresolved: Default::default(),
        }
    }

    /// `value` when every setting read was well-formed, else every problem found.
    fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        let mut problems = self.problems;
        problems.extend(
            self.unresolved
                .take()
                .iter()
                .map(|name| unresolved_reference(name)),
        );
        if problems.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError { problems })
        }
    }

    fn telemetry(&mut self) -> Option<TelemetryConfig> {
        let metric_interval =
            Duration::from_millis(self.parsed("OTEL_METRIC_EXPORT_INTERVAL", 60_000));
        let ca_file = self.optional("TELEMETRY_CA_FILE").map(PathBuf::from);
        let traces_per_second = self.parsed("TELEMETRY_TRACES_PER_SECOND", 10);
        self.optional("APPLICATIONINSIGHTS_CONNECTION_STRING")
            .map(|connection_string| TelemetryConfig {
                connection_string,
                metric_interval,
                ca_file,
                traces_per_second,
            })
    }

    fn database(&mut self) -> DatabaseConfig {
        DatabaseConfig {
            url: Secret::from(self.required("DATABASE_URL")),
            direct_url: self.optional("DATABASE_DIRECT_URL").map(Secret::from),
            read_url: self.optional("DATABASE_READ_URL").map(Secret::from),
            max_connections: self.parsed("DATABASE_MAX_CONNECTIONS", 20),
            acquire_timeout: Duration::from_secs(self.parsed("DATABASE_ACQUIRE_TIMEOUT_SECS", 30)),
            auth: self.sign_in("DATABASE_AUTH", &["DATABASE_URL", "DATABASE_READ_URL"]),
        }
    }

    /// `setting` (`password` or `entra`); with `entra`, no `url_settings` may carry a password.
    fn sign_in(&mut self, setting: &str, url_settings: &[&str]) -> SignIn {
        match self.optional(setting).as_deref().map(str::trim) {
            None | Some("password") => SignIn::Url,
            Some("entra") => {
                for url_setting in url_settings {
                    let url = (self.lookup)(url_setting).unwrap_or_default();
                    if reqwest::Url::parse(&url).is_ok_and(|url| url.password().is_some()) {
                        self.problems.push(format!(
                            "{url_setting} carries a password, but {setting}=entra signs in with the managed identity's token"
                        ));
                    }
                }
                SignIn::Entra(ManagedIdentity::Azure)
            }
            Some(other) => {
                self.problems.push(format!(
                    "{setting} must be password or entra, not {other:?}"
                ));
                SignIn::Url
            }
        }
    }

    fn optional(&self, name: &str) -> Option<String> {
        let value = (self.lookup)(name).filter(|value| !value.trim().is_empty())?;
        if value.trim_start().starts_with(KEY_VAULT_REFERENCE) {
            self.unresolved.borrow_mut().insert(name.to_owned());
            return None;
        }
        Some(value)
    }

    fn required(&mut self, name: &str) -> String {
        self.required_because(name, "is required but not set")
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
        let service = match self.optional("WEBPUBSUB_ENDPOINT") {
            Some(endpoint) => {
                let authority = self
                    .optional("ENTRA_AUTHORITY")
                    .unwrap_or_else(|| "https://login.microsoftonline.com".into());
                let tenant_id = self.required_with("ENTRA_TENANT_ID", "WEBPUBSUB_ENDPOINT");
                let audiences =
                    self.required_with("WEBPUBSUB_EVENT_AUDIENCES", "WEBPUBSUB_ENDPOINT");
                let principal_id =
                    self.required_with("WEBPUBSUB_PRINCIPAL_ID", "WEBPUBSUB_ENDPOINT");
                Some(PubSubService::Service(PubSubEndpoint {
                    endpoint: endpoint.trim_end_matches('/').to_owned(),
                    identity: ManagedIdentity::Azure,
                    events: TokenRules {
                        authority: authority.trim_end_matches('/').to_owned(),
                        tenant_id,
                        audiences: list(&audiences),
                        principal_ids: vec![principal_id],
                    },
                }))
            }
            None => Some(PubSubService::LocalHub {
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

    /// A required secret key of at least [`MIN_KEY_LENGTH`] characters.
    fn key(&mut self, name: &str) -> Secret {
        let key = self.required(name);
        if !key.is_empty() && key.chars().count() < MIN_KEY_LENGTH {
            self.problems.push(format!(
                "{name} must be at least {MIN_KEY_LENGTH} characters (e.g. `openssl rand -base64 32`)"
            ));
        }
        Secret::from(key)
    }

    /// A setting required because `because` is set.
    fn required_with(&mut self, name: &str, because: &str) -> String {
        self.required_because(name, &format!("is required with {because}"))
    }

    /// `name`'s value; when unset, a problem saying `name {why}` (an unresolved Key Vault
    /// reference is reported as such instead).
    fn required_because(&mut self, name: &str, why: &str) -> String {
        self.optional(name).unwrap_or_else(|| {
            if !self.unresolved.borrow().contains(name) {
                self.problems.push(format!("{name} {why}"));
            }
            String::new()
        })
    }

    fn turn(&mut self) -> Option<TurnConfig> {
        let urls = self.optional("TURN_URLS");
        let secret = self.optional("TURN_SHARED_SECRET");
        match (urls, secret) {
            (Some(urls), Some(secret)) => Some(TurnConfig {
                urls: list(&urls),
                shared_secret: Secret::from(secret),
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
            (None, None) => {
                self.problems.push(
                    "set AZURE_STORAGE_ACCOUNT_URL (Azure, with the managed identity) or \
                     AZURE_STORAGE_CONNECTION_STRING (UseDevelopmentStorage=true for Azurite)"
                        .into(),
                );
                None
            }
        };
        BlobConfig {
            // Without a backend a problem is recorded and the configuration is refused.
            backend: backend.unwrap_or_else(|| BlobBackend::ManagedIdentity {
                account_url: String::new(),
            }),
            media_container: self
                .optional("BLOB_MEDIA_CONTAINER")
                .unwrap_or_else(|| "media".into()),
            recordings_container: self
                .optional("BLOB_RECORDINGS_CONTAINER")
                .unwrap_or_else(|| "recordings".into()),
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

    /// The settings given, with Azurite as blob storage unless they name storage or
    /// `NO_STORAGE` is among them, and a reset-code key unless they name one.
    fn config_from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if map.remove("NO_STORAGE").is_none() && !map.keys().any(|k| k.starts_with("AZURE_STORAGE"))
        {
            map.insert(
                "AZURE_STORAGE_CONNECTION_STRING".into(),
                "UseDevelopmentStorage=true".into(),
            );
        }
        map.entry("RESET_CODE_KEY".into())
            .or_insert_with(|| TEST_KEY.into());
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

    const TEST_KEY: &str = "reset-code-key-of-32-characters!";

    #[test]
    fn entra_sign_in_takes_the_managed_identitys_token_and_no_password() {
        let config = config_from(&[
            (
                "DATABASE_URL",
                "postgres://codeconnect-app@db:6432/codeconnect?sslmode=require",
            ),
            ("DATABASE_AUTH", "entra"),
            ("REDIS_URL", "rediss://cache.redis.azure.net:10000"),
            ("REDIS_AUTH", "entra"),
        ])
        .unwrap();
        assert!(matches!(
            config.database.auth,
            SignIn::Entra(ManagedIdentity::Azure)
        ));
        assert!(matches!(
            config.cache.auth,
            SignIn::Entra(ManagedIdentity::Azure)
        ));
        let default = config_from(&[("DATABASE_URL", "postgres://app:pw@db/codeconnect")]).unwrap();
        assert!(matches!(default.database.auth, SignIn::Url));
        assert!(matches!(default.cache.auth, SignIn::Url));
        let problems = |pairs: &[(&str, &str)]| config_from(pairs).unwrap_err().problems;
        assert_eq!(
            problems(&[
                ("DATABASE_URL", "postgres://app:pw@db/codeconnect"),
                ("DATABASE_AUTH", "entra"),
                ("REDIS_URL", "rediss://:key@cache:10000"),
                ("REDIS_AUTH", "entra"),
            ]),
            [
                "DATABASE_URL carries a password, but DATABASE_AUTH=entra signs in with the managed identity's token",
                "REDIS_URL carries a password, but REDIS_AUTH=entra signs in with the managed identity's token",
            ]
        );
        assert_eq!(
            problems(&[
                ("DATABASE_URL", "postgres://app@db/codeconnect"),
                ("DATABASE_AUTH", "aad")
            ]),
            ["DATABASE_AUTH must be password or entra, not \"aad\""]
        );
    }

    #[test]
    fn missing_required_settings_are_named() {
        let error = config_from(&[("RESET_CODE_KEY", "")]).unwrap_err();
        assert_eq!(
            error.problems,
            vec![
                "DATABASE_URL is required but not set",
                "RESET_CODE_KEY is required but not set"
            ]
        );
    }

    #[test]
    fn a_short_key_is_refused_and_a_key_stays_out_of_debug_output() {
        let error = config_from(&[
            ("DATABASE_URL", "postgres://x"),
            ("RESET_CODE_KEY", "short"),
        ])
        .unwrap_err();
        assert_eq!(
            error.problems,
            vec!["RESET_CODE_KEY must be at least 32 characters (e.g. `openssl rand -base64 32`)"]
        );
        let config = config_from(&[("DATABASE_URL", "postgres://x")]).unwrap();
        assert_eq!(config.reset_code_key.expose_secret(), TEST_KEY);
        assert!(!format!("{config:?}").contains(TEST_KEY));
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
                "API_ALLOWED_ORIGINS",
                "https://a.example, https://b.example,",
            ),
            // What the Flex host writes under its own name; never ours.
            ("CORS_ALLOWED_ORIGINS", r#"["https://portal.azure.com"]"#),
        ])
        .unwrap();
        assert_eq!(config.port, 7071);
        assert_eq!(
            config.cors_allowed_origins,
            vec!["https://a.example", "https://b.example"]
        );
        assert!(!format!("{config:?}").contains("hunter2"));
        assert_eq!(config.blob.media_container, "media");
        assert_eq!(config.blob.recordings_container, "recordings");
    }

    #[test]
    fn unresolved_key_vault_references_stop_the_start_naming_the_setting() {
        let error = config_from(&[
            (
                "DATABASE_URL",
                "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/db/)",
            ),
            (
                "SENDGRID_API_KEY",
                " @Microsoft.KeyVault(VaultName=kv;SecretName=sendgrid)",
            ),
        ])
        .unwrap_err();
        assert_eq!(error.problems.len(), 2, "{:?}", error.problems);
        assert!(error.problems[0].starts_with("DATABASE_URL is an unresolved Key Vault reference"));
        assert!(error.problems[0].contains("Key Vault Secrets User"));
        assert!(error.problems[1].starts_with("SENDGRID_API_KEY is an unresolved"));
        assert!(!error.to_string().contains("kv.vault.azure.net"));
    }

    #[test]
    fn azure_web_pubsub_needs_the_rules_for_its_event_tokens() {
        let error = config_from(&[
            ("DATABASE_URL", "postgres://x"),
            ("WEBPUBSUB_ENDPOINT", "https://cc.webpubsub.azure.com/"),
        ])
        .unwrap_err();
        assert_eq!(
            error.problems,
            vec![
                "ENTRA_TENANT_ID is required with WEBPUBSUB_ENDPOINT",
                "WEBPUBSUB_EVENT_AUDIENCES is required with WEBPUBSUB_ENDPOINT",
                "WEBPUBSUB_PRINCIPAL_ID is required with WEBPUBSUB_ENDPOINT",
            ]
        );

        let config = config_from(&[
            ("DATABASE_URL", "postgres://x"),
            ("WEBPUBSUB_ENDPOINT", "https://cc.webpubsub.azure.com/"),
            ("ENTRA_TENANT_ID", "tenant-1"),
            (
                "WEBPUBSUB_EVENT_AUDIENCES",
                "api://cc-events, 7d0c-client-id",
            ),
            ("WEBPUBSUB_PRINCIPAL_ID", "wps-object-id"),
        ])
        .unwrap();
        let Some(PubSubService::Service(service)) = config.realtime.service else {
            panic!("expected Azure Web PubSub");
        };
        assert_eq!(service.endpoint, "https://cc.webpubsub.azure.com");
        assert!(matches!(service.identity, ManagedIdentity::Azure));
        assert_eq!(
            service.events.authority,
            "https://login.microsoftonline.com"
        );
        assert_eq!(
            service.events.audiences,
            vec!["api://cc-events", "7d0c-client-id"]
        );
        assert_eq!(service.events.principal_ids, vec!["wps-object-id"]);
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

        let error =
            config_from(&[("DATABASE_URL", "postgres://x"), ("NO_STORAGE", "")]).unwrap_err();
        assert_eq!(error.problems.len(), 1);
        assert!(error.problems[0].contains("AZURE_STORAGE_CONNECTION_STRING"));
    }
}
