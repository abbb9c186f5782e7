// Azure Front Door (Standard) in front of the API, an option (main.bicep's frontDoor parameter): TLS at the edge
// near each user, and the edge caches what the API marks public (the mentor list and profiles, reviews, lookups,
// the reference page), for as long as its Cache-Control allows; private, no-store and no-cache answers are never
// served from the edge. The app counts each user by X-Azure-ClientIP on requests carrying this profile's id
// (FRONT_DOOR_ID), not by the edge's own address.

@description('Prefix of the resource names.')
param namePrefix string

@description('Tags applied to every resource.')
param tags object

@description('The Function App\'s host name, the origin.')
param appHostName string

// Standard tier: caching, compression and managed TLS; the app answers within 230 s, the edge waits 240.
resource profile 'Microsoft.Cdn/profiles@2024-09-01' = {
  name: '${namePrefix}-afd'
  location: 'global'
  tags: tags
  sku: { name: 'Standard_AzureFrontDoor' }
  properties: { originResponseTimeoutSeconds: 240 }
}

// The public host name, <name>-<hash>.z01.azurefd.net (add a custom domain to it in the portal or here).
resource endpoint 'Microsoft.Cdn/profiles/afdEndpoints@2024-09-01' = {
  parent: profile
  name: '${namePrefix}-api'
  location: 'global'
  tags: tags
  properties: { enabledState: 'Enabled' }
}

// One origin, probed on the liveness route (exempt from request budgets).
resource originGroup 'Microsoft.Cdn/profiles/originGroups@2024-09-01' = {
  parent: profile
  name: 'api'
  properties: {
    loadBalancingSettings: { sampleSize: 4, successfulSamplesRequired: 3, additionalLatencyInMilliseconds: 50 }
    healthProbeSettings: {
      probePath: '/api/health'
      probeRequestType: 'GET'
      probeProtocol: 'Https'
      probeIntervalInSeconds: 60
    }
    sessionAffinityState: 'Disabled'
  }
}

// The Function App over HTTPS, with its own host name (App Service routes by it).
resource origin 'Microsoft.Cdn/profiles/originGroups/origins@2024-09-01' = {
  parent: originGroup
  name: 'function-app'
  properties: {
    hostName: appHostName
    originHostHeader: appHostName
    httpsPort: 443
    httpPort: 80
    priority: 1
    weight: 1000
    enforceCertificateNameCheck: true
    enabledState: 'Enabled'
  }
}

// Every /api path; the cache key includes the query string (filters and pages are different answers).
resource route 'Microsoft.Cdn/profiles/afdEndpoints/routes@2024-09-01' = {
  parent: endpoint
  name: 'api'
  properties: {
    originGroup: { id: originGroup.id }
    patternsToMatch: ['/api/*']
    supportedProtocols: ['Http', 'Https']
    httpsRedirect: 'Enabled'
    forwardingProtocol: 'HttpsOnly'
    linkToDefaultDomain: 'Enabled'
    cacheConfiguration: {
      queryStringCachingBehavior: 'UseQueryString'
      compressionSettings: {
        isCompressionEnabled: true
        contentTypesToCompress: ['application/json', 'application/problem+json', 'text/html', 'text/css', 'text/javascript']
      }
    }
  }
  dependsOn: [origin]
}

// FRONT_DOOR_ID: the value Front Door sends as X-Azure-FDID.
output frontDoorId string = profile.properties.frontDoorId
output hostName string = endpoint.properties.hostName
