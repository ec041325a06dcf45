//! Wire models for the AWS APIs Carapace serves: ACM, Lightsail and Directory Service.
//!
//! - [`generated`] holds, per service, the typed DTOs (exact wire names, enums), a
//!   `SERVICE` table ([`schema::Service`]) and the `Operations` trait a wire crate
//!   implements, with the `dispatch` that calls it, generated from `models/` by
//!   `carapace-codegen`.
//! - [`operations`] holds what every generated trait shares: its default answer
//!   ([`operations::NotImplemented`]) and the failures and output of a dispatch.
//! - [`validate`] checks request input against that table and words violations the way
//!   AWS does (`1 validation error detected: ...`).
//! - [`cbor`] converts between JSON values and Smithy RPC v2 CBOR.
//!
//! This crate knows the models and nothing else: no HTTP, no handlers' rules, no storage.

#![warn(missing_docs)]

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub mod cbor;
pub mod generated;
pub mod operations;
mod pattern;
pub mod regions;
pub mod schema;
pub mod validate;

pub use generated::{acm, acm_pca, ds, lightsail};

/// A point in time as epoch seconds, the way the JSON protocols carry it (CBOR uses tag 1).
///
/// Whole seconds serialize as an integer (`1700000000`), others as a float
/// (`1700000000.123`); both are what the AWS SDKs parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub f64);

impl Timestamp {
    /// A timestamp at whole epoch seconds.
    pub fn from_unix(secs: i64) -> Self {
        // Epoch seconds fit f64's 53-bit mantissa for any date SDKs can represent.
        Self(secs as f64)
    }

    /// A timestamp from epoch milliseconds.
    pub fn from_unix_millis(millis: i64) -> Self {
        Self(millis as f64 / 1000.0)
    }

    /// Epoch seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0
    }
}

impl From<f64> for Timestamp {
    fn from(secs: f64) -> Self {
        Self(secs)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // 2^53: beyond it f64 → i64 is no longer exact, so stay with the float.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        if self.0.fract() == 0.0 && self.0.abs() < EXACT {
            s.serialize_i64(self.0 as i64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

/// Bytes, carried as a base64 string in JSON (and as a byte string in CBOR).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Blob(pub Vec<u8>);

impl Blob {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Takes the bytes out.
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }
}

impl From<Vec<u8>> for Blob {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl AsRef<[u8]> for Blob {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        decode_base64(&text).map(Blob).ok_or_else(|| serde::de::Error::custom("invalid base64 in blob"))
    }
}

/// Decodes base64 the way the SDKs send it: standard alphabet, padding optional.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    STANDARD.decode(text).or_else(|_| STANDARD_NO_PAD.decode(text)).ok()
}

/// A string that is not one of a generated enum's values (`FromStr` on generated enums).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a valid {enum_name}")]
pub struct UnknownEnumValue {
    /// The enum's shape name, e.g. `KeyAlgorithm`.
    pub enum_name: &'static str,
    /// The rejected string.
    pub value: String,
}

impl UnknownEnumValue {
    /// Records that `value` is not a value of `enum_name`.
    pub fn new(enum_name: &'static str, value: &str) -> Self {
        Self { enum_name, value: value.to_owned() }
    }
}

/// An error shape of a model, as generated per service (`acm::ErrorCode` and the like):
/// the wire code and HTTP status come from the model, never from a hand-typed string.
pub trait ModelError: Copy {
    /// The wire code (`__type`), the shape's name.
    fn code(self) -> &'static str;
    /// The HTTP status: the shape's `error.httpStatusCode`, else 500 for a fault and 400
    /// otherwise.
    fn status(self) -> u16;
    /// Whether the model marks it a server fault.
    fn is_fault(self) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_serialize_whole_seconds_as_integers() {
        assert_eq!(serde_json::to_string(&Timestamp::from_unix(1_700_000_000)).unwrap(), "1700000000");
        assert_eq!(serde_json::to_string(&Timestamp(1.5)).unwrap(), "1.5");
        let t: Timestamp = serde_json::from_str("1700000000").unwrap();
        assert_eq!(t, Timestamp(1.7e9));
    }

    #[test]
    fn blobs_are_base64() {
        let b = Blob(b"hello".to_vec());
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"aGVsbG8=\"");
        let back: Blob = serde_json::from_str("\"aGVsbG8\"").unwrap();
        assert_eq!(back, b);
        assert!(serde_json::from_str::<Blob>("\"***\"").is_err());
    }

    #[test]
    fn enums_round_trip_through_strings() {
        use acm::KeyAlgorithm;
        for v in KeyAlgorithm::ALL {
            assert_eq!(v.as_str().parse::<KeyAlgorithm>().unwrap(), *v);
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
        assert_eq!(KeyAlgorithm::EcPrime256v1.to_string(), "EC_prime256v1");
        assert!("RSA-2048".parse::<KeyAlgorithm>().is_err());
    }
}
