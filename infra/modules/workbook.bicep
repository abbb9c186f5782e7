// The runbook's dashboard: one Azure Monitor workbook over the app's telemetry, Redis and Postgres.

@description('Azure region for the workbook.')
param location string

@description('Prefix for resource names, e.g. cc-prod.')
param namePrefix string

@description('Tags applied to every resource.')
param tags object

@description('Application Insights component the app reports to.')
param appInsightsName string

@description('Azure Managed Redis cluster.')
param redisClusterName string

@description('Postgres flexible server.')
param postgresServerName string

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource redisCluster 'Microsoft.Cache/redisEnterprise@2025-07-01' existing = {
  name: redisClusterName
}

resource postgresServer 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' existing = {
  name: postgresServerName
}

// A chart of a query over the app's telemetry.
func chart(name string, title string, query string) object => {
  type: 3
  name: name
  content: {
    version: 'KqlItem/1.0'
    title: title
    query: query
    size: 0
    timeContext: { durationMs: 86400000 }
    queryType: 0
    resourceType: 'microsoft.insights/components'
    visualization: 'timechart'
  }
}

// A chart of a resource's platform metrics.
func metrics(name string, title string, resourceType string, resourceId string, metricNames array) object => {
  type: 10
  name: name
  content: {
    version: 'MetricsItem/2.0'
    title: title
    size: 0
    chartType: 2
    resourceType: resourceType
    metricScope: 0
    resourceIds: [resourceId]
    timeContext: { durationMs: 86400000 }
    metrics: map(metricNames, metric => {
      namespace: resourceType
      metric: '${resourceType}--${metric}'
      aggregation: 3
    })
  }
}

var items = [
  chart('request-duration', 'Request duration (ms): median and 95th percentile (target: p95 under 1000)', 'requests | summarize p50 = percentile(duration, 50), p95 = percentile(duration, 95) by bin(timestamp, 5m)')
  chart('requests-by-route', 'Requests by route', 'requests | summarize count() by name, bin(timestamp, 5m)')
  chart('failed-requests', 'Failed requests, % (target: under 1)', 'requests | summarize failedPercent = 100.0 * countif(success == false) / count() by bin(timestamp, 5m)')
  chart('dependency-duration', 'Dependency duration (ms), 95th percentile by type: postgresql, redis, HTTP', 'dependencies | summarize p95 = percentile(duration, 95) by type, bin(timestamp, 5m)')
  chart('availability', 'Availability of the readiness probe, % (target: over 99)', 'availabilityResults | summarize availability = 100.0 * countif(success == 1) / count() by bin(timestamp, 1h)')
  chart('cache-hit-rate', 'Cache hit rate by cache, % (alert under 80)', 'customMetrics | where name == "cache.lookups" | summarize hitPercent = 100.0 * sumif(valueSum, tostring(customDimensions.result) == "hit") / sum(valueSum) by cache = tostring(customDimensions.cache), bin(timestamp, 15m)')
  chart('database-pool', 'Database pool: connections in use and acquire wait (s)', 'customMetrics | where name in ("db.client.connection.count.used", "db.client.connection.wait_time") | summarize value = avg(valueSum / valueCount) by name, bin(timestamp, 5m)')
  chart('password-hashing', 'Password hashing: jobs queued and wait (s)', 'customMetrics | where name in ("auth.hashing.queued", "auth.hashing.wait_time") | summarize value = avg(valueSum / valueCount) by name, bin(timestamp, 5m)')
  chart('outbox', 'E-mail outbox: pending and age of the oldest (s)', 'customMetrics | where name in ("outbox.pending", "outbox.oldest_pending_age") | summarize value = max(valueMax) by name, bin(timestamp, 5m)')
  chart('timers', 'Timer runs by timer and outcome', 'customMetrics | where name == "timer.duration" | summarize runs = sum(valueCount) by timer = tostring(customDimensions.timer), outcome = tostring(customDimensions.outcome), bin(timestamp, 1h)')
  metrics('redis', 'Redis: server load, connected clients, hits and misses', 'microsoft.cache/redisenterprise', redisCluster.id, ['serverLoad', 'connectedclients', 'cachehits', 'cachemisses'])
  metrics('postgres', 'Postgres: connections, CPU and IOPS', 'microsoft.dbforpostgresql/flexibleservers', postgresServer.id, ['active_connections', 'cpu_percent', 'disk_iops_consumed_percentage'])
]

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name is a GUID.
  name: guid(resourceGroup().id, namePrefix, 'runbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'CodeConnect runbook (${namePrefix})'
    category: 'workbook'
    sourceId: appInsights.id
    version: 'Notebook/1.0'
    serializedData: string({
      version: 'Notebook/1.0'
      items: items
      isLocked: false
      fallbackResourceIds: [appInsights.id]
    })
  }
}
