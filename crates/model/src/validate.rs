//! Input validation driven by the generated shape tables, worded exactly as AWS words it.
//!
//! AWS's JSON services (built on Amazon's internal "Coral" framework) answer a request that
//! breaks the model's constraints with a `ValidationException` whose message lists every
//! violation:
//!
//! ```text
//! 2 validation errors detected: Value 'x' at 'certificateArn' failed to satisfy constraint:
//! Member must have length greater than or equal to 20; Value 'x' at 'certificateArn' failed
//! to satisfy constraint: Member must satisfy regular expression pattern: arn:...
//! ```
//!
//! Paths use member names with the first letter lowercased, joined with `.`; list elements
//! are `<list>.<1-based index>.member`. Members are walked in model order and, for one value,
//! length is checked before the pattern. A value of the wrong JSON type is not a constraint
//! violation but a `SerializationException` ([`Invalid::Serialization`]). Unknown members are
//! ignored and `null` means absent, as on AWS.
//!
//! Two bounds keep a hostile input from being echoed back at scale (deliberate differences,
//! listed in `docs/behaviour.md`): an echoed value is cut after [`MAX_ECHO_CHARS`]
//! characters with `...` (AWS's recorded messages only show short values, so how it cuts
//! long ones is not known), and at most [`MAX_LISTED`] violations are spelled out, while the
//! count still counts them all.

use std::fmt;

use serde_json::Value;

use crate::pattern;
use crate::schema::{Bounds, Kind, Service, ShapeId};

/// Why an input was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// The input does not have the model's shape (wrong JSON type, bad base64, number out of
    /// range): AWS answers `SerializationException` with this message.
    Serialization(String),
    /// Constraint violations: AWS answers `ValidationException`.
    Constraints {
        /// The first [`MAX_LISTED`] violations, each a full `Value ... failed to satisfy
        /// constraint: ...` sentence.
        listed: Vec<String>,
        /// How many there are.
        total: usize,
    },
}

impl Invalid {
    /// The message AWS sends for this rejection.
    pub fn message(&self) -> String {
        match self {
            Self::Serialization(msg) => msg.clone(),
            Self::Constraints { listed, total } => {
                let plural = if *total == 1 { "" } else { "s" };
                format!("{total} validation error{plural} detected: {}", listed.join("; "))
            }
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Invalid {}

/// Checks `input` against structure `shape` of `service`.
///
/// `input` is the whole request body as JSON (for CBOR requests, after
/// [`crate::cbor::cbor_to_json`]); an empty body should be passed as `{}`.
pub fn validate(service: &'static Service, shape: ShapeId, input: &Value) -> Result<(), Invalid> {
    let mut walker = Walker { service, errors: Vec::new(), total: 0 };
    walker.value(shape, input, "", false)?;
    if walker.total == 0 { Ok(()) } else { Err(Invalid::Constraints { listed: walker.errors, total: walker.total }) }
}

/// Longest value echoed in a validation message, in characters.
pub const MAX_ECHO_CHARS: usize = 256;

/// Most violations spelled out in one validation message.
pub const MAX_LISTED: usize = 100;

/// `value` as a message may echo it: whole up to [`MAX_ECHO_CHARS`] characters, else its
/// first [`MAX_ECHO_CHARS`] characters and `...`. Never splits a character.
pub fn echo(value: &str) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(MAX_ECHO_CHARS) {
        None => std::borrow::Cow::Borrowed(value),
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}...", &value[..cut])),
    }
}

/// Whether `value` satisfies a model pattern the way Java's `String.matches` would.
///
/// Handlers can use this for checks the model expresses outside a member's own shape. A
/// pattern that cannot be compiled matches everything.
pub fn pattern_matches(pattern: &'static str, value: &str) -> bool {
    pattern::matches(pattern, value)
}

const NOT_NULL: &str = "Member must not be null";

/// Walks a value and collects constraint violations.
struct Walker {
    service: &'static Service,
    errors: Vec<String>,
    total: usize,
}

impl Walker {
    /// Records one violation; `value` is `None` for a missing value and `sensitive` hides it.
    fn push(&mut self, value: Option<&str>, sensitive: bool, path: &str, constraint: &str) {
        self.total += 1;
        if self.errors.len() >= MAX_LISTED {
            return;
        }
        let value = match value {
            None => "Value null".to_owned(),
            Some(_) if sensitive => "Value".to_owned(),
            Some(v) => format!("Value '{}'", echo(v)),
        };
        let path = echo(path);
        self.errors.push(format!("{value} at '{path}' failed to satisfy constraint: {constraint}"));
    }

