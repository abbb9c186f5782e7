//! Resource facts the app depends on, checked on the parsed templates: the Flex custom runtime,
//! identities, locked-down storage, Redis and Web PubSub wiring, PgBouncer and the app's roles.

use std::collections::BTreeMap;

use crate::bicep::{BicepFile, declared, infra_files};

enum Expect {
    /// A literal (string, number or boolean) with this value.
    Literal(&'static str),
    /// A string (interpolation allowed) ending with this text.
    EndsWith(&'static str),
    /// An array literal of exactly these strings, in any order.
    Strings(&'static [&'static str]),
    /// An expression with exactly this source text (a parameter's name, say).
    Expression(&'static str),
}

/// (resource type, property path, expected, why)
const RESOURCE_FACTS: &[(&str, &str, Expect, &str)] = &[
    (
        "Microsoft.Web/serverfarms",
        "sku.name",
        Expect::Literal("FC1"),
        "Flex Consumption plan",
    ),
    (
        "Microsoft.Web/serverfarms",
        "properties.reserved",
        Expect::Literal("true"),
        "Linux",
    ),
    (
        "Microsoft.Web/sites",
        "identity.type",
        Expect::Literal("SystemAssigned"),
        "the app's managed identity",
    ),
    (
        "Microsoft.Web/sites",
        "properties.keyVaultReferenceIdentity",
        Expect::Literal("SystemAssigned"),
        "Key Vault references resolve with it",
    ),
    (
        "Microsoft.Web/sites",
        "properties.functionAppConfig.runtime.name",
        Expect::Literal("custom"),
        "the Rust custom handler",
    ),
    (
        "Microsoft.Web/sites",
        "properties.functionAppConfig.runtime.version",
        Expect::Literal("1.0"),
        "custom handler runtime version",
    ),
    (
        "Microsoft.Web/sites",
        "properties.functionAppConfig.deployment.storage.type",
        Expect::Literal("blobContainer"),
        "Flex deployment package",
    ),
    (
        "Microsoft.Web/sites",
        "properties.functionAppConfig.deployment.storage.authentication.type",
        Expect::Literal("SystemAssignedIdentity"),
        "no storage keys",
    ),
    (
        "Microsoft.Web/sites",
        "properties.httpsOnly",
        Expect::Literal("true"),
        "no plain HTTP",
    ),
    (
        "Microsoft.Storage/storageAccounts",
        "kind",
        Expect::Literal("StorageV2"),
        "blob containers",
    ),
    (
        "Microsoft.Storage/storageAccounts",
        "properties.allowSharedKeyAccess",
        Expect::Literal("false"),
        "identity-only access",
    ),
    (
        "Microsoft.Storage/storageAccounts",
        "properties.allowBlobPublicAccess",
        Expect::Literal("false"),
        "no blob readable by anyone",
    ),
    (
        "Microsoft.Storage/storageAccounts",
        "properties.minimumTlsVersion",
        Expect::Literal("TLS1_2"),
        "TLS 1.2+",
    ),
    (
        "Microsoft.KeyVault/vaults",
        "properties.enableRbacAuthorization",
        Expect::Literal("true"),
        "role-based secret access",
    ),
    (
        "Microsoft.Insights/components",
        "properties.DisableLocalAuth",
        Expect::Literal("true"),
        "telemetry with the app identity",
    ),
    (
        "Microsoft.Cache/redisEnterprise/databases",
        "properties.port",
        Expect::Literal("10000"),
        "Azure Managed Redis TLS port",
    ),
    (
        "Microsoft.Cache/redisEnterprise/databases",
        "properties.clientProtocol",
        Expect::Literal("Encrypted"),
        "TLS",
    ),
    (
        "Microsoft.Cache/redisEnterprise/databases",
        "properties.clusteringPolicy",
        Expect::Literal("EnterpriseCluster"),
        "a non-cluster client",
    ),
    (
        "Microsoft.SignalRService/webPubSub",
        "identity.type",
        Expect::Literal("SystemAssigned"),
        "managed-identity upstream calls",
    ),
    (
        "Microsoft.SignalRService/webPubSub/hubs",
        "properties.anonymousConnectPolicy",
        Expect::Literal("deny"),
        "clients need the app's token",
    ),
    (
        "Microsoft.SignalRService/webPubSub/hubs",
        "properties.eventHandlers[0].urlTemplate",
        Expect::EndsWith("/api/realtime/events"),
        "the realtime events endpoint",
    ),
    (
        "Microsoft.SignalRService/webPubSub/hubs",
        "properties.eventHandlers[0].userEventPattern",
        Expect::Literal("*"),
        "all user events",
    ),
    (
        "Microsoft.SignalRService/webPubSub/hubs",
        "properties.eventHandlers[0].systemEvents",
        Expect::Strings(&["connect", "connected", "disconnected"]),
        "presence and connect checks",
    ),
    (
        "Microsoft.SignalRService/webPubSub/hubs",
        "properties.eventHandlers[0].auth.type",
        Expect::Literal("ManagedIdentity"),
        "authenticated upstream calls",
    ),
];

/// Facts of the media and recordings account only (the host's account has no browser traffic).
const MEDIA_STORAGE: &str = "infra/modules/media-storage.bicep";
const MEDIA_STORAGE_FACTS: &[(&str, &str, Expect, &str)] = &[
    (
        "Microsoft.Storage/storageAccounts/blobServices",
        "properties.cors.corsRules[0].allowedOrigins",
        Expect::Expression("allowedOrigins"),
        "browsers upload straight to storage and read media from it, from the frontends only",
    ),
    (
        "Microsoft.Storage/storageAccounts/blobServices",
        "properties.cors.corsRules[0].allowedMethods",
        Expect::Strings(&["GET", "HEAD", "PUT", "OPTIONS"]),
        "Put Blob and Put Block from the browser, then reads",
    ),
    (
        "Microsoft.Storage/storageAccounts/blobServices",
        "properties.cors.corsRules[0].allowedHeaders",
        Expect::Strings(&["content-type", "content-length", "range", "x-ms-*"]),
        "the headers an upload target names (x-ms-blob-type) and the SDKs add",
    ),
    (
        "Microsoft.Storage/storageAccounts",
        "properties.publicNetworkAccess",
        Expect::Literal("Enabled"),
        "browsers reach it directly, each request with a SAS for one blob",
    ),
];

/// Defaults in `infra/main.bicep`: (`param` or `var`, name, value, why).
const MAIN_DEFAULTS: &[(&str, &str, &str, &str)] = &[
    (
        "param",
        "postgresSkuName",
        "Standard_D2ds_v5",
        "General Purpose: PgBouncer is not offered on Burstable",
    ),
    (
        "param",
        "postgresSkuTier",
        "GeneralPurpose",
        "General Purpose: PgBouncer is not offered on Burstable",
    ),
    (
        "param",
        "webPubSubSkuName",
        "Standard_S1",
        "1,000 connections per unit",
    ),
    (
        "var",
        "hubName",
        "codeconnect",
        "the hub the app publishes to (WEBPUBSUB_HUB)",
    ),
];

#[test]
fn main_bicep_defaults_match_the_design() {
    let files = infra_files();
    let main = files
        .iter()
        .find(|file| file.path == "infra/main.bicep")
        .expect("infra/main.bicep exists");

    for (kind, name, expected, why) in MAIN_DEFAULTS {
        let node = match *kind {
            "param" => main.parameter_default(name),
            _ => main.variable(name),
        };
        let actual = node.and_then(|node| main.literal(node));

        assert_eq!(actual.as_deref(), Some(*expected), "{kind} {name} ({why})");
    }
}

#[test]
fn resources_have_the_properties_the_app_relies_on() {
    let files = infra_files();
    let media: Vec<BicepFile> = infra_files()
        .into_iter()
        .filter(|file| file.path == MEDIA_STORAGE)
        .collect();
    assert_eq!(media.len(), 1, "{MEDIA_STORAGE} exists");

    let mut problems = check_facts(&files, RESOURCE_FACTS);
    problems.extend(check_facts(&media, MEDIA_STORAGE_FACTS));

    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Each fact checked on every declared resource of its type in `files`.
fn check_facts(files: &[BicepFile], facts: &[(&str, &str, Expect, &str)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (resource_type, path, expect, why) in facts {
        let resources = declared(files, resource_type);
        if resources.is_empty() {
            problems.push(format!("no {resource_type} is declared ({why})"));
        }
        for resource in &resources {
            let file = resource.file;
            let found = resource.property(path);
            let ok = found.is_some_and(|node| match expect {
                Expect::Literal(value) => file.literal(node).as_deref() == Some(*value),
                Expect::EndsWith(suffix) => file
                    .template(node)
                    .is_some_and(|template| template.ends_with(suffix)),
                Expect::Strings(values) => file.string_array(node).is_some_and(|mut found| {
                    let mut expected: Vec<String> =
                        values.iter().map(|value| (*value).to_owned()).collect();
                    found.sort();
                    expected.sort();
                    found == expected
                }),
                Expect::Expression(text) => file.text(node) == *text,
            });
            if !ok {
                let actual = found.map_or("<absent>", |node| file.text(node));
                problems.push(format!(
                    "{}: {path} is `{actual}`, expected {} ({why})",
                    resource.describe(),
                    describe(expect)
                ));
            }
        }
    }
    problems
}

fn describe(expect: &Expect) -> String {
    match expect {
        Expect::Literal(value) => format!("'{value}'"),
        Expect::EndsWith(suffix) => format!("a string ending in '{suffix}'"),
        Expect::Strings(values) => format!("{values:?}"),
        Expect::Expression(text) => format!("`{text}`"),
    }
}

/// Server parameters of the Postgres `configurations` loop, resolved through the variable it
/// iterates: name → (value, where it is declared).
fn postgres_parameters(files: &[BicepFile]) -> BTreeMap<String, (String, String)> {
    let mut parameters = BTreeMap::new();
    for resource in declared(
        files,
        "Microsoft.DBforPostgreSQL/flexibleServers/configurations",
    ) {
        let file = resource.file;
        let collection = resource
            .loop_collection
            .map(|node| file.variable(file.text(node)).unwrap_or(node))
            .unwrap_or_else(|| {
                panic!(
                    "{}: expected a loop over the parameters",
                    resource.describe()
                )
            });
        for item in crate::bicep::named_children(collection) {
            let name = file.property(item, "name").and_then(|n| file.literal(n));
            // A non-literal value (a deploy-time parameter) is kept as its expression text.
            let value = file
                .property(item, "value")
                .map(|n| file.literal(n).unwrap_or_else(|| file.text(n).to_owned()));
            if let (Some(name), Some(value)) = (name, value) {
                parameters.insert(name, (value, file.location(item)));
            }
        }
    }
    parameters
}

/// Whether a server parameter's value is acceptable.
type ValueCheck = fn(&str) -> bool;

#[test]
fn postgres_runs_pgbouncer_in_transaction_mode_with_prepared_statements() {
    let files = infra_files();
    let parameters = postgres_parameters(&files);
    let checks: &[(&str, ValueCheck, &str)] = &[
        (
            "pgbouncer.enabled",
            |v| v == "true",
            "the app connects on 6432",
        ),
        (
            "pgbouncer.pool_mode",
            |v| v == "transaction",
            "the pooling the app is written for",
        ),
        (
            "pgbouncer.max_prepared_statements",
            |v| v.parse::<u32>().is_ok_and(|n| n > 0),
            "sqlx's named prepared statements",
        ),
        (
            "pgbouncer.ignore_startup_parameters",
            |v| v.split(',').any(|p| p.trim() == "extra_float_digits"),
            "sqlx sends extra_float_digits at start-up",
        ),
        (
            "pgbouncer.query_wait_timeout",
            |v| v.parse::<u32>().is_ok_and(|n| (1..=30).contains(&n)),
            "a request waits for a server connection seconds, not Azure's default 2 minutes",
        ),
        (
            "require_secure_transport",
            |v| v.eq_ignore_ascii_case("on"),
            "TLS only",
        ),
        (
            "max_connections",
            // A literal must be positive; `string(maxConnections)` comes from a sized parameter.
            |v| v.parse::<u32>().is_ok_and(|n| n > 0) || v.starts_with("string("),
            "sized for PgBouncer's pool plus direct sessions",
        ),
    ];

    for (name, is_right, why) in checks {
        let (value, at) = parameters.get(*name).unwrap_or_else(|| {
            panic!("server parameter {name} is not set ({why}); found {parameters:?}")
        });
        assert!(is_right(value), "{at}: {name} = '{value}' is wrong ({why})");
    }
}

#[test]
fn postgres_parameters_are_applied_one_at_a_time() {
    let files = infra_files();
    let configurations = declared(
        &files,
        "Microsoft.DBforPostgreSQL/flexibleServers/configurations",
    );

    assert!(
        !configurations.is_empty(),
        "no Postgres configurations declared"
    );
    for resource in configurations {
        assert!(
            resource
                .decorators
                .iter()
                .any(|d| d.replace(' ', "") == "batchSize(1)"),
            "{}: needs @batchSize(1), the server rejects concurrent parameter changes",
            resource.describe()
        );
    }
}

#[test]
fn redis_takes_entra_tokens_only_and_admits_the_app_identity() {
    let files = infra_files();
    let databases = declared(&files, "Microsoft.Cache/redisEnterprise/databases");
    let database = databases.first().expect("a Redis database");
    let keys = database
        .property("properties.accessKeysAuthentication")
        .and_then(|node| database.file.literal(node));
    assert_eq!(keys.as_deref(), Some("Disabled"));
    let assignments = declared(
        &files,
        "Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments",
    );
    let [assignment] = assignments.as_slice() else {
        panic!("one access policy assignment, for the app identity");
    };
    let text = |path: &str| {
        assignment
            .property(path)
            .map(|node| assignment.file.text(node).to_owned())
    };
    assert_eq!(
        text("properties.accessPolicyName").as_deref(),
        Some("'default'")
    );
    assert_eq!(
        text("properties.user.objectId").as_deref(),
        Some("appPrincipalId")
    );
    let main = files
        .iter()
        .find(|file| file.path == "infra/main.bicep")
        .expect("infra/main.bicep");
    assert!(
        main.source()
            .contains("appPrincipalId: functionApp.outputs.principalId"),
        "the assignment names the Function App's identity"
    );
}

#[test]
fn postgres_takes_entra_tokens_only_and_names_its_entra_administrator() {
    let files = infra_files();
    let server = declared(&files, "Microsoft.DBforPostgreSQL/flexibleServers");
    let server = server.first().expect("a Postgres server");
    let literal = |path: &str| {
        server
            .property(path)
            .and_then(|node| server.file.literal(node))
    };
    assert_eq!(
        literal("properties.authConfig.activeDirectoryAuth").as_deref(),
        Some("Enabled")
    );
    assert_eq!(
        literal("properties.authConfig.passwordAuth").as_deref(),
        Some("Disabled")
    );
    assert!(
        server
            .property("properties.administratorLoginPassword")
            .is_none()
    );
    let admins = declared(
        &files,
        "Microsoft.DBforPostgreSQL/flexibleServers/administrators",
    );
    let admin = admins.first().expect("an Entra administrator");
    assert!(admin.property("properties.principalName").is_some());
    assert!(admin.property("properties.principalType").is_some());
}

#[test]
fn the_app_identity_gets_exactly_the_roles_it_needs() {
    let files = infra_files();
    let roles_file = files
        .iter()
        .find(|file| file.path == "infra/modules/roles.bicep")
        .expect("infra/modules/roles.bicep");
    let role_ids = roles_file.variable("roles").expect("var roles");
    let scopes: BTreeMap<String, String> = roles_file
        .resources()
        .into_iter()
        .filter(|resource| resource.existing)
        .map(|resource| {
            let name = resource
                .property("name")
                .map(|node| roles_file.text(node).to_owned())
                .unwrap_or_default();
            (
                resource.symbol.clone(),
                format!("{} {name}", resource.resource_type()),
            )
        })
        .collect();

    let mut granted = Vec::new();
    for assignment in declared(&files, "Microsoft.Authorization/roleAssignments") {
        assert_eq!(
            assignment.literal("properties.principalType").as_deref(),
            Some("ServicePrincipal"),
            "{}",
            assignment.describe()
        );
        let scope = assignment
            .property("scope")
            .map(|node| assignment.file.text(node).to_owned())
            .unwrap_or_default();
        let definition = assignment
            .property("properties.roleDefinitionId")
            .map(|node| assignment.file.text(node))
            .unwrap_or_default();
        let role = definition
            .split("roles.")
            .nth(1)
            .map(|rest| rest.trim_end_matches(')'))
            .and_then(|key| roles_file.property(role_ids, key))
            .and_then(|node| roles_file.literal(node))
            .unwrap_or_else(|| panic!("{}: role `{definition}`", assignment.describe()));
        let target = scopes
            .get(&scope)
            .unwrap_or_else(|| panic!("{}: scope `{scope}`", assignment.describe()));
        granted.push(format!("{target}: {role}"));
    }
    granted.sort();

    // Blob ownership where the host keeps its leases and package; contributor (read, write,
    // delete, user delegation key) where media lives; nothing on the other account.
    let mut expected = vec![
        "Microsoft.Storage/storageAccounts hostStorageAccountName: b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "Microsoft.Storage/storageAccounts mediaStorageAccountName: ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "Microsoft.SignalRService/webPubSub webPubSubName: 12cf5a90-567b-43ae-8102-96cf46c7d9b4",
        "Microsoft.KeyVault/vaults keyVaultName: 4633458b-17de-408a-b874-0445c86b69e6",
        "Microsoft.Insights/components appInsightsName: 3913510d-42f4-4e42-8a64-420c390055eb",
    ];
    expected.sort();
    assert_eq!(granted, expected);

    let main = files
        .iter()
        .find(|file| file.path == "infra/main.bicep")
        .expect("infra/main.bicep");
    let roles_module = main
        .modules()
        .into_iter()
        .find(|module| module.path == "modules/roles.bicep")
        .expect("main.bicep deploys roles.bicep");
    for (param, value) in [
        ("principalId", "functionApp.outputs.principalId"),
        ("hostStorageAccountName", "hostStorage.outputs.accountName"),
        (
            "mediaStorageAccountName",
            "mediaStorage.outputs.accountName",
        ),
    ] {
        assert_eq!(
            roles_module.param(param),
            Some(value),
            "roles.bicep {param}"
        );
    }
}

#[test]
fn front_door_is_off_by_default_and_caches_only_as_the_api_says() {
    let files = infra_files();
    let main = files
        .iter()
        .find(|file| file.path == "infra/main.bicep")
        .expect("infra/main.bicep");
    assert_eq!(
        main.parameter_default("frontDoor")
            .and_then(|node| main.literal(node))
            .as_deref(),
        Some("false")
    );
    assert!(
        main.source()
            .contains("module edge 'modules/frontdoor.bicep' = if (frontDoor)"),
        "Front Door is deployed only when asked for"
    );

    let routes = declared(&files, "Microsoft.Cdn/profiles/afdEndpoints/routes");
    let [route] = routes.as_slice() else {
        panic!("one route");
    };
    let literal = |path: &str| route.literal(path);
    assert_eq!(
        route
            .property("properties.patternsToMatch")
            .and_then(|node| route.file.string_array(node)),
        Some(vec!["/api/*".to_owned()])
    );
    // Filters and pages are different answers: the query string is part of the cache key.
    assert_eq!(
        literal("properties.cacheConfiguration.queryStringCachingBehavior").as_deref(),
        Some("UseQueryString")
    );
    assert_eq!(
        literal("properties.forwardingProtocol").as_deref(),
        Some("HttpsOnly")
    );
    // No rule set overrides a cache duration: the edge keeps what the API's Cache-Control allows.
    assert!(declared(&files, "Microsoft.Cdn/profiles/ruleSets").is_empty());
    assert!(declared(&files, "Microsoft.Cdn/profiles/ruleSets/rules").is_empty());

    let origins = declared(&files, "Microsoft.Cdn/profiles/originGroups/origins");
    let origin = origins.first().expect("the app as origin");
    for path in ["properties.hostName", "properties.originHostHeader"] {
        assert_eq!(
            origin.property(path).map(|node| origin.file.text(node)),
            Some("appHostName"),
            "{path}"
        );
    }
    let profiles = declared(&files, "Microsoft.Cdn/profiles");
    let timeout = profiles[0]
        .literal("properties.originResponseTimeoutSeconds")
        .and_then(|value| value.parse::<u32>().ok());
    assert!(
        timeout.is_some_and(|seconds| seconds >= 230),
        "the edge waits at least as long as the host lets the app answer (230 s)"
    );
    // The app trusts X-Azure-ClientIP only with this profile's id.
    assert!(main.source().contains("frontDoorId: frontDoorId"));
    let settings = files
        .iter()
        .find(|file| file.path == "infra/modules/appsettings.bicep")
        .expect("appsettings.bicep");
    assert!(settings.source().contains("FRONT_DOOR_ID: frontDoorId"));
}
