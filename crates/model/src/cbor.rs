//! Conversions between JSON values and Smithy RPC v2 CBOR values.
//!
//! Handlers work on JSON documents (the awsJson1.1 shape of a request or response); the
//! protocol layer turns a CBOR request body into such a document with [`cbor_to_json`] and
//! a response document back into CBOR with [`json_to_cbor`]. The two formats differ only in
//! timestamps (epoch-seconds numbers vs. CBOR tag 1) and blobs (base64 strings vs. byte
//! strings); going back needs the schema to know which numbers and strings those are.
//!
//! See <https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html>.

use base64::Engine as _;
use ciborium::Value as Cbor;
use serde_json::{Map, Number, Value};

use crate::schema::{Kind, Service, ShapeId};

/// CBOR tag for epoch-based date/time (RFC 8949 §3.4.2).
const EPOCH_TAG: u64 = 1;

/// Converts a decoded CBOR document to JSON without a schema.
///
/// Maps with text keys become objects, byte strings base64 strings, tag 1 (epoch time) its
/// number, `null`/`undefined` `null`. Other tags are unwrapped. Fails on non-text map keys,
/// integers outside the 64-bit range and non-finite floats, none of which a Smithy document
/// can carry.
pub fn cbor_to_json(v: Cbor) -> Result<Value, String> {
    Ok(match v {
        Cbor::Null => Value::Null,
        Cbor::Bool(b) => Value::Bool(b),
        Cbor::Text(s) => Value::String(s),
        Cbor::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Cbor::Integer(i) => {
            let i = i128::from(i);
            if let Ok(n) = i64::try_from(i) {
                Value::from(n)
            } else if let Ok(n) = u64::try_from(i) {
                Value::from(n)
            } else {
                return Err(format!("integer {i} is out of range"));
            }
        }
        Cbor::Float(f) => {
            Number::from_f64(f).map(Value::Number).ok_or_else(|| format!("float {f} has no JSON form"))?
        }
        Cbor::Tag(EPOCH_TAG, inner) => match *inner {
            n @ (Cbor::Integer(_) | Cbor::Float(_)) => cbor_to_json(n)?,
            _ => return Err("tag 1 (epoch time) must wrap a number".to_owned()),
        },
        Cbor::Tag(_, inner) => cbor_to_json(*inner)?,
        Cbor::Array(items) => Value::Array(items.into_iter().map(cbor_to_json).collect::<Result<_, _>>()?),
        Cbor::Map(entries) => {
            let mut obj = Map::with_capacity(entries.len());
            for (k, v) in entries {
                let Cbor::Text(k) = k else {
                    return Err("map keys must be text strings".to_owned());
                };
                obj.insert(k, cbor_to_json(v)?);
            }
            Value::Object(obj)
        }
        // `ciborium::Value` is non-exhaustive; anything new has no JSON meaning we know.
        // (Named, not printed: its `Debug` text is not for clients.)
        _ => return Err("unsupported CBOR value".to_owned()),
    })
}

/// Converts a JSON document of shape `shape` to CBOR, guided by the schema.
///
/// Timestamps become tag 1 over a float and blobs (base64 strings) byte strings; members
/// the schema does not know pass through generically.
///
/// Timestamps and doubles are always floats, even when whole: aws-sdk-rust's decoder
/// (`aws-smithy-cbor`, `Decoder::timestamp`) reads the tagged value with minicbor's `f64()`,
/// which rejects integers. botocore accepts either.
pub fn json_to_cbor(service: &'static Service, shape: ShapeId, v: &Value) -> Cbor {
    match (&service.shape(shape).kind, v) {
        (_, Value::Null) => Cbor::Null,
        (Kind::Structure { members, .. }, Value::Object(obj)) => Cbor::Map(
            obj.iter()
                .map(|(k, v)| {
                    let value = match members.iter().find(|m| m.name == k) {
                        Some(m) => json_to_cbor(service, m.shape, v),
                        None => generic(v),
                    };
                    (Cbor::Text(k.clone()), value)
                })
                .collect(),
        ),
        (Kind::List { member, .. }, Value::Array(items)) => {
            Cbor::Array(items.iter().map(|item| json_to_cbor(service, *member, item)).collect())
        }
        (Kind::Map { value, .. }, Value::Object(obj)) => {
            Cbor::Map(obj.iter().map(|(k, v)| (Cbor::Text(k.clone()), json_to_cbor(service, *value, v))).collect())
        }
        (Kind::Timestamp, Value::Number(n)) => Cbor::Tag(EPOCH_TAG, Box::new(Cbor::Float(n.as_f64().unwrap_or(0.0)))),
        (Kind::Double, Value::Number(n)) => Cbor::Float(n.as_f64().unwrap_or(0.0)),
        (Kind::Blob(_), Value::String(s)) => match crate::decode_base64(s) {
            Some(bytes) => Cbor::Bytes(bytes),
            None => Cbor::Text(s.clone()),
        },
        _ => generic(v),
    }
}

