//! Accept loops, TLS handshakes and hyper connection settings, with the bounds of [`Limits`].
//!
//! Kept small and apart from request handling: when the shared listener (`crates/net`) lands,
//! this module is what it replaces; everything else sees only `proxy::handle`.

use std::future::Future;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::LazyConfigAcceptor;

use crate::proxy::{self, ConnInfo};
use crate::tls::TlsPolicy;
use crate::{Edge, EdgeError, Limits};

/// The sockets an edge serves, bound by the owner (port 0 picks a free port; read the bound
/// address from the listener before handing it over).
#[derive(Debug)]
pub struct Listeners {
    /// Viewer HTTPS.
    pub https: TcpListener,
    /// Viewer HTTP, answered with a 301 to HTTPS. `None` serves no HTTP.
    pub http: Option<TcpListener>,
}

fn builder(limits: &Limits, h2: bool) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_header_list_size(limits.h2_max_header_list_size)
        .max_pending_accept_reset_streams(limits.h2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(limits.h2_max_local_error_reset_streams);
    if h2 { builder.http2_only() } else { builder.http1_only() }
}

pub(crate) async fn serve(
    edge: Edge,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), EdgeError> {
    let limits = edge.inner.config.limits.clone();
    let https_port = listeners.https.local_addr()?.port();
    let (stop_tx, stop_rx) = watch::channel(false);
    let max = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let permits = Arc::new(Semaphore::new(max as usize));
    let h1 = Arc::new(builder(&limits, false));
    let h2 = Arc::new(builder(&limits, true));

    let mut tasks = tokio::task::JoinSet::new();
    {
        let (edge, permits, h1, h2, stop) = (edge.clone(), permits.clone(), h1.clone(), h2.clone(), stop_rx.clone());
        tasks.spawn(async move {
            accept_loop(&listeners.https, &permits, stop.clone(), |tcp, peer, permit| {
                let (edge, h1, h2, stop) = (edge.clone(), h1.clone(), h2.clone(), stop.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    https_connection(edge, &h1, &h2, tcp, peer, stop).await;
                });
            })
            .await;
        });
    }
    if let Some(http) = listeners.http {
        let (edge, permits, h1, stop) = (edge.clone(), permits.clone(), h1.clone(), stop_rx.clone());
        tasks.spawn(async move {
            accept_loop(&http, &permits, stop.clone(), |tcp, _peer, permit| {
                let (edge, h1, stop) = (edge.clone(), h1.clone(), stop.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let service = service_fn(move |req| proxy::redirect(edge.clone(), https_port, req));
                    let conn = h1.serve_connection(TokioIo::new(tcp), service);
                    let _ = drive(conn, stop).await;
                });
            })
            .await;
        });
    }

    shutdown.await;
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    // Every open connection holds a permit: all permits back means all connections closed.
    if tokio::time::timeout(limits.drain_timeout, permits.acquire_many(max)).await.is_err() {
        tracing::info!("edge drain timed out; closing remaining connections");
    }
    Ok(())
}

/// Runs a connection to its end; on shutdown, lets in-flight requests finish (HTTP/1.1 closes
/// after the current response, HTTP/2 sends GOAWAY).
async fn drive<I, S, B>(
    conn: auto::Connection<'_, I, S, TokioExecutor>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: hyper::service::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => res,
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

async fn accept_loop(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    mut on_conn: impl FnMut(TcpStream, std::net::SocketAddr, tokio::sync::OwnedSemaphorePermit),
) {
    loop {
        // Wait for a free connection slot before accepting: excess clients queue in the
        // kernel's backlog instead of costing memory here.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => return },
            _ = stopped(&mut stop) => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stop) => return,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                on_conn(tcp, peer, permit);
            }
            Err(e) => {
                // EMFILE and friends: back off briefly rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn https_connection(
    edge: Edge,
    h1: &auto::Builder<TokioExecutor>,
    h2: &auto::Builder<TokioExecutor>,
    tcp: TcpStream,
    peer: std::net::SocketAddr,
    stop: watch::Receiver<bool>,
) {
    let limits = &edge.inner.config.limits;
    // Read the ClientHello first: the SNI name picks the distribution, whose security policy
    // picks the rustls configuration (protocol versions and cipher suites).
    let handshake = async {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
        let sni = start.client_hello().server_name().map(str::to_owned);
        let policy = sni
            .as_deref()
            .and_then(|name| edge.inner.live.load().snapshot.find(name).map(|d| d.viewer_minimum_tls_protocol_version))
            .unwrap_or(TlsPolicy::Tls12_2021);
        let stream = start.into_stream(edge.inner.tls.get(policy)).await?;
        Ok::<_, std::io::Error>((stream, sni))
    };
    let (stream, sni) = match tokio::time::timeout(limits.tls_handshake_timeout, handshake).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let is_h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let info = Arc::new(ConnInfo { peer, sni });
    let service = service_fn(move |req| proxy::handle(edge.clone(), info.clone(), req));
    let builder = if is_h2 { h2 } else { h1 };
    if let Err(e) = drive(builder.serve_connection(TokioIo::new(stream), service), stop).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Completes once shutdown has been signalled (at once if it already was).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
