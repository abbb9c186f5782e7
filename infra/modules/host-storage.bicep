// The Functions host's storage account: timer leases and host state (identity-based AzureWebJobsStorage) and the
// Flex deployment package. Nothing outside the private network reaches it: the host and the platform's deployment
// go through the app's network integration and the blob private endpoint.

@description('Azure region for the resources.')
param location string

@description('Storage account name: 3-24 lowercase letters and digits.')
param accountName string

@description('Tags applied to every resource.')
param tags object

@description('Blob container the deployment package is uploaded to.')
param deploymentContainerName string

// Identity-only, private-only: no shared keys, no public endpoint, TLS 1.2+.
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
    publicNetworkAccess: 'Disabled'
    networkAcls: { defaultAction: 'Deny', bypass: 'None' }
  }
}

// Parent of the deployment container.
resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
}

// The Flex deployment package.
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: { publicAccess: 'None' }
}

output accountName string = account.name
output accountId string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
