// Logs and telemetry: one Log Analytics workspace behind a workspace-based Application Insights.

@description('Azure region for the resources.')
param location string

@description('Prefix for resource names, e.g. cc-prod.')
param namePrefix string

@description('Tags applied to every resource.')
param tags object

@description('Days Log Analytics keeps data.')
param retentionInDays int = 30

// Stores the host's and the handler's logs, queried through Application Insights.
resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-logs'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: retentionInDays
  }
}

// Request, dependency and trace telemetry from the Functions host; local auth is off, so the app sends with its identity.
resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${namePrefix}-insights'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

output appInsightsName string = appInsights.name
output appInsightsConnectionString string = appInsights.properties.ConnectionString
