// Azure Managed Redis (the successor of Azure Cache for Redis) for hot reads, with Entra authentication only:
// the app signs in with its managed identity (username its object id, password its token).

@description('Azure region for the resources.')
param location string

@description('Cluster name (becomes <name>.<region>.redis.azure.net).')
param clusterName string

@description('Tags applied to every resource.')
param tags object

@description('Managed Redis SKU, e.g. Balanced_B1.')
param skuName string

@description('Object id of the app\'s managed identity, given the database\'s default access policy.')
param appPrincipalId string

// The cluster: TLS 1.2 only, reached only through its private endpoint (API 2025-07-01 requires publicNetworkAccess).
resource cluster 'Microsoft.Cache/redisEnterprise@2025-07-01' = {
  name: clusterName
  location: location
  tags: tags
  sku: { name: skuName }
  properties: {
    minimumTlsVersion: '1.2'
    highAvailability: 'Enabled'
    publicNetworkAccess: 'Disabled'
  }
}

// The one database: TLS on port 10000, non-clustered protocol for the redis crate's ConnectionManager, no access keys.
resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {
  parent: cluster
  name: 'default'
  properties: {
    port: 10000
    clientProtocol: 'Encrypted'
    clusteringPolicy: 'EnterpriseCluster'
    evictionPolicy: 'VolatileLRU'
    accessKeysAuthentication: 'Disabled'
  }
}

// The app identity may use the database (the only policy Managed Redis offers: read and write every key).
resource appAccess 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-07-01' = {
  parent: database
  name: 'codeconnectapp'
  properties: {
    accessPolicyName: 'default'
    user: { objectId: appPrincipalId }
  }
}

output clusterName string = cluster.name
output clusterId string = cluster.id
output hostName string = cluster.properties.hostName
// REDIS_URL: TLS, no credentials (REDIS_AUTH=entra).
output url string = 'rediss://${cluster.properties.hostName}:10000'
