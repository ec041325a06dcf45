//! Encryption at rest: the master key and the envelope format private keys are stored in.
//!
//! Every private key and secret Carapace stores (CA keys, leaf keys, access-key secrets) is
//! sealed with one 256-bit [`MasterKey`] using AES-256-GCM. The store therefore only ever holds
//! ciphertext; losing the database alone does not disclose keys, and losing the master key
//! makes the sealed material unrecoverable (by design — back it up with the database).
//!
//! ## Sealed format (version 1)
//!
//! ```text
//! 0x01 || nonce (12 bytes, random) || ciphertext || tag (16 bytes)
//! ```
//!
//! The caller's `aad` (additional authenticated data) is authenticated but not stored: it
//! names the record the ciphertext belongs to (a certificate ARN, an access key id), so a
//! sealed value copied into another record fails to open instead of silently decrypting.
//!
//! ## Key file format
//!
//! The master key file holds the key as 64 lowercase hexadecimal characters, optionally
//! followed by one newline (`\n` or `\r\n`). Hex rather than raw bytes so an operator can
//! back it up by copy-paste and see at a glance that the file is intact. Uppercase hex is
//! accepted on read.

use std::fmt;
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use zeroize::{Zeroize as _, Zeroizing};

/// Length of a master key in bytes (AES-256).
pub const MASTER_KEY_LEN: usize = 32;

/// The version byte at the start of every sealed value.
const SEAL_VERSION: u8 = 1;

/// Length of the AES-GCM tag appended to the ciphertext.
const TAG_LEN: usize = 16;

/// Errors loading the master key or opening sealed data.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key file could not be read or created.
    #[error("master key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The key file exists but does not hold a key in the documented format.
    #[error(
        "master key file {path} is malformed: expected 64 hexadecimal characters (32 bytes) and an optional newline, {detail}"
    )]
    MalformedKeyFile {
        /// The key file.
        path: PathBuf,
        /// What was wrong, without echoing any key material.
        detail: String,
    },
    /// AES-GCM refused to seal (see [`MasterKey::seal`]).
    #[error("sealing failed")]
    SealFailed,
    /// A key given as hex (not from a file) is malformed.
    #[error("master key must be 64 hexadecimal characters (32 bytes)")]
    MalformedKey,
    /// The random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// A sealed value is too short or carries an unknown version byte.
    #[error("sealed data is malformed ({0})")]
    MalformedSealed(&'static str),
    /// Authentication failed: wrong master key, wrong `aad`, or tampered data. AES-GCM cannot
    /// tell these apart, and saying which would help an attacker.
    #[error("sealed data could not be opened: wrong master key, wrong owner, or tampered data")]
    OpenFailed,
}

/// The 256-bit key that seals everything Carapace stores.
///
/// The raw bytes are zeroised when the key is dropped and never appear in `Debug` output.
pub struct MasterKey {
    bytes: Zeroizing<[u8; MASTER_KEY_LEN]>,
    /// The AES-GCM key schedule, built once (aws-lc clears it when dropped).
    aead: RandomizedNonceKey,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("fingerprint", &self.fingerprint()).finish_non_exhaustive()
    }
}

impl MasterKey {
    /// Builds a key from raw bytes.
    pub fn from_bytes(bytes: [u8; MASTER_KEY_LEN]) -> Self {
        let bytes = Zeroizing::new(bytes);
        // AES-256-GCM accepts any 32-byte key; `new` only fails on a wrong key length.
        let aead = match RandomizedNonceKey::new(&AES_256_GCM, bytes.as_ref()) {
            Ok(k) => k,
            Err(_) => unreachable!("a 32-byte key is always a valid AES-256 key"),
        };
        Self { bytes, aead }
    }

