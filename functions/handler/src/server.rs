//! The HTTP/1.1 server loop. The Functions host forwards requests over HTTP/1.1, so this serves
//! only that, with hyper configured for thousands of keep-alive connections:
//!
//! - Half-closed connections are allowed, so hyper does not read ahead on a connection while its
//!   request is being handled. Reading ahead there forced a second 8 KiB read buffer per
//!   connection (the first still held the request's headers): double the memory at thousands of
//!   connections, and an allocation and copy per request. A handler also runs to its end when the
//!   caller goes away, so what it does after committing (pushes, cache retirements) still happens.
//! - A connection waiting for a request head is closed after [`IDLE_TIMEOUT`]: hyper's header
//!   read timeout, which starts as soon as a keep-alive connection goes idle. Idle connections
//!   cost one read buffer each, but closing them before the caller's pool lets go of them would
//!   race its next request, so the limit outlasts the callers' idle limits (the Functions host's
//!   .NET client at most 2 minutes, reqwest 90 s).
//! - On shutdown it stops accepting, lets requests in progress finish, then returns.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long a connection may wait for its next request's head, idle time included.
const IDLE_TIMEOUT: Duration = Duration::from_secs(150);

/// Serves `router` on `listener` until `shutdown` completes, then waits for requests in progress.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(IDLE_TIMEOUT);
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    pause_after(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Responses go out in one write; Nagle's algorithm would only delay them.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        // The peer's address reaches handlers as `ConnectInfo`, as with axum's own server.
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(remote));
            router.clone().oneshot(request)
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

/// A failed accept: the peer gave up (go on at once), or the process is out of file
/// descriptors or memory (wait a moment rather than spin).
async fn pause_after(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accept failed; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
