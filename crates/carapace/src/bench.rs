//! `carapace bench`: load generators whose figures go into the README. These are
//! benchmarks, not tests: they print numbers and assert nothing about speed.
//!
//! `bench wire` compares the full protocol stack (SigV4 verification, routing, decoding,
//! model validation, a store read, serialization) against a bare hyper server answering a
//! fixed body, both in their own processes on loopback, driven by the same client: the same
//! signed requests over the same number of keep-alive connections.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Who to sign as.
#[derive(Clone)]
pub struct Signer {
    /// Access key id.
    pub key: String,
    /// Secret access key.
    pub secret: String,
    /// Region in the credential scope.
    pub region: String,
}

/// One awsJson1.1 call to send repeatedly.
#[derive(Clone)]
pub struct Call {
    /// `X-Amz-Target`, e.g. `CertificateManager.DescribeCertificate`.
    pub target: String,
    /// SigV4 service name.
    pub service: &'static str,
    /// JSON body.
    pub body: Bytes,
}

/// Throughput and latency of one run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Requests completed.
    pub requests: u64,
    /// Requests per second.
    pub ops_per_sec: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Responses that were not HTTP 200.
    pub errors: u64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>9.0} ops/s  p50 {:>7.3} ms  p99 {:>7.3} ms  ({} requests, {} errors)",
            self.ops_per_sec,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.requests,
            self.errors
        )
    }
}

/// Signs and builds one request.
pub fn signed_request(addr: &str, signer: &Signer, call: &Call) -> anyhow::Result<http::Request<Full<Bytes>>> {
    let url = format!("http://{addr}/");
    let mut req = http::Request::builder()
        .method("POST")
        .uri(&url)
        .header("host", addr)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", &call.target)
        .body(Full::new(call.body.clone()))?;
    let identity: Identity =
        aws_credential_types::Credentials::new(&signer.key, &signer.secret, None, None, "bench").into();
    // A load generator signs with the real time, as an SDK does.
    #[allow(clippy::disallowed_methods)]
    let now = SystemTime::now();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&signer.region)
        .name(call.service)
        .time(now)
        .settings(SigningSettings::default())
        .build()?
        .into();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
        .collect();
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&call.body),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    instructions.apply_to_request_http1x(&mut req);
    Ok(req)
}

/// Sends one request on a fresh connection and returns status and body (setup calls).
pub async fn call_once(addr: &str, signer: &Signer, call: &Call) -> anyhow::Result<(u16, Bytes)> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let resp = sender.send_request(signed_request(addr, signer, call)?).await?;
    let status = resp.status().as_u16();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

