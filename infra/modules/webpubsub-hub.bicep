// The codeconnect hub: sends connect, connected, disconnected and user events to the app's /api/realtime/events.

@description('Existing Web PubSub service.')
param serviceName string

@description('Hub name the app uses (WEBPUBSUB_HUB).')
param hubName string

@description('Function App host name, e.g. cc-prod-func.azurewebsites.net.')
param appHostName string

@description('App ID URI the service requests a token for when calling the app; the app checks it as the audience.')
param eventHandlerTokenResource string

// Existing service the hub belongs to.
resource service 'Microsoft.SignalRService/webPubSub@2024-03-01' existing = {
  name: serviceName
}

// Upstream to the app with a managed-identity bearer token; clients must present a token from the app.
resource hub 'Microsoft.SignalRService/webPubSub/hubs@2024-03-01' = {
  parent: service
  name: hubName
  properties: {
    eventHandlers: [
      {
        urlTemplate: 'https://${appHostName}/api/realtime/events'
        userEventPattern: '*'
        systemEvents: ['connect', 'connected', 'disconnected']
        auth: {
          type: 'ManagedIdentity'
          managedIdentity: { resource: eventHandlerTokenResource }
        }
      }
    ]
    anonymousConnectPolicy: 'deny'
  }
}

output hubName string = hub.name
