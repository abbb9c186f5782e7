// A private endpoint for one group of one service, registered in its privatelink DNS zone so the service's usual
// host name resolves to the endpoint's address inside the network.

@description('Azure region for the resources.')
param location string

@description('Private endpoint name.')
param endpointName string

@description('Tags applied to every resource.')
param tags object

@description('Subnet the endpoint takes its address from.')
param subnetId string

@description('Resource id of the service the endpoint reaches.')
param serviceId string

@description('Private link group of that service: postgresqlServer, redisEnterprise, vault or blob.')
param groupId string

@description('Private DNS zone of that group (network.bicep\'s zoneIds).')
param dnsZoneId string

// Auto-approved: the service is in the same subscription and the deployer owns it.
resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: endpointName
  location: location
  tags: tags
  properties: {
    subnet: { id: subnetId }
    privateLinkServiceConnections: [
      {
        name: endpointName
        properties: {
          privateLinkServiceId: serviceId
          groupIds: [groupId]
        }
      }
    ]
  }
}

// The A record for the service's name, kept in step with the endpoint's address by the platform.
resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [{ name: groupId, properties: { privateDnsZoneId: dnsZoneId } }]
  }
}
