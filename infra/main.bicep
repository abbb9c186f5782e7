// CodeConnect in one resource group: the Rust custom handler on Flex Consumption, Postgres with PgBouncer,
// Azure Managed Redis, Web PubSub, Blob Storage, Key Vault and Application Insights. The app joins a virtual
// network; Postgres, Redis, Key Vault and the host's storage have no public endpoint, only private ones in it.
// See README.md to deploy.

targetScope = 'resourceGroup'

@description('Short environment name used in resource names, e.g. dev or prod (lower case letters and digits; capitals are lowered).')
@minLength(2)
@maxLength(8)
param environmentName string

@description('Azure region for every resource.')
param location string = resourceGroup().location

@description('Browser origins allowed to call the API with credentials (API_ALLOWED_ORIGINS; the handler owns CORS).')
param allowedOrigins array

@description('Public base URL of the API; empty means https://<app>.azurewebsites.net.')
param publicBaseUrl string = ''

@description('Address space of the virtual network (a /16; the app and endpoint subnets are its first two /24s).')
param vnetAddressPrefix string = '10.40.0.0/16'

@description('Put Azure Front Door (Standard) in front of the API: TLS at the edge, and the edge caches the reads the API marks public. Its endpoint becomes the public base URL.')
param frontDoor bool = false

@description('Memory per Function App instance in MB.')
@allowed([512, 2048, 4096])
param functionInstanceMemoryMB int = 2048

@description('Upper bound on Function App scale-out.')
@minValue(40)
@maxValue(1000)
param functionMaximumInstanceCount int = 100

@description('HTTP instances kept warm.')
param functionAlwaysReadyInstances int = 1

@description('Concurrent HTTP requests per instance before scaling out.')
param functionHttpConcurrency int = 64

@description('Postgres compute SKU (General Purpose or Memory Optimized: PgBouncer is not offered on Burstable).')
param postgresSkuName string = 'Standard_D2ds_v5'

@description('Postgres compute tier matching postgresSkuName.')
@allowed(['GeneralPurpose', 'MemoryOptimized'])
param postgresSkuTier string = 'GeneralPurpose'

@description('Postgres major version.')
param postgresVersion string = '16'

@description('Postgres storage in GiB.')
param postgresStorageSizeGB int = 32

@description('Postgres max_connections. D2ds_v5 allows 859; the rest of its memory goes to shared buffers.')
param postgresMaxConnections int = 400

@description('PgBouncer server connections per user/database pair; below postgresMaxConnections with room for direct sessions.')
param pgbouncerPoolSize int = 300

@description('Display name of the Entra group administering Postgres (operators run migrations as it; infra/README.md).')
param postgresEntraAdminName string

@description('Object id of that Entra group.')
param postgresEntraAdminObjectId string

@description('Kind of that Entra principal: a Group (recommended: every operator signs in as the group\'s role), a User or a ServicePrincipal.')
@allowed(['Group', 'User', 'ServicePrincipal'])
param postgresEntraAdminType string = 'Group'

@description('Client connections each Function App instance opens to PgBouncer (DATABASE_MAX_CONNECTIONS).')
param databaseMaxConnections int = 20

@description('Azure Managed Redis SKU.')
param redisSkuName string = 'Balanced_B1'

@description('Web PubSub SKU.')
param webPubSubSkuName string = 'Standard_S1'

@description('Web PubSub units.')
param webPubSubCapacity int = 1

@description('App ID URI of a dedicated Entra app registration; Web PubSub requests a token for it when it calls /api/realtime/events (infra/README.md: register it once per environment).')
param realtimeEventsTokenResource string

@description('Client (application) id of that registration: the audience of its tokens when it issues v2 tokens; empty when it issues v1 tokens.')
param realtimeEventsClientId string = ''

// The audiences the app accepts on upstream events (WEBPUBSUB_EVENT_AUDIENCES).
var realtimeEventsAudiences = filter([realtimeEventsTokenResource, realtimeEventsClientId], audience => !empty(audience))

@secure()
@minLength(32)
@description('Key the app stores password-reset codes under (RESET_CODE_KEY, an HMAC key): e.g. openssl rand -base64 32. Kept only in Key Vault; a new key voids the codes in flight (they live 15 minutes).')
param resetCodeKey string

@description('Handler log filter (LOG_LEVEL).')
param logLevel string = 'info'

@description('Sender address of outgoing email (EMAIL_FROM).')
param emailFrom string = 'no-reply@codeconnect.example'

@secure()
@description('SendGrid API key; empty keeps email in the outbox.')
param sendgridApiKey string = ''

@description('Razorpay key id (public); empty disables Razorpay.')
param razorpayKeyId string = ''

