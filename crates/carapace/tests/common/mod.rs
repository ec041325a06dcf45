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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_carapace"));
        cmd.arg("serve").arg("--listen").arg("127.0.0.1:0").arg("--data-dir").arg(data_dir.path());
        cmd.args(args);
        cmd.env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()));
        // Several servers run at once: give each its own free approval-page port.
        cmd.env("CARAPACE_ACM_APPROVAL_LISTEN", "127.0.0.1:0");
        cmd.env("CARAPACE_EDGE_HTTPS_LISTEN", "127.0.0.1:0");
        cmd.env("CARAPACE_EDGE_HTTP_LISTEN", "127.0.0.1:0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn carapace");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut edge = None;
        let endpoint = loop {
            let line = lines.next().expect("carapace exited before listening").expect("read stdout");
            if let Some(rest) = line.strip_prefix("carapace edge on https://") {
                edge = rest.split_once(" and http://").map(|(s, h)| (s.to_owned(), h.trim().to_owned()));
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
