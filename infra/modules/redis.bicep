// Azure Managed Redis (the successor of Azure Cache for Redis) for hot reads, with REDIS_URL in Key Vault.

@description('Azure region for the resources.')
param location string

@description('Cluster name (becomes <name>.<region>.redis.azure.net).')
param clusterName string

@description('Tags applied to every resource.')
param tags object

@description('Managed Redis SKU, e.g. Balanced_B1.')
param skuName string

@description('Key Vault that receives REDIS_URL.')
param keyVaultName string

// The cluster: TLS 1.2 only. API 2025-07-01 requires publicNetworkAccess.
resource cluster 'Microsoft.Cache/redisEnterprise@2025-07-01' = {
  name: clusterName
  location: location
  tags: tags
  sku: { name: skuName }
  properties: {
    minimumTlsVersion: '1.2'
    highAvailability: 'Enabled'
    publicNetworkAccess: 'Enabled'
  }
}

// The one database: TLS on port 10000, non-clustered protocol for the redis crate's ConnectionManager, access keys on for the URL.
resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {
  parent: cluster
  name: 'default'
  properties: {
    port: 10000
    clientProtocol: 'Encrypted'
    clusteringPolicy: 'EnterpriseCluster'
    evictionPolicy: 'VolatileLRU'
    accessKeysAuthentication: 'Enabled'
  }
}

// Existing vault REDIS_URL is written to; it carries the access key.
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// REDIS_URL: rediss:// with the URL-encoded access key (keys contain / + =).
resource redisUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'redis-url'
  properties: {
    value: 'rediss://:${uriComponent(database.listKeys().primaryKey)}@${cluster.properties.hostName}:10000'
  }
}

output clusterName string = cluster.name
output hostName string = cluster.properties.hostName
output urlSecretUri string = redisUrl.properties.secretUri
