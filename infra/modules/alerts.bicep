// The runbook's alerts, an availability test and the action group they notify. Thresholds are
// parameters whose defaults are the runbook's numbers.

@description('Azure region for the resources (the action group and metric alerts are global).')
param location string

@description('Prefix for resource names, e.g. cc-prod.')
param namePrefix string

@description('Tags applied to every resource.')
param tags object

@description('Where alerts are sent.')
param alertEmail string

@description('Application Insights component the app reports to.')
param appInsightsName string

@description('Azure Managed Redis cluster.')
param redisClusterName string

@description('Postgres flexible server.')
param postgresServerName string

@description('The server\'s max_connections, to alert at a share of it.')
param postgresMaxConnections int

@description('URL the availability test calls: the API\'s readiness probe.')
param readinessUrl string

@description('Alert when the 95th percentile of request duration passes this many milliseconds.')
param requestDurationP95Ms int = 1000

@description('Alert when this percentage of requests fail (server errors).')
param failedRequestPercent int = 1

@description('Alert when availability over an hour falls below this percentage.')
param availabilityPercent int = 99

@description('Alert when the share of cache reads that hit falls below this percentage.')
param cacheHitPercent int = 80

@description('Alert when Redis server load passes this percentage.')
param redisServerLoadPercent int = 90

@description('Alert when Postgres connections pass this percentage of max_connections.')
param postgresConnectionsPercent int = 80

@description('Alert when Postgres CPU stays above this percentage for 5 minutes.')
param postgresCpuPercent int = 90

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource redisCluster 'Microsoft.Cache/redisEnterprise@2025-07-01' existing = {
  name: redisClusterName
}

resource postgresServer 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' existing = {
  name: postgresServerName
}

// Everyone on call, by e-mail.
resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${namePrefix}-on-call'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'cc-on-call'
    enabled: true
    emailReceivers: [
      {
        name: 'on-call'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// The readiness probe from five regions every five minutes.
resource readinessTest 'Microsoft.Insights/webtests@2022-06-15' = {
  name: '${namePrefix}-readiness'
  location: location
  // Links the test to the component, as the portal expects.
  tags: union(tags, { 'hidden-link:${appInsights.id}': 'Resource' })
  kind: 'standard'
  properties: {
    SyntheticMonitorId: '${namePrefix}-readiness'
    Name: 'API readiness'
    Enabled: true
    Frequency: 300
    Timeout: 30
    Kind: 'standard'
    RetryEnabled: true
    Locations: [
      { Id: 'us-va-ash-azr' }
      { Id: 'us-ca-sjc-azr' }
      { Id: 'emea-nl-ams-azr' }
      { Id: 'emea-gb-db3-azr' }
      { Id: 'apac-sg-sin-azr' }
    ]
    Request: {
      RequestUrl: readinessUrl
      HttpVerb: 'GET'
      ParseDependentRequests: false
    }
    ValidationRules: {
      ExpectedHttpStatusCode: 200
      SSLCheck: true
      SSLCertRemainingLifetimeCheck: 7
    }
  }
}

// Two regions failing at once: the API is down for someone now.
resource readinessFailingAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-readiness-failing'
  location: 'global'
  tags: tags
  properties: {
    description: 'The readiness probe fails from two or more regions.'
    severity: 1
    enabled: true
    scopes: [readinessTest.id, appInsights.id]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria'
      webTestId: readinessTest.id
      componentId: appInsights.id
      failedLocationCount: 2
    }
    actions: [{ actionGroupId: actionGroup.id }]
  }
}

// Availability over an hour below the target.
resource availabilityAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-availability'
  location: 'global'
  tags: tags
  properties: {
    description: 'Availability of the readiness probe over an hour is below ${availabilityPercent} %.'
    severity: 1
    enabled: true
    scopes: [appInsights.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT1H'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'availability'
          metricNamespace: 'microsoft.insights/components'
          metricName: 'availabilityResults/availabilityPercentage'
          operator: 'LessThan'
          threshold: availabilityPercent
          timeAggregation: 'Average'
        }
      ]
    }
    actions: [{ actionGroupId: actionGroup.id }]
  }
}

