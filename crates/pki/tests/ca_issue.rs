//! The generated CA end to end: leaves for every key type, checked by `openssl verify` and by
//! reading every extension back; stored material round trips; CRLs verify.
#![allow(clippy::disallowed_methods)] // a test or benchmark on the real clock

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use carapace_pki::crypto::MasterKey;
use carapace_pki::lint::{self, CaRole};
use carapace_pki::{
    CaError, CaMaterial, CaProfile, CertificateAuthority, Hierarchy, KeyAlgorithm, KeyFamily, LeafRequest, LeafUsage,
    PrivateKey, RevokedSerial, generate_key, parse_certificate, parse_certificates, private_key_matches,
};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};

const BASE_URL: &str = "http://127.0.0.1:4566";

struct Fixture {
    ca: CertificateAuthority,
    material: CaMaterial,
    master: MasterKey,
}

/// One CA for the whole file: generation costs a few RSA keys.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let master = MasterKey::generate().unwrap();
        let (ca, material) = CertificateAuthority::generate(
            &CaProfile::new("Carapace", "http://127.0.0.1:4566"),
            OffsetDateTime::now_utc(),
            &master,
        )
        .unwrap();
        Fixture { ca, material, master }
    })
}

/// One key per algorithm, generated once (RSA-4096 takes a while).
fn key(alg: KeyAlgorithm) -> &'static PrivateKey {
    static KEYS: OnceLock<Vec<(KeyAlgorithm, PrivateKey)>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        let algs = [
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::Rsa3072,
            KeyAlgorithm::Rsa4096,
            KeyAlgorithm::EcPrime256v1,
            KeyAlgorithm::EcSecp384r1,
            KeyAlgorithm::EcSecp521r1,
        ];
        let handles: Vec<_> =
            algs.into_iter().map(|a| std::thread::spawn(move || (a, generate_key(a).unwrap()))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    &keys.iter().find(|(a, _)| *a == alg).unwrap().1
}

fn request(now: OffsetDateTime) -> LeafRequest {
    LeafRequest {
        common_name: "example.com".into(),
        sans: vec!["*.example.com".into(), "www.example.com".into()],
        ip_addresses: Vec::new(),
        not_before: now - Duration::minutes(5),
        not_after: now + Duration::days(395),
        serial: None,
        base_url: BASE_URL.into(),
    }
}

/// Runs `openssl verify` on leaf + chain against the root; returns (success, output).
fn openssl_verify(dir: &Path, root: &str, chain: &str, leaf: &str, extra: &[&str]) -> (bool, String) {
    std::fs::write(dir.join("root.pem"), root).unwrap();
    std::fs::write(dir.join("chain.pem"), chain).unwrap();
    std::fs::write(dir.join("leaf.pem"), leaf).unwrap();
    let out = Command::new("/usr/bin/openssl")
        .arg("verify")
        .args(extra)
        .arg("-CAfile")
        .arg(dir.join("root.pem"))
        .arg("-untrusted")
        .arg(dir.join("chain.pem"))
        .arg(dir.join("leaf.pem"))
        .output()
        .expect("run openssl");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && text.contains(": OK"), text)
}

