//! Stored bodies: JSON, most with a `schema` number. A body that does not decode or encode
//! is an error with the codec's own as its source, never an empty body or a default; a
//! reader meeting a newer schema refuses the row instead of misreading it.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a stored body could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The body does not decode as the record.
    #[error("a stored {what} does not decode")]
    Decode {
        /// What the record is.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The record does not encode.
    #[error("a {what} does not encode")]
    Encode {
        /// What the record is.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The body was written by a newer build.
    #[error("a stored {what} has schema {found}, newer than this build's {supported}")]
    Newer {
        /// What the record is.
        what: &'static str,
        /// The body's schema.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
}

/// Decodes a stored body of `what`.
pub fn decode<T: DeserializeOwned>(what: &'static str, body: &[u8]) -> Result<T, RecordError> {
    serde_json::from_slice(body).map_err(|source| RecordError::Decode { what, source })
}

/// Encodes `value` for storage.
pub fn encode<T: Serialize + ?Sized>(what: &'static str, value: &T) -> Result<Vec<u8>, RecordError> {
    serde_json::to_vec(value).map_err(|source| RecordError::Encode { what, source })
}

/// Refuses a body whose schema is newer than `supported`.
pub fn check_schema(what: &'static str, found: u32, supported: u32) -> Result<(), RecordError> {
    if found > supported {
        return Err(RecordError::Newer { what, found, supported });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_keep_the_codec_error() {
        let e = decode::<u32>("counter", b"{").unwrap_err();
        assert!(matches!(e, RecordError::Decode { what: "counter", .. }));
        assert!(
            crate::error::chain(&e).starts_with("a stored counter does not decode: "),
            "{}",
            crate::error::chain(&e)
        );
        let mut map = std::collections::HashMap::new();
        map.insert(vec![1u8], 1u8); // a map with non-string keys does not encode as JSON
        assert!(matches!(encode("map", &map), Err(RecordError::Encode { what: "map", .. })));
        assert!(matches!(check_schema("row", 2, 1), Err(RecordError::Newer { found: 2, supported: 1, .. })));
        assert!(check_schema("row", 1, 1).is_ok());
    }
}
