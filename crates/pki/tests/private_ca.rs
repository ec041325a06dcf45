//! Private CAs end to end: a root signs its own certificate, then a subordinate's, which signs
//! a leaf from an openssl request; openssl verifies the chain and, with the subordinate's CRL,
//! sees the revocation. CA certificates are checked on install as AWS Private CA checks them,
//! including one signed by openssl outside Carapace.
#![allow(clippy::disallowed_methods)] // a test on the real clock

use std::path::Path;
use std::process::Command;

use carapace_pki::{
    CaCertificateProblem, Csr, KeyAlgorithm, NameAttribute, PrivateIssue, PrivateSigner, RevokedSerial,
    SigningAlgorithm, Subject, Template, ca_csr, check_ca_certificate, generate_key, parse_certificate,
};
use time::{Duration, OffsetDateTime};

fn subject(cn: &str) -> Subject {
    let mut s = Subject::new();
    s.push(NameAttribute::Country, "US").unwrap();
    s.push(NameAttribute::Organization, "Example Corp").unwrap();
    s.push(NameAttribute::CommonName, cn).unwrap();
    s
}

fn issue(template: Template, days: i64, crl_url: Option<&str>) -> PrivateIssue {
    let now = OffsetDateTime::now_utc();
    PrivateIssue {
        template,
        not_before: now - Duration::minutes(1),
        not_after: now + Duration::days(days),
        serial: None,
        crl_url: crl_url.map(String::from),
        ocsp_url: None,
    }
}

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("/usr/bin/openssl").current_dir(dir).args(args).output().expect("run openssl");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn a_root_a_subordinate_and_a_leaf_verify_and_revoke_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();

    // The root: its own request, signed by itself.
    let root_key = generate_key(KeyAlgorithm::EcSecp384r1).unwrap();
    let root_csr = ca_csr(&root_key, SigningAlgorithm::Sha384WithEcdsa, &subject("Example Root")).unwrap();
    let unborn = PrivateSigner::new(&root_key, SigningAlgorithm::Sha384WithEcdsa, None).unwrap();
    let root = unborn.issue(&Csr::parse(root_csr.as_bytes()).unwrap(), &issue(Template::RootCa, 3650, None)).unwrap();
    check_ca_certificate(&root_key, &root.pem, None, now).unwrap();
    let parsed = parse_certificate(&root.pem).unwrap();
    assert!(parsed.is_ca && parsed.is_self_issued);
    assert_eq!((parsed.path_len_constraint, parsed.signature_algorithm.as_str()), (None, "SHA384WITHECDSA"));

    // The subordinate: RSA, signed by the root with path length 0.
    let sub_key = generate_key(KeyAlgorithm::Rsa2048).unwrap();
    let sub_csr = ca_csr(&sub_key, SigningAlgorithm::Sha256WithRsa, &subject("Example Issuing CA")).unwrap();
    let root_signer = PrivateSigner::new(&root_key, SigningAlgorithm::Sha384WithEcdsa, Some(&root.der)).unwrap();
    let sub = root_signer
        .issue(&Csr::parse(sub_csr.as_bytes()).unwrap(), &issue(Template::SubordinateCa(0), 1825, None))
        .unwrap();
    assert_eq!(
        check_ca_certificate(&sub_key, &sub.pem, None, now).unwrap_err(),
        CaCertificateProblem::Invalid(
            "a root CA certificate must be self-signed; a subordinate's needs its chain".into()
        )
    );
    check_ca_certificate(&sub_key, &sub.pem, Some(&root.pem), now).unwrap();
    assert_eq!(check_ca_certificate(&root_key, &sub.pem, Some(&root.pem), now), Err(CaCertificateProblem::Mismatch));
    let parsed = parse_certificate(&sub.pem).unwrap();
    assert_eq!((parsed.is_ca, parsed.path_len_constraint), (true, Some(0)));

    // A leaf from an openssl request with subject alternative names.
    openssl(dir.path(), &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key"]);
    let (ok, out) = openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-subj",
            "/CN=app.internal",
            "-addext",
            "subjectAltName=DNS:app.internal,DNS:api.internal,IP:10.0.0.7,email:ops@example.com,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:ops@corp",
            "-out",
            "leaf.csr",
        ],
    );
    assert!(ok, "{out}");
    let csr = Csr::parse(&std::fs::read(dir.path().join("leaf.csr")).unwrap()).unwrap();
    assert_eq!(csr.key_algorithm(), KeyAlgorithm::EcPrime256v1);
    let sub_signer = PrivateSigner::new(&sub_key, SigningAlgorithm::Sha512WithRsa, Some(&sub.der)).unwrap();
    let leaf = sub_signer
        .issue(&csr, &issue(Template::EndEntityServerAuth, 30, Some("http://crl.example/crl/sub.crl")))
        .unwrap();
    let parsed = parse_certificate(&leaf.pem).unwrap();
    assert_eq!(parsed.subject, "CN=app.internal");
    assert_eq!(parsed.subject_alternative_names, vec!["app.internal", "api.internal"]);
    assert_eq!(parsed.signature_algorithm, "SHA512WITHRSA");
    assert!(!parsed.is_ca);

    std::fs::write(dir.path().join("root.pem"), &root.pem).unwrap();
    std::fs::write(dir.path().join("sub.pem"), &sub.pem).unwrap();
    std::fs::write(dir.path().join("leaf.pem"), &leaf.pem).unwrap();
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", "-CAfile", "root.pem", "-untrusted", "sub.pem", "-purpose", "sslserver"];
        args.extend_from_slice(extra);
        args.push("leaf.pem");
        openssl(dir.path(), &args)
    };
    let (ok, out) = verify(&[]);
    assert!(ok, "{out}");
    // Every requested name is passed through as requested.
    let (_, text) = openssl(dir.path(), &["x509", "-in", "leaf.pem", "-noout", "-ext", "subjectAltName"]);
    for name in ["DNS:app.internal", "IP Address:10.0.0.7", "email:ops@example.com", "othername: UPN::ops@corp"] {
        assert!(text.contains(name), "{name}: {text}");
    }

    // The subordinate's CRL, before and after the leaf is revoked.
    let crl = |revoked: &[RevokedSerial], number| {
        let der = sub_signer.sign_crl(revoked, number, now, now + Duration::days(7)).unwrap();
        let pem = pem::encode(&pem::Pem::new("X509 CRL", der));
        std::fs::write(dir.path().join("crl.pem"), pem).unwrap();
        verify(&["-crl_check", "-CRLfile", "crl.pem"])
    };
    let (ok, out) = crl(&[], 1);
    assert!(ok, "{out}");
    let revoked = RevokedSerial { serial: leaf.serial.clone(), revoked_at: now, reason_code: Some(1) };
    let (ok, out) = crl(&[revoked], 2);
    assert!(!ok && out.contains("certificate revoked"), "{out}");
}