#[test]
fn ca_hierarchy_looks_like_amazons() {
    let f = fixture();
    let root = parse_certificate(f.ca.root_pem()).unwrap();
    assert_eq!(root.subject, "C=XX, O=Carapace, CN=Carapace Root CA 1");
    assert!(root.is_ca && root.is_self_issued);
    assert_eq!(root.key_algorithm, Some(KeyAlgorithm::Rsa2048));
    assert!(root.not_after - root.not_before > Duration::days(20 * 365));
    assert!(root.key_usages.contains(&"CERTIFICATE_SIGNING".to_string()));

    let rsa = parse_certificate(f.ca.intermediate_pem(KeyFamily::Rsa)).unwrap();
    assert_eq!(rsa.common_name.as_deref(), Some("Carapace RSA 2048 M01"));
    assert_eq!(rsa.key_algorithm, Some(KeyAlgorithm::Rsa2048));
    assert_eq!((rsa.is_ca, rsa.path_len_constraint), (true, Some(0)));
    assert_eq!(rsa.authority_key_id, root.subject_key_id);
    assert_eq!(rsa.signature_algorithm, "SHA256WITHRSA");

    let ec = parse_certificate(f.ca.intermediate_pem(KeyFamily::Ec)).unwrap();
    assert_eq!(ec.common_name.as_deref(), Some("Carapace ECDSA 256 M01"));
    assert_eq!(ec.key_algorithm, Some(KeyAlgorithm::EcPrime256v1));
    assert_eq!((ec.is_ca, ec.path_len_constraint), (true, Some(0)));
    assert_eq!(ec.issuer, "Carapace");

    assert_eq!(f.ca.intermediate_id(KeyFamily::Rsa), hex::encode(rsa.subject_key_id.unwrap()));
    assert_eq!(f.ca.intermediates().len(), 2);
    assert!(f.ca.has_root_key());
    let (pem, der) = f.ca.intermediate_by_id(f.ca.intermediate_id(KeyFamily::Ec)).unwrap();
    assert_eq!(pem, f.ca.intermediate_pem(KeyFamily::Ec));
    assert_eq!(der, ec.der);
    assert!(f.ca.intermediate_by_id("nope").is_none());

    // Both intermediates verify against the root with openssl (strict mode).
    let dir = tempfile::tempdir().unwrap();
    for family in [KeyFamily::Rsa, KeyFamily::Ec] {
        let (ok, out) = openssl_verify(
            dir.path(),
            f.ca.root_pem(),
            f.ca.root_pem(),
            f.ca.intermediate_pem(family),
            &["-x509_strict"],
        );
        assert!(ok, "{family:?}: {out}");
    }
}

