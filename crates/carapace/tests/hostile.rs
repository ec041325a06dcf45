//! Hostile traffic against the real binary: every case gets an AWS-shaped answer,
//! a bound or a closed door, and `/health` still answers afterwards.
//!
//! Requests are raw HTTP (hyper's client, or bytes on a socket) so that nothing a real SDK
//! would refuse to send is out of reach. In `--dev` any well-formed signature is accepted,
//! so the `Authorization` headers below carry a dummy signature. No assertion is about how
//! fast something happens; waits for the server are capped at a generous [`PATIENCE`].

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Server;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PATIENCE: Duration = Duration::from_secs(30);

fn addr(server: &Server) -> String {
    server.endpoint.trim_start_matches("http://").to_owned()
}

/// `Authorization` for `account` (the access key id) and `region`, well-formed for `--dev`.
fn authorization(account: &str, region: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={account}/20150830/{region}/{service}/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=0000"
    )
}

/// An awsJson1.1 ACM call, with `tweak` to break its headers.
fn acm_request(
    addr: &str,
    operation: &str,
    body: impl Into<Bytes>,
    tweak: impl FnOnce(&mut http::HeaderMap),
) -> http::Request<Full<Bytes>> {
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/"))
        .header("host", addr)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("CertificateManager.{operation}"))
        .header("x-amz-date", "20150830T123600Z")
        .header("authorization", authorization("123456789012", "us-east-1", "acm"))
        .body(Full::new(body.into()))
        .unwrap();
    tweak(req.headers_mut());
    req
}

fn header(value: &str) -> http::HeaderValue {
    http::HeaderValue::from_bytes(value.as_bytes()).unwrap()
}

/// Sends one request on its own connection: (status, body).
async fn send_raw(addr: &str, req: http::Request<Full<Bytes>>) -> (u16, Bytes) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let resp = tokio::time::timeout(PATIENCE, sender.send_request(req)).await.expect("an answer").expect("a response");
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

/// Sends one request on its own connection: (status, body as JSON or text).
async fn send(addr: &str, req: http::Request<Full<Bytes>>) -> (u16, serde_json::Value) {
    let (status, body) = send_raw(addr, req).await;
    let json = serde_json::from_slice(&body).unwrap_or_else(|_| String::from_utf8_lossy(&body).into());
    (status, json)
}

/// `GET /health` answers 200 (within [`PATIENCE`]).
async fn healthy(addr: &str) {
    let req = http::Request::get(format!("http://{addr}/health")).header("host", addr).body(Full::default()).unwrap();
    let (status, body) = send(addr, req).await;
    assert_eq!((status, &body["status"]), (200, &serde_json::json!("ok")), "/health: {body}");
}

/// Reads until the server closes the connection; fails the test if it never does.
async fn closed_by_server(stream: &mut TcpStream) {
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
}

/// Lets this test process hold as many sockets as the attack needs.
fn raise_own_fd_limit() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}

