//! The directory administrator password: kept only as a salted PBKDF2 hash.
//!
//! AWS never returns the password either; Carapace has no use for it beyond "it was
//! given", so the hash exists only so that a future `ResetUserPassword`-style check could
//! compare against it. The clear text is never written anywhere.

use std::num::NonZeroU32;

use aws_lc_rs::{pbkdf2, rand};
use zeroize::Zeroizing;

/// OWASP's 2023 recommendation for PBKDF2-HMAC-SHA512.
const ITERATIONS: u32 = 210_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 64;

/// Hashes `password` as `pbkdf2-sha512$<iterations>$<salt hex>$<hash hex>`.
pub fn hash(password: &str) -> Result<String, aws_lc_rs::error::Unspecified> {
    let mut salt = [0u8; SALT_LEN];
    rand::fill(&mut salt)?;
    Ok(hash_with(password, &salt, ITERATIONS))
}

fn hash_with(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut out = Zeroizing::new([0u8; HASH_LEN]);
    let rounds = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA512, rounds, salt, password.as_bytes(), out.as_mut());
    format!("pbkdf2-sha512${iterations}${}${}", hex::encode(salt), hex::encode(out.as_ref()))
}

/// Whether `password` matches a hash made by [`hash`], compared in constant time.
pub fn verify(password: &str, stored: &str) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    let [scheme, iterations, salt, expected] = parts.as_slice() else { return false };
    let (Ok(iterations), Ok(salt), Ok(expected)) =
        (iterations.parse::<u32>(), hex::decode(salt), hex::decode(expected))
    else {
        return false;
    };
    if *scheme != "pbkdf2-sha512" {
        return false;
    }
    let rounds = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    pbkdf2::verify(pbkdf2::PBKDF2_HMAC_SHA512, rounds, &salt, password.as_bytes(), &expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_and_verify() {
        let a = hash("Sup3r-Secret!").unwrap();
        let b = hash("Sup3r-Secret!").unwrap();
        assert_ne!(a, b, "salted");
        assert!(!a.contains("Sup3r"));
        assert!(a.starts_with("pbkdf2-sha512$210000$"));
        assert!(verify("Sup3r-Secret!", &a));
        assert!(!verify("Sup3r-Secret?", &a));
        assert!(!verify("Sup3r-Secret!", "garbage"));
        // Known answer for a fixed salt and one iteration (RFC 6070 style, SHA-512).
        let fixed = hash_with("password", b"salt", 1);
        assert!(fixed.ends_with("867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce"));
    }
}
