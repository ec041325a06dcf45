//! The listener against hostile and careless clients on loopback: every bound is exercised
//! with a raw socket (or an `h2` client) and must end with an answer or a closed door.
//!
//! No assertion is about how fast something happens: bounds are set to a fraction of a
//! second and each wait for the server is capped at a generous 30 s.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use carapace_net::{Body, BodyTimeout, Limits, Server, Stats};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Upper bound on any wait for the server to act.
const PATIENCE: Duration = Duration::from_secs(30);

fn quick() -> Limits {
    Limits {
        header_timeout_ms: 300,
        body_timeout_ms: 300,
        idle_timeout_ms: 300,
        send_timeout_ms: 300,
        ..Limits::default()
    }
}

async fn handle(request: Request<Body>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let text = |status: StatusCode, body: &'static str| {
        let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *resp.status_mut() = status;
        resp
    };
    match path.as_str() {
        "/panic" => {
            let date = String::from("2015083é");
            let _ = &date[..8];
            unreachable!("slicing inside a character panics")
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            text(StatusCode::OK, "slow\n")
        }
        "/forever" => {
            tokio::time::sleep(Duration::from_secs(3_600)).await;
            text(StatusCode::OK, "never\n")
        }
        "/upload" => match Limited::new(request.into_body(), 1 << 20).collect().await {
            Ok(body) => {
                text(if body.to_bytes().len() == 10 { StatusCode::OK } else { StatusCode::BAD_REQUEST }, "ok\n")
            }
            Err(e) if BodyTimeout::is(e.as_ref()) => text(StatusCode::REQUEST_TIMEOUT, "timeout\n"),
            Err(_) => text(StatusCode::BAD_REQUEST, "bad body\n"),
        },
        _ => text(StatusCode::OK, "ok\n"),
    }
}

struct Running {
    addr: std::net::SocketAddr,
    stats: Arc<Stats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(limits: Limits) -> Running {
    carapace_net::panic::install_hook();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new("test", limits);
    let stats = server.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(
        listener,
        handle,
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(10),
    ));
    Running { addr, stats, stop: Some(stop), task }
}

/// Reads until the server closes; returns what it sent. Fails the test if it never does.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open; got {:?}", String::from_utf8_lossy(&out));
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one response head and a short body (the test handlers answer a few bytes).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(PATIENCE, async {
        while !String::from_utf8_lossy(&out).contains("\r\n\r\n") || !out.ends_with(b"\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before answering: {:?}", String::from_utf8_lossy(&out));
            out.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("no answer");
    String::from_utf8_lossy(&out).into_owned()
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(PATIENCE, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "never happened: {what}");
}

#[tokio::test]
async fn half_sent_headers_and_silent_clients_are_disconnected() {
    let server = start(quick()).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Tar").await.unwrap();
    assert_eq!(read_to_close(&mut silent).await, "");
    assert_eq!(read_to_close(&mut half).await, "");
    assert!(server.stats.closed_by_limit.load(Ordering::Relaxed) >= 2);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_an_answer() {
    let server = start(Limits { header_timeout_ms: 60_000, ..quick() }).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Nothing more is sent: the idle timeout closes it although the header timeout is long.
    assert_eq!(read_to_close(&mut stream).await, "");
}

#[tokio::test]
async fn a_body_that_stalls_gets_a_timeout_answer_and_the_connection_closes() {
    let server = start(Limits { header_timeout_ms: 60_000, ..quick() }).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789").await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A body that does arrive in time is read whole.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789").await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_connection_lives_on() {
    let server = start(Limits { header_timeout_ms: 60_000, idle_timeout_ms: 60_000, ..quick() }).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
    stream.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "same connection after the panic: {answer}");
    assert_eq!(server.stats.panics.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn at_the_connection_limit_new_clients_wait_for_a_free_slot() {
    let limits = Limits { max_connections: 2, header_timeout_ms: 60_000, idle_timeout_ms: 60_000, ..quick() };
    let server = start(limits).await;
    let first = TcpStream::connect(server.addr).await.unwrap();
    let _second = TcpStream::connect(server.addr).await.unwrap();
    wait_until("two connections open", || server.stats.open.load(Ordering::Relaxed) == 2).await;
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    wait_until("the limit is noticed", || server.stats.limit_reached.load(Ordering::Relaxed) > 0).await;
    assert_eq!(server.stats.accepted.load(Ordering::Relaxed), 2, "the third waits in the backlog");
    drop(first);
    assert!(read_response(&mut third).await.starts_with("HTTP/1.1 200"));
}

/// A body that never ends, for a client that never reads.
struct Endless;

impl http_body::Body for Endless {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(&CHUNK)))))
    }
}