/// Half-sent headers and idle connections are closed on their timeouts and bounded in
/// number; unbounded, 1,100 of them exhaust the process's descriptors and `/health` stops
/// answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_bounded_and_health_still_answers() {
    raise_own_fd_limit();
    // One address opens every connection here: the per-client limit is lifted so that the
    // listener-wide limit and the descriptors are what is under test.
    let server = Server::start(
        &["--dev"],
        &[
            ("CARAPACE_HTTP_HEADER_TIMEOUT_MS", "1000"),
            ("CARAPACE_HTTP_MAX_CONNECTIONS", "1000"),
            ("CARAPACE_HTTP_MAX_CONNECTIONS_PER_IP", "2000"),
        ],
    );
    let addr = addr(&server);
    let mut half = Vec::new();
    for _ in 0..100 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Targ").await.unwrap();
        half.push(stream);
    }
    let mut idle = Vec::new();
    for _ in 0..1_100 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    healthy(&addr).await;
    for stream in half.iter_mut().chain(idle.iter_mut().take(50)) {
        closed_by_server(stream).await;
    }
    // The limit was hit, said so, and counted.
    let metrics = metrics_text(&addr).await;
    assert!(metrics.contains(r#"carapace_connection_limit_reached{listener="api"}"#), "{metrics}");
    assert!(!metrics.contains(r#"carapace_connections_closed_by_limit{listener="api"} 0"#), "{metrics}");
}

async fn metrics_text(addr: &str) -> String {
    let req = http::Request::get(format!("http://{addr}/metrics")).header("host", addr).body(Full::default()).unwrap();
    let (status, body) = send(addr, req).await;
    assert_eq!(status, 200);
    body.as_str().unwrap_or_default().to_owned()
}

/// A multi-byte character in `X-Amz-Date` (which would panic a parser slicing the `str`)
/// is a 400 IncompleteSignatureException, header or presigned query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multibyte_dates_get_aws_answers() {
    let server = Server::dev();
    let addr = addr(&server);
    let date = header("20150830T1é000Z");
    let req = acm_request(&addr, "ListCertificates", "{}", |h| {
        h.insert("x-amz-date", date);
    });
    let (status, body) = send(&addr, req).await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("IncompleteSignatureException")), "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("Date must be in ISO-8601 'basic format'."), "{body}");
    let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=123456789012%2F20150830%2Fus-east-1%2Facm%2Faws4_request\
                 &X-Amz-Date=20150830T1%C3%A9000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
    let req = http::Request::post(format!("http://{addr}/?{query}"))
        .header("host", &addr)
        .header("x-amz-target", "CertificateManager.ListCertificates")
        .header("content-type", "application/x-amz-json-1.1")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let (status, body) = send(&addr, req).await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("IncompleteSignatureException")), "{body}");
    healthy(&addr).await;
}