@secure()
@description('Razorpay key secret.')
param razorpayKeySecret string = ''

@secure()
@description('Razorpay webhook secret.')
param razorpayWebhookSecret string = ''

@description('Stripe publishable key (public).')
param stripePublishableKey string = ''

@secure()
@description('Stripe secret key; empty disables Stripe.')
param stripeSecretKey string = ''

@secure()
@description('Stripe webhook endpoint secret (whsec_...).')
param stripeWebhookSecret string = ''

@description('Comma-separated TURN URLs for video clients.')
param turnUrls string = ''

@secure()
@description('TURN REST shared secret.')
param turnSharedSecret string = ''

@description('E-mail address the alerts go to (the action group\'s receiver).')
param alertEmail string

@description('Alert when the 95th percentile of request duration passes this many milliseconds.')
param alertRequestDurationP95Ms int = 1000

@description('Alert when this percentage of requests fail with a server error.')
param alertFailedRequestPercent int = 1

@description('Alert when the readiness probe\'s availability over an hour falls below this percentage.')
param alertAvailabilityPercent int = 99

@description('Alert when the share of cache reads that hit falls below this percentage.')
param alertCacheHitPercent int = 80

@description('Alert when Redis server load passes this percentage.')
param alertRedisServerLoadPercent int = 90

@description('Alert when Postgres connections pass this percentage of max_connections.')
param alertPostgresConnectionsPercent int = 80

@description('Alert when Postgres CPU stays above this percentage for 5 minutes.')
param alertPostgresCpuPercent int = 90

@description('Tags applied to every resource.')
param tags object = {}

// Postgres, Redis and storage names take lower case only.
var envName = toLower(environmentName)
var namePrefix = 'cc-${envName}'
var token = uniqueString(resourceGroup().id, envName)
var allTags = union(tags, { application: 'codeconnect', environment: envName })
var appName = '${namePrefix}-func-${take(token, 6)}'
var containers = {
  deployment: 'app-package'
  media: 'media'
  recordings: 'recordings'
}
var endpointPrefix = '${namePrefix}-pe'
var hubName = 'codeconnect'

// The versionless URI of an optional integration secret, or '' when it is not configured (the setting stays empty).
func integrationSecretUri(vaultUri string, secretName string, value string) string => empty(value) ? '' : '${vaultUri}secrets/${secretName}'

// Logs and telemetry.
module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    namePrefix: namePrefix
    tags: allTags
  }
}

// The virtual network, its privatelink DNS zones and the app's NAT gateway.
module network 'modules/network.bicep' = {
  name: 'network'
  params: {
    location: location
    vnetName: '${namePrefix}-vnet'
    tags: allTags
    addressPrefix: vnetAddressPrefix
  }
}

// The host's storage and the deployment package: private.
module hostStorage 'modules/host-storage.bicep' = {
  name: 'host-storage'
  params: {
    location: location
    accountName: 'stcchost${take(token, 13)}'
    tags: allTags
    deploymentContainerName: containers.deployment
  }
}

// Media and recordings: public, SAS only.
module mediaStorage 'modules/media-storage.bicep' = {
  name: 'media-storage'
  params: {
    location: location
    accountName: 'stcc${take(token, 13)}'
    tags: allTags
    mediaContainerName: containers.media
    recordingsContainerName: containers.recordings
    allowedOrigins: allowedOrigins
  }
}

// Secrets, read by the app through Key Vault references.
module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    vaultName: 'kv-${namePrefix}-${take(token, 8)}'
    tags: allTags
    sendgridApiKey: sendgridApiKey
    razorpayKeySecret: razorpayKeySecret
    razorpayWebhookSecret: razorpayWebhookSecret
    stripeSecretKey: stripeSecretKey
    stripeWebhookSecret: stripeWebhookSecret
    turnSharedSecret: turnSharedSecret
    resetCodeKey: resetCodeKey
  }
}

// Postgres with PgBouncer and Entra authentication only.
module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  params: {
    location: location
    serverName: '${namePrefix}-pg-${take(token, 6)}'
    tags: allTags
    skuName: postgresSkuName
    skuTier: postgresSkuTier
    version: postgresVersion
    storageSizeGB: postgresStorageSizeGB
    maxConnections: postgresMaxConnections
    pgbouncerPoolSize: pgbouncerPoolSize
    entraAdminName: postgresEntraAdminName
    entraAdminObjectId: postgresEntraAdminObjectId
    entraAdminType: postgresEntraAdminType
    // A system-assigned identity is named after its app.
    appIdentityName: appName
    databaseName: 'codeconnect'
  }
}