    /// Checks a present, non-null value of shape `id` at `path`.
    fn value(&mut self, id: ShapeId, v: &Value, path: &str, sensitive: bool) -> Result<(), Invalid> {
        let shape = self.service.shape(id);
        let sensitive = sensitive || shape.sensitive;
        match &shape.kind {
            Kind::Structure { members, .. } => {
                let Value::Object(obj) = v else {
                    return Err(mismatch(v, "a Structure"));
                };
                for m in members.iter() {
                    let path = join(path, &lower_first(m.name));
                    match obj.get(m.name) {
                        None | Some(Value::Null) => {
                            if m.required {
                                self.push(None, false, &path, NOT_NULL);
                            }
                        }
                        Some(value) => self.value(m.shape, value, &path, sensitive)?,
                    }
                }
            }
            Kind::List { member, len } => {
                let Value::Array(items) = v else {
                    return Err(mismatch(v, "a List"));
                };
                if let Some(c) = length(*len, items.len()) {
                    self.push(Some(&render(v)), sensitive, path, &c);
                }
                for (i, item) in items.iter().enumerate() {
                    let path = format!("{path}.{}.member", i + 1);
                    if item.is_null() {
                        self.push(None, false, &path, NOT_NULL);
                    } else {
                        self.value(*member, item, &path, sensitive)?;
                    }
                }
            }
            Kind::Map { key, value, len } => {
                let Value::Object(obj) = v else {
                    return Err(mismatch(v, "a Map"));
                };
                if let Some(c) = length(*len, obj.len()) {
                    self.push(Some(&render(v)), sensitive, path, &c);
                }
                // Keys (always strings) and scalar values are reported once for the whole
                // map, listing what they must satisfy, as AWS does:
                // `Map keys must satisfy constraint: [Member must have length ...]`.
                let mut key_rules = Vec::new();
                let mut value_rules = Vec::new();
                let scalar_values = !matches!(
                    self.service.shape(*value).kind,
                    Kind::Structure { .. } | Kind::List { .. } | Kind::Map { .. }
                );
                for (k, item) in obj {
                    extend_unique(&mut key_rules, self.scalar(*key, &Value::String(k.clone()))?);
                    if item.is_null() {
                        extend_unique(&mut value_rules, vec![NOT_NULL.to_owned()]);
                    } else if scalar_values {
                        extend_unique(&mut value_rules, self.scalar(*value, item)?);
                    } else {
                        self.value(*value, item, &join(path, k), sensitive)?;
                    }
                }
                for (what, rules) in [("keys", key_rules), ("value", value_rules)] {
                    if !rules.is_empty() {
                        let c = format!("Map {what} must satisfy constraint: [{}]", rules.join(", "));
                        self.push(Some(&render(v)), sensitive, path, &c);
                    }
                }
            }
            _ => {
                for c in self.scalar(id, v)? {
                    let shown = match shape.kind {
                        Kind::Blob(_) => blob_render(v),
                        _ => render(v),
                    };
                    self.push(Some(&shown), sensitive, path, &c);
                }
            }
        }
        Ok(())
    }