/// Drives `calls` (round-robin) over `connections` keep-alive connections for `duration`
/// after `warmup`, signing every request afresh as an SDK would.
pub async fn load(
    addr: &str,
    signer: &Signer,
    calls: Vec<Call>,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Report> {
    load_spread(&[addr.to_owned()], signer, calls, connections, warmup, duration).await
}

/// [`load`] with the connections spread round-robin over several servers (nodes).
pub async fn load_spread(
    addrs: &[String],
    signer: &Signer,
    calls: Vec<Call>,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Report> {
    let calls = Arc::new(calls);
    let signer = signer.clone();
    let make = move |addr: &str, i: usize| signed_request(addr, &signer, &calls[i % calls.len()]);
    load_with(addrs, make, connections, warmup, duration).await
}

/// Sends the requests `make(addr, i)` builds over `connections` keep-alive connections,
/// spread round-robin over `addrs`, for `duration` after `warmup`.
pub async fn load_with<F>(
    addrs: &[String],
    make: F,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Report>
where
    F: Fn(&str, usize) -> anyhow::Result<http::Request<Full<Bytes>>> + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut tasks = Vec::new();
    for worker in 0..connections {
        let addr = addrs[worker % addrs.len()].clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let connect = || async {
                let stream = TcpStream::connect(&addr).await?;
                stream.set_nodelay(true)?;
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(conn);
                anyhow::Ok(sender)
            };
            let mut sender = connect().await?;
            let mut latencies = Vec::with_capacity(64 * 1024);
            let mut errors = 0u64;
            let mut i = worker;
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                let req = make(&addr, i)?;
                i += 1;
                // The server closes a connection after `http.max_requests_per_connection`
                // requests, as it should: open the next one, as a client pool does.
                if sender.ready().await.is_err() {
                    sender = connect().await?;
                }
                let resp = match sender.send_request(req).await {
                    Ok(resp) => resp,
                    // Closed between `ready` and the write: the request was not served.
                    Err(e) if e.is_canceled() || e.is_closed() || e.is_incomplete_message() => {
                        sender = connect().await?;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let ok = resp.status() == http::StatusCode::OK;
                resp.into_body().collect().await?;
                if began >= start {
                    latencies.push(began.elapsed().as_micros() as u32);
                    errors += u64::from(!ok);
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (lat, err) = task.await??;
        all.extend(lat);
        errors += err;
    }
    all.sort_unstable();
    let pct = |p: f64| {
        let idx = ((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1));
        Duration::from_micros(u64::from(all.get(idx).copied().unwrap_or(0)))
    };
    Ok(Report {
        requests: all.len() as u64,
        ops_per_sec: all.len() as f64 / duration.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        errors,
    })
}

/// Serves a fixed body to every request, reading (and discarding) the request body: the
/// ceiling the full stack is measured against.
pub async fn bare_server(listener: TcpListener, body: Bytes) -> anyhow::Result<()> {
    let builder = Arc::new({
        let mut b = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        b.http1().keep_alive(true);
        b
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let body = body.clone();
                async move {
                    let _ = req.into_body().collect().await;
                    let mut resp = http::Response::new(Full::new(body));
                    resp.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/x-amz-json-1.1"),
                    );
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// A child process printing `... listening on http://ADDR` on stdout.
pub struct Child {
    /// `host:port`.
    pub addr: String,
    child: tokio::process::Child,
}

impl Child {
    /// Spawns `exe args...` and waits for its listening line.
    pub async fn spawn(exe: &PathBuf, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut child = tokio::process::Command::new(exe)
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", exe.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await? {
            if let Some((_, url)) = line.split_once("listening on http://") {
                let addr = url.trim().to_owned();
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                return Ok(Self { addr, child });
            }
        }
        bail!("{} exited before listening", exe.display())
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the child with SIGTERM-like kill and waits.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Reads `(key, secret, account)` from a data directory's admin credentials file.
pub fn admin_credentials(data_dir: &std::path::Path) -> anyhow::Result<(String, String, String)> {
    let text = std::fs::read_to_string(data_dir.join("admin-credentials"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches([' ', '=']).trim().to_owned()))
            .with_context(|| format!("{name} missing"))
    };
    let account = text.split("account ").nth(1).and_then(|s| s.get(..12)).context("account missing")?.to_owned();
    Ok((field("aws_access_key_id")?, field("aws_secret_access_key")?, account))
}

/// Requests a DNS-validated EC certificate for `domain` and answers the DescribeCertificate
/// call for it (what the wire and nodes benchmarks send).
async fn describe_new_certificate(addr: &str, signer: &Signer, domain: &str) -> anyhow::Result<Call> {
    let request = Call {
        target: "CertificateManager.RequestCertificate".into(),
        service: "acm",
        body: Bytes::from(format!(
            r#"{{"DomainName":"{domain}","KeyAlgorithm":"EC_prime256v1","ValidationMethod":"DNS"}}"#
        )),
    };
    let (status, body) = call_once(addr, signer, &request).await?;
    if status != 200 {
        bail!("RequestCertificate failed: {status} {}", String::from_utf8_lossy(&body));
    }
    let arn = serde_json::from_slice::<serde_json::Value>(&body)?["CertificateArn"]
        .as_str()
        .context("no CertificateArn")?
        .to_owned();
    Ok(Call {
        target: "CertificateManager.DescribeCertificate".into(),
        service: "acm",
        body: Bytes::from(format!(r#"{{"CertificateArn":"{arn}"}}"#)),
    })
}

/// `carapace bench wire`: the full stack against a bare hyper server.
///
/// Both servers stay up and are measured in alternating rounds, so a noisy neighbour on a
/// shared machine slows both sides of a round alike; the median round is reported.
pub async fn wire(connections: usize, seconds: u64, rounds: usize) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let warmup = Duration::from_secs(1);
    let duration = Duration::from_secs(seconds);

    let dir = tempfile::tempdir()?;
    let data = dir.path().to_str().context("temp dir path")?;
    // Strict mode (SigV4 verified), but without ACM's per-account rate limits, which would
    // otherwise answer most of this load with ThrottlingException.
    let full = Child::spawn(
        &exe,
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", data],
        &[("CARAPACE_ACM_THROTTLING", "false")],
    )
    .await?;
    let (key, secret, _) = admin_credentials(dir.path())?;
    let signer = Signer { key, secret, region: "us-east-1".into() };
    let describe = describe_new_certificate(&full.addr, &signer, "bench.example.com").await?;
    // The bare server answers with the very bytes the full stack answers, so both put the
    // same response on the wire and only the work behind it differs.
    let (status, answer) = call_once(&full.addr, &signer, &describe).await?;
    if status != 200 {
        bail!("DescribeCertificate failed: {status} {}", String::from_utf8_lossy(&answer));
    }
    let body_file = dir.path().join("bare-body.json");
    std::fs::write(&body_file, &answer)?;
    let body_path = body_file.to_str().context("temp path")?;
    let bare =
        Child::spawn(&exe, &["bench", "bare-server", "--listen", "127.0.0.1:0", "--body-file", body_path], &[]).await?;

    println!("wire benchmark: {connections} keep-alive connections, {rounds} rounds of {seconds} s per server");
    let mut results = Vec::new();
    for round in 1..=rounds.max(1) {
        let bare_report = load(&bare.addr, &signer, vec![describe.clone()], connections, warmup, duration).await?;
        let full_report = load(&full.addr, &signer, vec![describe.clone()], connections, warmup, duration).await?;
        if full_report.errors > 0 {
            bail!("{} of the full-stack requests failed; the figures would be meaningless", full_report.errors);
        }
        let ratio = full_report.ops_per_sec / bare_report.ops_per_sec;
        println!("  round {round}: bare hyper (same bytes)       {bare_report}");
        println!("  round {round}: carapace DescribeCertificate  {full_report}");
        println!("  round {round}: full stack / bare             {:.1}%", 100.0 * ratio);
        results.push((ratio, bare_report, full_report));
    }
    bare.stop().await;
    full.stop().await;
    results.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (ratio, bare_report, full_report) = &results[results.len() / 2];
    println!("median round:");
    println!("  bare hyper (same bytes)              {bare_report}");
    println!("  carapace DescribeCertificate         {full_report}");
    println!("  full stack / bare throughput         {:.1}%", 100.0 * ratio);
    Ok(())
}

/// `carapace bench nodes`: DescribeCertificate on two server processes sharing one
/// PostgreSQL database, with each node's row cache on (invalidated by the change feed) and
/// off, in alternating rounds; the median round of each is reported.
pub async fn nodes(database_url: &str, connections: usize, seconds: u64, rounds: usize) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let (warmup, duration) = (Duration::from_secs(1), Duration::from_secs(seconds));
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let key_file = dirs[0].path().join("master.key");
    let key_file = key_file.to_str().context("temp path")?.to_owned();
    let mut setups: Vec<(&str, Vec<Child>)> = Vec::new();
    for (label, cache_rows) in [("cache on", "10000"), ("cache off", "0")] {
        let mut nodes = Vec::new();
        for (i, dir) in dirs.iter().enumerate() {
            let data = dir.path().to_str().context("temp dir path")?;
            let mut env = vec![
                ("CARAPACE_DATABASE_URL", database_url),
                ("CARAPACE_ACM_THROTTLING", "false"),
                ("CARAPACE_CACHE_ROWS", cache_rows),
            ];
            if i > 0 || !setups.is_empty() {
                env.push(("CARAPACE_MASTER_KEY_FILE", key_file.as_str()));
            }
            nodes.push(Child::spawn(&exe, &["serve", "--listen", "127.0.0.1:0", "--data-dir", data], &env).await?);
        }
        setups.push((label, nodes));
    }
    let (key, secret, _) = admin_credentials(dirs[0].path())?;
    let signer = Signer { key, secret, region: "us-east-1".into() };
    let describe = describe_new_certificate(&setups[0].1[0].addr, &signer, "nodes.example.com").await?;
    println!("nodes benchmark: 2 nodes on one PostgreSQL database, {connections} connections spread over both");
    let mut results: Vec<Vec<Report>> = vec![Vec::new(), Vec::new()];
    for round in 1..=rounds.max(1) {
        for (i, (label, nodes)) in setups.iter().enumerate() {
            let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
            let report = load_spread(&addrs, &signer, vec![describe.clone()], connections, warmup, duration).await?;
            if report.errors > 0 {
                bail!("{} requests failed with the {label}; the figures would be meaningless", report.errors);
            }
            println!("  round {round}: {label:<9} {report}");
            results[i].push(report);
        }
    }
    for (i, (label, nodes)) in setups.into_iter().enumerate() {
        let mut reports = std::mem::take(&mut results[i]);
        reports.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
        println!("median round, {label:<9} {}", reports[reports.len() / 2]);
        for node in nodes {
            node.stop().await;
        }
    }
    Ok(())
}

/// Sends every call exactly once over `connections` keep-alive connections; fails on the
/// first answer that is not HTTP 200.
async fn send_all(addr: &str, signer: &Signer, calls: Vec<Call>, connections: usize) -> anyhow::Result<()> {
    let queue = Arc::new(std::sync::Mutex::new(calls));
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let (addr, signer, queue) = (addr.to_owned(), signer.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&addr).await?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            loop {
                let Some(call) = queue.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.pop() else { break };
                sender.ready().await?;
                let resp = sender.send_request(signed_request(&addr, &signer, &call)?).await?;
                let status = resp.status();
                let body = resp.into_body().collect().await?.to_bytes();
                if status != http::StatusCode::OK {
                    bail!("{} failed: {status} {}", call.target, String::from_utf8_lossy(&body));
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// `carapace bench crl`: unauthenticated `GET /crl/<id>.crl` against a server whose CA has
/// `revoked` revocations, with the CRL signed for every GET (`crl_refresh_secs = 0`, what
/// every GET cost before the CRL was kept) and kept between revocations (the default).
///
/// One server at a time on the same data directory, alternating rounds; the median round
/// of each is reported.
pub async fn crl(connections: usize, seconds: u64, rounds: usize, revoked: usize) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let data = dir.path().to_str().context("temp dir path")?.to_owned();
    let serve = |refresh: &'static str| {
        let exe = exe.clone();
        let data = data.clone();
        async move {
            let args = ["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", data.as_str()];
            Child::spawn(&exe, &args, &[("CARAPACE_CRL_REFRESH_SECS", refresh)]).await
        }
    };
    let server = serve("0").await?;
    let path = revoke_some(&server.addr, revoked).await?;
    server.stop().await;
    let (warmup, duration) = (Duration::from_secs(1), Duration::from_secs(seconds));
    println!(
        "CRL benchmark: {revoked} revocations, {connections} keep-alive connections, {rounds} rounds of {seconds} s"
    );
    let mut signed = Vec::new();
    let mut kept = Vec::new();
    for round in 1..=rounds.max(1) {
        for (refresh, results) in [("0", &mut signed), ("3600", &mut kept)] {
            let server = serve(refresh).await?;
            let get = {
                let path = path.clone();
                move |addr: &str, _: usize| {
                    Ok(http::Request::get(format!("http://{addr}{path}")).header("host", addr).body(Full::default())?)
                }
            };
            let report = load_with(std::slice::from_ref(&server.addr), get, connections, warmup, duration).await?;
            server.stop().await;
            if report.errors > 0 {
                bail!("{} CRL GETs failed", report.errors);
            }
            let label = if refresh == "0" { "signed per GET" } else { "kept" };
            println!("  round {round}: {label:<15} {report}");
            results.push(report);
        }
    }
    for (label, mut results) in
        [("signed per GET (crl_refresh_secs = 0)", signed), ("kept between revocations (default)", kept)]
    {
        results.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
        println!("median {label:<38} {}", results[results.len() / 2]);
    }
    Ok(())
}

/// Issues and revokes `count` exportable certificates through the API (`--dev`); answers
/// the CRL path of their issuer.
async fn revoke_some(addr: &str, count: usize) -> anyhow::Result<String> {
    let signer = Signer { key: "123456789012".into(), secret: "dev".into(), region: "us-east-1".into() };
    let call = |op: &str, body: String| Call {
        target: format!("CertificateManager.{op}"),
        service: "acm",
        body: Bytes::from(body),
    };
    let json = |op: &str, body: String| {
        let call = call(op, body);
        let signer = signer.clone();
        async move {
            let (status, answer) = call_once(addr, &signer, &call).await?;
            if status != 200 {
                bail!("{}: {status} {}", call.target, String::from_utf8_lossy(&answer));
            }
            anyhow::Ok(serde_json::from_slice::<serde_json::Value>(&answer)?)
        }
    };
    let mut arns = Vec::new();
    for i in 0..count.max(1) {
        let body = format!(
            r#"{{"DomainName":"crl{i}.bench.example","KeyAlgorithm":"EC_prime256v1","Options":{{"Export":"ENABLED"}}}}"#
        );
        arns.push(json("RequestCertificate", body).await?["CertificateArn"].as_str().context("no ARN")?.to_owned());
    }
    let mut issuer = None;
    for arn in &arns {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let described = json("DescribeCertificate", format!(r#"{{"CertificateArn":"{arn}"}}"#)).await?;
            if described["Certificate"]["Status"] == "ISSUED" {
                break;
            }
            if Instant::now() > deadline {
                bail!("{arn} was not issued");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let got = json("GetCertificate", format!(r#"{{"CertificateArn":"{arn}"}}"#)).await?;
        let pem = got["Certificate"].as_str().context("no certificate")?;
        let parsed = carapace_kernel::ca::parse_certificate(pem)?;
        issuer = parsed.authority_key_id.map(hex::encode);
        // "passphrase", base64.
        json("ExportCertificate", format!(r#"{{"CertificateArn":"{arn}","Passphrase":"cGFzc3BocmFzZQ=="}}"#)).await?;
        json("RevokeCertificate", format!(r#"{{"CertificateArn":"{arn}","RevocationReason":"KEY_COMPROMISE"}}"#))
            .await?;
    }
    Ok(format!("/crl/{}.crl", issuer.context("no authority key identifier")?))
}

/// `carapace bench lightsail`: GetDistributions and GetCertificates throughput and latency
/// with `distributions` distributions and `certificates` certificates stored in one account.
///
/// The server runs in `--dev` with auto-approval an hour away, so the certificates stay
/// pending: storing 10,000 needs no key generation and no validation lookups, and the reads
/// measured are the same either way.
pub async fn lightsail(
    distributions: usize,
    certificates: usize,
    connections: usize,
    seconds: u64,
    rounds: usize,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().to_str().context("temp dir path")?;
    let server = Child::spawn(
        &exe,
        &["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", data],
        &[
            ("CARAPACE_LIGHTSAIL_ORIGINS", "web=http://127.0.0.1:9"),
            ("CARAPACE_ACM_DEV_AUTO_APPROVE_MS", "3600000"),
            ("CARAPACE_ACM_CERTIFICATES_PER_ACCOUNT", "1000000"),
            ("CARAPACE_ACM_CERTIFICATES_PER_YEAR", "1000000"),
        ],
    )
    .await?;
    let signer = Signer { key: "123456789012".into(), secret: "bench-secret".into(), region: "us-east-1".into() };
    let call = |op: &str, body: String| Call {
        target: format!("Lightsail_20161128.{op}"),
        service: "lightsail",
        body: Bytes::from(body),
    };
    let began = Instant::now();
    let creates = (0..certificates)
        .map(|i| {
            call("CreateCertificate", format!(r#"{{"certificateName":"cert-{i}","domainName":"c{i}.bench.example.com"}}"#))
        })
        .chain((0..distributions).map(|i| {
            call(
                "CreateDistribution",
                format!(
                    r#"{{"distributionName":"dist-{i}","origin":{{"name":"web","regionName":"us-east-1"}},"defaultCacheBehavior":{{"behavior":"cache"}},"bundleId":"small_1_0"}}"#
                ),
            )
        }))
        .collect();
    send_all(&server.addr, &signer, creates, connections).await?;
    println!(
        "lightsail benchmark: {distributions} distributions and {certificates} certificates stored in {:.1} s; \
         {connections} keep-alive connections, {rounds} rounds of {seconds} s per call (median round shown)",
        began.elapsed().as_secs_f64()
    );
    let calls = [
        ("GetDistributions (first page of 100)", call("GetDistributions", "{}".into())),
        (
            "GetDistributions (one by name)",
            call("GetDistributions", format!(r#"{{"distributionName":"dist-{}"}}"#, distributions / 2)),
        ),
        ("GetCertificates (first page of 100, summaries)", call("GetCertificates", "{}".into())),
        (
            "GetCertificates (first page of 100, details)",
            call("GetCertificates", r#"{"includeCertificateDetails":true}"#.into()),
        ),
        (
            "GetCertificates (one by name, detail)",
            call("GetCertificates", format!(r#"{{"certificateName":"cert-{}"}}"#, certificates / 2)),
        ),
    ];
    for (label, c) in calls {
        let mut reports = Vec::new();
        for _ in 0..rounds.max(1) {
            let report = load(
                &server.addr,
                &signer,
                vec![c.clone()],
                connections,
                Duration::from_secs(1),
                Duration::from_secs(seconds),
            )
            .await?;
            if report.errors > 0 {
                bail!("{label}: {} requests failed", report.errors);
            }
            reports.push(report);
        }
        reports.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
        println!("  {label:<48} {}", reports[reports.len() / 2]);
    }
    server.stop().await;
    Ok(())
}
