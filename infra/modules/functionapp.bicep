// The Function App on Flex Consumption running the Rust custom handler. App settings live in appsettings.bicep,
// applied after the identity's role assignments so Key Vault references resolve on the first start.

@description('Azure region for the resources.')
param location string

@description('Function App name (becomes <name>.azurewebsites.net).')
param appName string

@description('Flex Consumption plan name.')
param planName string

@description('Tags applied to every resource.')
param tags object

@description('Subnet the app joins (delegated to Microsoft.App/environments); all its outbound traffic goes through it.')
param subnetId string

@description('Blob endpoint of the storage account holding the deployment container.')
param storageBlobEndpoint string

@description('Blob container the deployment package is uploaded to.')
param deploymentContainerName string

@description('Memory per instance in MB.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int

@description('Upper bound on scale-out.')
param maximumInstanceCount int

@description('Instances kept warm for HTTP, to avoid cold starts on the first requests.')
param alwaysReadyHttpInstances int

@description('Concurrent HTTP requests one instance takes before the platform scales out.')
param httpPerInstanceConcurrency int

// Flex Consumption: Linux, one app per plan, per-instance memory and scale settings on the app.
resource plan 'Microsoft.Web/serverfarms@2024-11-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

// The app: system-assigned identity for storage, Key Vault, Web PubSub and telemetry; no keys anywhere.
resource app 'Microsoft.Web/sites@2024-11-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Flex routes all outbound traffic into the network: the data services' private endpoints, the rest via NAT.
    virtualNetworkSubnetId: subnetId
    keyVaultReferenceIdentity: 'SystemAssigned'
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      runtime: { name: 'custom', version: '1.0' }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        alwaysReady: [{ name: 'http', instanceCount: alwaysReadyHttpInstances }]
        triggers: { http: { perInstanceConcurrency: httpPerInstanceConcurrency } }
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      // The handler owns CORS (API_ALLOWED_ORIGINS), as it does locally: with platform CORS on, App Service
      // answers preflights itself and its headers win; on Flex the host also writes them to CORS_ALLOWED_ORIGINS.
      cors: { allowedOrigins: [] }
    }
  }
}

output appName string = app.name
output defaultHostName string = app.properties.defaultHostName
output principalId string = app.identity.principalId