// Azure Managed Redis with Entra authentication only; the app identity gets its access policy.
module redis 'modules/redis.bicep' = {
  name: 'redis'
  params: {
    location: location
    clusterName: '${namePrefix}-redis-${take(token, 6)}'
    tags: allTags
    skuName: redisSkuName
    appPrincipalId: functionApp.outputs.principalId
  }
}

// Web PubSub service (its hub comes after the app, which it calls).
module webPubSub 'modules/webpubsub.bicep' = {
  name: 'webpubsub'
  params: {
    location: location
    serviceName: '${namePrefix}-wps-${take(token, 6)}'
    tags: allTags
    skuName: webPubSubSkuName
    capacity: webPubSubCapacity
  }
}

// The private endpoints: the four services above are reachable from the network only.
module postgresEndpoint 'modules/private-endpoint.bicep' = {
  name: 'pe-postgres'
  params: {
    location: location
    endpointName: '${endpointPrefix}-postgres'
    tags: allTags
    subnetId: network.outputs.endpointsSubnetId
    serviceId: postgres.outputs.serverId
    groupId: 'postgresqlServer'
    dnsZoneId: network.outputs.zoneIds.postgresqlServer
  }
}

module redisEndpoint 'modules/private-endpoint.bicep' = {
  name: 'pe-redis'
  params: {
    location: location
    endpointName: '${endpointPrefix}-redis'
    tags: allTags
    subnetId: network.outputs.endpointsSubnetId
    serviceId: redis.outputs.clusterId
    groupId: 'redisEnterprise'
    dnsZoneId: network.outputs.zoneIds.redisEnterprise
  }
}

module vaultEndpoint 'modules/private-endpoint.bicep' = {
  name: 'pe-vault'
  params: {
    location: location
    endpointName: '${endpointPrefix}-vault'
    tags: allTags
    subnetId: network.outputs.endpointsSubnetId
    serviceId: keyVault.outputs.vaultId
    groupId: 'vault'
    dnsZoneId: network.outputs.zoneIds.vault
  }
}

module hostBlobEndpoint 'modules/private-endpoint.bicep' = {
  name: 'pe-host-blob'
  params: {
    location: location
    endpointName: '${endpointPrefix}-host-blob'
    tags: allTags
    subnetId: network.outputs.endpointsSubnetId
    serviceId: hostStorage.outputs.accountId
    groupId: 'blob'
    dnsZoneId: network.outputs.zoneIds.blob
  }
}

// Flex Consumption plan and Function App with its system-assigned identity, in the network.
module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    appName: appName
    planName: '${namePrefix}-plan'
    tags: allTags
    subnetId: network.outputs.appSubnetId
    storageBlobEndpoint: hostStorage.outputs.blobEndpoint
    deploymentContainerName: containers.deployment
    instanceMemoryMB: functionInstanceMemoryMB
    maximumInstanceCount: functionMaximumInstanceCount
    alwaysReadyHttpInstances: functionAlwaysReadyInstances
    httpPerInstanceConcurrency: functionHttpConcurrency
  }
  // Its package is read from the host storage over the private endpoint.
  dependsOn: [hostBlobEndpoint]
}

// The optional edge in front of the API.
module edge 'modules/frontdoor.bicep' = if (frontDoor) {
  name: 'frontdoor'
  params: {
    namePrefix: namePrefix
    tags: allTags
    appHostName: functionApp.outputs.defaultHostName
  }
}

// Where users reach the API: the given URL, else Front Door's endpoint when there is one, else the app's own host.
// (The edge module's outputs are read only when it is deployed.)
#disable-next-line BCP318
var edgeUrl = frontDoor ? 'https://${edge.outputs.hostName}' : ''
var apiBaseUrl = !empty(publicBaseUrl) ? publicBaseUrl : (frontDoor ? edgeUrl : 'https://${functionApp.outputs.defaultHostName}')
#disable-next-line BCP318
var frontDoorId = frontDoor ? edge.outputs.frontDoorId : ''

// What the app identity may do: blobs, Web PubSub, Key Vault secrets, telemetry.
module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: functionApp.outputs.principalId
    hostStorageAccountName: hostStorage.outputs.accountName
    mediaStorageAccountName: mediaStorage.outputs.accountName
    webPubSubName: webPubSub.outputs.serviceName
    keyVaultName: keyVault.outputs.vaultName
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

