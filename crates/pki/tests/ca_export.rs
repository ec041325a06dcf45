//! ACM ExportCertificate's encrypted private keys open with `openssl` and give back the key.

use std::process::Command;

use carapace_pki::{KeyAlgorithm, encrypt_pkcs8_pem, generate_key};

#[test]
fn openssl_decrypts_exported_keys() {
    let dir = tempfile::tempdir().unwrap();
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcPrime256v1, KeyAlgorithm::EcSecp521r1] {
        let key = generate_key(alg).unwrap();
        // ACM passphrases are 4-128 bytes and may hold any printable character.
        let passphrase = "pä$$ w0rd:#1";
        let pem = encrypt_pkcs8_pem(&key, passphrase.as_bytes()).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        assert!(pem.ends_with("-----END ENCRYPTED PRIVATE KEY-----\n"));
        let path = dir.path().join("key.pem");
        std::fs::write(&path, pem.as_bytes()).unwrap();

        let out = Command::new("/usr/bin/openssl")
            .args(["pkey", "-passin", &format!("pass:{passphrase}"), "-in"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{alg}: {}", String::from_utf8_lossy(&out.stderr));
        // `openssl pkey` writes PKCS#8 PEM, the same encoding `to_pem` produces.
        assert!(String::from_utf8_lossy(&out.stdout) == key.to_pem().as_str(), "{alg}: decrypted key differs");

        // openssl reports the scheme we promise.
        let out = Command::new("/usr/bin/openssl").args(["asn1parse", "-in"]).arg(&path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        for needle in ["PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc"] {
            assert!(text.contains(needle), "{alg}: {needle} missing from\n{text}");
        }

        // A wrong passphrase does not open it.
        let out = Command::new("/usr/bin/openssl")
            .args(["pkey", "-passin", "pass:wrong", "-in"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{alg}: opened with the wrong passphrase");
    }
}
