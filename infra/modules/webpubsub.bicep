// Azure Web PubSub for chat and WebRTC signalling; the app calls it with its managed identity.

@description('Azure region for the resources.')
param location string

@description('Service name (becomes <name>.webpubsub.azure.com).')
param serviceName string

@description('Tags applied to every resource.')
param tags object

@description('Web PubSub SKU.')
param skuName string

@description('Units (1,000 concurrent connections each on Standard).')
param capacity int

// Entra-only service (no access keys, so no ce-signature on upstream calls): the app calls it with its managed
// identity, and it calls the app's event handler with its own identity's Entra token (webpubsub-hub.bicep).
resource service 'Microsoft.SignalRService/webPubSub@2024-03-01' = {
  name: serviceName
  location: location
  tags: tags
  sku: { name: skuName, tier: 'Standard', capacity: capacity }
  identity: { type: 'SystemAssigned' }
  properties: {
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

output serviceName string = service.name
output endpoint string = 'https://${service.properties.hostName}'
output principalId string = service.identity.principalId
