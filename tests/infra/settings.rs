//! The Function App's app settings against what the handler reads (`Config::setting_names()`),
//! and `local.settings.json` against the same list.

use std::collections::BTreeSet;
use std::fs;

use platform::config::Config;
use tree_sitter::Node;

use crate::bicep::{BicepFile, declared, infra_files, repo_root};

/// Settings the handler reads that are deliberately not set in Azure, and why.
const NOT_SET_IN_AZURE: &[(&str, &str)] = &[
    (
        "FUNCTIONS_CUSTOMHANDLER_PORT",
        "the Functions host sets it for the handler process",
    ),
    (
        "AZURE_STORAGE_CONNECTION_STRING",
        "local only (Azurite): Azure uses the managed identity with AZURE_STORAGE_ACCOUNT_URL",
    ),
    (
        "ENTRA_AUTHORITY",
        "the public cloud's authority is the default; set it only in a sovereign cloud",
    ),
    (
        "LOCAL_PUBSUB_PORT",
        "local only: the handler's own hub when no Web PubSub is configured",
    ),
    (
        "DATABASE_DIRECT_URL",
        "operators only: migrations and grants over the direct port, with their own Entra token",
    ),
];

/// Settings planned in issue 8 that Azure provides even before the Rust code reads them.
const PLANNED_SETTINGS: &[&str] = &[
    "DATABASE_URL",
    "DATABASE_DIRECT_URL",
    "DATABASE_READ_URL",
    "DATABASE_MAX_CONNECTIONS",
    "DATABASE_ACQUIRE_TIMEOUT_SECS",
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "REDIS_TIMEOUT_MS",
    "API_ALLOWED_ORIGINS",
    "LOG_LEVEL",
    "HANDLER_BIND_ADDRESS",
    "AZURE_STORAGE_ACCOUNT_URL",
    "BLOB_MEDIA_CONTAINER",
    "BLOB_RECORDINGS_CONTAINER",
    "PUBLIC_BASE_URL",
    "WEBPUBSUB_ENDPOINT",
    "ENTRA_TENANT_ID",
    "WEBPUBSUB_EVENT_AUDIENCES",
    "WEBPUBSUB_PRINCIPAL_ID",
    "WEBPUBSUB_HUB",
    "SENDGRID_API_KEY",
    "EMAIL_FROM",
    "RAZORPAY_KEY_ID",
    "RAZORPAY_KEY_SECRET",
    "RAZORPAY_WEBHOOK_SECRET",
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "TURN_URLS",
    "TURN_SHARED_SECRET",
];

/// Settings the Functions host itself needs on Flex Consumption.
const HOST_SETTINGS: &[&str] = &[
    // Identity-based host storage: timers keep their schedule and singleton lease there.
    "AzureWebJobsStorage__accountName",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    // Application Insights has local auth disabled.
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
];

/// Settings whose value holds a secret and so must be a Key Vault reference: the third parties'
/// keys (no Entra there) and the app's own reset-code key. Azure's services are reached with
/// the app identity's tokens instead.
const SECRET_SETTINGS: &[&str] = &[
    "SENDGRID_API_KEY",
    "RAZORPAY_KEY_SECRET",
    "RAZORPAY_WEBHOOK_SECRET",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "TURN_SHARED_SECRET",
    "RESET_CODE_KEY",
];

/// Settings that must not be set, and why.
const FORBIDDEN_SETTINGS: &[(&str, &str)] = &[
    (
        "FUNCTIONS_WORKER_RUNTIME",
        "Flex sets the runtime in functionAppConfig.runtime",
    ),
    (
        "FUNCTIONS_EXTENSION_VERSION",
        "Flex sets the runtime in functionAppConfig.runtime",
    ),
    (
        "WEBSITE_RUN_FROM_PACKAGE",
        "unsupported on Flex Consumption",
    ),
    ("WEBSITE_CONTENTSHARE", "unsupported on Flex Consumption"),
    (
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "unsupported on Flex Consumption",
    ),
    (
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "unsupported on Flex Consumption",
    ),
    ("WEBSITE_TIME_ZONE", "unsupported on Flex Consumption"),
    (
        "AzureWebJobsStorage",
        "a connection string needs shared keys, which the account refuses",
    ),
];

