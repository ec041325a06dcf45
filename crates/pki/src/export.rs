//! Passphrase-encrypted PKCS#8 for ACM `ExportCertificate`.
//!
//! The format is PKCS#8 `EncryptedPrivateKeyInfo` (RFC 5208 §6) with PBES2 (RFC 8018 §6.2):
//! PBKDF2 with HMAC-SHA-256 derives an AES-256-CBC key from the passphrase. The ASN.1
//! structures come from the RustCrypto `pkcs8`/`pkcs5` crates, the cryptography from aws-lc-rs
//! (one crypto library for the whole service, and fast even in debug builds).

use std::num::NonZeroU32;

use aws_lc_rs::cipher::{AES_256, AES_256_KEY_LEN, EncryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey};
use pkcs8::der::Encode as _;
use pkcs8::der::asn1::OctetStringRef;
use pkcs8::pkcs5::pbes2;
use zeroize::Zeroizing;

use super::CaError;
use super::keys::{PrivateKey, encode_pem_secret};

/// PBKDF2 iterations for exported keys.
///
/// OWASP's 2023 figure for PBKDF2-HMAC-SHA256 is 600,000, which costs roughly a quarter of a
/// second of CPU per `ExportCertificate` call; an export is a file handed to its owner (ACM's
/// own exports open with `openssl` in well under that). 100,000 keeps offline guessing
/// expensive while keeping the API responsive on a small machine.
pub const PKCS8_PBKDF2_ITERATIONS: u32 = 100_000;

/// Encrypts `key` under `passphrase` as a `-----BEGIN ENCRYPTED PRIVATE KEY-----` document
/// (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC, random 16-byte salt and IV) that
/// `openssl pkey -passin` and every TLS library open.
pub fn encrypt_pkcs8_pem(key: &PrivateKey, passphrase: &[u8]) -> Result<Zeroizing<String>, CaError> {
    let failed = |what: &str| CaError::Export(what.to_owned());
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| failed("random salt"))?;
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| failed("random IV"))?;

    let iterations = NonZeroU32::new(PKCS8_PBKDF2_ITERATIONS).ok_or_else(|| failed("iterations"))?;
    let mut aes_key = Zeroizing::new([0u8; AES_256_KEY_LEN]);
    aws_lc_rs::pbkdf2::derive(aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256, iterations, &salt, passphrase, aes_key.as_mut());

    let cipher = UnboundCipherKey::new(&AES_256, aes_key.as_ref()).map_err(|_| failed("AES key"))?;
    let cipher = PaddedBlockEncryptingKey::cbc_pkcs7(cipher).map_err(|_| failed("AES-CBC"))?;
    // The buffer holds plaintext key material until encrypted in place.
    let mut data = Zeroizing::new(key.pkcs8_der().to_vec());
    cipher.less_safe_encrypt(&mut *data, EncryptionContext::Iv128(iv.into())).map_err(|_| failed("encryption"))?;

    let params = pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(PKCS8_PBKDF2_ITERATIONS, &salt, iv)
        .map_err(|e| CaError::Export(format!("PBES2 parameters: {e}")))?;
    let info = pkcs8::EncryptedPrivateKeyInfoRef {
        encryption_algorithm: params.into(),
        encrypted_data: OctetStringRef::new(&data).map_err(|e| CaError::Export(format!("encoding: {e}")))?,
    };
    let der = info.to_der().map_err(|e| CaError::Export(format!("encoding: {e}")))?;
    Ok(encode_pem_secret("ENCRYPTED PRIVATE KEY", &der))
}

#[cfg(test)]
mod tests {
    use pkcs8::der::Decode as _;

    use super::*;
    use crate::keys::{KeyAlgorithm, decode_private_pem, generate_key};

    #[test]
    fn structure_is_pbes2_pbkdf2_sha256_aes256cbc() {
        let key = generate_key(KeyAlgorithm::EcPrime256v1).unwrap();
        let pem = encrypt_pkcs8_pem(&key, b"correct horse").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        let block = decode_private_pem(&pem).unwrap();
        assert_eq!(block.label, "ENCRYPTED PRIVATE KEY");
        let info = pkcs8::EncryptedPrivateKeyInfoRef::from_der(&block.der).unwrap();
        let pkcs8::pkcs5::EncryptionScheme::Pbes2(params) = &info.encryption_algorithm else {
            panic!("not PBES2");
        };
        assert!(matches!(params.encryption, pbes2::EncryptionScheme::Aes256Cbc { .. }));
        let pbes2::Kdf::Pbkdf2(kdf) = &params.kdf else { panic!("not PBKDF2") };
        assert_eq!(kdf.iteration_count, PKCS8_PBKDF2_ITERATIONS);
        assert_eq!(kdf.prf, pbes2::Pbkdf2Prf::HmacWithSha256);
        // The ciphertext is not the plaintext key.
        assert_ne!(info.encrypted_data.as_bytes(), key.pkcs8_der());
        // Encrypting twice gives different documents (fresh salt and IV).
        assert_ne!(*encrypt_pkcs8_pem(&key, b"correct horse").unwrap(), *pem);
    }
}
