//! A TLS front for a plain-HTTP local server: a self-signed certificate for 127.0.0.1 and a
//! loopback listener that relays every decrypted connection (HTTP and WebSocket alike) to the
//! backend. Microsoft's SDKs send bearer tokens over HTTPS only, as Azure's endpoints are.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

pub struct TlsFront {
    pub port: u16,
    /// The certificate, PEM, for clients to trust (`NODE_EXTRA_CA_CERTS`).
    pub certificate_file: PathBuf,
}

pub async fn tls_front(backend_port: u16) -> TlsFront {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("a self-signed certificate");
    let certificate_file =
        std::env::temp_dir().join(format!("cc-tls-front-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&certificate_file, generated.cert.pem()).expect("write the certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(generated.cert.der().to_vec())],
        key,
    )
    .expect("a TLS server configuration");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
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
    });
    TlsFront {
        port,
        certificate_file,
    }
}