#[test]
fn leaves_of_every_key_type_chain_and_carry_acm_extensions() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    for alg in [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::EcPrime256v1,
        KeyAlgorithm::EcSecp384r1,
        KeyAlgorithm::EcSecp521r1,
    ] {
        let req = request(now);
        let issued = f.ca.issue(&req, key(alg), now).unwrap();
        let ctx = format!("{alg}");

        // openssl accepts the chain, strictly, for TLS server use.
        let (ok, out) = openssl_verify(
            dir.path(),
            f.ca.root_pem(),
            &issued.chain_pem,
            &issued.certificate_pem,
            &["-x509_strict", "-purpose", "sslserver", "-verify_hostname", "foo.example.com"],
        );
        assert!(ok, "{ctx}: {out}");

        // The chain is intermediate then root; the intermediate matches the key family.
        let chain = parse_certificates(&issued.chain_pem).unwrap();
        assert_eq!(chain.len(), 2, "{ctx}");
        assert_eq!(chain[1].der, parse_certificate(f.ca.root_pem()).unwrap().der);
        let expected_intermediate = match alg.family() {
            KeyFamily::Rsa => "Carapace RSA 2048 M01",
            KeyFamily::Ec => "Carapace ECDSA 256 M01",
        };
        assert_eq!(chain[0].common_name.as_deref(), Some(expected_intermediate), "{ctx}");

        // What we report equals what is in the certificate.
        let leaf = parse_certificate(&issued.certificate_pem).unwrap();
        assert_eq!(leaf.key_algorithm, Some(alg), "{ctx}");
        assert_eq!(leaf.subject, "CN=example.com");
        assert_eq!(issued.subject, leaf.subject);
        assert_eq!(leaf.issuer_dn, format!("C=XX, O=Carapace, CN={expected_intermediate}"));
        assert_eq!(issued.issuer, "Carapace");
        assert_eq!(leaf.issuer, "Carapace");
        assert_eq!(leaf.subject_alternative_names, vec!["example.com", "*.example.com", "www.example.com"]);
        assert_eq!(issued.subject_alternative_names, leaf.subject_alternative_names);
        assert_eq!(leaf.serial_hex, issued.serial_hex);
        assert_eq!(leaf.not_before, issued.not_before);
        assert_eq!(leaf.not_after, issued.not_after);
        assert_eq!(leaf.not_before.unix_timestamp(), req.not_before.unix_timestamp());
        assert_eq!(leaf.not_after.unix_timestamp(), req.not_after.unix_timestamp());
        assert_eq!(leaf.key_usages, issued.key_usages);
        let expected_ku: &[&str] = match alg.family() {
            KeyFamily::Rsa => &["DIGITAL_SIGNATURE", "KEY_ENCIPHERMENT"],
            KeyFamily::Ec => &["DIGITAL_SIGNATURE"],
        };
        assert_eq!(leaf.key_usages, expected_ku, "{ctx}");
        let ekus: Vec<_> = leaf.extended_key_usages.iter().map(|e| e.name.clone()).collect();
        assert_eq!(ekus, vec!["TLS_WEB_SERVER_AUTHENTICATION"]);
        assert_eq!(issued.extended_key_usages, ekus);
        assert_eq!(leaf.signature_algorithm, issued.signature_algorithm);
        let expected_sig = match alg.family() {
            KeyFamily::Rsa => "SHA256WITHRSA",
            KeyFamily::Ec => "SHA256WITHECDSA",
        };
        assert_eq!(leaf.signature_algorithm, expected_sig);
        assert!(!leaf.is_ca);
        assert_eq!(leaf.version, 3);

        // Serial: 16 bytes, positive, not zero.
        let raw: Vec<u8> = leaf.serial_hex.split(':').map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
        assert_eq!(raw.len(), 16, "{ctx}: {}", leaf.serial_hex);
        assert_eq!(raw[0] & 0x80, 0);
        assert!(raw.iter().any(|b| *b != 0));

        // Key identifiers link leaf and intermediate.
        assert_eq!(leaf.authority_key_id, chain[0].subject_key_id);
        assert_eq!(hex::encode(leaf.authority_key_id.clone().unwrap()), issued.intermediate_id);
        assert!(leaf.subject_key_id.is_some());

        // AIA, CRL DP, basicConstraints and policies, read with x509-parser directly.
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf.der).unwrap();
        let id = &issued.intermediate_id;
        let mut seen = Vec::new();
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::AuthorityInfoAccess(aia) => {
                    let pairs: Vec<(String, String)> = aia
                        .accessdescs
                        .iter()
                        .map(|d| {
                            let GeneralName::URI(uri) = d.access_location else { panic!("not a URI") };
                            (d.access_method.to_id_string(), uri.to_string())
                        })
                        .collect();
                    assert_eq!(
                        pairs,
                        vec![
                            ("1.3.6.1.5.5.7.48.1".to_string(), format!("{BASE_URL}/ocsp")),
                            ("1.3.6.1.5.5.7.48.2".to_string(), format!("{BASE_URL}/ca/{id}.crt")),
                        ]
                    );
                    seen.push("aia");
                }
                ParsedExtension::CRLDistributionPoints(dps) => {
                    let Some(DistributionPointName::FullName(names)) = &dps.points[0].distribution_point else {
                        panic!("no full name")
                    };
                    assert!(matches!(names[0], GeneralName::URI(u) if u == format!("{BASE_URL}/crl/{id}.crl")));
                    seen.push("crl");
                }
                ParsedExtension::BasicConstraints(bc) => {
                    assert!(!bc.ca && ext.critical);
                    seen.push("bc");
                }
                ParsedExtension::KeyUsage(_) => {
                    assert!(ext.critical);
                    seen.push("ku");
                }
                ParsedExtension::CertificatePolicies(policies) => {
                    assert_eq!(policies[0].policy_id.to_id_string(), "2.23.140.1.2.1");
                    seen.push("policy");
                }
                _ => {}
            }
        }
        seen.sort();
        assert_eq!(seen, vec!["aia", "bc", "crl", "ku", "policy"], "{ctx}");

        // The key matches its certificate, and not another one.
        assert!(private_key_matches(&leaf, &key(alg).to_pem()).unwrap(), "{ctx}");
        let other = if alg == KeyAlgorithm::Rsa2048 { KeyAlgorithm::Rsa3072 } else { KeyAlgorithm::Rsa2048 };
        assert!(!private_key_matches(&leaf, &key(other).to_pem()).unwrap(), "{ctx}");
    }
}

