//! The edge's viewer listeners against floods and slow clients: every connection a viewer
//! opens is bound by the shared listener's limits (`carapace_net::Limits`).
//!
//! No assertion is about how fast something happens: bounds are set to a fraction of a
//! second, each wait for the edge polls for its condition and gives up after [`PATIENCE`].
#![allow(clippy::disallowed_methods)] // a test on the real clock

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use carapace_edge::{Behavior, EdgeConfig, ManualClock, Snapshot};
use carapace_kernel::ca::KeyAlgorithm;
use common::*;
use http::{Method, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Upper bound on any wait for the edge to act.
const PATIENCE: Duration = Duration::from_secs(30);

struct World {
    pki: Pki,
    clock: Arc<ManualClock>,
    origin: Arc<Origin>,
    leaf: Leaf,
}

async fn world() -> World {
    let origin = Origin::start().await;
    origin.route("/page", 200, &[("cache-control", "max-age=60")], "page");
    let pki = Pki::new();
    let leaf = pki.leaf(&["a.test"], KeyAlgorithm::EcPrime256v1);
    World { pki, clock: Arc::new(ManualClock::new()), origin, leaf }
}

/// An edge serving `a.test` under `limits`.
async fn edge(w: &World, limits: carapace_net::Limits, behavior: Behavior) -> (Running, Viewer) {
    let mut a = dist("a", "a.test", &w.origin, &w.leaf);
    a.default_cache_behavior = behavior;
    let config = EdgeConfig { limits, ..config(&w.pki, &w.clock) };
    let edge = start_edge(config, Snapshot::new([a]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &w.pki);
    (edge, viewer)
}

/// Polls `done` until it holds; fails the test after [`PATIENCE`].
async fn wait_until<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let waited = tokio::time::timeout(PATIENCE, async {
        while !done().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "never happened within {PATIENCE:?}: {what}");
}

/// Whether the peer has closed `stream`, waiting at most `wait` for it; fails the test if
/// the edge sends anything instead.
async fn closed_within(stream: &mut (impl AsyncRead + Unpin), wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Err(_) => false,
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(n)) => panic!("the edge answered: {:?}", String::from_utf8_lossy(&buf[..n])),
    }
}

/// The attack: one client parks thousands of HTTP/2 connections with nothing in flight. The
/// edge holds one client to `max_connections_per_ip` (more are closed before the TLS
/// handshake), keeps serving other clients, and closes the parked connections after
/// `idle_timeout_ms`.
#[tokio::test]
async fn an_idle_http2_flood_is_bounded_per_client_and_closed_when_idle() {
    let w = world().await;
    let limits = carapace_net::Limits {
        max_connections_per_ip: 8,
        // Long, so that only the idle timeout can close the parked connections in time.
        header_timeout_ms: 60_000,
        idle_timeout_ms: 300,
        ..EdgeConfig::default_limits()
    };
    let (edge, viewer) = edge(&w, limits, Behavior::Cache).await;

    // The client's share: TLS, the HTTP/2 preface and SETTINGS, then nothing.
    let mut flood = Vec::new();
    for _ in 0..8 {
        flood.push(viewer.h2_from("127.0.0.1", "a.test").await.expect("within the client's share"));
    }
    // Beyond it, every connection from that address is closed at once.
    for i in 0..32 {
        let refused = viewer.tls_from("127.0.0.1", "a.test", &[b"h2"]).await;
        assert!(refused.is_err(), "connection {} beyond max_connections_per_ip got a TLS session", 8 + i);
    }
    // Another viewer is served meanwhile, over HTTP/2 and HTTP/1.1.
    let (mut other, _driver) = viewer.h2_from("127.0.0.2", "a.test").await.expect("another client connects");
    let res = other.send("a.test", Method::GET, "/page", &[], "").await.unwrap();
    assert_eq!((res.status, res.version, res.text().as_str()), (StatusCode::OK, Version::HTTP_2, "page"));

    // Each parked connection loads the page, then sits idle: the edge closes every one.
    for (conn, _) in &mut flood {
        let res = conn.send("a.test", Method::GET, "/page", &[], "").await.unwrap();
        assert_eq!(res.status, StatusCode::OK);
    }
    wait_until("the edge closes every idle HTTP/2 connection", || {
        let all = flood.iter().all(|(_, driver)| driver.is_finished());
        async move { all }
    })
    .await;
    // Their places are free again: the same client connects and is served.
    let viewer_ = viewer.clone();
    wait_until("the client connects again once its connections are closed", move || {
        let viewer = viewer_.clone();
        async move { viewer.h2_from("127.0.0.1", "a.test").await.is_ok() }
    })
    .await;
    drop(other);
    edge.stop().await;
}