#[test]
fn a_subordinate_signed_by_openssl_installs_and_bad_chains_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let d = dir.path();
    // An outside root, made by openssl.
    let (ok, out) = openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ext-root.key",
            "-subj",
            "/CN=Outside Root",
            "-days",
            "365",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "ext-root.pem",
        ],
    );
    assert!(ok, "{out}");
    // Carapace's subordinate key, its request signed by openssl.
    let key = generate_key(KeyAlgorithm::EcPrime256v1).unwrap();
    std::fs::write(d.join("sub.csr"), ca_csr(&key, SigningAlgorithm::Sha256WithEcdsa, &subject("Sub")).unwrap())
        .unwrap();
    std::fs::write(
        d.join("ext.cnf"),
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    let (ok, out) = openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "sub.csr",
            "-CA",
            "ext-root.pem",
            "-CAkey",
            "ext-root.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-out",
            "sub.pem",
        ],
    );
    assert!(ok, "{out}");
    let sub_pem = std::fs::read_to_string(d.join("sub.pem")).unwrap();
    let root_pem = std::fs::read_to_string(d.join("ext-root.pem")).unwrap();
    let der = check_ca_certificate(&key, &sub_pem, Some(&root_pem), now).unwrap();

    // It signs, and openssl follows the chain to the outside root.
    let signer = PrivateSigner::new(&key, SigningAlgorithm::Sha256WithEcdsa, Some(&der)).unwrap();
    let leaf_key = generate_key(KeyAlgorithm::EcPrime256v1).unwrap();
    let leaf_csr = ca_csr(&leaf_key, SigningAlgorithm::Sha256WithEcdsa, &subject("client-1")).unwrap();
    let leaf = signer.issue(&Csr::parse(leaf_csr.as_bytes()).unwrap(), &issue(Template::EndEntityClientAuth, 7, None));
    std::fs::write(d.join("leaf.pem"), leaf.unwrap().pem).unwrap();
    let (ok, out) = openssl(
        d,
        &["verify", "-CAfile", "ext-root.pem", "-untrusted", "sub.pem", "-purpose", "sslclient", "leaf.pem"],
    );
    assert!(ok, "{out}");

    // A chain that is not the issuer, and a CA certificate that is not a CA's.
    let other = generate_key(KeyAlgorithm::EcPrime256v1).unwrap();
    let other_root = PrivateSigner::new(&other, SigningAlgorithm::Sha256WithEcdsa, None)
        .unwrap()
        .issue(
            &Csr::parse(ca_csr(&other, SigningAlgorithm::Sha256WithEcdsa, &subject("Other")).unwrap().as_bytes())
                .unwrap(),
            &issue(Template::RootCa, 30, None),
        )
        .unwrap();
    assert!(matches!(
        check_ca_certificate(&key, &sub_pem, Some(&other_root.pem), now),
        Err(CaCertificateProblem::Invalid(why)) if why.contains("does not link")
    ));
    assert!(matches!(
        check_ca_certificate(&key, "not a certificate", None, now),
        Err(CaCertificateProblem::Malformed(_))
    ));
}

#[test]
fn signing_algorithms_must_fit_the_key_and_requests_must_verify() {
    let p256 = generate_key(KeyAlgorithm::EcPrime256v1).unwrap();
    assert!(PrivateSigner::new(&p256, SigningAlgorithm::Sha256WithRsa, None).is_err());
    assert!(PrivateSigner::new(&p256, SigningAlgorithm::Sha384WithEcdsa, None).is_err());
    let csr = ca_csr(&p256, SigningAlgorithm::Sha256WithEcdsa, &subject("x")).unwrap();
    assert!(Csr::parse(csr.as_bytes()).is_ok());
    // Flip a bit of the signature.
    let mut der = pem::parse(&csr).unwrap().into_contents();
    let last = der.len() - 1;
    der[last] ^= 1;
    assert!(Csr::parse(&der).is_err());
    assert_eq!(
        Template::from_arn("arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen2/V1"),
        Some(Template::SubordinateCa(2))
    );
    assert_eq!(Template::from_arn("arn:aws:acm-pca:::template/EndEntityCertificate/V1"), Some(Template::EndEntity));
    assert_eq!(Template::from_arn("arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen4/V1"), None);
}
