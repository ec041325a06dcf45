//! Client LDAPS for real: an AD Connector whose "domain controllers" are OpenLDAP's slapd
//! on loopback, serving LDAPS with a certificate from a test CA. Registering that CA and
//! enabling LDAPS gives `Enabled`; trusting only an unrelated CA gives `EnableFailed` with
//! an untrusted-chain reason; with slapd stopped the reason is "unreachable".
//!
//! Needs `/usr/sbin/slapd` and `openssl` (`tests/ldap/ensure-slapd.sh` installs both; the
//! test script runs it). Without slapd the test says so and passes vacuously.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_directory::Client;
use aws_sdk_directory::types::{
    CertificateState, DirectoryConnectSettings, DirectorySize, DirectoryStage, LdapsStatus, LdapsType,
};
use common::Server;

const SLAPD: &str = "/usr/sbin/slapd";

fn ldap_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/ldap")
}

/// slapd as a child process; stopped on drop.
struct Slapd(Child);

impl Slapd {
    /// Starts slapd on 127.0.0.1:`port` and 127.0.0.2:`port` and waits until it accepts.
    fn start(workdir: &Path, port: u16) -> Self {
        let child = Command::new("bash")
            .arg(ldap_dir().join("run-slapd.sh"))
            .arg(workdir)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("start slapd");
        let slapd = Self(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        for ip in ["127.0.0.1", "127.0.0.2"] {
            let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                assert!(Instant::now() < deadline, "slapd did not start listening on {addr}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        slapd
    }

    fn stop(&mut self) {
        // run-slapd.sh execs slapd, so this pid is slapd's; SIGTERM lets it shut down cleanly.
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..300 {
        if let Some(v) = probe().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// An Active AD Connector whose domain controllers are both slapd addresses.
async fn connector(c: &Client) -> String {
    let settings = DirectoryConnectSettings::builder()
        .vpc_id("vpc-12345678")
        .subnet_ids("subnet-11111111")
        .subnet_ids("subnet-22222222")
        .customer_dns_ips("127.0.0.1")
        .customer_dns_ips("127.0.0.2")
        .customer_user_name("svc-connector")
        .build()
        .unwrap();
    let out = c
        .connect_directory()
        .name("corp.example.com")
        .password("Sup3r-Secret!")
        .size(DirectorySize::Small)
        .connect_settings(settings)
        .send()
        .await
        .unwrap();
    let id = out.directory_id().unwrap().to_owned();
    eventually("Active", || async {
        let out = c.describe_directories().directory_ids(&id).send().await.unwrap();
        (out.directory_descriptions()[0].stage() == Some(&DirectoryStage::Active)).then_some(())
    })
    .await;
    id
}

async fn register(c: &Client, dir: &str, pem: String) -> String {
    let out = c.register_certificate().directory_id(dir).certificate_data(pem).send().await.unwrap();
    let id = out.certificate_id().unwrap().to_owned();
    eventually("Registered", || async {
        let out = c.describe_certificate().directory_id(dir).certificate_id(&id).send().await.unwrap();
        (out.certificate().unwrap().state() == Some(&CertificateState::Registered)).then_some(())
    })
    .await;
    id
}

/// Enables LDAPS and waits for the check's verdict.
async fn enable(c: &Client, dir: &str) -> (LdapsStatus, Option<String>) {
    c.enable_ldaps().directory_id(dir).r#type(LdapsType::Client).send().await.unwrap();
    eventually("the LDAPS check", || async {
        let out = c.describe_ldaps_settings().directory_id(dir).send().await.unwrap();
        let info = &out.ldaps_settings_info()[0];
        let status = info.ldaps_status().unwrap().clone();
        (status != LdapsStatus::Enabling).then(|| (status, info.ldaps_status_reason().map(str::to_owned)))
    })
    .await
}

#[tokio::test]
async fn client_ldaps_against_a_real_slapd() {
    if !Path::new(SLAPD).exists() {
        eprintln!("SKIPPED: {SLAPD} is not installed (run tests/ldap/ensure-slapd.sh)");
        return;
    }
    let pki = tempfile::tempdir().unwrap();
    let status = Command::new("bash").arg(ldap_dir().join("make-test-pki.sh")).arg(pki.path()).status().unwrap();
    assert!(status.success(), "make-test-pki.sh failed");
    let pem = |name: &str| std::fs::read_to_string(pki.path().join(format!("{name}.pem"))).unwrap();

    let port = free_port();
    let mut slapd = Slapd::start(pki.path(), port);
    let server = Server::start(&["--dev"], &[("CARAPACE_DS_LDAPS_PORT", &port.to_string())]);
    let c = server.ds("123456789012").await;

    // The CA that signed slapd's certificate: both controllers verify → Enabled.
    let trusted = connector(&c).await;
    register(&c, &trusted, pem("ca")).await;
    let (status, reason) = enable(&c, &trusted).await;
    assert_eq!((status, reason.as_deref()), (LdapsStatus::Enabled, None));

    // Only an unrelated CA registered → the chain is untrusted.
    let untrusted = connector(&c).await;
    register(&c, &untrusted, pem("other-ca")).await;
    let (status, reason) = enable(&c, &untrusted).await;
    assert_eq!(status, LdapsStatus::EnableFailed);
    let reason = reason.unwrap();
    assert!(reason.contains("untrusted certificate chain"), "{reason}");
    assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason}");

    // Adding the right CA fixes it: a failed enable can be retried.
    register(&c, &untrusted, pem("ca")).await;
    assert_eq!(enable(&c, &untrusted).await, (LdapsStatus::Enabled, None));

    // slapd stopped → unreachable.
    slapd.stop();
    c.disable_ldaps().directory_id(&trusted).r#type(LdapsType::Client).send().await.unwrap();
    let (status, reason) = enable(&c, &trusted).await;
    assert_eq!(status, LdapsStatus::EnableFailed);
    let reason = reason.unwrap();
    assert!(reason.contains("unreachable"), "{reason}");
}

/// A restart in the middle of an LDAPS check resumes it by itself: the check is a job,
/// re-run after its lease without anyone calling DescribeLDAPSSettings.
#[tokio::test]
async fn an_ldaps_check_cut_by_kill_9_resumes_after_restart() {
    if !Path::new(SLAPD).exists() {
        eprintln!("SKIPPED: {SLAPD} is not installed (run tests/ldap/ensure-slapd.sh)");
        return;
    }
    let pki = tempfile::tempdir().unwrap();
    let status = Command::new("bash").arg(ldap_dir().join("make-test-pki.sh")).arg(pki.path()).status().unwrap();
    assert!(status.success(), "make-test-pki.sh failed");
    let ca = std::fs::read_to_string(pki.path().join("ca.pem")).unwrap();

    // A tarpit on the domain controllers' LDAPS port: it accepts and never answers, so the
    // check hangs in its TLS handshake until the server is killed.
    let port = free_port();
    let tarpits: Vec<TcpListener> =
        ["127.0.0.1", "127.0.0.2"].iter().map(|ip| TcpListener::bind(format!("{ip}:{port}")).unwrap()).collect();
    let env = [("CARAPACE_DS_LDAPS_PORT", port.to_string()), ("CARAPACE_JOBS_LEASE_MS", "1000".to_owned())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(&["--dev"], &env);
    let c = server.ds("123456789012").await;
    let dir = connector(&c).await;
    register(&c, &dir, ca).await;
    c.enable_ldaps().directory_id(&dir).r#type(LdapsType::Client).send().await.unwrap();
    let (held, _) = tarpits[0].accept().expect("the check connects to a domain controller");
    let data_dir = server.kill9();
    drop((held, tarpits));

    let _slapd = Slapd::start(pki.path(), port);
    let server = Server::start_in(data_dir, &["--dev"], &env);
    // Wait for the queue to drain, reading it the way an operator does.
    let data = server.data_path();
    let queued = || {
        let out = Command::new(env!("CARGO_BIN_EXE_carapace"))
            .args(["jobs", "list", "--data-dir"])
            .arg(&data)
            .output()
            .expect("carapace jobs list");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).contains("ds.ldaps-check")
    };
    eventually("the check to be re-run after the restart", || async { (!queued()).then_some(()) }).await;
    // The first look at the settings after the restart already shows the verdict.
    let c = server.ds("123456789012").await;
    let out = c.describe_ldaps_settings().directory_id(&dir).send().await.unwrap();
    let info = &out.ldaps_settings_info()[0];
    assert_eq!((info.ldaps_status(), info.ldaps_status_reason()), (Some(&LdapsStatus::Enabled), None));
}