    /// The constraints a scalar value breaks, in AWS's order (length, then enum or pattern).
    fn scalar(&self, id: ShapeId, v: &Value) -> Result<Vec<String>, Invalid> {
        let mut out = Vec::new();
        match &self.service.shape(id).kind {
            Kind::String { len, pattern, enum_values } => {
                let Value::String(s) = v else {
                    return Err(mismatch(v, "a String"));
                };
                out.extend(length(*len, s.chars().count()));
                if !enum_values.is_empty() {
                    if !enum_values.contains(&s.as_str()) {
                        out.push(format!("Member must satisfy enum value set: [{}]", enum_values.join(", ")));
                    }
                } else if let Some(p) = pattern
                    && !pattern::matches(p, s)
                {
                    out.push(format!("Member must satisfy regular expression pattern: {p}"));
                }
            }
            Kind::Integer(b) => {
                let n = integer(v, "an Integer")?;
                if i32::try_from(n).is_err() {
                    return Err(Invalid::Serialization(format!("Numeric value ({n}) out of range of int")));
                }
                out.extend(range(*b, n));
            }
            Kind::Long(b) => out.extend(range(*b, integer(v, "a Long")?)),
            Kind::Double => {
                if !v.is_number() {
                    return Err(mismatch(v, "a Double"));
                }
            }
            Kind::Boolean => {
                if !v.is_boolean() {
                    return Err(mismatch(v, "a Boolean"));
                }
            }
            Kind::Timestamp => {
                if !v.is_number() {
                    return Err(mismatch(v, "a Timestamp"));
                }
            }
            Kind::Blob(b) => {
                let Value::String(s) = v else {
                    return Err(mismatch(v, "a Blob"));
                };
                let bytes = crate::decode_base64(s)
                    .ok_or_else(|| Invalid::Serialization("Base64 encoded value could not be decoded".to_owned()))?;
                out.extend(length(*b, bytes.len()));
            }
            Kind::Structure { .. } | Kind::List { .. } | Kind::Map { .. } => {
                // Only reached for map keys, which the models always make strings.
                return Err(mismatch(v, "a String"));
            }
        }
        Ok(out)
    }
}

/// `parent.member`, or just `member` at the top level.
fn join(parent: &str, member: &str) -> String {
    if parent.is_empty() { member.to_owned() } else { format!("{parent}.{member}") }
}

/// `CertificateArn` → `certificateArn`.
fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn extend_unique(into: &mut Vec<String>, items: Vec<String>) {
    for item in items {
        if !into.contains(&item) {
            into.push(item);
        }
    }
}

fn length(b: Bounds, n: usize) -> Option<String> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    match (b.min, b.max) {
        (Some(min), _) if n < min => Some(format!("Member must have length greater than or equal to {min}")),
        (_, Some(max)) if n > max => Some(format!("Member must have length less than or equal to {max}")),
        _ => None,
    }
}

fn range(b: Bounds, n: i64) -> Option<String> {
    match (b.min, b.max) {
        (Some(min), _) if n < min => Some(format!("Member must have value greater than or equal to {min}")),
        (_, Some(max)) if n > max => Some(format!("Member must have value less than or equal to {max}")),
        _ => None,
    }
}

/// An integral JSON number; `3.0` counts, `3.5` does not.
fn integer(v: &Value, target: &str) -> Result<i64, Invalid> {
    let Value::Number(n) = v else {
        return Err(mismatch(v, target));
    };
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i64),
        _ => Err(Invalid::Serialization(format!("Number {n} can not be converted to {target}"))),
    }
}

/// The `SerializationException` for a value of the wrong JSON type, worded like AWS's
/// (Jackson-based) parser.
fn mismatch(v: &Value, target: &str) -> Invalid {
    Invalid::Serialization(match v {
        Value::Object(_) => "Start of structure or map found where not expected.".to_owned(),
        Value::Array(_) => "Start of list found where not expected".to_owned(),
        Value::String(_) => format!("STRING_VALUE can not be converted to {target}"),
        Value::Number(_) => format!("NUMBER_VALUE can not be converted to {target}"),
        Value::Bool(_) => format!("BOOLEAN_VALUE can not be converted to {target}"),
        Value::Null => format!("null can not be converted to {target}"),
    })
}