    /// Generates a fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| CryptoError::Random)?;
        Ok(Self::from_bytes(*bytes))
    }

    /// Parses a key written as 64 hex characters (surrounding whitespace ignored), e.g. from an
    /// environment variable.
    pub fn from_hex(hex_str: &str) -> Result<Self, CryptoError> {
        decode_hex_key(hex_str.trim()).map(Self::from_bytes).map_err(|_| CryptoError::MalformedKey)
    }

    /// Loads the key from `path`, or creates it there (mode 0600) if the file does not exist.
    ///
    /// The key is written to a temporary file created with `O_CREAT|O_EXCL` and mode 0600 in one
    /// system call (so it is never readable by others, not even briefly) and then hard-linked
    /// into place, so two processes starting at once cannot both create a key, and neither can
    /// read a half-written one: the loser reads the winner's. Missing parent directories are created with
    /// mode 0700. A key file readable or writable by group or others still loads, with a
    /// warning, because refusing to start would not undo the exposure.
    pub fn load_or_create(path: &Path) -> Result<Self, CryptoError> {
        match Self::load(path) {
            Err(CryptoError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
            other => return other,
        }
        let io = |source| CryptoError::Io { path: path.to_owned(), source };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(io)?;
        }
        let key = Self::generate()?;
        // Write the key to a private temporary file, then hard-link it into place: `link`
        // fails if the target exists, so a concurrent starter never sees a half-written file
        // and never replaces a key someone else already created.
        let tmp = path.with_file_name(format!(
            ".{}.{}.tmp",
            path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
            uuid::Uuid::new_v4().simple()
        ));
        let written = write_new_private_file(&tmp, &key).map_err(io);
        let linked = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io(e)),
        });
        let _ = std::fs::remove_file(&tmp);
        if !linked? {
            // Another process created the key first: use theirs.
            return Self::load(path);
        }
        tracing::info!(path = %path.display(), fingerprint = %key.fingerprint(), "created a new master key");
        Ok(key)
    }

    /// Loads the key from an existing file (see the module docs for the format).
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        let io = |source| CryptoError::Io { path: path.to_owned(), source };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mode = file.metadata().map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{:o}", mode & 0o777),
                "master key file is accessible to group or others; run `chmod 600` on it"
            );
        }
        // Read at most one byte more than the longest valid file, so a wrong path pointing
        // at a huge file fails fast.
        let mut text = Zeroizing::new(Vec::with_capacity(70));
        std::io::Read::by_ref(&mut file).take(67).read_to_end(&mut text).map_err(io)?;
        let malformed = |detail: String| CryptoError::MalformedKeyFile { path: path.to_owned(), detail };
        let body = strip_newline(&text);
        if body.len() != 2 * MASTER_KEY_LEN {
            let found = if text.len() > 66 { "more than 66".to_owned() } else { text.len().to_string() };
            return Err(malformed(format!("found {found} bytes")));
        }
        let body = std::str::from_utf8(body).map_err(|_| malformed("found non-hexadecimal bytes".into()))?;
        let bytes = decode_hex_key(body).map_err(|_| malformed("found non-hexadecimal characters".into()))?;
        Ok(Self::from_bytes(bytes))
    }

    /// A short, non-secret identifier of this key (16 hex characters), for logs and for
    /// telling an operator which key a database expects. Derived with HMAC so it reveals
    /// nothing about the key.
    pub fn fingerprint(&self) -> String {
        let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, self.bytes.as_ref());
        let tag = aws_lc_rs::hmac::sign(&hmac_key, b"carapace master key fingerprint v1");
        hex::encode(&tag.as_ref()[..8])
    }

    /// Encrypts `plaintext`, binding it to `aad` (the owner's identity, e.g. an ARN).
    ///
    /// Output: `version || nonce || ciphertext || tag` (see the module docs). Fails only if
    /// AES-GCM refuses (a plaintext beyond its limit of about 64 GiB, or no randomness for
    /// the nonce); callers on a request path answer that as an internal error.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(SEAL_VERSION);
        out.extend_from_slice(&[0u8; NONCE_LEN]);
        let body_start = out.len();
        out.extend_from_slice(plaintext);
        let mut body = out.split_off(body_start);
        let nonce =
            self.aead.seal_in_place_append_tag(Aad::from(aad), &mut body).map_err(|_| CryptoError::SealFailed)?;
        out[1..1 + NONCE_LEN].copy_from_slice(nonce.as_ref());
        out.append(&mut body);
        Ok(out)
    }

    /// Decrypts a value produced by [`seal`](Self::seal) with the same key and `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (&version, rest) = sealed.split_first().ok_or(CryptoError::MalformedSealed("empty"))?;
        if version != SEAL_VERSION {
            return Err(CryptoError::MalformedSealed("unknown version"));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::MalformedSealed("too short"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::MalformedSealed("bad nonce"))?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let len = self.aead.open_in_place(nonce, Aad::from(aad), &mut buf).map_err(|_| CryptoError::OpenFailed)?.len();
        // Drop the tag bytes; `truncate` keeps the allocation, which `Zeroizing` clears on drop.
        buf.truncate(len);
        Ok(buf)
    }
}

/// Creates `path` (which must not exist) with mode 0600 and writes the key as hex.
fn write_new_private_file(path: &Path, key: &MasterKey) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    let mut text = Zeroizing::new(hex::encode(key.bytes.as_ref()));
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// The key file's contents without one trailing `\n` or `\r\n`.
fn strip_newline(text: &[u8]) -> &[u8] {
    text.strip_suffix(b"\r\n").or_else(|| text.strip_suffix(b"\n")).unwrap_or(text)
}

