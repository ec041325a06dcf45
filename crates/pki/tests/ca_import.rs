//! "Bring your own CA": roots and intermediates made with the `openssl` CLI, as an operator
//! would, imported and used to issue leaves that `openssl verify` accepts; and the refusals.
#![allow(clippy::disallowed_methods)] // a test or benchmark on the real clock

use std::path::{Path, PathBuf};
use std::process::Command;

use carapace_pki::crypto::MasterKey;
use carapace_pki::lint::{self, CaRole, Severity};
use carapace_pki::{
    CaError, CaProfile, CertificateAuthority, Hierarchy, KeyAlgorithm, KeyFamily, LeafRequest, LeafUsage, generate_key,
    parse_certificate, private_key_matches,
};
use time::{Duration, OffsetDateTime};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("/usr/bin/openssl").current_dir(dir).args(args).output().expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

const V3_CA: &str = "[req]\ndistinguished_name=dn\n[dn]\n[v3_root]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n\
[v3_inter]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,digitalSignature,keyCertSign,cRLSign\n\
subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n\
[v3_leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
[v3_inter_nosign]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\n";

/// Makes `<prefix>root.pem/key` and `<prefix>inter.pem/key` in `dir` with openssl.
/// `inter_keygen` are the `openssl genpkey` arguments for the intermediate key.
fn make_ca(dir: &Path, prefix: &str, inter_keygen: &[&str], subject: &str) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::write(dir.join("ext.cnf"), V3_CA).unwrap();
    let root_key = format!("{prefix}root.key");
    let root = format!("{prefix}root.pem");
    let inter_key = format!("{prefix}inter.key");
    let inter_csr = format!("{prefix}inter.csr");
    let inter = format!("{prefix}inter.pem");
    openssl(dir, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", &root_key]);
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &root_key,
            "-subj",
            &format!("/C=DE/O=Example Corp/CN={prefix}Example Root"),
            "-days",
            "3650",
            "-sha384",
            "-config",
            "ext.cnf",
            "-extensions",
            "v3_root",
            "-out",
            &root,
        ],
    );
    let mut args = vec!["genpkey"];
    args.extend_from_slice(inter_keygen);
    args.extend_from_slice(&["-out", &inter_key]);
    openssl(dir, &args);
    openssl(dir, &["req", "-new", "-key", &inter_key, "-subj", subject, "-config", "ext.cnf", "-out", &inter_csr]);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &inter_csr,
            "-CA",
            &root,
            "-CAkey",
            &root_key,
            "-CAcreateserial",
            "-days",
            "1825",
            "-sha384",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "v3_inter",
            "-out",
            &inter,
        ],
    );
    (dir.join(root), dir.join(inter), dir.join(inter_key))
}

fn leaf_request(now: OffsetDateTime) -> LeafRequest {
    LeafRequest {
        common_name: "internal.example".into(),
        sans: vec!["*.internal.example".into()],
        ip_addresses: Vec::new(),
        not_before: now - Duration::minutes(1),
        not_after: now + Duration::days(90),
        serial: None,
        base_url: "https://certs.example".into(),
    }
}

fn verify(dir: &Path, root: &Path, chain: &str, leaf: &str) -> (bool, String) {
    std::fs::write(dir.join("chain.pem"), chain).unwrap();
    std::fs::write(dir.join("leaf.pem"), leaf).unwrap();
    let out = Command::new("/usr/bin/openssl")
        .current_dir(dir)
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(root)
        .args(["-untrusted", "chain.pem", "leaf.pem"])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && text.contains(": OK"), text)
}

