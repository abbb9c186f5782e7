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

@description('Key Vault that receives the event-signing keys.')
param keyVaultName string

// Entra-only service; its own identity signs the upstream event calls to the app.
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

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// The service signs each upstream event (ce-signature) with its access keys; the app checks it
// against both, so rotating one key never rejects a genuine event (WEBPUBSUB_EVENT_KEYS).
resource eventKeys 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'webpubsub-event-keys'
  properties: { value: '${service.listKeys().primaryKey},${service.listKeys().secondaryKey}' }
}

output serviceName string = service.name
output eventKeysSecretUri string = '${vault.properties.vaultUri}secrets/${eventKeys.name}'
output endpoint string = 'https://${service.properties.hostName}'
output principalId string = service.identity.principalId