fn decode_hex_key(text: &str) -> Result<[u8; MASTER_KEY_LEN], ()> {
    let mut bytes = [0u8; MASTER_KEY_LEN];
    if hex::decode_to_slice(text, &mut bytes).is_err() {
        bytes.zeroize();
        return Err(());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"secret key material", b"arn:aws:acm:us-east-1:1:certificate/a").unwrap();
        assert_eq!(sealed[0], SEAL_VERSION);
        assert_eq!(sealed.len(), 1 + NONCE_LEN + 19 + TAG_LEN);
        let opened = key.open(&sealed, b"arn:aws:acm:us-east-1:1:certificate/a").unwrap();
        assert_eq!(opened.as_slice(), b"secret key material");
        // Empty plaintexts work too (a sealed empty secret is still authenticated).
        let sealed = key.seal(b"", b"x").unwrap();
        assert!(key.open(&sealed, b"x").unwrap().is_empty());
    }

    #[test]
    fn nonces_are_fresh() {
        let key = MasterKey::generate().unwrap();
        let a = key.seal(b"same", b"aad").unwrap();
        let b = key.seal(b"same", b"aad").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn wrong_aad_fails() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"secret", b"owner-a").unwrap();
        assert!(matches!(key.open(&sealed, b"owner-b"), Err(CryptoError::OpenFailed)));
    }

    #[test]
    fn tampering_fails() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"secret", b"aad").unwrap();
        for i in 1..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(matches!(key.open(&t, b"aad"), Err(CryptoError::OpenFailed)), "flip at byte {i}");
        }
        let mut t = sealed.clone();
        t[0] = 2;
        assert!(matches!(key.open(&t, b"aad"), Err(CryptoError::MalformedSealed(_))));
        assert!(matches!(key.open(&sealed[..20], b"aad"), Err(CryptoError::MalformedSealed(_))));
        assert!(matches!(key.open(&[], b"aad"), Err(CryptoError::MalformedSealed(_))));
        assert!(matches!(key.open(&sealed[..sealed.len() - 1], b"aad"), Err(CryptoError::OpenFailed)));
    }

    #[test]
    fn wrong_key_fails() {
        let a = MasterKey::generate().unwrap();
        let b = MasterKey::generate().unwrap();
        let sealed = a.seal(b"secret", b"aad").unwrap();
        assert!(matches!(b.open(&sealed, b"aad"), Err(CryptoError::OpenFailed)));
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn debug_is_redacted() {
        let key = MasterKey::from_bytes([0xab; 32]);
        let dbg = format!("{key:?}");
        assert!(!dbg.to_lowercase().contains("abab"), "{dbg}");
        assert!(dbg.contains(&key.fingerprint()));
    }

    #[test]
    fn from_hex() {
        let hex_key = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let a = MasterKey::from_hex(hex_key).unwrap();
        let b = MasterKey::from_hex(&format!("  {}\n", hex_key.to_lowercase())).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert!(MasterKey::from_hex(&hex_key[2..]).is_err());
        assert!(MasterKey::from_hex(&hex_key.replace('0', "g")).is_err());
    }

    #[test]
    fn create_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/master.key");
        let created = MasterKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        let loaded = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(created.fingerprint(), loaded.fingerprint());
        let sealed = created.seal(b"x", b"y").unwrap();
        assert_eq!(loaded.open(&sealed, b"y").unwrap().as_slice(), b"x");
    }

    #[test]
    fn loads_without_newline_and_with_crlf() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let hex_key = "ff".repeat(32);
        std::fs::write(&path, &hex_key).unwrap();
        let a = MasterKey::load(&path).unwrap();
        std::fs::write(&path, format!("{hex_key}\r\n")).unwrap();
        let b = MasterKey::load(&path).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), MasterKey::from_bytes([0xff; 32]).fingerprint());
    }

    #[test]
    fn wide_permissions_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "01".repeat(32)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(MasterKey::load_or_create(&path).is_ok());
    }

    #[test]
    fn malformed_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        for body in
            ["abcd\n".to_owned(), "zz".repeat(32), "00".repeat(40), String::new(), format!("{}\n\n", "00".repeat(32))]
        {
            std::fs::write(&path, &body).unwrap();
            let err = MasterKey::load_or_create(&path).unwrap_err();
            assert!(matches!(err, CryptoError::MalformedKeyFile { .. }), "{body:?}: {err}");
            assert!(err.to_string().contains("bad.key"), "{err}");
        }
        // 32 raw bytes are not the documented format either.
        std::fs::write(&path, [7u8; 32]).unwrap();
        assert!(MasterKey::load(&path).is_err());
    }

    #[test]
    fn concurrent_creation_agrees() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race.key");
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let p = path.clone();
                std::thread::spawn(move || MasterKey::load_or_create(&p).map(|k| k.fingerprint()))
            })
            .collect();
        let prints: Vec<String> = handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
        let expect = MasterKey::load(&path).unwrap().fingerprint();
        assert!(prints.iter().all(|p| *p == expect), "{prints:?}");
    }
}