/// Schema-less JSON → CBOR: numbers keep their integer/float nature.
fn generic(v: &Value) -> Cbor {
    match v {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Cbor::Integer(i.into())
            } else if let Some(u) = n.as_u64() {
                Cbor::Integer(u.into())
            } else {
                Cbor::Float(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::Array(items) => Cbor::Array(items.iter().map(generic).collect()),
        Value::Object(obj) => Cbor::Map(obj.iter().map(|(k, v)| (Cbor::Text(k.clone()), generic(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ds;

    fn output(op: &str) -> ShapeId {
        ds::SERVICE.operation(op).unwrap().output.unwrap()
    }

    fn get<'a>(map: &'a Cbor, key: &str) -> &'a Cbor {
        let Cbor::Map(entries) = map else { panic!("not a map: {map:?}") };
        &entries.iter().find(|(k, _)| k.as_text() == Some(key)).unwrap_or_else(|| panic!("no {key}")).1
    }

    #[test]
    fn describe_directories_timestamps_become_tag_1() {
        let doc = json!({
            "DirectoryDescriptions": [{
                "DirectoryId": "d-1234567890",
                "LaunchTime": 1700000000,
                "StageLastUpdatedDateTime": 1700000000.5,
                "Unknown": {"Nested": [1, 2.5]}
            }],
            "NextToken": "t"
        });
        let cbor = json_to_cbor(&ds::SERVICE, output("DescribeDirectories"), &doc);
        let Cbor::Array(dirs) = get(&cbor, "DirectoryDescriptions") else { panic!("not an array") };
        let dir = &dirs[0];
        assert_eq!(get(dir, "LaunchTime"), &Cbor::Tag(1, Box::new(Cbor::Float(1.7e9))));
        assert_eq!(get(dir, "StageLastUpdatedDateTime"), &Cbor::Tag(1, Box::new(Cbor::Float(1_700_000_000.5))));
        assert_eq!(get(dir, "DirectoryId"), &Cbor::Text("d-1234567890".into()));
        // Members the schema does not know pass through.
        assert_eq!(get(get(dir, "Unknown"), "Nested"), &Cbor::Array(vec![Cbor::Integer(1.into()), Cbor::Float(2.5)]));
        // And back: the same document, timestamps as numbers.
        let back = cbor_to_json(cbor).unwrap();
        assert_eq!(back["DirectoryDescriptions"][0]["LaunchTime"], json!(1.7e9));
        assert_eq!(back["DirectoryDescriptions"][0]["Unknown"], json!({"Nested": [1, 2.5]}));
        assert_eq!(back["NextToken"], "t");
    }

    #[test]
    fn blobs_round_trip_as_byte_strings() {
        // `RegisterCertificate` takes a PEM string, but error shapes and blobs elsewhere do
        // not exist in DS; use ACM's `ExportCertificateRequest.Passphrase` (a blob).
        let acm = &crate::acm::SERVICE;
        let shape = acm.operation("ExportCertificate").unwrap().input.unwrap();
        let doc = json!({"CertificateArn": "arn", "Passphrase": "aGVsbG8="});
        let cbor = json_to_cbor(acm, shape, &doc);
        assert_eq!(get(&cbor, "Passphrase"), &Cbor::Bytes(b"hello".to_vec()));
        assert_eq!(cbor_to_json(cbor).unwrap(), doc);
    }

    #[test]
    fn generic_decoding() {
        let v = Cbor::Map(vec![
            (Cbor::Text("a".into()), Cbor::Integer((-3).into())),
            (Cbor::Text("b".into()), Cbor::Tag(1, Box::new(Cbor::Integer(10.into())))),
            (Cbor::Text("c".into()), Cbor::Array(vec![Cbor::Bool(true), Cbor::Null])),
            (Cbor::Text("d".into()), Cbor::Integer(u64::MAX.into())),
        ]);
        assert_eq!(cbor_to_json(v).unwrap(), json!({"a": -3, "b": 10, "c": [true, null], "d": u64::MAX}));
        assert!(cbor_to_json(Cbor::Map(vec![(Cbor::Integer(1.into()), Cbor::Null)])).is_err());
        assert!(cbor_to_json(Cbor::Float(f64::NAN)).is_err());
        assert!(cbor_to_json(Cbor::Tag(1, Box::new(Cbor::Text("x".into())))).is_err());
    }

    #[test]
    fn bytes_round_trip_through_the_encoder() {
        let shape = output("DescribeDirectories");
        let doc = json!({"DirectoryDescriptions": [{"LaunchTime": 1700000000}]});
        let mut buf = Vec::new();
        ciborium::into_writer(&json_to_cbor(&ds::SERVICE, shape, &doc), &mut buf).unwrap();
        let decoded: Cbor = ciborium::from_reader(buf.as_slice()).unwrap();
        assert_eq!(cbor_to_json(decoded).unwrap()["DirectoryDescriptions"][0]["LaunchTime"], json!(1.7e9));
    }
}
