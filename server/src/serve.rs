//! The HTTP server loop: accepts TCP connections and serves the router on them (HTTP/1.1, and
//! HTTP/2 with prior knowledge), with what `axum::serve` leaves out:
//!
//! - **A header-read timeout**: a client gets [`HEADER_READ_TIMEOUT`] to send a request's
//!   headers, then the connection is closed (without a timer hyper never enforces one, and a
//!   client trickling a header a byte at a time — slowloris — would hold a connection forever).
//!   Bodies and handlers have their own limits in the router (body size, request timeout).
//! - `TCP_NODELAY` on every accepted socket: an answer written in two pieces (headers, then a
//!   file's body) must not wait for the client's delayed ACK (≈40 ms per static file on a
//!   kept-alive connection).
//! - The client's address as axum's `ConnectInfo<SocketAddr>` (the gate reads it).
//! - Graceful stop: when `shutdown` completes, no new connection is accepted, idle kept-alive
//!   connections are closed, and [`serve`] returns once the requests in flight are answered (the
//!   caller bounds that wait).

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tower::{Service, ServiceExt};

/// How long a client may take to send a request's line and headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes and the requests in flight are done.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut make = router.into_make_service_with_connect_info::<SocketAddr>();
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let Ok(service) = make.call(peer).await;
        let service = service.map_request(|req: axum::http::Request<hyper::body::Incoming>| {
            req.map(axum::body::Body::new)
        });
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(tcp),
                hyper_util::service::TowerToHyperService::new(service),
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
