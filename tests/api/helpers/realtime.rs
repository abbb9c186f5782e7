//! Web PubSub as the tests configure and inspect it.

use super::*;

/// Web PubSub configured but unreachable (and so is its identity endpoint): every push fails.
pub fn unreachable_realtime() -> RealtimeConfig {
    let nowhere = "http://127.0.0.1:9";
    RealtimeConfig {
        service: Some(PubSubService::Service(PubSubEndpoint {
            endpoint: nowhere.into(),
            identity: ManagedIdentity::Endpoint {
                url: format!("{nowhere}/msi/token"),
                secret: Secret::from("unreachable"),
            },
            events: TokenRules {
                authority: nowhere.into(),
                tenant_id: "00000000-0000-0000-0000-000000000000".into(),
                audiences: vec!["api://nowhere".into()],
                principal_ids: vec!["00000000-0000-0000-0000-000000000001".into()],
            },
        })),
        hub: "codeconnect".into(),
    }
}

/// The app with its own local Web PubSub hub, in Entra mode as in Azure.
pub async fn app_with_hub() -> TestApp {
    spawn_app_with(Options {
        realtime: Some(RealtimeConfig {
            service: Some(PubSubService::LocalHub { port: 0 }),
            hub: "codeconnect".into(),
        }),
        ..Options::default()
    })
    .await
}

impl TestApp {
    /// The local OpenID issuer (the app must run the local hub).
    pub fn issuer(&self) -> &LocalIssuer {
        self.issuer.as_deref().expect("the app runs the local hub")
    }

    /// What the app accepts as an upstream event's token (the app must run the local hub).
    pub fn events_rules(&self) -> TokenRules {
        match &self.state.config.realtime.service {
            Some(PubSubService::Service(service)) => service.events.clone(),
            _ => panic!("the app runs no Web PubSub"),
        }
    }
}
