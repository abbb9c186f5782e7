// The media and recordings account. Browsers reach it directly, so it keeps a public endpoint; every request needs
// a user-delegation SAS the app issues for one blob (shared keys off, no anonymous reads). The host's own storage is
// a separate, private account (host-storage.bicep).

@description('Azure region for the resources.')
param location string

@description('Storage account name: 3-24 lowercase letters and digits.')
param accountName string

@description('Tags applied to every resource.')
param tags object

@description('Blob container for profile photos and intro videos.')
param mediaContainerName string

@description('Blob container for class recordings.')
param recordingsContainerName string

@description('Browser origins of the frontends: they upload media and recording parts straight to storage and read media from it.')
param allowedOrigins array

// Identity and SAS only: no shared keys (so only user-delegation SAS, signed with the app's identity), no anonymous blobs, TLS 1.2+.
resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: accountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
  }
}

// Parent of the containers below. Browsers PUT files to write SAS URLs (Put Blob, Put Block)
// and read media through read SAS URLs, so the frontends' origins need CORS here.
resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    cors: {
      corsRules: [
        {
          allowedOrigins: allowedOrigins
          allowedMethods: ['GET', 'HEAD', 'PUT', 'OPTIONS']
          allowedHeaders: ['content-type', 'content-length', 'range', 'x-ms-*']
          exposedHeaders: ['etag', 'content-length', 'content-range', 'x-ms-request-id']
          maxAgeInSeconds: 3600
        }
      ]
    }
  }
}

// Private containers: media and recordings, read and written through user-delegation SAS.
resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in [mediaContainerName, recordingsContainerName]: {
    parent: blobService
    name: containerName
    properties: { publicAccess: 'None' }
  }
]

output accountName string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