#[test]
fn hostname_outside_the_sans_is_refused_by_openssl() {
    let f = fixture();
    let now = OffsetDateTime::now_utc();
    let issued = f.ca.issue(&request(now), key(KeyAlgorithm::EcPrime256v1), now).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ok, _) = openssl_verify(
        dir.path(),
        f.ca.root_pem(),
        &issued.chain_pem,
        &issued.certificate_pem,
        &["-verify_hostname", "a.b.example.com"],
    );
    assert!(!ok, "wildcards cover one label only");
    // And a leaf is not accepted when the chain is the wrong intermediate.
    let (ok, _) = openssl_verify(
        dir.path(),
        f.ca.root_pem(),
        f.ca.intermediate_pem(KeyFamily::Rsa),
        &issued.certificate_pem,
        &[],
    );
    assert!(!ok);
}

#[test]
fn explicit_serial_validity_clamping_and_bad_requests() {
    let f = fixture();
    let now = OffsetDateTime::now_utc();
    let k = key(KeyAlgorithm::EcPrime256v1);

    let mut req = request(now);
    req.serial = Some([0x80; 16]);
    let issued = f.ca.issue(&req, k, now).unwrap();
    // A serial with the top bit set gets a sign byte, as DER requires and ACM shows.
    assert_eq!(issued.serial_hex, format!("00:{}", vec!["80"; 16].join(":")));
    assert_eq!(parse_certificate(&issued.certificate_pem).unwrap().serial_hex, issued.serial_hex);

    // Two random serials differ.
    let a = f.ca.issue(&request(now), k, now).unwrap();
    let b = f.ca.issue(&request(now), k, now).unwrap();
    assert_ne!(a.serial_hex, b.serial_hex);

    // A leaf never outlives its intermediate.
    let mut req = request(now);
    req.not_after = now + Duration::days(365 * 30);
    let issued = f.ca.issue(&req, k, now).unwrap();
    let inter = parse_certificate(f.ca.intermediate_pem(KeyFamily::Ec)).unwrap();
    assert_eq!(issued.not_after, inter.not_after);

    // Issuing after the intermediate expired (or before it starts) is refused.
    let late = now + Duration::days(365 * 11);
    assert!(matches!(f.ca.issue(&request(late), k, late), Err(CaError::IssuerNotValid { .. })));
    let early = now - Duration::days(1);
    assert!(matches!(f.ca.issue(&request(early), k, early), Err(CaError::IssuerNotValid { .. })));

    let bad = |mutate: &dyn Fn(&mut LeafRequest)| {
        let mut req = request(now);
        mutate(&mut req);
        f.ca.issue(&req, k, now).unwrap_err()
    };
    assert!(matches!(bad(&|r| r.common_name = String::new()), CaError::InvalidRequest(_)));
    assert!(matches!(bad(&|r| r.common_name = "a".repeat(65)), CaError::InvalidRequest(_)));
    assert!(matches!(bad(&|r| r.sans.push("not a name".into())), CaError::InvalidRequest(_)));
    assert!(matches!(bad(&|r| r.not_after = r.not_before), CaError::InvalidRequest(_)));
    assert!(matches!(bad(&|r| r.serial = Some([0; 16])), CaError::InvalidRequest(_)));
    assert!(matches!(bad(&|r| r.base_url = "http://h st".into()), CaError::InvalidRequest(_)));
}

#[test]
fn trailing_slash_in_base_url_is_ignored() {
    let f = fixture();
    let now = OffsetDateTime::now_utc();
    let mut req = request(now);
    req.base_url = format!("{BASE_URL}/");
    let issued = f.ca.issue(&req, key(KeyAlgorithm::Rsa2048), now).unwrap();
    let text = String::from_utf8_lossy(&parse_certificate(&issued.certificate_pem).unwrap().der).to_string();
    assert!(text.contains(&format!("{BASE_URL}/ocsp")));
    assert!(!text.contains("4566//"));
}

