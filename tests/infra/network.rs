//! The private network: the app joins a delegated subnet and reaches the internet through NAT;
//! Postgres, Redis, Key Vault and the host's storage have no public endpoint, only a private one
//! registered in its privatelink zone, which answers inside the network.

use crate::bicep::{BicepFile, Module, declared, infra_files};

/// (private link group, its privatelink zone as written in network.bicep, the service main.bicep
/// points the endpoint at).
const ENDPOINTS: &[(&str, &str, &str)] = &[
    (
        "postgresqlServer",
        "privatelink.postgres.database.azure.com",
        "postgres.outputs.serverId",
    ),
    (
        "redisEnterprise",
        "privatelink.redis.azure.net",
        "redis.outputs.clusterId",
    ),
    (
        "vault",
        "privatelink.vaultcore.azure.net",
        "keyVault.outputs.vaultId",
    ),
    (
        "blob",
        "privatelink.blob.${environment().suffixes.storage}",
        "hostStorage.outputs.accountId",
    ),
];

fn file<'f>(files: &'f [BicepFile], path: &str) -> &'f BicepFile {
    files
        .iter()
        .find(|file| file.path == path)
        .unwrap_or_else(|| panic!("{path} exists"))
}

fn modules_of<'f>(main: &'f BicepFile, path: &str) -> Vec<Module<'f>> {
    main.modules()
        .into_iter()
        .filter(|module| module.path == path)
        .collect()
}

#[test]
fn postgres_redis_key_vault_and_host_storage_have_no_public_endpoint() {
    let files = infra_files();
    let host_storage: Vec<BicepFile> = infra_files()
        .into_iter()
        .filter(|file| file.path == "infra/modules/host-storage.bicep")
        .collect();
    let checks = [
        (
            declared(&files, "Microsoft.DBforPostgreSQL/flexibleServers"),
            "properties.network.publicNetworkAccess",
            "Disabled",
        ),
        (
            declared(&files, "Microsoft.Cache/redisEnterprise"),
            "properties.publicNetworkAccess",
            "Disabled",
        ),
        (
            declared(&files, "Microsoft.KeyVault/vaults"),
            "properties.publicNetworkAccess",
            "Disabled",
        ),
        (
            declared(&files, "Microsoft.KeyVault/vaults"),
            "properties.networkAcls.defaultAction",
            "Deny",
        ),
        (
            declared(&host_storage, "Microsoft.Storage/storageAccounts"),
            "properties.publicNetworkAccess",
            "Disabled",
        ),
        (
            declared(&host_storage, "Microsoft.Storage/storageAccounts"),
            "properties.networkAcls.defaultAction",
            "Deny",
        ),
    ];

    for (resources, path, expected) in checks {
        assert_eq!(resources.len(), 1, "one resource for {path}");
        let resource = &resources[0];
        assert_eq!(
            resource.literal(path).as_deref(),
            Some(expected),
            "{}: {path}",
            resource.describe()
        );
    }
    // Two storage accounts: the private host one and the public, SAS-only media one.
    assert_eq!(
        declared(&files, "Microsoft.Storage/storageAccounts").len(),
        2
    );
    // No firewall rule: the "allow Azure services" rule admitted every tenant's Azure addresses.
    let rules = declared(
        &files,
        "Microsoft.DBforPostgreSQL/flexibleServers/firewallRules",
    );
    assert!(
        rules.is_empty(),
        "Postgres firewall rules: {:?}",
        rules.iter().map(|rule| rule.describe()).collect::<Vec<_>>()
    );
}

