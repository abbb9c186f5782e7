//! Application Insights' ingestion endpoint and the identity endpoint, stood in for locally, so a
//! run can measure the handler with telemetry export on (`--export-telemetry`). The exporter
//! speaks HTTPS only: the endpoint is a TLS front (a self-signed certificate the handler trusts
//! through `TELEMETRY_CA_FILE`) relaying to a plain server that checks each upload's Entra token
//! and counts what arrives.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use azure_clients::entra::{LocalIssuer, ManagedIdentity, TokenValidator};
use platform::config::ExposeSecret;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

const AUDIENCE: &str = "https://monitor.azure.com";

pub struct Ingestion {
    /// The handler's settings for exporting here.
    pub settings: Vec<(&'static str, String)>,
    counts: Arc<Counts>,
    ca_file: PathBuf,
}

struct Counts {
    validator: TokenValidator,
    uploads: AtomicU64,
    items: AtomicU64,
    refused: AtomicU64,
}

/// What arrived over the run.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub uploads: u64,
    pub items: u64,
    pub refused: u64,
}

impl Ingestion {
    pub async fn start() -> anyhow::Result<Self> {
        let issuer = LocalIssuer::spawn().await?;
        let counts = Arc::new(Counts {
            validator: TokenValidator::new(issuer.rules(AUDIENCE, issuer.app_principal_id())),
            uploads: AtomicU64::new(0),
            items: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let plain = TcpListener::bind("127.0.0.1:0").await?;
        let plain_port = plain.local_addr()?.port();
        let router = Router::new()
            .route("/v2/track", post(track))
            .with_state(counts.clone());
        tokio::spawn(async move { axum::serve(plain, router).await });

        let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?;
        let ca_file =
            std::env::temp_dir().join(format!("cc-load-ingestion-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&ca_file, generated.cert.pem())?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            generated.signing_key.serialize_der(),
        ));
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(generated.cert.der().to_vec())],
            key,
        )?;
        let front = TcpListener::bind("127.0.0.1:0").await?;
        let front_port = front.local_addr()?.port();
        tokio::spawn(relay(front, TlsAcceptor::from(Arc::new(tls)), plain_port));

        let ManagedIdentity::Endpoint { url, secret } = issuer.app_identity() else {
            anyhow::bail!("the local issuer serves an identity endpoint");
        };
        let settings = vec![
            (
                "APPLICATIONINSIGHTS_CONNECTION_STRING",
                format!(
                    "InstrumentationKey=00000000-0000-4000-8000-00000000100a;\
                     IngestionEndpoint=https://127.0.0.1:{front_port}/"
                ),
            ),
            ("TELEMETRY_CA_FILE", ca_file.display().to_string()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "10000".to_owned()),
            ("AZURE_CREDENTIAL_KIND", "appservice".to_owned()),
            ("IDENTITY_ENDPOINT", url),
            ("IDENTITY_HEADER", secret.expose_secret().to_owned()),
        ];
        // The issuer serves from this runtime for the rest of the run.
        std::mem::forget(issuer);
        Ok(Self {
            settings,
            counts,
            ca_file,
        })
    }

    pub fn received(&self) -> Received {
        Received {
            uploads: self.counts.uploads.load(Ordering::Relaxed),
            items: self.counts.items.load(Ordering::Relaxed),
            refused: self.counts.refused.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Ingestion {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

/// Decrypts each connection and relays it to the plain server.
async fn relay(front: TcpListener, acceptor: TlsAcceptor, backend_port: u16) {
    while let Ok((client, _)) = front.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let (Ok(mut client), Ok(mut backend)) = (
                acceptor.accept(client).await,
                TcpStream::connect(("127.0.0.1", backend_port)).await,
            ) else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
        });
    }
}

async fn track(State(counts): State<Arc<Counts>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let items = async {
        counts.validator.validate_header(authorization).await.ok()?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut text)
            .ok()?;
        serde_json::from_str::<Vec<serde_json::Value>>(&text)
            .ok()
            .map(|items| items.len() as u64)
    };
    match items.await {
        Some(items) => {
            counts.uploads.fetch_add(1, Ordering::Relaxed);
            counts.items.fetch_add(items, Ordering::Relaxed);
            StatusCode::OK
        }
        None => {
            counts.refused.fetch_add(1, Ordering::Relaxed);
            StatusCode::UNAUTHORIZED
        }
    }
}