/// One `NAME: value` of the Function App's app settings.
struct AppSetting<'f> {
    file: &'f BicepFile,
    name: String,
    value: Node<'f>,
}

/// The app settings from the `Microsoft.Web/sites/config` resource named `appsettings`, plus any
/// `siteConfig.appSettings` entries on a `Microsoft.Web/sites` resource.
fn app_settings(files: &[BicepFile]) -> Vec<AppSetting<'_>> {
    let mut settings = Vec::new();
    for resource in declared(files, "Microsoft.Web/sites/config") {
        if resource.literal("name").as_deref() != Some("appsettings") {
            continue;
        }
        let properties = resource
            .property("properties")
            .unwrap_or_else(|| panic!("{} has no properties object", resource.describe()));
        for (name, value) in resource.file.object_properties(properties) {
            settings.push(AppSetting {
                file: resource.file,
                name,
                value,
            });
        }
    }
    for resource in declared(files, "Microsoft.Web/sites") {
        let Some(list) = resource.property("properties.siteConfig.appSettings") else {
            continue;
        };
        for entry in crate::bicep::named_children(list) {
            let file = resource.file;
            if let (Some(name), Some(value)) = (
                file.property(entry, "name").and_then(|n| file.literal(n)),
                file.property(entry, "value"),
            ) {
                settings.push(AppSetting { file, name, value });
            }
        }
    }
    settings
}

fn app_setting_names(files: &[BicepFile]) -> BTreeSet<String> {
    app_settings(files).into_iter().map(|s| s.name).collect()
}

#[test]
fn azure_app_settings_provide_every_setting_the_app_needs() {
    let files = infra_files();
    let provided = app_setting_names(&files);
    let not_in_azure: Vec<&str> = NOT_SET_IN_AZURE.iter().map(|(name, _)| *name).collect();
    let read_by_config = Config::setting_names();
    let sources: [(&str, Vec<&str>); 3] = [
        (
            "platform::config::Config::setting_names()",
            read_by_config.iter().map(String::as_str).collect(),
        ),
        ("planned settings (issue 8)", PLANNED_SETTINGS.to_vec()),
        ("Functions host on Flex", HOST_SETTINGS.to_vec()),
    ];

    let mut missing = Vec::new();
    for (source, names) in &sources {
        for name in names {
            if !not_in_azure.contains(name) && !provided.contains(*name) {
                missing.push(format!("{name} (from {source})"));
            }
        }
    }

    assert!(
        missing.is_empty(),
        "the Function App's app settings in infra/ lack:\n{}\nprovided: {provided:?}",
        missing.join("\n")
    );
}

#[test]
fn settings_meant_for_local_runs_or_the_host_are_not_set_in_azure() {
    let files = infra_files();
    let provided = app_setting_names(&files);
    for (name, reason) in NOT_SET_IN_AZURE.iter().chain(FORBIDDEN_SETTINGS) {
        assert!(
            !provided.contains(*name),
            "{name} must not be an app setting: {reason}"
        );
    }
}

#[test]
fn secret_settings_are_key_vault_references() {
    let files = infra_files();
    let settings = app_settings(&files);
    for name in SECRET_SETTINGS {
        let setting = settings
            .iter()
            .find(|setting| setting.name == *name)
            .unwrap_or_else(|| panic!("{name} is not an app setting"));

        assert!(
            is_key_vault_reference(setting),
            "{name} at {} must be a Key Vault reference, found `{}`",
            setting.file.location(setting.value),
            setting.file.text(setting.value)
        );
    }
}

#[test]
fn no_app_setting_holds_a_password_and_only_third_party_secrets_come_from_key_vault() {
    let files = infra_files();
    for setting in app_settings(&files) {
        let text = setting.file.text(setting.value);
        // `scheme://user:password@host`: a credential inside a URL.
        let userinfo = text
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', '?']).next())
            .and_then(|authority| authority.rsplit_once('@'))
            .map(|(userinfo, _)| userinfo);
        assert!(
            !userinfo.is_some_and(|userinfo| userinfo.contains(':')),
            "{} carries a password: {text}",
            setting.name
        );
        if is_key_vault_reference(&setting) {
            assert!(
                SECRET_SETTINGS.contains(&setting.name.as_str()),
                "{} comes from Key Vault, but an Azure service takes the app's Entra token",
                setting.name
            );
        }
    }
}

