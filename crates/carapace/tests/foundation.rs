//! The wire layer through aws-sdk-rust against the real binary in strict mode: real keys,
//! wrong secrets, unknown keys, a skewed clock, the keys CLI, model validation messages,
//! and a clean SIGTERM.
#![allow(clippy::disallowed_methods)] // a test or benchmark on the real clock

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime};

use aws_sdk_acm::error::ProvideErrorMetadata;
use common::Server;

fn code_of<E: ProvideErrorMetadata>(err: &E) -> (String, String) {
    (err.code().unwrap_or_default().to_owned(), err.message().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn strict_mode_authentication() {
    let server = Server::strict();
    let (key, secret, _account) = server.admin_credentials();

    let acm = aws_sdk_acm::Client::new(&server.sdk_config(&key, &secret, "us-east-1").await);
    let listed = acm.list_certificates().send().await.expect("admin key works");
    assert!(listed.certificate_summary_list().is_empty());

    let wrong = aws_sdk_acm::Client::new(&server.sdk_config(&key, "not-the-secret", "us-east-1").await);
    let err = wrong.list_certificates().send().await.expect_err("wrong secret");
    let (code, message) = code_of(&err);
    assert_eq!(code, "InvalidSignatureException");
    assert!(message.starts_with("The request signature we calculated does not match"), "{message}");

    let unknown = aws_sdk_acm::Client::new(&server.sdk_config("AKIAUNKNOWNUNKNOWN00", "x", "us-east-1").await);
    let err = unknown.list_certificates().send().await.expect_err("unknown key");
    assert_eq!(
        code_of(&err),
        ("UnrecognizedClientException".into(), "The security token included in the request is invalid.".into())
    );

    // A client whose clock is ten minutes slow signs requests the server calls expired.
    let slow = aws_smithy_async::time::StaticTimeSource::new(SystemTime::now() - Duration::from_secs(600));
    let config = server.sdk_config(&key, &secret, "us-east-1").await.into_builder().time_source(slow).build();
    let err = aws_sdk_acm::Client::new(&config).list_certificates().send().await.expect_err("skewed clock");
    let (code, message) = code_of(&err);
    assert_eq!(code, "InvalidSignatureException");
    assert!(message.starts_with("Signature expired:"), "{message}");

    // The server still answers, and SIGTERM ends it cleanly.
    assert!(server.terminate(), "carapace did not exit cleanly on SIGTERM");
}

#[tokio::test]
async fn keys_cli_creates_lists_and_revokes() {
    // Keys are cached for an hour here: the revocation below can only reach the server
    // through the change feed (another process's write to the SQLite file).
    let server = Server::start(&[], &[("CARAPACE_KEY_CACHE_SECS", "3600")]);
    let data = server.data_path();
    let carapace = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_carapace"))
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .expect("run carapace");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let created = carapace(&["keys", "create", "--account", "111122223333"]);
    let field = |name: &str| {
        created
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches([' ', '=']).trim().to_owned()))
            .expect(name)
    };
    let (key, secret) = (field("aws_access_key_id"), field("aws_secret_access_key"));
    let listed = carapace(&["keys", "list"]);
    assert!(listed.contains(&key) && listed.contains("111122223333"), "{listed}");
    assert!(!listed.contains(&secret), "keys list must never print secrets");

    let acm = aws_sdk_acm::Client::new(&server.sdk_config(&key, &secret, "eu-west-1").await);
    acm.list_certificates().send().await.expect("new key works");

    carapace(&["keys", "revoke", &key]);
    // The feed's resync reaches the server within ~100 ms; allow a generous 20 s on a busy
    // machine, far below the cache's hour.
    // DescribeCertificate of a missing certificate (10 calls/s allowed) answers
    // ResourceNotFoundException while the key is accepted.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let arn = "arn:aws:acm:eu-west-1:111122223333:certificate/00000000-0000-4000-8000-000000000000";
    loop {
        let err = acm.describe_certificate().certificate_arn(arn).send().await.expect_err("no such certificate");
        match code_of(&err).0.as_str() {
            "UnrecognizedClientException" => break,
            "ResourceNotFoundException" if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => panic!("revoked key: {other} (still accepted after 20 s?)"),
        }
    }

    let root = carapace(&["ca", "export-root"]);
    assert!(root.starts_with("-----BEGIN CERTIFICATE-----"), "{root}");
}

#[tokio::test]
async fn model_validation_message_reaches_the_sdk() {
    let server = Server::dev();
    let acm = server.acm("123456789012").await;
    let err = acm.describe_certificate().certificate_arn("x").send().await.expect_err("invalid ARN");
    let (code, message) = code_of(&err);
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "2 validation errors detected: Value 'x' at 'certificateArn' failed to satisfy constraint: \
         Member must have length greater than or equal to 20; Value 'x' at 'certificateArn' failed to \
         satisfy constraint: Member must satisfy regular expression pattern: \
         arn:[\\w+=/,.@-]+:acm:[\\w+=/,.@-]*:[0-9]+:[\\w+=,.@-]+(/[\\w+=,.@-]+)*"
    );
}