/// A value as Java's `toString` shows it: strings bare, lists `[a, b]`, maps `{k=v}`.
fn render(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e7 => format!("{f:.1}"),
            _ => n.to_string(),
        },
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(render).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(obj) => {
            let parts: Vec<String> = obj.iter().map(|(k, v)| format!("{k}={}", render(v))).collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// What AWS prints for a blob in a validation message: the `toString` of the Java
/// `ByteBuffer` it was decoded into, e.g. `java.nio.HeapByteBuffer[pos=0 lim=0 cap=0]`.
fn blob_render(v: &Value) -> String {
    let n = v.as_str().and_then(crate::decode_base64).map_or(0, |b| b.len());
    format!("java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{acm, ds, lightsail};

    fn input(service: &'static Service, op: &str) -> ShapeId {
        service.operation(op).unwrap().input.unwrap()
    }

    fn message(service: &'static Service, op: &str, body: Value) -> String {
        validate(service, input(service, op), &body).unwrap_err().message()
    }

    const ARN_PATTERN: &str = r"arn:[\w+=/,.@-]+:acm:[\w+=/,.@-]*:[0-9]+:[\w+=,.@-]+(/[\w+=,.@-]+)*";

    #[test]
    fn short_arn_breaks_length_and_pattern() {
        // The model gives `Arn` min 20, so 'x' breaks both, length first.
        assert_eq!(
            message(&acm::SERVICE, "DescribeCertificate", json!({"CertificateArn": "x"})),
            format!(
                "2 validation errors detected: Value 'x' at 'certificateArn' failed to satisfy \
                 constraint: Member must have length greater than or equal to 20; Value 'x' at \
                 'certificateArn' failed to satisfy constraint: Member must satisfy regular \
                 expression pattern: {ARN_PATTERN}"
            )
        );
    }

    #[test]
    fn long_enough_but_malformed_arn_breaks_the_pattern_only() {
        let arn = "not-an-arn-but-long-enough";
        assert_eq!(
            message(&acm::SERVICE, "DescribeCertificate", json!({"CertificateArn": arn})),
            format!(
                "1 validation error detected: Value '{arn}' at 'certificateArn' failed to satisfy \
                 constraint: Member must satisfy regular expression pattern: {ARN_PATTERN}"
            )
        );
    }

    #[test]
    fn valid_input_passes_and_unknown_members_are_ignored() {
        let arn = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012";
        let shape = input(&acm::SERVICE, "DescribeCertificate");
        assert_eq!(validate(&acm::SERVICE, shape, &json!({"CertificateArn": arn, "Extra": 1})), Ok(()));
    }

    #[test]
    fn missing_required_member_is_null() {
        assert_eq!(
            message(&acm::SERVICE, "RequestCertificate", json!({})),
            "1 validation error detected: Value null at 'domainName' failed to satisfy \
             constraint: Member must not be null"
        );
        // `null` counts as absent.
        assert_eq!(
            message(&acm::SERVICE, "RequestCertificate", json!({"DomainName": null})),
            "1 validation error detected: Value null at 'domainName' failed to satisfy \
             constraint: Member must not be null"
        );
    }

    #[test]
    fn enum_values_are_listed_in_model_order() {
        let msg = message(
            &acm::SERVICE,
            "RequestCertificate",
            json!({"DomainName": "example.com", "KeyAlgorithm": "RSA-2048"}),
        );
        assert_eq!(
            msg,
            "1 validation error detected: Value 'RSA-2048' at 'keyAlgorithm' failed to satisfy \
             constraint: Member must satisfy enum value set: [RSA_1024, RSA_2048, RSA_3072, \
             RSA_4096, EC_prime256v1, EC_secp384r1, EC_secp521r1]"
        );
    }

    #[test]
    fn list_elements_use_one_based_member_paths() {
        let msg = message(
            &acm::SERVICE,
            "RequestCertificate",
            json!({"DomainName": "example.com", "Tags": [{"Key": "ok"}, {"Key": ""}]}),
        );
        assert_eq!(
            msg,
            "1 validation error detected: Value '' at 'tags.2.member.key' failed to satisfy \
             constraint: Member must have length greater than or equal to 1"
        );
        let msg = message(
            &acm::SERVICE,
            "RequestCertificate",
            json!({"DomainName": "example.com", "Tags": [{"Key": "ok", "Value": "a\u{1}"}, {"Value": "v"}]}),
        );
        assert_eq!(
            msg,
            "2 validation errors detected: Value 'a\u{1}' at 'tags.1.member.value' failed to \
             satisfy constraint: Member must satisfy regular expression pattern: \
             ([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*); Value null at 'tags.2.member.key' failed to \
             satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn list_size_renders_the_list() {
        let msg = message(&acm::SERVICE, "RequestCertificate", json!({"DomainName": "example.com", "Tags": []}));
        assert_eq!(
            msg,
            "1 validation error detected: Value '[]' at 'tags' failed to satisfy constraint: \
             Member must have length greater than or equal to 1"
        );
    }

    #[test]
    fn numeric_range() {
        assert_eq!(
            message(&acm::SERVICE, "ListCertificates", json!({"MaxItems": 0})),
            "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: \
             Member must have value greater than or equal to 1"
        );
        assert_eq!(
            message(&acm::SERVICE, "ListCertificates", json!({"MaxItems": 1001})),
            "1 validation error detected: Value '1001' at 'maxItems' failed to satisfy \
             constraint: Member must have value less than or equal to 1000"
        );
    }

    #[test]
    fn wrong_types_are_serialization_errors() {
        let shape = input(&acm::SERVICE, "ListCertificates");
        let err = |v| validate(&acm::SERVICE, shape, &v).unwrap_err();
        assert!(
            matches!(err(json!({"MaxItems": "5"})), Invalid::Serialization(m) if m == "STRING_VALUE can not be converted to an Integer")
        );
        assert!(
            matches!(err(json!({"MaxItems": {}})), Invalid::Serialization(m) if m == "Start of structure or map found where not expected.")
        );
        assert!(matches!(err(json!({"MaxItems": 1e12})), Invalid::Serialization(_)));
        assert!(matches!(err(json!([])), Invalid::Serialization(_)));
        assert!(matches!(err(json!("x")), Invalid::Serialization(_)));
    }

    #[test]
    fn blob_lengths_count_decoded_bytes_and_hide_sensitive_values() {
        let shape = input(&acm::SERVICE, "ImportCertificate");
        assert_eq!(
            validate(&acm::SERVICE, shape, &json!({"Certificate": "", "PrivateKey": "a2V5"})).unwrap_err().message(),
            "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=0 cap=0]' at \
             'certificate' failed to satisfy constraint: Member must have length greater than \
             or equal to 1"
        );
        // `PrivateKeyBlob` is sensitive: the value is left out.
        assert_eq!(
            validate(&acm::SERVICE, shape, &json!({"Certificate": "Y2VydA==", "PrivateKey": ""}))
                .unwrap_err()
                .message(),
            "1 validation error detected: Value at 'privateKey' failed to satisfy constraint: \
             Member must have length greater than or equal to 1"
        );
        assert!(matches!(
            validate(&acm::SERVICE, shape, &json!({"Certificate": "%%%", "PrivateKey": "a2V5"})),
            Err(Invalid::Serialization(_))
        ));
    }

    #[test]
    fn ds_and_lightsail_paths() {
        assert_eq!(
            message(&ds::SERVICE, "DescribeLDAPSSettings", json!({"DirectoryId": "x"})),
            "1 validation error detected: Value 'x' at 'directoryId' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: ^d-[0-9a-f]{10}$"
        );
        let msg = message(
            &lightsail::SERVICE,
            "CreateDistribution",
            json!({"distributionName": "d", "origin": {}, "defaultCacheBehavior": {}, "bundleId": "small_1_0"}),
        );
        assert!(msg.starts_with("1 validation error detected: "), "{msg}");
    }

    #[test]
    fn every_pattern_compiles() {
        for service in [&acm::SERVICE, &ds::SERVICE, &lightsail::SERVICE] {
            for shape in service.shapes {
                if let Kind::String { pattern: Some(p), .. } = shape.kind
                    && let Err(e) = pattern::compile(p)
                {
                    panic!("{} {}: {p} → {e}", service.name, shape.name);
                }
            }
        }
    }

    #[test]
    fn operations_are_sorted_and_only_listed_ones_generated() {
        for service in [&acm::SERVICE, &ds::SERVICE, &lightsail::SERVICE] {
            assert!(
                service.operations.windows(2).all(|w| w[0].name < w[1].name),
                "{} operations are not sorted",
                service.name
            );
            for op in service.operations {
                if !op.generated {
                    assert_eq!((op.input, op.output), (None, None), "{}", op.name);
                }
                assert_eq!(service.operation(op.name).map(|o| o.name), Some(op.name));
            }
        }
        let create = lightsail::SERVICE.operation("CreateInstances").unwrap();
        assert!(!create.generated);
        assert_eq!((create.input, create.output), (None, None));
        assert!(lightsail::SERVICE.operation("CreateDistribution").unwrap().generated);
        assert!(!ds::SERVICE.operation("CreateSnapshot").unwrap().generated);
        assert!(acm::SERVICE.operation("RequestCertificate").unwrap().generated);
        assert!(!acm::SERVICE.operation("SearchInventory").unwrap().generated);
        assert!(!acm::SERVICE.operation("CreateAcmeEndpoint").unwrap().generated);
        assert!(ds::SERVICE.rpc_v2_cbor && !acm::SERVICE.rpc_v2_cbor);
        assert_eq!(ds::SERVICE.signing_name, "ds");
        assert_eq!(lightsail::SERVICE.target_prefix, "Lightsail_20161128");
    }

    #[test]
    fn error_shapes_carry_status() {
        let internal = acm::SERVICE.error_shape("InternalServerException").unwrap();
        assert!(matches!(internal.kind, Kind::Structure { error: Some(e), .. } if e.status == 500 && e.fault));
        let denied = lightsail::SERVICE.error_shape("AccessDeniedException").unwrap();
        assert!(matches!(denied.kind, Kind::Structure { error: Some(e), .. } if e.status == 400));
        // DS exceptions of operations we do not serve are still there for error envelopes.
        assert!(ds::SERVICE.error_shape("SnapshotLimitExceededException").is_some());
    }

    /// A 4 MiB `DomainName` is echoed cut short in the message, not whole.
    #[test]
    fn huge_values_are_echoed_cut_and_huge_lists_listed_in_part() {
        let huge = "é".repeat(4 << 20);
        let msg = message(&acm::SERVICE, "RequestCertificate", json!({"DomainName": huge}));
        assert!(msg.len() < 4 * 1024, "{} bytes", msg.len());
        let cut = format!("Value '{}...' at 'domainName'", "é".repeat(MAX_ECHO_CHARS));
        assert!(msg.starts_with(&format!("2 validation errors detected: {cut} failed to satisfy constraint: Member must have length less than or equal to 253; {cut}")), "{msg}");
        // A value at the limit is echoed whole.
        assert_eq!(echo(&"a".repeat(MAX_ECHO_CHARS)), "a".repeat(MAX_ECHO_CHARS));
        // 5,000 bad names: all counted, the first 100 spelled out.
        let names: Vec<String> = (0..5_000).map(|i| format!("bad name {i}")).collect();
        let body = json!({"DomainName": "example.com", "SubjectAlternativeNames": names});
        let Err(Invalid::Constraints { listed, total }) =
            validate(&acm::SERVICE, input(&acm::SERVICE, "RequestCertificate"), &body)
        else {
            panic!("expected constraint violations")
        };
        assert_eq!((listed.len(), total), (MAX_LISTED, 5_001));
        let msg = Invalid::Constraints { listed, total }.message();
        assert!(msg.starts_with("5001 validation errors detected: Value '[bad name 0, bad name 1"), "{}", &msg[..200]);
    }
}