#[test]
fn material_roundtrips_and_needs_the_right_master_key() {
    let f = fixture();
    let json = serde_json::to_string(&f.material).unwrap();
    // Private keys never appear in clear in the stored form.
    assert!(!json.contains("PRIVATE KEY"));
    let material: CaMaterial = serde_json::from_str(&json).unwrap();
    let loaded = CertificateAuthority::from_material(&material, &f.master).unwrap();
    assert_eq!(loaded.root_pem(), f.ca.root_pem());
    assert_eq!(loaded.intermediate_pem(KeyFamily::Rsa), f.ca.intermediate_pem(KeyFamily::Rsa));
    assert_eq!(loaded.intermediate_id(KeyFamily::Ec), f.ca.intermediate_id(KeyFamily::Ec));

    // The reloaded CA issues leaves that chain to the same root.
    let now = OffsetDateTime::now_utc();
    let issued = loaded.issue(&request(now), key(KeyAlgorithm::Rsa2048), now).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = openssl_verify(dir.path(), f.ca.root_pem(), &issued.chain_pem, &issued.certificate_pem, &[]);
    assert!(ok, "{out}");

    // Another master key cannot open the keys.
    let other = MasterKey::generate().unwrap();
    assert!(matches!(CertificateAuthority::from_material(&material, &other), Err(CaError::Unseal(_))));

    // A key sealed for one certificate does not open for another (keys are bound to certs).
    let mut swapped = material.clone();
    swapped.ecdsa_intermediate.private_key_sealed = material.rsa_intermediate.private_key_sealed.clone();
    assert!(matches!(CertificateAuthority::from_material(&swapped, &f.master), Err(CaError::Unseal(_))));

    // An intermediate from another CA is refused.
    let (_, foreign) =
        CertificateAuthority::generate(&CaProfile::new("Other", "http://127.0.0.1:4566"), now, &f.master).unwrap();
    let mut mixed = material.clone();
    mixed.rsa_intermediate = foreign.rsa_intermediate;
    assert!(matches!(CertificateAuthority::from_material(&mixed, &f.master), Err(CaError::Material(_))));

    let mut future = material;
    future.version = 2;
    assert!(matches!(CertificateAuthority::from_material(&future, &f.master), Err(CaError::Material(_))));
}

#[test]
fn parse_reports_each_key_algorithm() {
    let f = fixture();
    let now = OffsetDateTime::now_utc();
    for alg in [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::EcPrime256v1,
        KeyAlgorithm::EcSecp384r1,
        KeyAlgorithm::EcSecp521r1,
    ] {
        let issued = f.ca.issue(&request(now), key(alg), now).unwrap();
        let parsed = parse_certificate(&issued.certificate_pem).unwrap();
        assert_eq!(parsed.key_algorithm, Some(alg));
        assert_eq!(parsed.public_key_der, key(alg).public_key_der());
    }
}

#[test]
fn crl_verifies_with_openssl_and_lists_revoked_serials() {
    let f = fixture();
    let now = OffsetDateTime::now_utc();
    let id = f.ca.intermediate_id(KeyFamily::Rsa).to_string();
    let revoked = vec![
        RevokedSerial { serial: vec![0x40, 1, 2, 3], revoked_at: now - Duration::hours(1), reason_code: Some(1) },
        RevokedSerial { serial: vec![0x00, 0x90, 9], revoked_at: now, reason_code: None },
    ];
    let der = f.ca.sign_crl(&id, &revoked, 7, now, now + Duration::days(1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("crl.der"), &der).unwrap();
    std::fs::write(dir.path().join("ca.pem"), f.ca.intermediate_pem(KeyFamily::Rsa)).unwrap();
    let out = Command::new("/usr/bin/openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(dir.path().join("crl.der"))
        .arg("-CAfile")
        .arg(dir.path().join("ca.pem"))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains("40010203"), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains("X509v3 CRL Number"), "{text}");
    assert!(matches!(f.ca.sign_crl("unknown", &[], 1, now, now), Err(CaError::UnknownIntermediate(_))));
}

/// The URIs of one kind of general name in an extension's parsed value.
fn uris<'a>(names: impl IntoIterator<Item = &'a GeneralName<'a>>) -> Vec<String> {
    names
        .into_iter()
        .map(|n| match n {
            GeneralName::URI(uri) => uri.to_string(),
            other => panic!("not a URI: {other:?}"),
        })
        .collect()
}