#[test]
fn imported_intermediates_sign_every_leaf_and_chain_to_the_operators_root() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let master = MasterKey::generate().unwrap();
    // One intermediate per key format an operator might hand us.
    let cases: [(&str, &[&str], Option<&str>); 4] = [
        ("p8rsa-", &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], None),
        ("p1rsa-", &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"], Some("rsa")),
        ("sec1ec-", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], Some("ec")),
        ("p8ec521-", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"], None),
    ];
    for (prefix, keygen, convert) in cases {
        let subject = format!("/C=DE/O=Example Corp/OU=PKI/CN={prefix}Issuing CA");
        let (root, inter, inter_key) = make_ca(d, prefix, keygen, &subject);
        if let Some(kind) = convert {
            // `rsa -traditional` writes PKCS#1 (`RSA PRIVATE KEY`); `ec` writes SEC1 (`EC PRIVATE KEY`).
            let out = format!("{prefix}inter.trad.key");
            let mut args = vec![kind, "-in", inter_key.to_str().unwrap(), "-out", &out];
            if kind == "rsa" {
                args.push("-traditional");
            }
            openssl(d, &args);
            std::fs::copy(d.join(&out), &inter_key).unwrap();
        }
        let key_pem = std::fs::read_to_string(&inter_key).unwrap();
        match convert {
            Some("rsa") => assert!(key_pem.contains("BEGIN RSA PRIVATE KEY"), "{key_pem}"),
            Some(_) => assert!(key_pem.contains("BEGIN EC PRIVATE KEY"), "{key_pem}"),
            None => assert!(key_pem.contains("BEGIN PRIVATE KEY")),
        }
        let inter_parsed = parse_certificate(&std::fs::read_to_string(&inter).unwrap()).unwrap();
        assert!(private_key_matches(&inter_parsed, &key_pem).unwrap(), "{prefix}");

        let (ca, material) = CertificateAuthority::import(
            &std::fs::read_to_string(&root).unwrap(),
            &std::fs::read_to_string(&inter).unwrap(),
            &key_pem,
            &master,
        )
        .unwrap_or_else(|e| panic!("{prefix}: {e}"));
        assert!(material.root_private_key_sealed.is_none());
        assert!(!ca.has_root_key());
        assert_eq!(ca.intermediates().len(), 1);
        assert_eq!(ca.intermediates()[0].families, vec![KeyFamily::Rsa, KeyFamily::Ec]);
        // The stored form reloads.
        let ca = CertificateAuthority::from_material(&material, &master).unwrap();
        // openssl stamps notBefore with the current second; issue strictly after it.
        let now = OffsetDateTime::now_utc() + Duration::seconds(1);

        for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcPrime256v1] {
            let leaf_key = generate_key(alg).unwrap();
            let issued = ca.issue(&leaf_request(now), &leaf_key, now).unwrap();
            let (ok, out) = verify(d, &root, &issued.chain_pem, &issued.certificate_pem);
            assert!(ok, "{prefix} {alg}: {out}");
            let leaf = parse_certificate(&issued.certificate_pem).unwrap();
            // The leaf's issuer is byte-for-byte the intermediate's subject (with its OU and C).
            assert_eq!(leaf.issuer_dn, inter_parsed.subject);
            assert_eq!(issued.issuer, "Example Corp");
            assert_eq!(leaf.authority_key_id, inter_parsed.subject_key_id);
            assert_eq!(issued.signature_algorithm, leaf.signature_algorithm);
        }
        // Without the root's key the N2 root cannot be cross-signed: N2 issues, N2_SFG2 does not.
        let mut material = material;
        let ca = ca.add_n2(&mut material, &CaProfile::new("Example", "http://127.0.0.1:4566"), now, &master).unwrap();
        assert!(ca.issues_in(Hierarchy::N2) && !ca.issues_in(Hierarchy::N2CrossSigned), "{prefix}");
        assert!(material.n2.as_ref().is_some_and(|n2| n2.cross_signed_pem.is_none()));
        let key = generate_key(KeyAlgorithm::EcPrime256v1).unwrap();
        assert!(
            ca.issue_in(Hierarchy::N2CrossSigned, LeafUsage::ClientAndServerAuth, &leaf_request(now), &key, now)
                .is_err()
        );
    }
}

