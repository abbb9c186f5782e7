// The vault that holds every secret the app reads, and the third-party secrets passed in at deploy time.

@description('Azure region for the resources.')
param location string

@description('Key Vault name: 3-24 letters, digits and hyphens.')
param vaultName string

@description('Tags applied to every resource.')
param tags object

@secure()
@description('SendGrid API key (SENDGRID_API_KEY); empty leaves email in the outbox only.')
param sendgridApiKey string

@secure()
@description('Razorpay key secret (RAZORPAY_KEY_SECRET); empty disables Razorpay.')
param razorpayKeySecret string

@secure()
@description('Razorpay webhook secret (RAZORPAY_WEBHOOK_SECRET).')
param razorpayWebhookSecret string

@secure()
@description('Stripe secret key (STRIPE_SECRET_KEY); empty disables Stripe.')
param stripeSecretKey string

@secure()
@description('Stripe webhook endpoint secret (STRIPE_WEBHOOK_SECRET).')
param stripeWebhookSecret string

@secure()
@description('TURN REST shared secret (TURN_SHARED_SECRET).')
param turnSharedSecret string

@secure()
@description('HMAC key for stored password-reset codes (RESET_CODE_KEY).')
param resetCodeKey string

// Secret names here are the ones main.bicep builds Key Vault references to.
var integrationSecrets = [
  { name: 'sendgrid-api-key', value: sendgridApiKey }
  { name: 'razorpay-key-secret', value: razorpayKeySecret }
  { name: 'razorpay-webhook-secret', value: razorpayWebhookSecret }
  { name: 'stripe-secret-key', value: stripeSecretKey }
  { name: 'stripe-webhook-secret', value: stripeWebhookSecret }
  { name: 'turn-shared-secret', value: turnSharedSecret }
]

// RBAC-authorised vault: the app reads secrets through Key Vault references with its own identity, over the private
// endpoint. Deployments still write the secrets below (Resource Manager is not subject to the vault's network rules).
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: vaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    publicNetworkAccess: 'Disabled'
    networkAcls: { defaultAction: 'Deny', bypass: 'None' }
  }
}

// SendGrid, Razorpay, Stripe and TURN secrets; only the configured ones exist.
resource secrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [
  for secret in integrationSecrets: if (!empty(secret.value)) {
    parent: vault
    name: secret.name
    properties: { value: secret.value }
  }
]

// The app's own key: always present, unlike the integrations.
resource resetCodeKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'reset-code-key'
  properties: { value: resetCodeKey }
}

output vaultName string = vault.name
output vaultId string = vault.id
output vaultUri string = vault.properties.vaultUri
// Versionless, so a rotated key is picked up when the platform refreshes its references.
output resetCodeKeySecretUri string = '${vault.properties.vaultUri}secrets/${resetCodeKeySecret.name}'