/// The profiles of BR 7.1.2.1 (root) and 7.1.2.6 (TLS subordinate CA), read back; pkilint
/// (tests/python/test_pkilint.py) lints the same certificates as the server issues them.
#[test]
fn ca_certificates_carry_the_baseline_requirements_profiles() {
    let f = fixture();
    let root_id = f.ca.root_id().to_owned();
    let (_, root) = x509_parser::parse_x509_certificate(f.ca.root_der()).unwrap();
    let root_ski = root.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
        _ => None,
    });
    assert_eq!(root_id, hex::encode(root_ski.unwrap()));
    let mut root_extensions: Vec<&str> = Vec::new();
    for ext in root.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => {
                assert!(bc.ca && bc.path_len_constraint.is_none() && ext.critical);
                root_extensions.push("bc");
            }
            ParsedExtension::KeyUsage(ku) => {
                assert!(ku.key_cert_sign() && ku.crl_sign() && ext.critical);
                root_extensions.push("ku");
            }
            ParsedExtension::SubjectKeyIdentifier(_) => root_extensions.push("ski"),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                assert_eq!(aki.key_identifier.as_ref().map(|k| hex::encode(k.0)), Some(root_id.clone()));
                root_extensions.push("aki");
            }
            other => panic!("a root carries no {other:?}"),
        }
    }
    root_extensions.sort();
    assert_eq!(root_extensions, ["aki", "bc", "ku", "ski"]);
    assert_eq!(f.ca.certificate_by_id(&root_id), Some((f.ca.root_pem(), f.ca.root_der())));

    for family in [KeyFamily::Rsa, KeyFamily::Ec] {
        let parsed = parse_certificate(f.ca.intermediate_pem(family)).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&parsed.der).unwrap();
        let mut seen = Vec::new();
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::CRLDistributionPoints(dps) => {
                    let Some(DistributionPointName::FullName(names)) = &dps.points[0].distribution_point else {
                        panic!("no full name")
                    };
                    assert_eq!(uris(names), [format!("{BASE_URL}/crl/{root_id}.crl")]);
                    seen.push("crl");
                }
                ParsedExtension::AuthorityInfoAccess(aia) => {
                    // caIssuers only: the root answers no OCSP (BR 7.1.2.10.3 makes it optional).
                    assert_eq!(aia.accessdescs.len(), 1);
                    assert_eq!(aia.accessdescs[0].access_method.to_id_string(), "1.3.6.1.5.5.7.48.2");
                    assert_eq!(uris([&aia.accessdescs[0].access_location]), [format!("{BASE_URL}/ca/{root_id}.crt")]);
                    seen.push("aia");
                }
                ParsedExtension::CertificatePolicies(policies) => {
                    assert_eq!(policies.len(), 1);
                    assert_eq!(policies[0].policy_id.to_id_string(), "2.23.140.1.2.1");
                    seen.push("policy");
                }
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    assert!(eku.server_auth && eku.client_auth && !eku.any);
                    seen.push("eku");
                }
                _ => {}
            }
        }
        seen.sort();
        assert_eq!(seen, ["aia", "crl", "eku", "policy"], "{family:?}");
        assert_eq!(parsed.subject, format!("C=XX, O=Carapace, CN={}", parsed.common_name.unwrap()));
    }

    // The CA's own checks find nothing in what it generates.
    let now = OffsetDateTime::now_utc();
    assert_eq!(lint::ca_certificate(f.ca.root_pem(), CaRole::Root, now).unwrap(), []);
    for family in [KeyFamily::Rsa, KeyFamily::Ec] {
        assert_eq!(lint::ca_certificate(f.ca.intermediate_pem(family), CaRole::Subordinate, now).unwrap(), []);
    }
}