/// A CA made the way openssl's defaults make one is imported, and the Baseline Requirements'
/// checks name everything it lacks: what `carapace ca import` prints.
#[test]
fn imported_cas_are_linted_without_being_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
    let (root, inter, key) = make_ca(dir.path(), "lint-", &rsa, "/O=Example Corp/OU=PKI/CN=Example Issuing CA");
    let (root, inter) = (std::fs::read_to_string(root).unwrap(), std::fs::read_to_string(inter).unwrap());
    let master = MasterKey::generate().unwrap();
    let (ca, _) = CertificateAuthority::import(&root, &inter, &std::fs::read_to_string(key).unwrap(), &master).unwrap();
    // The operator's root key stays with them, so does its CRL.
    assert!(!ca.signs_crl(ca.root_id()));
    assert!(ca.certificate_by_id(ca.root_id()).is_some());

    let now = OffsetDateTime::now_utc() + Duration::seconds(1);
    let codes = |pem: &str, role| -> Vec<(Severity, String)> {
        lint::ca_certificate(pem, role, now).unwrap().into_iter().map(|f| (f.severity, f.code)).collect()
    };
    let owned = |list: &[(Severity, &str)]| list.iter().map(|(s, c)| (*s, c.to_string())).collect::<Vec<_>>();
    assert_eq!(
        codes(&root, CaRole::Root),
        owned(&[(Severity::Warning, "cabf.serverauth.root.authority_key_identifier_extension_absent")])
    );
    assert_eq!(
        codes(&inter, CaRole::Subordinate),
        owned(&[
            (Severity::Error, "cabf.serverauth.ca.country_attribute_absent"),
            (Severity::Error, "cabf.serverauth.ca.organizational_unit_name_attribute_present"),
            (Severity::Error, "cabf.serverauth.ca.certificate_policies_extension_absent"),
            (Severity::Error, "cabf.serverauth.ca.crl_distribution_points_extension_absent"),
            (Severity::Error, "cabf.serverauth.ca.extended_key_usage_extension_absent"),
            (Severity::Warning, "cabf.serverauth.ca.authority_info_access_extension_absent"),
        ])
    );
    // Past its ten years the root is reported as unusable.
    let later = now + Duration::days(3700);
    let findings = lint::ca_certificate(&root, CaRole::Root, later).unwrap();
    assert!(findings.iter().any(|f| f.code == "carapace.ca_certificate_not_valid_now"), "{findings:?}");
}

#[test]
fn imports_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let master = MasterKey::generate().unwrap();
    let rsa = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
    let (root_a, inter_a, key_a) = make_ca(d, "a-", &rsa, "/O=A/CN=A Issuing");
    let (root_b, inter_b, _key_b) = make_ca(d, "b-", &rsa, "/O=B/CN=B Issuing");
    let s = |p: &PathBuf| std::fs::read_to_string(p).unwrap();
    let import =
        |root: &str, inter: &str, key: &str| CertificateAuthority::import(root, inter, key, &master).map(|_| ());

    // Sanity: the matching set imports.
    import(&s(&root_a), &s(&inter_a), &s(&key_a)).unwrap();
    // The intermediate belongs to another root.
    let err = import(&s(&root_a), &s(&inter_b), &s(&key_a)).unwrap_err();
    assert!(matches!(err, CaError::Import(_)), "{err}");
    // The key belongs to another certificate.
    let err = import(&s(&root_b), &s(&inter_b), &s(&key_a)).unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
    // The "intermediate" is the root itself passed twice with a key that does not match.
    assert!(import(&s(&root_a), &s(&root_a), &s(&key_a)).is_err());
    // Garbage.
    assert!(matches!(import("nope", &s(&inter_a), &s(&key_a)), Err(CaError::InvalidCertificate(_))));
    assert!(matches!(import(&s(&root_a), &s(&inter_a), "nope"), Err(CaError::InvalidPrivateKey(_))));

    // An intermediate without CA:TRUE, and one whose key usage forbids signing certificates.
    for (ext, expect) in [("v3_leaf", "not a CA"), ("v3_inter_nosign", "does not allow certificate signing")] {
        openssl(d, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "x.key"]);
        openssl(d, &["req", "-new", "-key", "x.key", "-subj", "/CN=x", "-config", "ext.cnf", "-out", "x.csr"]);
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "x.csr",
                "-CA",
                "a-root.pem",
                "-CAkey",
                "a-root.key",
                "-CAcreateserial",
                "-days",
                "30",
                "-extfile",
                "ext.cnf",
                "-extensions",
                ext,
                "-out",
                "x.pem",
            ],
        );
        let err = import(&s(&root_a), &read(d, "x.pem"), &read(d, "x.key")).unwrap_err();
        assert!(err.to_string().contains(expect), "{ext}: {err}");
    }

    // An encrypted key is refused with a clear message.
    openssl(d, &["pkey", "-in", key_a.to_str().unwrap(), "-aes256", "-passout", "pass:secret", "-out", "enc.key"]);
    let err = import(&s(&root_a), &s(&inter_a), &read(d, "enc.key")).unwrap_err();
    assert!(err.to_string().contains("encrypted"), "{err}");
}

