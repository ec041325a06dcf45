//! A hostile viewer against the edge, with real origins: Debian's nginx (what the edge is
//! put in front of) and small Rust origins that record, stall or black-hole. Each test is one
//! attack, and each fails against an edge that copies the viewer's framing, joins raw paths,
//! opens origin sockets without bound, buffers misses, owns a foreign directory or keys on
//! lossy text.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use carapace_edge::{
    Edge, EdgeConfig, EdgeError, Forwarded, ManualClock, Origin as EdgeOrigin, ProtocolPolicy, Snapshot,
};
use carapace_kernel::ca::KeyAlgorithm;
use common::*;
use http::{Method, StatusCode};
use http_body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn leaf_for(pki: &Pki) -> Leaf {
    pki.leaf(&["a.test", "b.test", "c.test"], KeyAlgorithm::EcPrime256v1)
}

fn config(pki: &Pki) -> EdgeConfig {
    common::config(pki, &Arc::new(ManualClock::new()))
}

/// Waits for `probe` to hold, polling, within 10 s.
async fn eventually(what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !probe() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------
// nginx

/// A real nginx serving `root`, logging each request's line and body headers.
struct Nginx {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Nginx {
    fn start(root: &Path) -> Self {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| Path::new(p).exists()).expect(
            "nginx is not installed: the edge's hostile tests need a real origin (Debian nginx-light; scripts/test.sh installs it)",
        );
        let dir = tempfile::tempdir().unwrap();
        // A free port, released for nginx to take.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let d = dir.path().display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nuser root;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 1024; }}\n\
             http {{\n  log_format seen '$request_method $request_uri ct=$http_content_type cl=$http_content_length te=$http_transfer_encoding';\n\
               access_log {d}/access.log seen;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               keepalive_requests 100000;\n  default_type text/plain;\n\
               server {{\n    listen {addr};\n    root {root};\n\
                 location = /evil.js {{ return 200 \"EVIL\"; }}\n    location ~ ^/page- {{ return 200 \"page\"; }}\n  }}\n}}\n",
            root = root.display()
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = std::process::Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Self { addr, dir, child }
    }

    fn url(&self, prefix: &str) -> http::Uri {
        format!("http://{}{prefix}", self.addr).parse().unwrap()
    }

    /// The access log's lines: `METHOD URI ct=… cl=… te=…`.
    fn log(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines().map(str::to_owned).collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_dist(id: &str, name: &str, nginx: &Nginx, prefix: &str, leaf: &Leaf) -> carapace_edge::Distribution {
    carapace_edge::Distribution::new(
        id,
        name,
        EdgeOrigin::new(nginx.url(prefix), ProtocolPolicy::HttpOnly),
        leaf.key.clone(),
    )
}

// ---------------------------------------------------------------------------------------
// raw HTTP/1.1 over TLS

/// One raw HTTP/1.1 response: status, lower-case headers, body (length-delimited or chunked).
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str())
    }
}

async fn read_response<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Option<RawResponse> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut fill = async |buf: &mut Vec<u8>, want: usize| {
        while buf.len() < want {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Some(())
    };
    let mut body = Vec::new();
    let length = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse::<usize>().ok());
    if let Some(length) = length {
        fill(buf, length).await?;
        body.extend(buf.drain(..length));
    } else if headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")) {
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                let have = buf.len();
                fill(buf, have + 1).await?;
            };
            let size = usize::from_str_radix(String::from_utf8_lossy(&buf[..line_end]).trim(), 16).ok()?;
            buf.drain(..line_end + 2);
            fill(buf, size + 2).await?;
            body.extend(buf.drain(..size));
            buf.drain(..2);
            if size == 0 {
                break;
            }
        }
    }
    Some(RawResponse { status, headers, body })
}

/// Sends `bytes` on a new TLS connection for `host` and reads `count` responses (fewer if
/// the edge closes the connection).
async fn raw(viewer: &Viewer, host: &str, bytes: &[u8], count: usize) -> Vec<RawResponse> {
    let mut tls = viewer.tls(host, &[b"http/1.1"]).await.unwrap();
    tls.write_all(bytes).await.unwrap();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for _ in 0..count {
        match read_response(&mut tls, &mut buf).await {
            Some(r) => out.push(r),
            None => break,
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// 1. smuggling through a GET's framing

/// A GET that declares a body is refused before it reaches the origin (CloudFront answers
/// 403), so the declared bytes can never be read by nginx as the start of the next request
/// on a pooled connection. Tried at every body length from 1 to 160 bytes: the smuggled
/// `GET /evil.js` never reaches nginx and `/page-N` is never cached as it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_with_a_body_never_reaches_nginx_and_cannot_poison_the_cache() {
    let pki = Pki::new();
    let leaf = leaf_for(&pki);
    let www = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(www.path());
    let edge = start_edge(config(&pki), Snapshot::new([nginx_dist("a", "a.test", &nginx, "", &leaf)]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &pki);

    let smuggled = b"GET /evil.js HTTP/1.1\r\nHost: a.test\r\nX: ";
    for n in 1..=160usize {
        let mut body = smuggled.to_vec();
        body.resize(n.max(smuggled.len()), b'x');
        body.truncate(n);
        let mut attack = format!("GET /r{n} HTTP/1.1\r\nHost: a.test\r\nContent-Length: {n}\r\n\r\n").into_bytes();
        attack.extend_from_slice(&body);
        attack.extend_from_slice(
            format!("GET /page-{n} HTTP/1.1\r\nHost: a.test\r\nContent-Type: GET /evil.js HTTP/1.0\r\n\r\n").as_bytes(),
        );
        let answers = raw(&viewer, "a.test", &attack, 2).await;
        assert_eq!(answers.first().map(|r| r.status), Some(403), "a GET with a {n}-byte body is refused");
        // Whatever the edge did with the rest of that connection, the page is the page.
        let page = viewer.get("a.test", &format!("/page-{n}")).await;
        assert_eq!(page.text(), "page", "/page-{n} after a {n}-byte body");
    }
    let chunked = raw(
        &viewer,
        "a.test",
        b"GET /r-chunked HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        1,
    )
    .await;
    assert_eq!(chunked.first().map(|r| r.status), Some(403), "a chunked GET is refused too");

    let log = nginx.log();
    assert!(!log.iter().any(|l| l.contains("/evil.js")), "nginx never saw the smuggled request: {log:?}");
    assert!(!log.iter().any(|l| l.contains(" /r")), "no GET with a body reached nginx: {log:?}");
    for line in log.iter().filter(|l| l.starts_with("GET /page-")) {
        assert!(line.ends_with("ct=- cl=- te=-"), "a bodyless origin request carries no body headers: {line}");
    }
    edge.stop().await;
}

/// Uploads are reframed by the edge, never copied: the origin sees a `Content-Length` that
/// matches the bytes it got (the viewer's chunked upload included), and a bodyless request
/// never carries `Content-Type`, `Content-Encoding` or `Content-Length`, even with every
/// viewer header forwarded.
#[tokio::test]
async fn uploads_are_reframed_and_bodyless_requests_carry_no_body_headers() {
    let pki = Pki::new();
    let leaf = leaf_for(&pki);
    let origin = Origin::start().await;
    for path in ["/get", "/post", "/chunked", "/options"] {
        origin.route(path, 200, &[], "ok");
    }
    let mut d = dist("a", "a.test", &origin, &leaf);
    d.cache_behavior_settings.forwarded_headers = Forwarded::All;
    let edge = start_edge(config(&pki), Snapshot::new([d]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &pki);

    let get = raw(
        &viewer,
        "a.test",
        b"GET /get HTTP/1.1\r\nHost: a.test\r\nContent-Type: GET /evil.js HTTP/1.0\r\nContent-Encoding: gzip\r\nX-Kept: 1\r\n\r\n",
        1,
    )
    .await;
    assert_eq!(get[0].status, 200);
    let seen = origin.seen("/get");
    assert_eq!(seen.headers["x-kept"], "1", "forwarded headers still go");
    for name in ["content-type", "content-encoding", "content-length", "transfer-encoding"] {
        assert!(seen.headers.get(name).is_none(), "a GET without a body carries no {name}: {:?}", seen.headers);
    }

    let post =
        viewer.request("a.test", Method::POST, "/post", &[("content-type", "text/plain")], "hello").await.unwrap();
    assert_eq!(post.status, StatusCode::OK);
    let seen = origin.seen("/post");
    assert_eq!((seen.body.as_ref(), seen.headers["content-length"].to_str().unwrap()), (&b"hello"[..], "5"));
    assert_eq!(seen.headers["content-type"], "text/plain", "the body's type travels with it");

    let chunked = raw(
        &viewer,
        "a.test",
        b"POST /chunked HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        1,
    )
    .await;
    assert_eq!(chunked[0].status, 200);
    let seen = origin.seen("/chunked");
    assert_eq!(seen.body.as_ref(), b"abcde");
    let framing = seen.headers.get("content-length").or(seen.headers.get("transfer-encoding"));
    assert!(framing.is_some(), "the edge frames the body it sends");
    edge.stop().await;
}

// ---------------------------------------------------------------------------------------
// 2. path escape

/// Tenant B's distribution pulls from `nginx/siteB`; tenant A's secret is at
/// `nginx/siteA/secret.txt`. Every spelling of `..` stays under `/siteB`, in nginx's log as
/// in what the viewer gets, and a percent-encoded path is the same object as its plain one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_are_normalised_and_never_leave_the_origin_prefix() {
    let pki = Pki::new();
    let leaf = leaf_for(&pki);
    let www = tempfile::tempdir().unwrap();
    for (file, text) in
        [("siteA/secret.txt", "tenant A's secret"), ("siteB/index.html", "B's page"), ("siteB/a b.txt", "spaced")]
    {
        let path = www.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let nginx = Nginx::start(www.path());
    let edge =
        start_edge(config(&pki), Snapshot::new([nginx_dist("b", "b.test", &nginx, "/siteB", &leaf)]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &pki);

    for attack in [
        "/../siteA/secret.txt",
        "/%2e%2e/siteA/secret.txt",
        "/%2E%2E/siteA/secret.txt",
        "/..%2fsiteA/secret.txt",
        "/..%2FsiteA/secret.txt",
        "/x/..//../siteA/secret.txt",
        "/./../.././siteA/secret.txt",
        "/%2e./siteA/secret.txt",
    ] {
        let answer =
            raw(&viewer, "b.test", format!("GET {attack} HTTP/1.1\r\nHost: b.test\r\n\r\n").as_bytes(), 1).await;
        let answer = answer.first().unwrap_or_else(|| panic!("no answer for {attack}"));
        assert!(!String::from_utf8_lossy(&answer.body).contains("secret"), "{attack} leaked tenant A's secret");
    }
    let bad = raw(&viewer, "b.test", b"GET /a%zz HTTP/1.1\r\nHost: b.test\r\n\r\n", 1).await;
    assert_eq!(bad[0].status, 400, "a malformed escape is refused");
    let nul = raw(&viewer, "b.test", b"GET /a%00b HTTP/1.1\r\nHost: b.test\r\n\r\n", 1).await;
    assert_eq!(nul[0].status, 400, "an encoded NUL is refused");
    for backslash in ["/..%5c../siteA/secret.txt", "/..\\../siteA/secret.txt"] {
        let answer =
            raw(&viewer, "b.test", format!("GET {backslash} HTTP/1.1\r\nHost: b.test\r\n\r\n").as_bytes(), 1).await;
        assert_eq!(answer[0].status, 400, "{backslash}: a backslash, a separator to some origins, is refused");
    }

    let page = viewer.get("b.test", "/sub/../index.html").await;
    assert_eq!((page.status, page.text().as_str()), (StatusCode::OK, "B's page"));
    let spaced = viewer.get("b.test", "/a%20b.txt").await;
    assert_eq!(spaced.text(), "spaced");
    let again = viewer.get("b.test", "/a%20%62.txt").await;
    assert_eq!((again.text().as_str(), again.x_cache()), ("spaced", "Hit from carapace"), "one object, one key");

    let log = nginx.log();
    assert!(!log.is_empty());
    for line in &log {
        let uri = line.split(' ').nth(1).unwrap_or("");
        assert!(uri.starts_with("/siteB/"), "nginx was asked for {uri}, outside the origin's prefix");
        assert!(!uri.contains(".."), "{uri}");
    }
    edge.stop().await;
}

// ---------------------------------------------------------------------------------------
// 3. origin connections

/// Connections a black hole has open now.
#[derive(Default)]
struct Held {
    open: AtomicUsize,
}

/// An origin that accepts connections and never answers, counting those open.
async fn black_hole() -> (SocketAddr, Arc<Held>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Held::default());
    let counts = held.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            counts.open.fetch_add(1, Ordering::SeqCst);
            let counts = counts.clone();
            tokio::spawn(async move {
                let mut sink = [0u8; 4096];
                while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
                counts.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, held)
}

/// 60 viewers at once on a distribution whose origin never answers: the edge opens no more
/// than its per-origin bound there, another distribution's origin keeps its connections and
/// its viewers their pages, and the stuck ones get 504 once the response timeout passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_connections_are_bounded_and_a_bad_origin_hurts_no_other_distribution() {
    let pki = Pki::new();
    let leaf = leaf_for(&pki);
    let (hole, held) = black_hole().await;
    let good = Origin::start().await;
    good.route("/ok", 200, &[("cache-control", "no-store")], "fine");
    let mut stuck = carapace_edge::Distribution::new(
        "stuck",
        "a.test",
        EdgeOrigin::new(format!("http://{hole}").parse().unwrap(), ProtocolPolicy::HttpOnly),
        leaf.key.clone(),
    );
    stuck.origin.response_timeout = Duration::from_secs(3);
    let cfg = EdgeConfig { origin_max_connections: 12, origin_max_connections_per_origin: 8, ..config(&pki) };
    let edge = start_edge(cfg, Snapshot::new([stuck, dist("good", "b.test", &good, &leaf)]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &pki);

    let mut waiting = tokio::task::JoinSet::new();
    for i in 0..60 {
        let viewer = viewer.clone();
        waiting.spawn(async move { viewer.get("a.test", &format!("/never/{i}")).await.status });
    }
    eventually("the black hole took its 8 connections", || held.open.load(Ordering::SeqCst) >= 8).await;
    // Until the first response timeout (3 s) nothing closes: every one of the 60 is waiting.
    let steady = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < steady {
        let open = held.open.load(Ordering::SeqCst);
        assert!(open <= 8, "{open} sockets open at once to one origin");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..5 {
        let page = viewer.get("b.test", "/ok").await;
        assert_eq!((page.status, page.text().as_str()), (StatusCode::OK, "fine"), "the other distribution is served");
    }
    assert!(edge.edge.origin_connections() <= 12, "{} origin connections", edge.edge.origin_connections());
    while let Some(status) = waiting.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::GATEWAY_TIMEOUT);
    }
    edge.stop().await;
}

// ---------------------------------------------------------------------------------------
// 4. memory: misses stream

/// A response body fed by the test, chunk by chunk.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// An origin answering each request with a cacheable chunked body the test feeds.
async fn fed_origin() -> (SocketAddr, mpsc::Receiver<mpsc::Sender<Bytes>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (feeds_tx, feeds) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let feeds_tx = feeds_tx.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_req| {
                    let feeds_tx = feeds_tx.clone();
                    async move {
                        let (tx, rx) = mpsc::channel(4);
                        let _ = feeds_tx.send(tx).await;
                        let res = http::Response::builder()
                            .header("cache-control", "max-age=600")
                            .body(ChannelBody(rx))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(res)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    });
    (addr, feeds)
}

/// A cacheable miss reaches its viewer before the origin has finished sending (it streams
/// while it fills the cache), the copies in flight never exceed `fill_bytes` however many
/// viewers hold large misses open without reading, and a completed fill serves the next
/// viewer from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misses_stream_while_filling_and_copies_stay_within_the_fill_budget() {
    let pki = Pki::new();
    let leaf = leaf_for(&pki);
    let (addr, mut feeds) = fed_origin().await;
    let d = carapace_edge::Distribution::new(
        "fed",
        "a.test",
        EdgeOrigin::new(format!("http://{addr}").parse().unwrap(), ProtocolPolicy::HttpOnly),
        leaf.key.clone(),
    );
    let budget = 1 << 20;
    let cfg = EdgeConfig { fill_bytes: budget, ..config(&pki) };
    let edge = start_edge(cfg, Snapshot::new([d]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &pki);
    let chunk = Bytes::from(vec![b'x'; 256 * 1024]);

    // One viewer: the head and the first chunk arrive while the origin still holds the rest.
    let mut tls = viewer.tls("a.test", &[b"http/1.1"]).await.unwrap();
    tls.write_all(b"GET /small HTTP/1.1\r\nHost: a.test\r\n\r\n").await.unwrap();
    let feed = feeds.recv().await.unwrap();
    feed.send(chunk.clone()).await.unwrap();
    let mut got = Vec::new();
    while got.windows(4).position(|w| w == b"\r\n\r\n").is_none_or(|i| got.len() < i + 4 + 1024) {
        let mut buf = [0u8; 16384];
        let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
            .await
            .expect("the miss did not stream: nothing reached the viewer before the origin finished")
            .unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    drop(feed); // the end of the body
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), tls.read_to_end(&mut rest)).await;
    eventually("the completed fill is in the cache", || edge.edge.cache_fill_bytes() == 0).await;
    let hit = viewer.get("a.test", "/small").await;
    assert_eq!((hit.x_cache(), hit.body.len()), ("Hit from carapace", chunk.len()));

    // Eight viewers hold 2 MiB misses open and read nothing: the copies stay within budget.
    let mut held = Vec::new();
    for i in 0..8 {
        let mut tls = viewer.tls("a.test", &[b"http/1.1"]).await.unwrap();
        tls.write_all(format!("GET /big/{i} HTTP/1.1\r\nHost: a.test\r\n\r\n").as_bytes()).await.unwrap();
        let feed = feeds.recv().await.unwrap();
        held.push((tls, feed));
    }
    let mut sends = tokio::task::JoinSet::new();
    for (_, feed) in &held {
        let (feed, chunk) = (feed.clone(), chunk.clone());
        sends.spawn(async move {
            for _ in 0..8 {
                if feed.send(chunk.clone()).await.is_err() {
                    return;
                }
            }
        });
    }
    // The origin can push only as far as the viewers' sockets and the edge's buffers take.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert!(edge.edge.cache_fill_bytes() <= budget, "{} bytes being copied", edge.edge.cache_fill_bytes());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sends.abort_all();
    drop(held);
    eventually("copies are given back when viewers leave", || edge.edge.cache_fill_bytes() == 0).await;
    edge.stop().await;
}

/// An origin that stops sending in the middle of a body is cut off after the origin's
/// response timeout (the wait between two frames, CloudFront's "after receiving the last
/// packet"): the viewer gets what arrived and then the end of its connection, never a
/// response held open forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_stalls_mid_body_is_cut_off_after_its_response_timeout() {
    let pki = Pki::new();
    let leaf = leaf_for(&pki);
    let (addr, mut feeds) = fed_origin().await;
    let mut origin = EdgeOrigin::new(format!("http://{addr}").parse().unwrap(), ProtocolPolicy::HttpOnly);
    origin.response_timeout = Duration::from_secs(1);
    let d = carapace_edge::Distribution::new("stall", "a.test", origin, leaf.key.clone());
    let edge = start_edge(config(&pki), Snapshot::new([d]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &pki);
    let mut tls = viewer.tls("a.test", &[b"http/1.1"]).await.unwrap();
    tls.write_all(b"GET /stalls HTTP/1.1\r\nHost: a.test\r\n\r\n").await.unwrap();
    let feed = feeds.recv().await.unwrap();
    feed.send(Bytes::from_static(b"first part")).await.unwrap();
    // `feed` stays open: the origin neither sends more nor ends the body.
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), tls.read_to_end(&mut got))
        .await
        .expect("a stalled origin body held the viewer's response open")
        .ok();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("first part"), "{text}");
    assert!(!text.ends_with("0\r\n\r\n"), "a cut-off body must not look complete: {text}");
    drop(feed);
    edge.stop().await;
}

// ---------------------------------------------------------------------------------------
// 6. the disk tier's directory

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_dir() {
            out.extend(all_files(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

/// A `cache_dir` that holds someone else's data is refused at start and left as it was; an
/// empty one is adopted, kept private (0700 directories, 0600 files), and a foreign file put
/// in it later survives eviction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_tier_owns_only_what_it_wrote_and_keeps_it_private() {
    let pki = Pki::new();
    let leaf = leaf_for(&pki);
    let shared = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(shared.path().join("projA")).unwrap();
    std::fs::create_dir_all(shared.path().join("projB")).unwrap();
    std::fs::write(shared.path().join("projA/important.dat"), "keep me").unwrap();
    std::fs::write(shared.path().join("projB/draft.tmp"), "and me").unwrap();
    let refused = Edge::new(EdgeConfig { cache_dir: Some(shared.path().to_owned()), ..config(&pki) });
    let Err(EdgeError::CacheDir(e)) = refused else { panic!("a foreign directory was accepted") };
    assert!(e.to_string().contains("not an edge cache directory"), "{e}");
    assert_eq!(std::fs::read_to_string(shared.path().join("projA/important.dat")).unwrap(), "keep me");
    assert_eq!(std::fs::read_to_string(shared.path().join("projB/draft.tmp")).unwrap(), "and me");

    let origin = Origin::start().await;
    for i in 0..6 {
        origin.route(&format!("/o{i}"), 200, &[("cache-control", "max-age=600"), ("set-cookie", "s=1")], "cached body");
    }
    let own = tempfile::tempdir().unwrap();
    let dir = own.path().join("cache");
    let cfg = || EdgeConfig { cache_dir: Some(dir.clone()), cache_dir_bytes: 1_000, ..config(&pki) };
    let edge = start_edge(cfg(), Snapshot::new([dist("a", "a.test", &origin, &leaf)]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &pki);
    viewer.get("a.test", "/o0").await;
    eventually("an entry is on disk", || all_files(&dir).iter().any(|f| f.extension() == Some("entry".as_ref()))).await;
    assert_eq!(mode(&dir), 0o700);
    for file in all_files(&dir) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
        assert_eq!(mode(file.parent().unwrap()), 0o700, "{}", file.display());
    }
    // Someone drops a file of their own into the directory and a subdirectory; the tier's
    // eviction (a 1,000-byte budget, six objects) and a restart leave them alone.
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let entry_dir = all_files(&dir).into_iter().find(|f| f.extension() == Some("entry".as_ref())).unwrap();
    let foreign_inside = entry_dir.parent().unwrap().join("not-an-entry.dat");
    std::fs::write(&foreign_inside, "mine too").unwrap();
    for i in 1..6 {
        viewer.get("a.test", &format!("/o{i}")).await;
    }
    eventually("eviction keeps the budget", || edge.edge.cache_disk_bytes() <= 1_000).await;
    assert!(edge.edge.purge("a"));
    edge.stop().await;
    let edge = start_edge(cfg(), Snapshot::new([dist("a", "a.test", &origin, &leaf)]).unwrap()).await;
    edge.stop().await;
    assert_eq!(std::fs::read_to_string(dir.join("notes.txt")).unwrap(), "mine");
    let purged_dirs: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    assert!(
        foreign_inside.exists() || purged_dirs.iter().all(|p| !p.to_string_lossy().contains("purged")),
        "a purge removes the distribution's directory as a whole, never a file elsewhere"
    );
}

// ---------------------------------------------------------------------------------------
// 7. cache keys are bytes

/// With `Accept-Language` forwarded, two values that differ only in bytes that are not
/// UTF-8 are two cache entries (two origin fetches), not one.
#[tokio::test]
async fn cache_keys_hold_header_bytes_not_lossy_text() {
    let pki = Pki::new();
    let leaf = leaf_for(&pki);
    let origin = Origin::start().await;
    origin.route("/lang", 200, &[("cache-control", "max-age=600")], "varies");
    let mut d = dist("a", "a.test", &origin, &leaf);
    d.cache_behavior_settings.forwarded_headers = Forwarded::AllowList(vec!["accept-language".into()]);
    let edge = start_edge(config(&pki), Snapshot::new([d]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &pki);
    for (value, hits) in [(&b"en-\xff"[..], 1), (b"en-\xfe", 2), (b"en-\xff", 2)] {
        let mut req = b"GET /lang HTTP/1.1\r\nHost: a.test\r\nAccept-Language: ".to_vec();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n\r\n");
        let answer = raw(&viewer, "a.test", &req, 1).await;
        assert_eq!(answer[0].status, 200);
        assert_eq!(origin.hits("/lang"), hits, "after {value:?} ({})", answer[0].header("x-cache"));
    }
    edge.stop().await;
}
