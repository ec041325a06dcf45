//! Starts the real `carapace` binary on a free loopback port and builds aws-sdk-rust
//! clients for it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running server with its own data directory; killed and cleaned up on drop.
pub struct Server {
    pub endpoint: String,
    /// The edge's (HTTPS, HTTP) `host:port`, when it runs.
    pub edge: Option<(String, String)>,
    pub data_dir: tempfile::TempDir,
    child: Child,
}

impl Server {
    /// `carapace serve --dev` on a free port.
    pub fn dev() -> Self {
        Self::start(&["--dev"], &[])
    }

    /// `carapace serve` (SigV4 enforced) on a free port.
    pub fn strict() -> Self {
        Self::start(&[], &[])
    }

    /// Starts with extra arguments and environment variables.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        // A data directory others can read is warned about at start; keep test logs quiet.
        let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700);
        std::fs::set_permissions(data_dir.path(), private).expect("chmod 700");
        Self::start_in(data_dir, args, env)
    }

    /// Starts on an existing data directory (restart tests).
    pub fn start_in(data_dir: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(&["serve", "--listen", "127.0.0.1:0"], data_dir, args, env)
    }

    /// `carapace serve` (SigV4 enforced) with these variables, on a new data directory or
    /// an existing one (restart tests).
    pub fn strict_in(data_dir: Option<tempfile::TempDir>, env: &[(&'static str, String)]) -> Self {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        match data_dir {
            Some(dir) => Self::start_in(dir, &[], &env),
            None => Self::start(&[], &env),
        }
    }

    /// An ACM client signed with the admin credentials (strict servers).
    pub async fn admin_acm(&self) -> aws_sdk_acm::Client {
        let (key, secret, _) = self.admin_credentials();
        aws_sdk_acm::Client::new(&self.sdk_config(&key, &secret, "us-east-1").await)
    }

    /// `carapace edge` (an edge alone) on free ports; `endpoint` is its admin port
    /// (`/health`, `/metrics`).
    pub fn edge_only(args: &[&str], env: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700);
        std::fs::set_permissions(data_dir.path(), private).expect("chmod 700");
        Self::spawn(&["edge"], data_dir, args, env)
    }

    fn spawn(command: &[&str], data_dir: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Self {
        let edge_only = command[0] == "edge";
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_carapace"));
        cmd.args(command).arg("--data-dir").arg(data_dir.path());
        cmd.args(args);
        cmd.env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()));
        // Several servers run at once: give each its own free approval-page port.
        cmd.env("CARAPACE_ACM_APPROVAL_LISTEN", "127.0.0.1:0");
        cmd.env("CARAPACE_EDGE_HTTPS_LISTEN", "127.0.0.1:0");
        cmd.env("CARAPACE_EDGE_HTTP_LISTEN", "127.0.0.1:0");
        cmd.env("CARAPACE_EDGE_ADMIN_LISTEN", "127.0.0.1:0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn carapace");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut edge = None;
        let mut admin = String::new();
        let endpoint = loop {
            let line = lines.next().expect("carapace exited before listening").expect("read stdout");
            if let Some(rest) = line.strip_prefix("carapace edge admin on ") {
                admin = rest.trim().to_owned();
            }
            if let Some(rest) = line.strip_prefix("carapace edge on https://") {
                edge = rest.split_once(" and http://").map(|(s, h)| (s.to_owned(), h.trim().to_owned()));
                if edge_only {
                    break std::mem::take(&mut admin);
                }
            }
            if let Some(rest) = line.strip_prefix("carapace listening on ") {
                break rest.trim().to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { endpoint, edge, data_dir, child }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The value of a Prometheus sample on `/metrics` (0 when absent), e.g.
    /// `carapace_feed_resyncs_total`.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = http_get(&format!("{}/metrics", self.endpoint)).await;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    /// The data directory path.
    pub fn data_path(&self) -> PathBuf {
        self.data_dir.path().to_owned()
    }

    /// (access key id, secret, account) from the first-start admin credentials file.
    pub fn admin_credentials(&self) -> (String, String, String) {
        let text = std::fs::read_to_string(self.data_dir.path().join("admin-credentials")).expect("credentials file");
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches([' ', '=']).trim().to_owned()))
                .expect(name)
        };
        let account = text.split("account ").nth(1).map(|s| s[..12].to_owned()).expect("account");
        (field("aws_access_key_id"), field("aws_secret_access_key"), account)
    }

    /// An SDK config for this endpoint with static credentials.
    pub async fn sdk_config(&self, key: &str, secret: &str, region: &str) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(region.to_owned()))
            .credentials_provider(aws_credential_types::Credentials::new(key, secret, None, None, "test"))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await
    }

    /// An ACM client acting as `account` in `--dev` mode (the key id is the account).
    pub async fn acm(&self, account: &str) -> aws_sdk_acm::Client {
        aws_sdk_acm::Client::new(&self.sdk_config(account, "dev-secret", "us-east-1").await)
    }

    /// A Directory Service client acting as `account` in `--dev` mode.
    pub async fn ds(&self, account: &str) -> aws_sdk_directory::Client {
        aws_sdk_directory::Client::new(&self.sdk_config(account, "dev-secret", "us-east-1").await)
    }

    /// Sends SIGTERM and waits for exit; returns whether it exited successfully.
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// `kill -9`: the process gets no chance to flush anything. Returns the data dir.
    pub fn kill9(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("temp dir"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of a plain HTTP GET (no TLS), for `/metrics` and `/health`.
pub async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
}

/// A one-route origin that counts its hits.
pub async fn origin() -> (u16, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let hits = counted.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async move {
                        let resp = hyper::Response::builder()
                            .header("cache-control", "max-age=300")
                            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"hello from the origin")))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    (port, hits)
}

/// `curl` over HTTPS to `host` resolved to the edge, trusting only Carapace's root: the
/// status, the `X-Cache` header and the body; `None` when the TLS handshake or request failed.
pub fn curl(server: &Server, host: &str) -> Option<(u16, String, String)> {
    let (https, _) = server.edge.clone().expect("the edge runs");
    let port = https.rsplit(':').next().unwrap();
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "--max-time", "10", "--cacert"])
        .arg(server.data_path().join("ca-root.pem"))
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .arg(format!("https://{host}:{port}/"))
        .output()
        .expect("curl");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let x_cache = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-cache:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    Some((status, x_cache, body.to_owned()))
}

/// Creates a distribution `name` pulling from the origin `web`, caching by default; returns
/// its default domain.
pub async fn create_distribution(c: &aws_sdk_lightsail::Client, name: &str) -> String {
    use aws_sdk_lightsail::types::{CacheBehavior, InputOrigin, RegionName};
    let created = c
        .create_distribution()
        .distribution_name(name)
        .origin(InputOrigin::builder().name("web").region_name(RegionName::UsEast1).build())
        .default_cache_behavior(CacheBehavior::builder().behavior("cache".into()).build())
        .bundle_id("small_1_0")
        .send()
        .await
        .expect("create distribution");
    created.distribution().and_then(|d| d.domain_name()).expect("domain").to_owned()
}