/// Slowloris over TLS: a request head dribbled one byte at a time is cut off by
/// `header_timeout_ms` (the bytes that keep coming do not restart it), and an HTTP/2
/// connection that opens no stream after its preface is closed by the same bound.
#[tokio::test]
async fn a_slowloris_is_closed_after_the_header_timeout() {
    let w = world().await;
    let limits =
        carapace_net::Limits { header_timeout_ms: 500, idle_timeout_ms: 60_000, ..EdgeConfig::default_limits() };
    let (edge, viewer) = edge(&w, limits, Behavior::Cache).await;

    let mut tls = viewer.tls("a.test", &[b"http/1.1"]).await.unwrap();
    // About 1.7 KB: at one byte per 20 ms, half a minute to send in full.
    let head = format!("GET /page HTTP/1.1\r\nHost: a.test\r\n{}\r\n", "x-pad: 0123456789abcdef\r\n".repeat(64));
    let mut sent = 0;
    for byte in head.as_bytes() {
        if tls.write_all(std::slice::from_ref(byte)).await.is_err() || tls.flush().await.is_err() {
            break;
        }
        sent += 1;
        // The pause between bytes is spent waiting for the edge to close the connection.
        if closed_within(&mut tls, Duration::from_millis(20)).await {
            break;
        }
    }
    assert!(sent < head.len(), "the whole head was dribbled in without the edge closing the connection");

    let (_, driver) = viewer.h2_from("127.0.0.1", "a.test").await.unwrap();
    wait_until("the edge closes an HTTP/2 connection that opens no stream", || {
        let done = driver.is_finished();
        async move { done }
    })
    .await;
    // Others are still served.
    assert_eq!(viewer.get("a.test", "/page").await.status, StatusCode::OK);
    edge.stop().await;
}

/// Slow read: a viewer asks for a large response and never reads it. Once the socket buffers
/// are full, the edge waits `send_timeout_ms` and drops the connection (seen from here as a
/// reset: writes on the dropped connection fail).
#[tokio::test]
async fn a_viewer_that_never_reads_is_dropped_after_the_send_timeout() {
    let w = world().await;
    // Larger than every buffer between the edge and this client (socket buffers of a few MiB).
    let big = "x".repeat(32 << 20);
    w.origin.route("/big", 200, &[], &big);
    let limits = carapace_net::Limits {
        send_timeout_ms: 300,
        header_timeout_ms: 60_000,
        idle_timeout_ms: 60_000,
        ..EdgeConfig::default_limits()
    };
    let (edge, viewer) = edge(&w, limits, Behavior::DontCache).await;

    let mut tls = viewer.tls("a.test", &[b"http/1.1"]).await.unwrap();
    tls.write_all(b"GET /big HTTP/1.1\r\nHost: a.test\r\n\r\n").await.unwrap();
    tls.flush().await.unwrap();
    // Never read. Empty lines are what a client may send between requests (RFC 9112 §2.2);
    // once the edge has dropped the connection, its kernel answers them with a reset.
    let tls = tokio::sync::Mutex::new(tls);
    let tls = &tls;
    wait_until("the edge drops the connection of a viewer that does not read", move || async move {
        let mut tls = tls.lock().await;
        tls.write_all(b"\r\n").await.is_err() || tls.flush().await.is_err()
    })
    .await;
    assert_eq!(viewer.get("a.test", "/page").await.status, StatusCode::OK);
    edge.stop().await;
}
