//! Managed renewal against the real binary, months from now: `clock_offset_secs` moves the
//! server 160 days ahead, into the renewal window of a certificate it issued today.
//!
//! The renewal is interrupted by `kill -9` while it re-validates (its name server answers
//! nothing), and the restarted server finishes it: the certificate is renewed exactly once,
//! under the same ARN. Every event reaches a webhook on loopback, signed, at least once (the
//! webhook fails its first delivery, which is retried).
//!
//! A Lightsail certificate attached to a distribution renews too, and the running edge
//! swaps to the new leaf; past `NotAfter` the edge no longer serves it.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_acm::types::{
    CertificateExport, CertificateOptions, CertificateStatus, KeyAlgorithm, RenewalEligibility, RenewalStatus,
    ValidationMethod,
};
use carapace_checks::testing::{RecordType, TestDns};
use common::Server;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const SECRET: &str = "0123456789abcdef-webhook";
const DAY: u64 = 86_400;

/// One request the webhook received: its headers (lower-case names) and body.
#[derive(Debug, Clone)]
struct Delivery {
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Delivery {
    fn event(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("event JSON")
    }
}

/// An HTTP/1.1 webhook on loopback that records every POST and fails the first one with 500.
async fn webhook() -> (String, Arc<Mutex<Vec<Delivery>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/acm", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                loop {
                    let mut headers = BTreeMap::new();
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        r.read_line(&mut line).await.unwrap();
                        let Some((name, value)) = line.trim_end().split_once(':') else { break };
                        headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
                    }
                    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                    let mut body = vec![0; length];
                    r.read_exact(&mut body).await.unwrap();
                    let first = {
                        let mut all = sink.lock().unwrap();
                        all.push(Delivery { headers, body });
                        all.len() == 1
                    };
                    let status = if first { "500 Internal Server Error" } else { "204 No Content" };
                    let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                    if w.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, received)
}

fn env(name_server: std::net::SocketAddr, hook: &str, offset_days: u64) -> Vec<(&'static str, String)> {
    vec![
        ("CARAPACE_ACM_NAME_SERVERS", format!("[\"{name_server}\"]")),
        ("CARAPACE_ACM_VALIDATION_RETRY_MIN_MS", "200".into()),
        ("CARAPACE_ACM_VALIDATION_RETRY_MAX_MS", "500".into()),
        ("CARAPACE_ACM_DNS_TIMEOUT_MS", "300".into()),
        ("CARAPACE_ACM_THROTTLING", "false".into()),
        ("CARAPACE_JOBS_LEASE_MS", "2000".into()),
        ("CARAPACE_EVENTS_WEBHOOKS", format!("[{{name = \"ops\", url = \"{hook}\", secret = \"{SECRET}\"}}]")),
        ("CARAPACE_CLOCK_OFFSET_SECS", (offset_days * DAY).to_string()),
    ]
}

async fn describe(acm: &aws_sdk_acm::Client, arn: &str) -> aws_sdk_acm::types::CertificateDetail {
    acm.describe_certificate().certificate_arn(arn).send().await.unwrap().certificate.unwrap()
}

