//! Properties each resource type's API version requires (the `required` lists of its
//! resource-provider schema in azure-rest-api-specs). A deployment missing one fails in Azure,
//! never here, unless it is listed; a new type or version fails until its list is recorded.

use crate::bicep::infra_files;

/// (`Type@apiVersion`, property paths the schema requires on create).
const REQUIRED: &[(&str, &[&str])] = &[
    (
        "Microsoft.Authorization/roleAssignments@2022-04-01",
        &["properties.roleDefinitionId", "properties.principalId"],
    ),
    (
        "Microsoft.Cache/redisEnterprise@2025-07-01",
        &["location", "sku.name", "properties.publicNetworkAccess"],
    ),
    ("Microsoft.Cache/redisEnterprise/databases@2025-07-01", &[]),
    (
        "Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-07-01",
        &["properties.user", "properties.accessPolicyName"],
    ),
    ("Microsoft.Cdn/profiles@2024-09-01", &["location", "sku"]),
    (
        "Microsoft.Cdn/profiles/afdEndpoints@2024-09-01",
        &["location"],
    ),
    (
        "Microsoft.Cdn/profiles/afdEndpoints/routes@2024-09-01",
        &["properties.originGroup"],
    ),
    ("Microsoft.Cdn/profiles/originGroups@2024-09-01", &[]),
    (
        "Microsoft.Cdn/profiles/originGroups/origins@2024-09-01",
        &["properties.hostName"],
    ),
    (
        "Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01",
        &["location"],
    ),
    (
        "Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01",
        &[],
    ),
    (
        "Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01",
        &[],
    ),
    (
        "Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01",
        &[],
    ),
    (
        "Microsoft.Insights/actionGroups@2023-01-01",
        &[
            "location",
            "properties.groupShortName",
            "properties.enabled",
        ],
    ),
    (
        "Microsoft.Insights/components@2020-02-02",
        &["location", "kind", "properties.Application_Type"],
    ),
    (
        "Microsoft.Insights/metricAlerts@2018-03-01",
        &[
            "location",
            "properties.description",
            "properties.severity",
            "properties.enabled",
            "properties.scopes",
            "properties.evaluationFrequency",
            "properties.windowSize",
            "properties.criteria",
        ],
    ),
    (
        "Microsoft.Insights/scheduledQueryRules@2023-12-01",
        &[
            "location",
            "properties.enabled",
            "properties.criteria",
            "properties.scopes",
        ],
    ),
    (
        "Microsoft.Insights/webtests@2022-06-15",
        &[
            "location",
            "properties.SyntheticMonitorId",
            "properties.Name",
            "properties.Locations",
            "properties.Kind",
        ],
    ),
    (
        "Microsoft.Insights/workbooks@2023-06-01",
        &[
            "location",
            "properties.displayName",
            "properties.category",
            "properties.serializedData",
        ],
    ),
    (
        "Microsoft.KeyVault/vaults@2023-07-01",
        &[
            "location",
            "properties.tenantId",
            "properties.sku.family",
            "properties.sku.name",
        ],
    ),
    (
        "Microsoft.KeyVault/vaults/secrets@2023-07-01",
        &["properties"],
    ),
    ("Microsoft.Network/natGateways@2024-05-01", &[]),
    ("Microsoft.Network/privateDnsZones@2024-06-01", &[]),
    (
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01",
        &[],
    ),
    ("Microsoft.Network/privateEndpoints@2024-05-01", &[]),
    (
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01",
        &[],
    ),
    ("Microsoft.Network/publicIPAddresses@2024-05-01", &[]),
    ("Microsoft.Network/virtualNetworks@2024-05-01", &[]),
    (
        "Microsoft.OperationalInsights/workspaces@2023-09-01",
        &["location"],
    ),
    (
        "Microsoft.SignalRService/webPubSub@2024-03-01",
        &["location"],
    ),
    (
        "Microsoft.SignalRService/webPubSub/hubs@2024-03-01",
        &["properties"],
    ),
    (
        "Microsoft.Storage/storageAccounts@2023-05-01",
        &["location", "kind", "sku.name"],
    ),
    (
        "Microsoft.Storage/storageAccounts/blobServices@2023-05-01",
        &[],
    ),
    (
        "Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01",
        &[],
    ),
    ("Microsoft.Web/serverfarms@2024-11-01", &["location"]),
    ("Microsoft.Web/sites@2024-11-01", &["location"]),
    ("Microsoft.Web/sites/config@2024-11-01", &["properties"]),
];

#[test]
fn every_resource_sets_what_its_api_version_requires() {
    let files = infra_files();
    let mut problems = Vec::new();

    for resource in files.iter().flat_map(|file| file.resources()) {
        if resource.existing {
            continue;
        }
        let Some((_, required)) = REQUIRED
            .iter()
            .find(|(type_and_version, _)| *type_and_version == resource.type_and_version)
        else {
            problems.push(format!(
                "{}: {} is not in REQUIRED; record its required properties from azure-rest-api-specs",
                resource.describe(),
                resource.type_and_version
            ));
            continue;
        };
        for path in required
            .iter()
            .filter(|path| resource.property(path).is_none())
        {
            problems.push(format!(
                "{}: {} requires {path}",
                resource.describe(),
                resource.type_and_version
            ));
        }
    }

    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_required_check_finds_a_missing_property() {
    let file = crate::bicep::BicepFile::parse(
        "redis.bicep",
        "resource c 'Microsoft.Cache/redisEnterprise@2025-07-01' = {\n  name: 'x'\n  location: 'l'\n  sku: { name: 'Balanced_B1' }\n  properties: { minimumTlsVersion: '1.2' }\n}\n",
    );
    let resource = &file.resources()[0];
    let (_, required) = REQUIRED
        .iter()
        .find(|(type_and_version, _)| *type_and_version == resource.type_and_version)
        .unwrap();

    let missing: Vec<&&str> = required
        .iter()
        .filter(|path| resource.property(path).is_none())
        .collect();

    assert_eq!(missing, vec![&"properties.publicNetworkAccess"]);
}

#[test]
fn resource_names_use_the_environment_name_lowered() {
    let source = std::fs::read_to_string(crate::bicep::repo_root().join("infra/main.bicep"))
        .expect("read infra/main.bicep");

    // Postgres, Redis and storage names take lower case only: every use goes through toLower.
    let uses: Vec<&str> = source
        .lines()
        .filter(|line| line.contains("environmentName") && !line.trim_start().starts_with("//"))
        .filter(|line| !line.trim_start().starts_with("param environmentName"))
        .collect();
    assert_eq!(uses, vec!["var envName = toLower(environmentName)"]);
}