/// Regions outside the table are refused: accepting any region would mint ARNs the server
/// itself refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_regions_are_refused_as_aws_refuses_them() {
    let server = Server::start(&["--dev"], &[("CARAPACE_EXTRA_REGIONS", r#"["local-1"]"#)]);
    let addr = addr(&server);
    let long = "x".repeat(2_000);
    for region in ["not-a-region", "us-east-1:999999999999", long.as_str()] {
        let auth = authorization("123456789012", region, "acm");
        let req = acm_request(&addr, "ListCertificates", "{}", |h| {
            h.insert("authorization", header(&auth));
        });
        let (status, body) = send(&addr, req).await;
        assert_eq!((status, body["__type"].as_str()), (403, Some("InvalidSignatureException")), "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.starts_with("Credential should be scoped to a valid region, not '"), "{message}");
        assert!(message.len() < 400, "{} bytes", message.len());
    }
    for region in ["eu-west-3", "local-1"] {
        let auth = authorization("123456789012", region, "acm");
        let req = acm_request(&addr, "ListCertificates", "{}", |h| {
            h.insert("authorization", header(&auth));
        });
        assert_eq!(send(&addr, req).await.0, 200, "{region}");
    }
    healthy(&addr).await;
}

/// A 4 MiB `DomainName` is not echoed whole in the validation message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_values_are_not_echoed_whole() {
    let server = Server::dev();
    let addr = addr(&server);
    // As large as the default 4 MiB body limit allows beside the JSON framing.
    let huge = "a".repeat((4 << 20) - 64);
    let body = serde_json::to_vec(&serde_json::json!({"DomainName": huge})).unwrap();
    let (status, answer) = send(&addr, acm_request(&addr, "RequestCertificate", body, |_| {})).await;
    check_cut(status, &answer);
    healthy(&addr).await;
}

fn check_cut(status: u16, answer: &serde_json::Value) {
    assert_eq!((status, answer["__type"].as_str()), (400, Some("ValidationException")));
    let message = answer["message"].as_str().unwrap();
    assert!(message.len() < 4_096, "{} bytes", message.len());
    assert!(message.starts_with(&format!("2 validation errors detected: Value '{}...'", "a".repeat(256))), "{message}");
}

/// A CBOR error is a plain message for the client, never Rust debug text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cbor_gets_a_plain_message() {
    let server = Server::dev();
    let addr = addr(&server);
    for body in [&[0xa1u8][..], &[0xff, 0x00], &[0x1c]] {
        let req = http::Request::post(format!(
            "http://{addr}/service/DirectoryService_20150416/operation/DescribeDirectories"
        ))
        .header("host", &addr)
        .header("smithy-protocol", "rpc-v2-cbor")
        .header("content-type", "application/cbor")
        .header("x-amz-date", "20150830T123600Z")
        .header("authorization", authorization("123456789012", "us-east-1", "ds"))
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
        let stream = TcpStream::connect(&addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 400);
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let doc: ciborium::Value = ciborium::de::from_reader(&bytes[..]).unwrap();
        let text = format!("{doc:?}");
        assert!(
            text.contains("SerializationException") && text.contains("Could not parse request body as CBOR"),
            "{text}"
        );
        assert!(!text.contains("Semantic") && !text.contains("Syntax("), "{text}");
    }
    healthy(&addr).await;
}

/// Throttle buckets and per-account state must not grow without bound on
/// caller-chosen keys: 100,000 distinct accounts (`--dev`, where the access key id is the
/// account) leave the server's memory where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_accounts_leave_memory_bounded() {
    let server = Server::start(&["--dev"], &[("CARAPACE_HTTP_MAX_REQUESTS_PER_CONNECTION", "1000000")]);
    let addr = addr(&server);
    const CONNECTIONS: u64 = 4;
    let run = |from: u64, to: u64| {
        let addr = addr.clone();
        async move {
            let mut tasks = Vec::new();
            for c in 0..CONNECTIONS {
                let addr = addr.clone();
                tasks.push(tokio::spawn(async move {
                    let stream = TcpStream::connect(&addr).await.unwrap();
                    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
                    tokio::spawn(conn);
                    for account in (from + c..to).step_by(CONNECTIONS as usize) {
                        let auth = authorization(&format!("{account:012}"), "us-east-1", "acm");
                        let req = acm_request(&addr, "ListCertificates", "{}", |h| {
                            h.insert("authorization", header(&auth));
                        });
                        sender.ready().await.unwrap();
                        let resp = sender.send_request(req).await.unwrap();
                        assert_eq!(resp.status(), 200);
                        resp.into_body().collect().await.unwrap();
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        }
    };
    run(0, 10_000).await;
    let before = rss_kib(server.pid());
    run(10_000, 100_000).await;
    let after = rss_kib(server.pid());
    // 90,000 more accounts: a table keyed by account would hold ~90,000 entries here.
    assert!(after < before + 32 * 1024, "RSS grew from {before} KiB to {after} KiB");
    healthy(&addr).await;
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The binary started by hand (for a data directory that does not exist yet, or to read its
/// log): the child, its `host:port`, and its stderr lines as they come.
fn spawn(
    data: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_carapace"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("CARAPACE_ACM_APPROVAL_LISTEN", "127.0.0.1:0")
        .env("CARAPACE_EDGE_HTTPS_LISTEN", "127.0.0.1:0")
        .env("CARAPACE_EDGE_HTTP_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let endpoint =
        lines.find_map(|l| l.ok()?.strip_prefix("carapace listening on http://").map(str::to_owned)).unwrap();
    std::thread::spawn(move || for _ in lines {});
    (child, endpoint, rx)
}

/// The data directory is created 0700 and every file in it 0600 (SQLite's
/// `-wal` and `-shm` included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let (mut child, endpoint, _) = spawn(&data, &[]);
    let req = acm_request(&endpoint, "ListCertificates", "{}", |_| {});
    assert_eq!(send(&endpoint, req).await.0, 403, "unsigned for this server's keys");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(mode(&data), 0o700);
    for expected in
        ["carapace.db", "carapace.db-wal", "carapace.db-shm", "master.key", "ca-root.pem", "admin-credentials"]
    {
        assert!(names.iter().any(|n| n == expected), "{expected} not in {names:?}");
    }
}

/// A 501 (an operation not built yet) is the caller's to expect: logged at INFO,
/// not ERROR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_implemented_is_not_logged_as_an_error() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, endpoint, log) = spawn(
        &data.path().join("d"),
        &[("RUST_LOG", "info"), ("CARAPACE_LOG_FORMAT", "json"), ("CARAPACE_DEV", "true")],
    );
    let req = http::Request::post(format!("http://{endpoint}/"))
        .header("host", &endpoint)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Lightsail_20161128.CreateInstances")
        .header("x-amz-date", "20150830T123600Z")
        .header("authorization", authorization("123456789012", "us-east-1", "lightsail"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let (status, body) = send(&endpoint, req).await;
    assert_eq!((status, body["__type"].as_str()), (501, Some("NotImplementedException")), "{body}");
    healthy(&endpoint).await;
    let _ = child.kill();
    let _ = child.wait();
    let lines: Vec<serde_json::Value> = log.try_iter().filter_map(|l| serde_json::from_str(&l).ok()).collect();
    let logged =
        lines.iter().find(|l| l["fields"]["status"] == 501).unwrap_or_else(|| panic!("no log line: {lines:?}"));
    assert_eq!(logged["level"], "INFO", "{logged}");
}

/// Unauthenticated CRL GETs cost no signatures: the same signed CRL is served until a
/// revocation, which is listed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crl_is_signed_once_per_revocation_not_per_get() {
    use aws_sdk_acm::types::{CertificateExport, CertificateOptions, CertificateStatus, RevocationReason};
    let server = Server::dev();
    let addr = addr(&server);
    let acm = server.acm("123456789012").await;
    // Only exportable certificates can be revoked, as on ACM.
    let exportable = CertificateOptions::builder().export(CertificateExport::Enabled).build();
    let request = acm.request_certificate().domain_name("crl.example.com").options(exportable);
    let arn = request.send().await.unwrap().certificate_arn.unwrap();
    let issued = tokio::time::timeout(PATIENCE, async {
        loop {
            let c = acm.describe_certificate().certificate_arn(&arn).send().await.unwrap().certificate.unwrap();
            if c.status() == Some(&CertificateStatus::Issued) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    issued.await.expect("issued");
    let pem = acm.get_certificate().certificate_arn(&arn).send().await.unwrap().certificate.unwrap();
    let leaf = carapace_kernel::ca::parse_certificate(&pem).unwrap();
    let issuer = hex::encode(leaf.authority_key_id.unwrap());
    let get_crl = || {
        let addr = addr.clone();
        let issuer = issuer.clone();
        async move {
            let req = http::Request::get(format!("http://{addr}/crl/{issuer}.crl"))
                .header("host", &addr)
                .body(Full::<Bytes>::default())
                .unwrap();
            let (status, der) = send_raw(&addr, req).await;
            assert_eq!(status, 200);
            der
        }
    };
    let first = get_crl().await;
    // A CRL signed later has a later number and thisUpdate: equal bytes mean no new signature.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(get_crl().await, first, "a second GET signed a new CRL");
    let passphrase = aws_sdk_acm::primitives::Blob::new("passphrase");
    acm.export_certificate().certificate_arn(&arn).passphrase(passphrase).send().await.unwrap();
    acm.revoke_certificate()
        .certificate_arn(&arn)
        .revocation_reason(RevocationReason::KeyCompromise)
        .send()
        .await
        .unwrap();
    let after = get_crl().await;
    assert_ne!(after, first, "the revocation is listed at once");
    assert!(after.len() > first.len(), "the revoked serial is in the new CRL");
}
