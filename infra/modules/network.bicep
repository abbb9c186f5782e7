// The private network: a subnet the Function App joins (all its outbound traffic leaves through it), a subnet for
// the private endpoints of the data services, the privatelink DNS zones that make their usual host names resolve
// to those endpoints inside the network, and a NAT gateway: the app's one way to the internet (SendGrid, Razorpay,
// Stripe, Entra, Web PubSub, media storage, telemetry), from one static address.

@description('Azure region for the resources.')
param location string

@description('Virtual network name.')
param vnetName string

@description('Tags applied to every resource.')
param tags object

@description('Address space of the network, a /16 (two /24 subnets are carved from its start).')
param addressPrefix string

// The app subnet and the endpoints subnet: the first two /24s of the address space.
var appSubnetPrefix = cidrSubnet(addressPrefix, 24, 0)
var endpointsSubnetPrefix = cidrSubnet(addressPrefix, 24, 1)

// privatelink zone of each private endpoint group the template uses (learn.microsoft.com/azure/private-link/private-endpoint-dns).
var zoneNames = {
  postgresqlServer: 'privatelink.postgres.database.azure.com'
  redisEnterprise: 'privatelink.redis.azure.net'
  vault: 'privatelink.vaultcore.azure.net'
  blob: 'privatelink.blob.${environment().suffixes.storage}'
}

// The app's static outbound address (for a third party's allow list).
resource outboundIp 'Microsoft.Network/publicIPAddresses@2024-05-01' = {
  name: '${vnetName}-egress'
  location: location
  tags: tags
  sku: { name: 'Standard' }
  properties: { publicIPAllocationMethod: 'Static', publicIPAddressVersion: 'IPv4' }
}

// Outbound internet access for the app subnet (subnets here have no default outbound access).
resource natGateway 'Microsoft.Network/natGateways@2024-05-01' = {
  name: '${vnetName}-nat'
  location: location
  tags: tags
  sku: { name: 'Standard' }
  properties: {
    publicIpAddresses: [{ id: outboundIp.id }]
    idleTimeoutInMinutes: 4
  }
}

// Two subnets: Flex Consumption joins one delegated to Microsoft.App/environments; endpoints live in the other.
resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: { addressPrefixes: [addressPrefix] }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          defaultOutboundAccess: false
          natGateway: { id: natGateway.id }
          delegations: [{ name: 'flex-consumption', properties: { serviceName: 'Microsoft.App/environments' } }]
        }
      }
      {
        name: 'endpoints'
        properties: {
          addressPrefix: endpointsSubnetPrefix
          defaultOutboundAccess: false
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

// One zone per service kind, global like every private DNS zone.
resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [
  for zone in items(zoneNames): {
    name: zone.value
    location: 'global'
    tags: tags
  }
]

// Each zone answers inside this network only; auto-registration stays off (endpoints register through their zone groups).
resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [
  for (zone, index) in items(zoneNames): {
    parent: zones[index]
    name: vnetName
    location: 'global'
    tags: tags
    properties: {
      virtualNetwork: { id: vnet.id }
      registrationEnabled: false
    }
  }
]

output outboundIpAddress string = outboundIp.properties.ipAddress
output appSubnetId string = vnet.properties.subnets[0].id
output endpointsSubnetId string = vnet.properties.subnets[1].id
// Zone id by private endpoint group: postgresqlServer, redisEnterprise, vault, blob.
output zoneIds object = toObject(items(zoneNames), zone => zone.key, zone => resourceId('Microsoft.Network/privateDnsZones', zone.value))