#[test]
fn the_subject_comes_from_the_profile_and_is_checked() {
    let now = OffsetDateTime::now_utc();
    let master = MasterKey::generate().unwrap();
    let profile = CaProfile {
        country: "DE".into(),
        organization: "Beispiel GmbH".into(),
        state: Some("Berlin".into()),
        locality: Some("Kreuzberg".into()),
        ..CaProfile::new("Beispiel", "http://pki.beispiel.example.com/")
    };
    let (ca, _) = CertificateAuthority::generate(&profile, now, &master).unwrap();
    let root = parse_certificate(ca.root_pem()).unwrap();
    // BR 7.1.4.1's order: country, state, locality, organisation, common name.
    assert_eq!(root.subject, "C=DE, ST=Berlin, L=Kreuzberg, O=Beispiel GmbH, CN=Beispiel Root CA 1");
    let inter = parse_certificate(ca.intermediate_pem(KeyFamily::Ec)).unwrap();
    assert_eq!(inter.subject, "C=DE, ST=Berlin, L=Kreuzberg, O=Beispiel GmbH, CN=Beispiel ECDSA 256 M01");
    // countryName is a PrintableString (RFC 5280 Appendix A), the rest UTF8String.
    let (_, cert) = x509_parser::parse_x509_certificate(&root.der).unwrap();
    let tags: Vec<_> = cert.subject().iter_attributes().map(|a| a.attr_value().header.tag()).collect();
    use x509_parser::der_parser::asn1_rs::Tag;
    assert_eq!(tags, [Tag::PrintableString, Tag::Utf8String, Tag::Utf8String, Tag::Utf8String, Tag::Utf8String]);
    // The trailing slash of the base URL is not doubled.
    let text = String::from_utf8_lossy(&inter.der).into_owned();
    assert!(text.contains(&format!("http://pki.beispiel.example.com/crl/{}.crl", ca.root_id())), "{text}");

    for bad in [
        CaProfile { country: "de".into(), ..profile.clone() },
        CaProfile { country: "DEU".into(), ..profile.clone() },
        CaProfile { organization: " ".into(), ..profile.clone() },
        CaProfile { state: Some("x".repeat(129)), ..profile.clone() },
        // `<name> ECDSA 256 M01` would exceed the 64 characters of a common name.
        CaProfile { name: "n".repeat(51), ..profile.clone() },
        CaProfile { base_url: "http://pki.example.com/ü".into(), ..profile.clone() },
    ] {
        assert!(
            matches!(CertificateAuthority::generate(&bad, now, &master), Err(CaError::InvalidRequest(_))),
            "{bad:?}"
        );
    }
}

/// The root's CRL: signed by the root, empty (Carapace revokes no intermediate), and what
/// `openssl verify -crl_check_all` needs for the intermediate's link of the chain.
#[test]
fn the_root_signs_its_crl_and_the_whole_chain_passes_a_crl_check() {
    let f = fixture();
    let now = OffsetDateTime::now_utc();
    assert!(f.ca.signs_crl(f.ca.root_id()) && f.ca.signs_crl(f.ca.intermediate_id(KeyFamily::Ec)));
    assert!(!f.ca.signs_crl("00"));
    let dir = tempfile::tempdir().unwrap();
    let pem = |der: &[u8]| pem::encode(&pem::Pem::new("X509 CRL", der.to_vec()));
    let root_crl = f.ca.sign_crl(f.ca.root_id(), &[], 1, now, now + Duration::days(1)).unwrap();
    let inter_crl = f.ca.sign_crl(f.ca.intermediate_id(KeyFamily::Ec), &[], 1, now, now + Duration::days(1)).unwrap();
    std::fs::write(dir.path().join("root.crl"), pem(&root_crl)).unwrap();
    std::fs::write(dir.path().join("inter.crl"), pem(&inter_crl)).unwrap();
    let (root_crl_file, inter_crl_file) = (dir.path().join("root.crl"), dir.path().join("inter.crl"));
    let (root_crl_file, inter_crl_file) = (root_crl_file.to_str().unwrap(), inter_crl_file.to_str().unwrap());
    let issued = f.ca.issue(&request(now), key(KeyAlgorithm::EcPrime256v1), now).unwrap();
    let args = ["-crl_check_all", "-CRLfile", root_crl_file, "-CRLfile", inter_crl_file];
    let (ok, out) = openssl_verify(dir.path(), f.ca.root_pem(), &issued.chain_pem, &issued.certificate_pem, &args);
    assert!(ok, "{out}");
    // Without the root's CRL, the intermediate's link cannot be checked.
    let args = ["-crl_check_all", "-CRLfile", inter_crl_file];
    let (ok, out) = openssl_verify(dir.path(), f.ca.root_pem(), &issued.chain_pem, &issued.certificate_pem, &args);
    assert!(!ok && out.contains("unable to get certificate CRL"), "{out}");
}

#[test]
fn rsa1024_cannot_be_generated() {
    assert!(matches!(
        generate_key(KeyAlgorithm::Rsa1024),
        Err(CaError::UnsupportedKeyAlgorithm(KeyAlgorithm::Rsa1024))
    ));
}

