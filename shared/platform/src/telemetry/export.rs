//! Application Insights ingestion with Entra auth. Bicep turns the resource's local auth off, so
//! ingestion takes only `Authorization: Bearer` with a token for [`INGESTION_SCOPE`]: the
//! exporter's HTTP client is ours, adding the app identity's token to every upload.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use azure_clients::entra::TokenCredential;
use bytes::Bytes;
use opentelemetry_application_insights::Exporter;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

/// The scope of Azure Monitor's ingestion tokens.
pub const INGESTION_SCOPE: &str = "https://monitor.azure.com/.default";
/// One upload's longest wait; the exporter retries with backoff after it.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client for uploads (the exporter speaks HTTPS only), trusting the certificates in
/// `ca_file` besides the public roots.
pub fn upload_client(ca_file: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let mut client = reqwest::Client::builder().timeout(UPLOAD_TIMEOUT);
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("TELEMETRY_CA_FILE: read {}", path.display()))?;
        for certificate in reqwest::Certificate::from_pem_bundle(&pem)
            .context("TELEMETRY_CA_FILE holds no PEM certificate")?
        {
            client = client.add_root_certificate(certificate);
        }
    }
    Ok(client.build()?)
}

pub(super) fn exporter(export: &super::Export) -> anyhow::Result<Exporter<EntraClient>> {
    let client = EntraClient {
        http: export.http.clone(),
        credential: export.credential.clone(),
        runtime: export.runtime.clone(),
    };
    Exporter::new_from_connection_string(&export.connection_string, client)
        .map_err(|error| anyhow!("APPLICATIONINSIGHTS_CONNECTION_STRING: {error}"))
}

/// Uploads with the app's token. The SDK calls exporters from threads of its own, outside the
/// runtime, so each upload is spawned onto it.
#[derive(Debug, Clone)]
pub(super) struct EntraClient {
    http: reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for EntraClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (http, credential) = (self.http.clone(), self.credential.clone());
        self.runtime
            .spawn(async move {
                let token = credential.get_token(&[INGESTION_SCOPE]).await?;
                let (parts, body) = request.into_parts();
                let answer = http
                    .request(parts.method, parts.uri.to_string())
                    .headers(parts.headers)
                    .bearer_auth(token.token.secret())
                    .body(body)
                    .send()
                    .await?;
                let mut response = Response::builder().status(answer.status().as_u16());
                for (name, value) in answer.headers() {
                    response = response.header(name.as_str(), value.as_bytes());
                }
                Ok::<_, HttpError>(response.body(answer.bytes().await?)?)
            })
            .await?
    }
}