// Redis near its limit: latency rises, then failovers.
resource redisServerLoadAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-redis-server-load'
  location: 'global'
  tags: tags
  properties: {
    description: 'Azure Managed Redis server load is above ${redisServerLoadPercent} %.'
    severity: 2
    enabled: true
    scopes: [redisCluster.id]
    // Its metrics have five-minute grains.
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'serverLoad'
          metricNamespace: 'Microsoft.Cache/redisEnterprise'
          metricName: 'serverLoad'
          operator: 'GreaterThan'
          threshold: redisServerLoadPercent
          timeAggregation: 'Maximum'
        }
      ]
    }
    actions: [{ actionGroupId: actionGroup.id }]
  }
}

// Connections close to max_connections: PgBouncer's pool or direct sessions will be refused.
resource postgresConnectionsAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-postgres-connections'
  location: 'global'
  tags: tags
  properties: {
    description: 'Postgres connections are above ${postgresConnectionsPercent} % of max_connections (${postgresMaxConnections}).'
    severity: 2
    enabled: true
    scopes: [postgresServer.id]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'connections'
          metricNamespace: 'Microsoft.DBforPostgreSQL/flexibleServers'
          metricName: 'active_connections'
          operator: 'GreaterThan'
          threshold: postgresMaxConnections * postgresConnectionsPercent / 100
          timeAggregation: 'Maximum'
        }
      ]
    }
    actions: [{ actionGroupId: actionGroup.id }]
  }
}

// CPU pinned for five minutes.
resource postgresCpuAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-postgres-cpu'
  location: 'global'
  tags: tags
  properties: {
    description: 'Postgres CPU has been above ${postgresCpuPercent} % for 5 minutes.'
    severity: 2
    enabled: true
    scopes: [postgresServer.id]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'cpu'
          metricNamespace: 'Microsoft.DBforPostgreSQL/flexibleServers'
          metricName: 'cpu_percent'
          operator: 'GreaterThan'
          threshold: postgresCpuPercent
          timeAggregation: 'Minimum'
        }
      ]
    }
    actions: [{ actionGroupId: actionGroup.id }]
  }
}

// Slow requests, from the app's own request telemetry.
resource requestDurationAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-request-duration-p95'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    description: 'The 95th percentile of request duration is above ${requestDurationP95Ms} ms.'
    severity: 2
    enabled: true
    scopes: [appInsights.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: 'requests | summarize p95 = percentile(duration, 95)'
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'p95'
          operator: 'GreaterThan'
          threshold: requestDurationP95Ms
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: [actionGroup.id] }
  }
}

// Server errors (the handler marks 5xx requests failed; 4xx are the callers').
resource failedRequestsAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-failed-requests'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    description: 'More than ${failedRequestPercent} % of requests failed with a server error.'
    severity: 1
    enabled: true
    scopes: [appInsights.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: 'requests | summarize failedPercent = 100.0 * countif(success == false) / count()'
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'failedPercent'
          operator: 'GreaterThan'
          threshold: failedRequestPercent
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: [actionGroup.id] }
  }
}

// The app's own cache metric: hits among all reads of the shared cache.
resource cacheHitAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-cache-hit-rate'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    description: 'Fewer than ${cacheHitPercent} % of cache reads hit.'
    severity: 3
    enabled: true
    scopes: [appInsights.id]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'customMetrics | where name == "cache.lookups" | summarize hits = sumif(valueSum, tostring(customDimensions.result) == "hit"), reads = sum(valueSum) | where reads > 0 | extend hitPercent = 100.0 * hits / reads'
          timeAggregation: 'Minimum'
          metricMeasureColumn: 'hitPercent'
          operator: 'LessThan'
          threshold: cacheHitPercent
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: [actionGroup.id] }
  }
}

output actionGroupId string = actionGroup.id
