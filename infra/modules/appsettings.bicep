// The Function App's app settings: every setting the handler reads (shared::config::Config), secrets as Key Vault
// references. Flex Consumption sets the runtime in functionAppConfig, so FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION must not appear here. tests/infra checks this list against the Rust code.

@description('Existing Function App.')
param appName string

@description('The host\'s storage account (identity-based AzureWebJobsStorage), reached through its private endpoint.')
param hostStorageAccountName string

@description('Blob endpoint of the media and recordings account, https://<account>.blob.core.windows.net/.')
param mediaBlobEndpoint string

@description('Blob container for profile photos and intro videos.')
param mediaContainerName string

@description('Blob container for class recordings.')
param recordingsContainerName string

@description('Application Insights connection string (not a secret: ingestion needs the app identity).')
param appInsightsConnectionString string

@description('Versionless Key Vault secret URIs; an empty URI leaves that setting empty (integration off).')
param secretUris {
  sendgridApiKey: string
  razorpayKeySecret: string
  razorpayWebhookSecret: string
  stripeSecretKey: string
  stripeWebhookSecret: string
  turnSharedSecret: string
  resetCodeKey: string
}

@description('The pooled Postgres URL: PgBouncer, the app identity\'s role, no password.')
param databaseUrl string

@description('The Postgres URL for reads that may lag, the dashboards\' (the primary until a read replica exists; then its pooled URL).')
param databaseReadUrl string

@description('The Redis URL: TLS, no credentials (the app signs in with its identity).')
param redisUrl string

@description('Client connections each instance opens to PgBouncer.')
param databaseMaxConnections int

@description('Prefix of every Redis key, so environments can share a cache.')
param redisKeyPrefix string

@description('Browser origins allowed to call the API with credentials.')
param allowedOrigins array

@description('RUST_LOG-style filter for the handler\'s logs.')
param logLevel string

@description('Public base URL of the API, used in links the app sends.')
param publicBaseUrl string

@description('The Front Door profile\'s id (X-Azure-FDID) when Front Door is in front of the API, else empty.')
param frontDoorId string

@description('Web PubSub endpoint, https://<name>.webpubsub.azure.com.')
param webPubSubEndpoint string

@description('Web PubSub hub name.')
param webPubSubHub string

@description('Object id of the Web PubSub service identity: the only principal whose event tokens the app accepts.')
param webPubSubPrincipalId string

@description('Audiences of the tokens Web PubSub sends to the event handler (App ID URI, and client id for v2 tokens).')
param realtimeEventsAudiences array

@description('Sender address of outgoing email.')
param emailFrom string

@description('Razorpay key id (public).')
param razorpayKeyId string

@description('Stripe publishable key (public).')
param stripePublishableKey string

@description('Comma-separated TURN server URLs handed to video clients.')
param turnUrls string

// A Key Vault reference the platform resolves with the app identity; a versionless URI follows rotations.
func keyVaultReference(secretUri string) string => empty(secretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${secretUri})'

// Existing app the settings belong to.
resource app 'Microsoft.Web/sites@2024-11-01' existing = {
  name: appName
}

// The whole set of app settings (this resource replaces any set by hand).
resource appSettings 'Microsoft.Web/sites/config@2024-11-01' = {
  parent: app
  name: 'appsettings'
  properties: {
    // Functions host.
    AzureWebJobsStorage__accountName: hostStorageAccountName
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
    // How often the handler sends its metrics (milliseconds).
    OTEL_METRIC_EXPORT_INTERVAL: '60000'
    // Extra CA certificates for telemetry uploads: none in Azure (for a stand-in or a proxy).
    TELEMETRY_CA_FILE: ''
    // Traces started here (not by the host's traceparent) recorded per second and instance.
    TELEMETRY_TRACES_PER_SECOND: '10'

    // Handler process.
    HANDLER_BIND_ADDRESS: '127.0.0.1'
    LOG_LEVEL: logLevel
    // The Functions host fires the timers (function.json); never the handler itself as well.
    TIMERS_IN_PROCESS: 'false'
    // Never CORS_ALLOWED_ORIGINS: on Flex the host owns that name (a JSON array of the platform CORS origins).
    API_ALLOWED_ORIGINS: join(allowedOrigins, ',')
    PUBLIC_BASE_URL: publicBaseUrl
    // Behind Front Door, requests with this id are counted per X-Azure-ClientIP.
    FRONT_DOOR_ID: frontDoorId

    // Postgres through PgBouncer (6432) as the app identity's role, its Entra token the password. Migrations
    // run from an operator's machine over the direct port (5432), never from the app.
    DATABASE_URL: databaseUrl
    DATABASE_AUTH: 'entra'
    DATABASE_READ_URL: databaseReadUrl
    DATABASE_MAX_CONNECTIONS: string(databaseMaxConnections)
    DATABASE_ACQUIRE_TIMEOUT_SECS: '30'

    // Redis as the app identity (username its object id, password its token).
    REDIS_URL: redisUrl
    REDIS_AUTH: 'entra'
    REDIS_KEY_PREFIX: redisKeyPrefix
    REDIS_TIMEOUT_MS: '1000'

    // Blob storage through the managed identity (no connection string in Azure).
    AZURE_STORAGE_ACCOUNT_URL: mediaBlobEndpoint
    BLOB_MEDIA_CONTAINER: mediaContainerName
    BLOB_RECORDINGS_CONTAINER: recordingsContainerName

    // Web PubSub with local auth off: the app calls it with its managed identity, and accepts upstream events
    // only with an Entra token from this tenant, for the event audience, issued to the service's identity.
    WEBPUBSUB_ENDPOINT: webPubSubEndpoint
    ENTRA_TENANT_ID: subscription().tenantId
    WEBPUBSUB_EVENT_AUDIENCES: join(realtimeEventsAudiences, ',')
    WEBPUBSUB_PRINCIPAL_ID: webPubSubPrincipalId
    WEBPUBSUB_HUB: webPubSubHub

    // Email.
    SENDGRID_API_KEY: keyVaultReference(secretUris.sendgridApiKey)
    EMAIL_FROM: emailFrom

    // Payments.
    RAZORPAY_KEY_ID: razorpayKeyId
    RAZORPAY_KEY_SECRET: keyVaultReference(secretUris.razorpayKeySecret)
    RAZORPAY_WEBHOOK_SECRET: keyVaultReference(secretUris.razorpayWebhookSecret)
    STRIPE_SECRET_KEY: keyVaultReference(secretUris.stripeSecretKey)
    STRIPE_PUBLISHABLE_KEY: stripePublishableKey
    STRIPE_WEBHOOK_SECRET: keyVaultReference(secretUris.stripeWebhookSecret)

    // Video.
    TURN_URLS: turnUrls
    TURN_SHARED_SECRET: keyVaultReference(secretUris.turnSharedSecret)

    // Accounts: the key reset codes are stored under.
    RESET_CODE_KEY: keyVaultReference(secretUris.resetCodeKey)
  }
}