#[test]
fn postgres_and_redis_are_reached_as_the_app_identity_with_its_tokens() {
    let files = infra_files();
    let settings = app_settings(&files);
    let value = |name: &str| {
        let setting = settings
            .iter()
            .find(|setting| setting.name == name)
            .unwrap_or_else(|| panic!("{name} is not an app setting"));
        setting.file.text(setting.value).to_owned()
    };
    assert_eq!(value("DATABASE_AUTH"), "'entra'");
    assert_eq!(value("DATABASE_URL"), "databaseUrl");
    assert_eq!(value("REDIS_AUTH"), "'entra'");
    assert_eq!(value("REDIS_URL"), "redisUrl");
    let postgres = files
        .iter()
        .find(|file| file.path == "infra/modules/postgres.bicep")
        .expect("the Postgres module");
    let url = postgres
        .source()
        .lines()
        .find_map(|line| line.strip_prefix("output pooledUrl string = "))
        .expect("the module's pooledUrl output");
    for fragment in [
        "'postgres://${uriComponent(appIdentityName)}@",
        ":6432/",
        "sslmode=require",
    ] {
        assert!(url.contains(fragment), "pooledUrl {url} lacks {fragment}");
    }
}

/// A `'@Microsoft.KeyVault(SecretUri=...)'` string, or a call to a function of the same file
/// whose body builds one.
fn is_key_vault_reference(setting: &AppSetting<'_>) -> bool {
    const PREFIX: &str = "@Microsoft.KeyVault(SecretUri=";
    let file = setting.file;
    let builds_reference = |node: Node<'_>| {
        let text = file.text(node);
        node.kind() == "string" && text.trim_start_matches('\'').starts_with(PREFIX)
            || node.kind() == "ternary_expression" && text.contains(&format!("'{PREFIX}"))
    };
    match setting.value.kind() {
        "call_expression" => setting
            .value
            .child_by_field_name("function")
            .and_then(|function| file.function_body(file.text(function)))
            .is_some_and(builds_reference),
        _ => builds_reference(setting.value),
    }
}

#[test]
fn the_handler_owns_cors_and_never_uses_the_hosts_setting_name() {
    let files = infra_files();
    let settings = app_settings(&files);
    let handler_origins = settings
        .iter()
        .find(|setting| setting.name == "API_ALLOWED_ORIGINS")
        .map(|setting| setting.file.text(setting.value).to_owned());
    let sites = declared(&files, "Microsoft.Web/sites");
    let platform_origins: Vec<String> = sites
        .iter()
        .filter_map(|site| {
            site.property("properties.siteConfig.cors.allowedOrigins")
                .map(|node| site.file.text(node).to_owned())
        })
        .collect();

    // Platform CORS empty: App Service would answer preflights itself and its headers would win.
    assert_eq!(platform_origins, vec!["[]".to_owned()]);
    assert_eq!(
        handler_origins.as_deref(),
        Some("join(allowedOrigins, ',')")
    );
    // On Flex the host owns this name (EnvironmentSettingNames) and overwrites it.
    assert!(
        settings
            .iter()
            .all(|setting| setting.name != "CORS_ALLOWED_ORIGINS")
    );
}

#[test]
fn local_settings_json_lists_every_setting_the_handler_reads() {
    let path = repo_root().join("local.settings.json");
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("read local.settings.json"))
            .expect("local.settings.json is JSON");
    let values = json["Values"]
        .as_object()
        .expect("local.settings.json has a Values object");

    let missing: Vec<String> = Config::setting_names()
        .into_iter()
        // The host sets the port for the handler under `func start` too.
        .filter(|name| name != "FUNCTIONS_CUSTOMHANDLER_PORT")
        .filter(|name| !values.contains_key(name))
        .collect();

    assert!(
        missing.is_empty(),
        "local.settings.json Values lacks {missing:?}"
    );
}