/// The N2 hierarchy: leaves of `N2` verify against the N2 root alone, leaves of
/// `N2CrossSigned` against the main root alone (through the cross-signed N2 root), each with
/// the extended key usages asked for; the hierarchy survives a round trip through stored
/// material; its root signs the CRL of its intermediates; and its certificates are served by id.
#[test]
fn n2_leaves_chain_to_the_n2_root_or_through_the_cross_signed_root() {
    let f = fixture();
    let now = OffsetDateTime::now_utc();
    let profile = CaProfile::new("Carapace", BASE_URL);
    let mut material = f.material.clone();
    assert!(!f.ca.issues_in(Hierarchy::N2));
    let ca = f.ca.add_n2(&mut material, &profile, now, &f.master).unwrap();
    assert!(ca.issues_in(Hierarchy::N2) && ca.issues_in(Hierarchy::N2CrossSigned));
    let json = serde_json::to_string(&material).unwrap();
    let ca = CertificateAuthority::from_material(&serde_json::from_str(&json).unwrap(), &f.master).unwrap();
    let n2_root = ca.n2_root_pem().unwrap().to_owned();
    let parsed_root = parse_certificate(&n2_root).unwrap();
    assert_eq!(parsed_root.subject, "C=XX, O=Carapace, CN=Carapace Root CA N2");
    assert!(parsed_root.is_ca && parsed_root.is_self_issued);

    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (Hierarchy::N2, LeafUsage::ClientAndServerAuth, vec!["serverAuth", "clientAuth"]),
        (Hierarchy::N2, LeafUsage::ClientAuthOnly, vec!["clientAuth"]),
        (Hierarchy::N2CrossSigned, LeafUsage::ClientAndServerAuth, vec!["serverAuth", "clientAuth"]),
    ];
    for (hierarchy, usage, purposes) in cases {
        for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcPrime256v1] {
            let issued = ca.issue_in(hierarchy, usage, &request(now), key(alg), now).unwrap();
            let chain = parse_certificates(&issued.chain_pem).unwrap();
            let (trusted, expected_len) = match hierarchy {
                Hierarchy::N2 => (n2_root.as_str(), 2),
                _ => (ca.root_pem(), 3),
            };
            assert_eq!(chain.len(), expected_len, "{hierarchy:?}");
            assert!(issued.chain_pem.ends_with(trusted));
            let (ok, text) = openssl_verify(dir.path(), trusted, &issued.chain_pem, &issued.certificate_pem, &[]);
            assert!(ok, "{hierarchy:?} {alg:?}: {text}");
            for purpose in ["sslserver", "sslclient"] {
                let wanted = purposes.contains(&if purpose == "sslserver" { "serverAuth" } else { "clientAuth" });
                let (ok, text) = openssl_verify(
                    dir.path(),
                    trusted,
                    &issued.chain_pem,
                    &issued.certificate_pem,
                    &["-purpose", purpose],
                );
                assert_eq!(ok, wanted, "{hierarchy:?} {usage:?} {purpose}: {text}");
            }
            // The main root alone does not vouch for an `N2` leaf: it ships no cross certificate.
            if hierarchy == Hierarchy::N2 {
                let (ok, _) =
                    openssl_verify(dir.path(), ca.root_pem(), &issued.chain_pem, &issued.certificate_pem, &[]);
                assert!(!ok, "an N2 leaf must not verify against the main root without the cross certificate");
            }
            assert!(ca.intermediate_by_id(&issued.intermediate_id).is_some());
            assert!(ca.signs_crl(&issued.intermediate_id));
        }
    }
    let n2_root_id = hex::encode(parsed_root.subject_key_id.clone().unwrap());
    assert_eq!(ca.certificate_by_id(&n2_root_id).map(|(pem, _)| pem), Some(n2_root.as_str()));
    assert!(ca.signs_crl(&n2_root_id));
    // A second call keeps the hierarchy it has.
    let before = material.n2.clone();
    ca.add_n2(&mut material, &profile, now, &f.master).unwrap();
    assert_eq!(material.n2, before);
    // A cross-signed root that is not the N2 root signed by the main root is refused.
    let mut tampered = material.clone();
    let n2 = tampered.n2.as_mut().unwrap();
    n2.cross_signed_pem = Some(n2.root_certificate_pem.clone());
    assert!(matches!(CertificateAuthority::from_material(&tampered, &f.master), Err(CaError::Material(_))));
}
