// PostgreSQL Flexible Server with the built-in PgBouncer, Microsoft Entra authentication only: the app signs
// in with its managed identity's token, operators with theirs as members of the Entra admin group. No public
// endpoint: the app reaches it through a private endpoint.

@description('Azure region for the resources.')
param location string

@description('Server name (becomes <name>.postgres.database.azure.com).')
param serverName string

@description('Tags applied to every resource.')
param tags object

@description('Compute SKU. PgBouncer is not available on Burstable.')
param skuName string

@description('Compute tier matching skuName.')
@allowed(['GeneralPurpose', 'MemoryOptimized'])
param skuTier string

@description('PostgreSQL major version.')
param version string

@description('Storage size in GiB (grows automatically).')
param storageSizeGB int

@description('max_connections: PgBouncer\'s server pool plus headroom for migrations and admin sessions (D2ds_v5 allows up to 859).')
param maxConnections int

@description('Server connections PgBouncer keeps per user/database pair; keep below maxConnections.')
param pgbouncerPoolSize int

@description('Display name of the Entra group (or user) administering the server; operators sign in as it.')
param entraAdminName string

@description('Object id of that Entra principal.')
param entraAdminObjectId string

@description('Kind of that Entra principal.')
@allowed(['Group', 'User', 'ServicePrincipal'])
param entraAdminType string

@description('Name of the app\'s managed identity: its database role and the user in DATABASE_URL.')
param appIdentityName string

@description('Database the app uses.')
param databaseName string

var host = server.properties.fullyQualifiedDomainName

// Server parameters, applied in this order one at a time (the server rejects concurrent changes).
var serverParameters = [
  // Pooling the app's many short connections; transaction mode hands out server connections per transaction.
  { name: 'pgbouncer.enabled', value: 'true' }
  { name: 'pgbouncer.pool_mode', value: 'transaction' }
  // sqlx names its prepared statements; PgBouncer re-prepares them per server connection (above sqlx's cache of 100).
  { name: 'pgbouncer.max_prepared_statements', value: '500' }
  // sqlx sends extra_float_digits at start-up, which PgBouncer otherwise refuses.
  { name: 'pgbouncer.ignore_startup_parameters', value: 'extra_float_digits' }
  { name: 'pgbouncer.default_pool_size', value: string(pgbouncerPoolSize) }
  // A transaction that gets no server connection within 8 s fails (the app answers 503 with Retry-After, the
  // client retries) instead of queueing for Azure's default 120 s: the value loadtests/ --faults measures.
  { name: 'pgbouncer.query_wait_timeout', value: '8' }
  { name: 'require_secure_transport', value: 'ON' }
  { name: 'max_connections', value: string(maxConnections) }
  // Booking exclusion constraints need btree_gist, which Azure only allows once listed here.
  { name: 'azure.extensions', value: 'BTREE_GIST' }
]

// General Purpose server; no password sign-in at all.
resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: serverName
  location: location
  tags: tags
  sku: { name: skuName, tier: skuTier }
  properties: {
    version: version
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: 'Disabled'
      tenantId: subscription().tenantId
    }
    storage: { storageSizeGB: storageSizeGB, autoGrow: 'Enabled' }
    backup: { backupRetentionDays: 7, geoRedundantBackup: 'Disabled' }
    highAvailability: { mode: 'Disabled' }
    // Reached only through its private endpoint (main.bicep); operators open it for a maintenance window (infra/README.md).
    network: { publicNetworkAccess: 'Disabled' }
  }
}

// PgBouncer and server settings, one at a time to avoid "server busy" conflicts.
@batchSize(1)
resource configurations 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = [
  for parameter in serverParameters: {
    parent: server
    name: parameter.name
    properties: { value: parameter.value, source: 'user-override' }
  }
]

// The app's database; created after the parameters so it never races a configuration change.
resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: databaseName
  properties: { charset: 'UTF8', collation: 'en_US.utf8' }
  dependsOn: [configurations]
}

// The Entra administrator: creates the app identity's role (pgaadauth_create_principal_with_oid), runs the
// migrations and grants (infra/README.md). After the database, so it never races a configuration change.
resource entraAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: entraAdminObjectId
  properties: {
    principalName: entraAdminName
    principalType: entraAdminType
    tenantId: subscription().tenantId
  }
  dependsOn: [database]
}

output serverName string = server.name
output serverId string = server.id
output host string = host
output databaseName string = database.name
// DATABASE_URL: the app's pooled endpoint, PgBouncer on 6432, as its identity's role; no password (the token is).
output pooledUrl string = 'postgres://${uriComponent(appIdentityName)}@${host}:6432/${database.name}?sslmode=require'