#[test]
fn every_private_endpoint_is_registered_in_its_privatelink_zone_linked_to_the_network() {
    let files = infra_files();

    // The endpoint module registers its endpoint in the zone it is given, for its one group.
    let endpoint_file = file(&files, "infra/modules/private-endpoint.bicep");
    let endpoints = declared(&files, "Microsoft.Network/privateEndpoints");
    assert!(
        endpoints
            .iter()
            .all(|endpoint| endpoint.file.path == endpoint_file.path),
        "every private endpoint comes from private-endpoint.bicep, which gives it its zone group"
    );
    let [endpoint] = endpoints.as_slice() else {
        panic!("one private endpoint resource in private-endpoint.bicep");
    };
    let text = |resource: &crate::bicep::Resource<'_>, path: &str| {
        resource
            .property(path)
            .map(|node| resource.file.text(node).to_owned())
    };
    assert_eq!(
        text(
            endpoint,
            "properties.privateLinkServiceConnections[0].properties.groupIds"
        )
        .as_deref(),
        Some("[groupId]")
    );
    let groups = declared(
        &files,
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
    );
    let [group] = groups.as_slice() else {
        panic!("one zone group, beside the endpoint");
    };
    assert_eq!(text(group, "parent"), Some(endpoint.symbol.clone()));
    assert_eq!(
        text(
            group,
            "properties.privateDnsZoneConfigs[0].properties.privateDnsZoneId"
        )
        .as_deref(),
        Some("dnsZoneId")
    );

    // main.bicep: one endpoint per private service, in the endpoints subnet, with its group's zone.
    let main = file(&files, "infra/main.bicep");
    let mut deployed: Vec<(String, String, String, String)> =
        modules_of(main, "modules/private-endpoint.bicep")
            .iter()
            .map(|module| {
                let param = |name: &str| module.param(name).unwrap_or("<absent>").to_owned();
                (
                    param("groupId").trim_matches('\'').to_owned(),
                    param("serviceId"),
                    param("dnsZoneId"),
                    param("subnetId"),
                )
            })
            .collect();
    deployed.sort();
    let mut expected: Vec<(String, String, String, String)> = ENDPOINTS
        .iter()
        .map(|(group, _, service)| {
            (
                (*group).to_owned(),
                (*service).to_owned(),
                format!("network.outputs.zoneIds.{group}"),
                "network.outputs.endpointsSubnetId".to_owned(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(deployed, expected);

    // network.bicep: each group's zone has the privatelink name its service resolves through,
    // and every zone is linked to the network without auto-registration.
    let network = file(&files, "infra/modules/network.bicep");
    let zone_names = network.variable("zoneNames").expect("var zoneNames");
    let mut zones: Vec<(String, String)> = network
        .object_properties(zone_names)
        .into_iter()
        .map(|(group, zone)| (group, network.template(zone).unwrap_or_default()))
        .collect();
    zones.sort();
    let mut expected_zones: Vec<(String, String)> = ENDPOINTS
        .iter()
        .map(|(group, zone, _)| ((*group).to_owned(), (*zone).to_owned()))
        .collect();
    expected_zones.sort();
    assert_eq!(zones, expected_zones);
    for zone_type in [
        "Microsoft.Network/privateDnsZones",
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
    ] {
        let [resource] = declared(&files, zone_type)
            .try_into()
            .ok()
            .unwrap_or_else(|| {
                panic!("one {zone_type} loop");
            });
        let collection = resource
            .loop_collection
            .map(|node| network.text(node))
            .unwrap_or_default();
        assert_eq!(collection, "items(zoneNames)", "{}", resource.describe());
    }
    let link = &declared(
        &files,
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
    )[0];
    assert_eq!(
        text(link, "properties.virtualNetwork.id").as_deref(),
        Some("vnet.id")
    );
    assert_eq!(
        link.literal("properties.registrationEnabled").as_deref(),
        Some("false")
    );

    // The app's settings, and so its Key Vault references, come after every endpoint exists.
    let settings = modules_of(main, "modules/appsettings.bicep");
    let depends_on = main
        .property(settings[0].body, "dependsOn")
        .map(|node| main.text(node))
        .unwrap_or_default();
    for module in modules_of(main, "modules/private-endpoint.bicep") {
        assert!(
            depends_on.contains(&module.symbol),
            "app settings depend on {}: {depends_on}",
            module.symbol
        );
    }
}

#[test]
fn the_app_joins_a_delegated_subnet_and_reaches_the_internet_through_nat() {
    let files = infra_files();
    let networks = declared(&files, "Microsoft.Network/virtualNetworks");
    let [vnet] = networks.as_slice() else {
        panic!("one virtual network");
    };
    let literal = |path: &str| vnet.literal(path);
    assert_eq!(
        literal("properties.subnets[0].name").as_deref(),
        Some("app")
    );
    assert_eq!(
        literal("properties.subnets[0].properties.delegations[0].properties.serviceName")
            .as_deref(),
        Some("Microsoft.App/environments"),
        "Flex Consumption's delegation"
    );
    assert_eq!(
        vnet.property("properties.subnets[0].properties.natGateway.id")
            .map(|node| vnet.file.text(node)),
        Some("natGateway.id")
    );
    for subnet in 0..2 {
        assert_eq!(
            literal(&format!(
                "properties.subnets[{subnet}].properties.defaultOutboundAccess"
            ))
            .as_deref(),
            Some("false"),
            "subnet {subnet}: outbound only where declared"
        );
    }
    assert_eq!(
        literal("properties.subnets[1].name").as_deref(),
        Some("endpoints")
    );

    let sites = declared(&files, "Microsoft.Web/sites");
    let site = sites.first().expect("the Function App");
    assert_eq!(
        site.property("properties.virtualNetworkSubnetId")
            .map(|node| site.file.text(node)),
        Some("subnetId")
    );
    let main = file(&files, "infra/main.bicep");
    let app = modules_of(main, "modules/functionapp.bicep");
    assert_eq!(
        app.first().and_then(|module| module.param("subnetId")),
        Some("network.outputs.appSubnetId")
    );
}