#[tokio::test]
async fn a_client_that_does_not_read_is_dropped() {
    carapace_net::panic::install_hook();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new("test", Limits { header_timeout_ms: 60_000, idle_timeout_ms: 60_000, ..quick() });
    let stats = server.stats();
    let handler = |_: Request<Body>| async { Response::new(Endless) };
    tokio::spawn(server.run(listener, handler, std::future::pending(), Duration::from_secs(1)));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    // Never read: the send buffers fill, and the server gives up on the client.
    wait_until("the stuck connection is dropped", || {
        stats.closed_by_limit.load(Ordering::Relaxed) == 1 && stats.open.load(Ordering::Relaxed) == 0
    })
    .await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_stops_accepting() {
    let mut server = start(Limits { header_timeout_ms: 60_000, idle_timeout_ms: 60_000, ..quick() }).await;
    let mut busy = TcpStream::connect(server.addr).await.unwrap();
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    wait_until("both connections open", || server.stats.open.load(Ordering::Relaxed) == 2).await;
    let _ = server.stop.take().unwrap().send(());
    // The idle keep-alive connection is closed at once; the busy one gets its answer.
    assert_eq!(read_to_close(&mut idle).await, "");
    let answer = read_to_close(&mut busy).await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("slow\n"), "{answer}");
    tokio::time::timeout(PATIENCE, server.task).await.expect("run returns after the drain").unwrap();
    assert!(TcpStream::connect(server.addr).await.is_err(), "no longer accepting");
}

/// An `h2` client, its connection driven until the server's SETTINGS are in (a ping round
/// trip: the server sends its SETTINGS first). Returns the sender, the server's stream limit
/// and the task that goes on driving the connection.
async fn h2_client(
    addr: std::net::SocketAddr,
) -> (h2::client::SendRequest<Bytes>, usize, tokio::task::JoinHandle<Result<(), h2::Error>>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, mut conn) = h2::client::handshake(tcp).await.unwrap();
    let mut ping = conn.ping_pong().unwrap();
    tokio::time::timeout(PATIENCE, async {
        let pinged = ping.ping(h2::Ping::opaque());
        tokio::pin!(pinged);
        tokio::select! {
            r = &mut pinged => r.unwrap(),
            r = &mut conn => panic!("connection ended early: {r:?}"),
        }
    })
    .await
    .unwrap();
    let limit = conn.max_concurrent_send_streams();
    (client, limit, tokio::spawn(conn))
}

#[tokio::test]
async fn http2_advertises_the_stream_limit_and_closes_on_rapid_resets() {
    let limits = Limits {
        header_timeout_ms: 60_000,
        idle_timeout_ms: 60_000,
        h2_max_concurrent_streams: 7,
        max_cancelled_requests: 10,
        // So that only the cancellation count can end the connection.
        max_requests_per_connection: u64::MAX,
        ..quick()
    };
    let server = start(limits).await;
    let (mut client, limit, conn) = h2_client(server.addr).await;
    assert_eq!(limit, 7, "SETTINGS_MAX_CONCURRENT_STREAMS");
    let request = || Request::builder().uri(format!("http://{}/forever", server.addr)).body(()).unwrap();
    // Open streams the server starts to handle and reset each, as the rapid-reset attack
    // does, until the server ends the connection.
    let closed = tokio::time::timeout(PATIENCE, async {
        for _ in 0..10_000 {
            client = match client.ready().await {
                Ok(client) => client,
                Err(_) => return true,
            };
            let Ok((_, mut stream)) = client.send_request(request(), true) else { return true };
            tokio::time::sleep(Duration::from_millis(5)).await;
            stream.send_reset(h2::Reason::CANCEL);
            if conn.is_finished() {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(closed, Ok(true), "the server never closed the resetting connection");
    // Other clients are still served.
    let (mut other, _, _conn) = h2_client(server.addr).await;
    let ok = Request::builder().uri(format!("http://{}/ok", server.addr)).body(()).unwrap();
    let (resp, _) = other.send_request(ok, true).unwrap();
    assert_eq!(resp.await.unwrap().status(), StatusCode::OK);
}

/// A connection from `source` (any 127.0.0.0/8 address is loopback on Linux).
async fn connect_from(source: &str, addr: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

#[tokio::test]
async fn one_client_cannot_hold_more_than_its_share_of_connections() {
    let limits = Limits { max_connections_per_ip: 3, header_timeout_ms: 60_000, idle_timeout_ms: 60_000, ..quick() };
    let server = start(limits).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.1", server.addr).await);
    }
    wait_until("three connections open", || server.stats.open.load(Ordering::Relaxed) == 3).await;
    // The kernel completes the TCP handshake; the listener closes the connection unanswered.
    let mut over = connect_from("127.0.0.1", server.addr).await;
    let _ = over.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(read_to_close(&mut over).await, "", "the fourth from one address gets nothing");
    assert_eq!(server.stats.refused_per_ip.load(Ordering::Relaxed), 1);
    // Another client is served as if nothing happened.
    let mut other = connect_from("127.0.0.2", server.addr).await;
    other.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(read_response(&mut other).await.starts_with("HTTP/1.1 200"));
    // A connection that closes gives its place back.
    drop(held.pop());
    wait_until("the closed connection is gone", || server.stats.open.load(Ordering::Relaxed) == 3).await;
    let mut again = connect_from("127.0.0.1", server.addr).await;
    again.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(read_response(&mut again).await.starts_with("HTTP/1.1 200"));
    assert_eq!(server.stats.refused_per_ip.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn more_headers_than_max_headers_get_431() {
    let server = start(Limits { max_headers: 10, header_timeout_ms: 60_000, ..quick() }).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut head = String::from("GET /ok HTTP/1.1\r\nHost: x\r\n");
    for i in 0..20 {
        head.push_str(&format!("x-h{i}: v\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}