#[test]
fn private_key_matching_handles_rsa_1024_and_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ext.cnf"), V3_CA).unwrap();
    // ACM accepts RSA-1024 imports; aws-lc-rs refuses such keys, so matching falls back to
    // comparing the modulus and exponent.
    openssl(d, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "k1024.key"]);
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "k1024.key",
            "-subj",
            "/CN=old.example",
            "-days",
            "30",
            "-config",
            "ext.cnf",
            "-out",
            "c1024.pem",
        ],
    );
    openssl(d, &["rsa", "-in", "k1024.key", "-traditional", "-out", "k1024.pkcs1.key"]);
    let cert = parse_certificate(&read(d, "c1024.pem")).unwrap();
    assert_eq!(cert.key_algorithm, Some(KeyAlgorithm::Rsa1024));
    assert_eq!(cert.signature_algorithm, "SHA256WITHRSA");
    assert!(cert.is_self_issued);
    assert!(private_key_matches(&cert, &read(d, "k1024.key")).unwrap());
    assert!(private_key_matches(&cert, &read(d, "k1024.pkcs1.key")).unwrap());
    let other = generate_key(KeyAlgorithm::Rsa2048).unwrap();
    assert!(!private_key_matches(&cert, &other.to_pem()).unwrap());
    let ec = generate_key(KeyAlgorithm::EcSecp384r1).unwrap();
    assert!(!private_key_matches(&cert, &ec.to_pem()).unwrap());

    // RSASSA-PSS signatures are detected (Directory Service refuses them).
    openssl(d, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "pss.key"]);
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "pss.key",
            "-subj",
            "/CN=pss",
            "-days",
            "30",
            "-config",
            "ext.cnf",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sha256",
            "-out",
            "pss.pem",
        ],
    );
    let pss = parse_certificate(&read(d, "pss.pem")).unwrap();
    assert_eq!(pss.signature_algorithm, "SHA256WITHRSASSA_PSS");
    assert!(pss.is_rsassa_pss());

    // An Ed25519 certificate parses, but its key is not one of ACM's.
    openssl(d, &["genpkey", "-algorithm", "ED25519", "-out", "ed.key"]);
    openssl(
        d,
        &[
            "req", "-x509", "-new", "-key", "ed.key", "-subj", "/CN=ed", "-days", "30", "-config", "ext.cnf", "-out",
            "ed.pem",
        ],
    );
    let ed = parse_certificate(&read(d, "ed.pem")).unwrap();
    assert_eq!(ed.key_algorithm, None);
    assert_eq!(ed.signature_algorithm, "ED25519");
    assert!(private_key_matches(&ed, &read(d, "ed.key")).is_err());
}