// App settings, after the roles and the private endpoints so the Key Vault references resolve when the app restarts with them.
module appSettings 'modules/appsettings.bicep' = {
  name: 'appsettings'
  params: {
    appName: functionApp.outputs.appName
    hostStorageAccountName: hostStorage.outputs.accountName
    mediaBlobEndpoint: mediaStorage.outputs.blobEndpoint
    mediaContainerName: containers.media
    recordingsContainerName: containers.recordings
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    databaseUrl: postgres.outputs.pooledUrl
    // The dashboards' reads (DATABASE_READ_URL): the primary until a read replica exists; then its pooled URL.
    databaseReadUrl: postgres.outputs.pooledUrl
    redisUrl: redis.outputs.url
    secretUris: {
      sendgridApiKey: integrationSecretUri(keyVault.outputs.vaultUri, 'sendgrid-api-key', sendgridApiKey)
      razorpayKeySecret: integrationSecretUri(keyVault.outputs.vaultUri, 'razorpay-key-secret', razorpayKeySecret)
      razorpayWebhookSecret: integrationSecretUri(keyVault.outputs.vaultUri, 'razorpay-webhook-secret', razorpayWebhookSecret)
      stripeSecretKey: integrationSecretUri(keyVault.outputs.vaultUri, 'stripe-secret-key', stripeSecretKey)
      stripeWebhookSecret: integrationSecretUri(keyVault.outputs.vaultUri, 'stripe-webhook-secret', stripeWebhookSecret)
      turnSharedSecret: integrationSecretUri(keyVault.outputs.vaultUri, 'turn-shared-secret', turnSharedSecret)
      resetCodeKey: keyVault.outputs.resetCodeKeySecretUri
    }
    databaseMaxConnections: databaseMaxConnections
    redisKeyPrefix: 'cc:${envName}:'
    allowedOrigins: allowedOrigins
    logLevel: logLevel
    publicBaseUrl: apiBaseUrl
    frontDoorId: frontDoorId
    webPubSubEndpoint: webPubSub.outputs.endpoint
    webPubSubPrincipalId: webPubSub.outputs.principalId
    realtimeEventsAudiences: realtimeEventsAudiences
    webPubSubHub: hubName
    emailFrom: emailFrom
    razorpayKeyId: razorpayKeyId
    stripePublishableKey: stripePublishableKey
    turnUrls: turnUrls
  }
  dependsOn: [roles, postgresEndpoint, redisEndpoint, vaultEndpoint, hostBlobEndpoint]
}

// The hub's event handler points at the app, so it comes last.
module webPubSubHub 'modules/webpubsub-hub.bicep' = {
  name: 'webpubsub-hub'
  params: {
    serviceName: webPubSub.outputs.serviceName
    hubName: hubName
    appHostName: functionApp.outputs.defaultHostName
    eventHandlerTokenResource: realtimeEventsTokenResource
  }
}

// The runbook's alerts and availability test, notifying alertEmail.
module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    namePrefix: namePrefix
    tags: allTags
    alertEmail: alertEmail
    appInsightsName: monitoring.outputs.appInsightsName
    redisClusterName: redis.outputs.clusterName
    postgresServerName: postgres.outputs.serverName
    postgresMaxConnections: postgresMaxConnections
    readinessUrl: 'https://${functionApp.outputs.defaultHostName}/api/health/ready'
    requestDurationP95Ms: alertRequestDurationP95Ms
    failedRequestPercent: alertFailedRequestPercent
    availabilityPercent: alertAvailabilityPercent
    cacheHitPercent: alertCacheHitPercent
    redisServerLoadPercent: alertRedisServerLoadPercent
    postgresConnectionsPercent: alertPostgresConnectionsPercent
    postgresCpuPercent: alertPostgresCpuPercent
  }
}

// The runbook's charts.
module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    location: location
    namePrefix: namePrefix
    tags: allTags
    appInsightsName: monitoring.outputs.appInsightsName
    redisClusterName: redis.outputs.clusterName
    postgresServerName: postgres.outputs.serverName
  }
}

output functionAppName string = functionApp.outputs.appName
output functionAppHostName string = functionApp.outputs.defaultHostName
output functionAppUrl string = 'https://${functionApp.outputs.defaultHostName}'
// Where users and frontends reach the API (Front Door's endpoint when it is on).
output apiUrl string = apiBaseUrl
output hostStorageAccountName string = hostStorage.outputs.accountName
output mediaStorageAccountName string = mediaStorage.outputs.accountName
output outboundIpAddress string = network.outputs.outboundIpAddress
output deploymentContainerName string = containers.deployment
output keyVaultName string = keyVault.outputs.vaultName
output postgresServerName string = postgres.outputs.serverName
output postgresHost string = postgres.outputs.host
output redisHostName string = redis.outputs.hostName
output webPubSubEndpoint string = webPubSub.outputs.endpoint
output webPubSubPrincipalId string = webPubSub.outputs.principalId