/// Polls `check` every 100 ms until it holds (or fails the test after `secs`).
async fn until<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The events delivered so far with their detail-type, first delivery of each id.
fn delivered(received: &Mutex<Vec<Delivery>>) -> Vec<(String, serde_json::Value)> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for d in received.lock().unwrap().iter() {
        let e = d.event();
        if seen.insert(e["id"].as_str().unwrap().to_owned()) {
            out.push((e["detail-type"].as_str().unwrap().to_owned(), e));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_renewal_renews_once_and_events_reach_the_webhook() {
    let dns = TestDns::start(&["renew.test"]).await;
    let (hook, received) = webhook().await;
    // A name server that never answers: validation during the renewal hangs on it.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();

    // Today: request (exportable, so eligible for managed renewal without a distribution).
    let server = Server::strict_in(None, &env(dns.addr(), &hook, 0));
    let client = server.admin_acm().await;
    let options = CertificateOptions::builder().export(CertificateExport::Enabled).build();
    let arn = client
        .request_certificate()
        .domain_name("site.renew.test")
        .validation_method(ValidationMethod::Dns)
        .key_algorithm(KeyAlgorithm::EcPrime256v1)
        .options(options)
        .send()
        .await
        .unwrap()
        .certificate_arn
        .unwrap();
    let rr = describe(&client, &arn).await.domain_validation_options()[0].resource_record().unwrap().clone();
    dns.set_cname(rr.name(), rr.value()).await;
    until(30, "issuance", || async { describe(&client, &arn).await.status() == Some(&CertificateStatus::Issued) })
        .await;
    let first = describe(&client, &arn).await;
    let (not_before, not_after) = (first.not_before().unwrap().secs(), first.not_after().unwrap().secs());
    assert_eq!(not_after - not_before, 198 * DAY as i64, "198-day certificates by default");
    assert_eq!(first.renewal_eligibility(), Some(&RenewalEligibility::Eligible));
    let first_pem = client.get_certificate().certificate_arn(&arn).send().await.unwrap().certificate.unwrap();

    // The issuance event, delivered despite the webhook's first 500, and signed.
    // (The webhook's first answer is a 500: wait for the retry.)
    until(30, "the Available event, retried", || async { received.lock().unwrap().len() >= 2 }).await;
    {
        let all = received.lock().unwrap().clone();
        assert!(all.len() >= 2, "the first delivery failed and was retried");
        assert_eq!(all[0].body, all[1].body, "the retry carries the same event");
        for d in &all {
            let ts = &d.headers["x-carapace-timestamp"];
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET.as_bytes());
            let mut signed = format!("{ts}.").into_bytes();
            signed.extend_from_slice(&d.body);
            let expected = hex::encode(aws_lc_rs::hmac::sign(&key, &signed).as_ref());
            assert_eq!(d.headers["x-carapace-signature"], format!("sha256={expected}"));
            assert_eq!(d.headers["content-type"], "application/json");
        }
        let e = all[0].event();
        assert_eq!(e["source"], "aws.acm");
        assert_eq!(e["version"], "0");
        assert_eq!(e["account"], arn.split(':').nth(4).unwrap());
        assert_eq!(e["region"], "us-east-1");
        assert_eq!(e["resources"][0], arn.as_str());
        assert_eq!(e["detail"]["Action"], "ISSUANCE");
        assert_eq!(e["detail"]["CommonName"], "site.renew.test");
        assert_eq!(e["detail"]["DaysToExpiry"], 198);
    }
    let data_dir = server.kill9();

    // 160 days later, with a name server that never answers: the renewal starts, cannot
    // validate, and the server is killed in the middle of it.
    let server = Server::strict_in(Some(data_dir), &env(silent.local_addr().unwrap(), &hook, 160));
    let client = server.admin_acm().await;
    until(30, "the renewal to stall in PENDING_VALIDATION", || async {
        describe(&client, &arn)
            .await
            .renewal_summary()
            .is_some_and(|s| s.renewal_status() == &RenewalStatus::PendingValidation)
    })
    .await;
    assert_eq!(describe(&client, &arn).await.serial(), first.serial(), "not renewed yet");
    let data_dir = server.kill9();

    // Restarted with its DNS back, the same 160 days on: the renewal completes, once.
    let server = Server::strict_in(Some(data_dir), &env(dns.addr(), &hook, 160));
    let client = server.admin_acm().await;
    until(60, "the renewal to succeed", || async {
        describe(&client, &arn).await.renewal_summary().is_some_and(|s| s.renewal_status() == &RenewalStatus::Success)
    })
    .await;
    let renewed = describe(&client, &arn).await;
    assert_eq!(renewed.certificate_arn(), Some(arn.as_str()), "same ARN");
    assert_ne!(renewed.serial(), first.serial(), "a new leaf");
    assert!(renewed.not_after().unwrap().secs() >= not_after + 150 * DAY as i64, "valid 198 days from day 160");
    assert_eq!(renewed.status(), Some(&CertificateStatus::Issued));
    let summary = renewed.renewal_summary().unwrap();
    assert!(
        summary
            .domain_validation_options()
            .iter()
            .all(|d| d.validation_status() == Some(&aws_sdk_acm::types::DomainStatus::Success))
    );
    // The leaf GetCertificate returns is the new one.
    let pem = client.get_certificate().certificate_arn(&arn).send().await.unwrap().certificate.unwrap();
    assert_ne!(pem, first_pem, "GetCertificate serves the renewed leaf");

    // Exactly once: the serial stays put, and one RENEWAL Available event was raised.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(describe(&client, &arn).await.serial(), renewed.serial());
    until(30, "the renewal's Available event", || async {
        delivered(&received).iter().any(|(t, e)| t == "ACM Certificate Available" && e["detail"]["Action"] == "RENEWAL")
    })
    .await;
    let events = delivered(&received);
    let renewals =
        events.iter().filter(|(t, e)| t == "ACM Certificate Available" && e["detail"]["Action"] == "RENEWAL").count();
    assert_eq!(renewals, 1, "{events:#?}");
    assert!(
        events.iter().any(|(t, _)| t == "ACM Certificate Renewal Action Required"),
        "the stalled validation asked for action (raised before the kill, delivered after): {events:#?}"
    );
    drop(server);
}

/// The serial of the certificate the edge serves for `host` (hex, as `openssl x509
/// -serial` prints it), and its subject.
fn served(server: &Server, host: &str) -> Option<(String, String)> {
    let (https, _) = server.edge.clone().expect("the edge runs");
    let script = format!(
        "openssl s_client -connect {https} -servername {host} </dev/null 2>/dev/null | openssl x509 -noout -serial -subject"
    );
    let out = std::process::Command::new("sh").args(["-c", &script]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let serial = text.lines().find_map(|l| l.strip_prefix("serial="))?.to_owned();
    let subject = text.lines().find_map(|l| l.strip_prefix("subject="))?.trim().to_owned();
    Some((serial, subject))
}

/// Polls (100 ms) until the edge serves www.swap.test with a certificate `wanted` accepts.
fn serving(server: &Server, what: &str, wanted: impl Fn(&(String, String)) -> bool) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = served(server, "www.swap.test").filter(&wanted) {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn lightsail(server: &Server) -> aws_sdk_lightsail::Client {
    let (key, secret, _) = server.admin_credentials();
    aws_sdk_lightsail::Client::new(&server.sdk_config(&key, &secret, "us-east-1").await)
}

async fn lightsail_certificate(c: &aws_sdk_lightsail::Client, name: &str) -> aws_sdk_lightsail::types::Certificate {
    let out = c.get_certificates().certificate_name(name).include_certificate_details(true).send().await.unwrap();
    out.certificates()[0].certificate_detail().cloned().expect("detail")
}

/// A Lightsail certificate attached to a distribution is in use, so it renews on its own;
/// the edge serves the renewed leaf without a restart, and once a certificate has expired
/// the edge no longer serves it (the default certificate instead, counted on `/metrics`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_serves_the_renewed_certificate_and_never_an_expired_one() {
    use aws_sdk_lightsail::types::CertificateStatus as LsStatus;
    let dns = TestDns::start(&["swap.test"]).await;
    let (hook, _received) = webhook().await;
    let (port, _hits) = common::origin().await;
    let origins = ("CARAPACE_LIGHTSAIL_ORIGINS", format!("web=http://127.0.0.1:{port}"));
    let with_origins = |days| {
        let mut env = env(dns.addr(), &hook, days);
        env.push(origins.clone());
        env
    };
    let server = Server::strict_in(None, &with_origins(0));
    let c = lightsail(&server).await;
    common::create_distribution(&c, "site").await;
    c.create_certificate().certificate_name("www").domain_name("www.swap.test").send().await.unwrap();
    let record =
        lightsail_certificate(&c, "www").await.domain_validation_records()[0].resource_record().cloned().unwrap();
    let (name, value) = (record.name().unwrap().to_owned(), record.value().unwrap().to_owned());
    dns.set_cname(&name, &value).await;
    until(30, "the Lightsail certificate to issue", || async {
        lightsail_certificate(&c, "www").await.status() == Some(&LsStatus::Issued)
    })
    .await;
    c.attach_certificate_to_distribution().distribution_name("site").certificate_name("www").send().await.unwrap();
    let (first_serial, subject) = serving(&server, "the edge to serve www.swap.test", |_| true);
    assert!(subject.contains("www.swap.test"), "{subject}");
    assert_eq!(lightsail_certificate(&c, "www").await.eligible_to_renew(), Some("ELIGIBLE"), "in use");

    // 160 days on, its record gone: the renewal waits, and the edge keeps the valid leaf.
    dns.remove(&name, RecordType::CNAME).await;
    let server = Server::strict_in(Some(server.kill9()), &with_origins(160));
    let c = lightsail(&server).await;
    until(30, "the renewal to wait for validation", || async {
        lightsail_certificate(&c, "www").await.renewal_summary().and_then(|s| s.renewal_status().cloned())
            == Some(aws_sdk_lightsail::types::RenewalStatus::PendingValidation)
    })
    .await;
    let (serial, _) = serving(&server, "the edge to serve after the restart", |_| true);
    assert_eq!(serial, first_serial, "the valid leaf until the renewal succeeds");

    // The record is back: renewed, and the running edge swaps to the new leaf.
    dns.set_cname(&name, &value).await;
    let (renewed_serial, _) = serving(&server, "the edge to serve the renewed leaf", |(s, _)| *s != first_serial);
    let detail = lightsail_certificate(&c, "www").await;
    assert_eq!(
        detail.renewal_summary().and_then(|s| s.renewal_status().cloned()),
        Some(aws_sdk_lightsail::types::RenewalStatus::Success)
    );
    assert_eq!(detail.serial_number().map(|s| s.replace(':', "").to_ascii_uppercase()), Some(renewed_serial.clone()));

    // Past the renewed leaf's NotAfter (day 160 + 198) with nothing able to renew it (the
    // record gone again): the edge falls back to its default certificate.
    dns.remove(&name, RecordType::CNAME).await;
    let server = Server::strict_in(Some(server.kill9()), &with_origins(360));
    serving(&server, "the edge to refuse the expired certificate", |(serial, subject)| {
        *serial != renewed_serial && !subject.contains("www.swap.test")
    });
    assert_eq!(server.metric("carapace_edge_certificate_fallbacks").await, 1.0);
    let c = lightsail(&server).await;
    assert_eq!(lightsail_certificate(&c, "www").await.status(), Some(&LsStatus::Expired));
}
