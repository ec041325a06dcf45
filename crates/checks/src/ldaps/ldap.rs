//! Just enough LDAP (RFC 4511) to ask a directory server for its root DSE: one hand-encoded
//! `SearchRequest` and a reader for the responses. BER here is the subset LDAP allows
//! (RFC 4511 §5.1: definite lengths only), so a small TLV reader covers it.
//!
//! The network side (TCP, TLS) is the probe's ([`super::check`]); this module is pure.

/// Encodes one TLV: `tag || length || content`. What we send is DER, a subset of BER
/// (definite, minimal lengths, X.690 §10.1).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Universal tags and LDAP application tags used below.
mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const OCTET_STRING: u8 = 0x04;
    pub const ENUMERATED: u8 = 0x0a;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    /// `UnbindRequest ::= [APPLICATION 2] NULL` (primitive).
    pub const UNBIND_REQUEST: u8 = 0x42;
    /// `SearchRequest ::= [APPLICATION 3] SEQUENCE` (constructed).
    pub const SEARCH_REQUEST: u8 = 0x63;
    /// `SearchResultEntry ::= [APPLICATION 4] SEQUENCE`.
    pub const SEARCH_RESULT_ENTRY: u8 = 0x64;
    /// `SearchResultDone ::= [APPLICATION 5] LDAPResult`.
    pub const SEARCH_RESULT_DONE: u8 = 0x65;
    /// `SearchResultReference ::= [APPLICATION 19] SEQUENCE OF URI`.
    pub const SEARCH_RESULT_REFERENCE: u8 = 0x73;
    /// `ExtendedResponse ::= [APPLICATION 24]` — servers send a Notice of Disconnection so.
    pub const EXTENDED_RESPONSE: u8 = 0x78;
    /// Filter `present [7] AttributeDescription` (primitive, context-specific).
    pub const FILTER_PRESENT: u8 = 0x87;
}

/// Largest LDAP message accepted from a server (a root DSE is a few kilobytes).
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;

fn integer(tag: u8, value: u32) -> Vec<u8> {
    // Minimal two's-complement encoding of a non-negative value (X.690 §8.3): no leading
    // zero bytes, except one when the top bit would otherwise read as a sign.
    let mut content: Vec<u8> = value.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
    if content.first().is_none_or(|b| b & 0x80 != 0) {
        content.insert(0, 0);
    }
    tlv(tag, &content)
}

/// `LDAPMessage { messageID, SearchRequest }` for the root DSE: base `""`, scope
/// baseObject, no alias dereferencing, no limits, filter `(objectClass=*)`, and the given
/// attributes.
pub fn root_dse_search(message_id: u32, attributes: &[&str]) -> Vec<u8> {
    let attrs: Vec<u8> = attributes.iter().flat_map(|a| tlv(tag::OCTET_STRING, a.as_bytes())).collect();
    let request = [
        tlv(tag::OCTET_STRING, b""), // baseObject
        integer(tag::ENUMERATED, 0), // scope: baseObject
        integer(tag::ENUMERATED, 0), // derefAliases: neverDerefAliases
        integer(tag::INTEGER, 0),    // sizeLimit
        integer(tag::INTEGER, 0),    // timeLimit
        tlv(tag::BOOLEAN, &[0x00]),  // typesOnly: FALSE
        tlv(tag::FILTER_PRESENT, b"objectClass"),
        tlv(tag::SEQUENCE, &attrs),
    ]
    .concat();
    tlv(tag::SEQUENCE, &[integer(tag::INTEGER, message_id), tlv(tag::SEARCH_REQUEST, &request)].concat())
}

/// `LDAPMessage { messageID, UnbindRequest }`: a polite goodbye.
pub fn unbind(message_id: u32) -> Vec<u8> {
    tlv(tag::SEQUENCE, &[integer(tag::INTEGER, message_id), vec![tag::UNBIND_REQUEST, 0x00]].concat())
}

/// A malformed or unexpected server response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed LDAP response: {0}")]
pub struct BerError(pub &'static str);

/// One decoded TLV: its tag and content.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
}

/// Reads one TLV from the front of `input`; returns it and what follows. `Ok(None)` means
/// `input` does not yet hold a whole TLV.
fn read_tlv(input: &[u8]) -> Result<Option<(Tlv<'_>, &[u8])>, BerError> {
    let Some((&tag, rest)) = input.split_first() else { return Ok(None) };
    if tag & 0x1f == 0x1f {
        return Err(BerError("multi-byte tags are not used by LDAP"));
    }
    let Some((&first, rest)) = rest.split_first() else { return Ok(None) };
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 {
            return Err(BerError("indefinite lengths are not allowed in LDAP"));
        }
        if n > 4 {
            return Err(BerError("length too large"));
        }
        if rest.len() < n {
            return Ok(None);
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if len > MAX_MESSAGE_LEN {
        return Err(BerError("message too large"));
    }
    if rest.len() < len {
        return Ok(None);
    }
    Ok(Some((Tlv { tag, content: &rest[..len] }, &rest[len..])))
}

/// Reads one TLV that must be complete and have the given tag.
fn expect<'a>(input: &'a [u8], want: u8, what: &'static str) -> Result<(Tlv<'a>, &'a [u8]), BerError> {
    match read_tlv(input)? {
        Some((t, rest)) if t.tag == want => Ok((t, rest)),
        Some(_) => Err(BerError(what)),
        None => Err(BerError("truncated element")),
    }
}

fn read_uint(content: &[u8]) -> Result<u32, BerError> {
    if content.is_empty() || content.len() > 5 {
        return Err(BerError("bad integer"));
    }
    Ok(content.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) as u32)
}

/// A server message relevant to a root DSE search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `SearchResultEntry`: the root DSE's attributes as (type, values).
    Entry(Vec<(String, Vec<String>)>),
    /// `SearchResultReference`: ignored by a root DSE reader.
    Reference,
    /// `SearchResultDone` with its result code and diagnostic message.
    Done {
        /// `resultCode` (0 is success).
        result_code: u32,
        /// `diagnosticMessage`.
        diagnostic: String,
    },
    /// Unsolicited notification (message id 0), e.g. a Notice of Disconnection.
    Notice {
        /// `resultCode` of the notice.
        result_code: u32,
        /// `diagnosticMessage`.
        diagnostic: String,
    },
}

/// Decodes one `LDAPMessage` from the front of `buf`. `Ok(None)` means more bytes are
/// needed; otherwise returns the message id, the response and how many bytes it used.
pub fn read_message(buf: &[u8]) -> Result<Option<(u32, Response, usize)>, BerError> {
    // Fail fast on a server that speaks something else (say, plain HTTP or TLS alerts)
    // instead of waiting for a "length" that will never arrive.
    if buf.first().is_some_and(|t| *t != tag::SEQUENCE) {
        return Err(BerError("LDAPMessage is not a SEQUENCE"));
    }
    let Some((msg, rest)) = read_tlv(buf)? else { return Ok(None) };
    if msg.tag != tag::SEQUENCE {
        return Err(BerError("LDAPMessage is not a SEQUENCE"));
    }
    let used = buf.len() - rest.len();
    let (id, body) = expect(msg.content, tag::INTEGER, "messageID is not an INTEGER")?;
    let id = read_uint(id.content)?;
    let Some((op, _controls)) = read_tlv(body)? else { return Err(BerError("truncated protocolOp")) };
    let response = match op.tag {
        tag::SEARCH_RESULT_ENTRY => Response::Entry(read_entry(op.content)?),
        tag::SEARCH_RESULT_REFERENCE => Response::Reference,
        tag::SEARCH_RESULT_DONE | tag::EXTENDED_RESPONSE => {
            let (code, rest) = expect(op.content, tag::ENUMERATED, "resultCode is not ENUMERATED")?;
            let (_matched, rest) = expect(rest, tag::OCTET_STRING, "matchedDN is not an OCTET STRING")?;
            let (diag, _) = expect(rest, tag::OCTET_STRING, "diagnosticMessage is not an OCTET STRING")?;
            let result_code = read_uint(code.content)?;
            let diagnostic = String::from_utf8_lossy(diag.content).into_owned();
            if op.tag == tag::SEARCH_RESULT_DONE {
                Response::Done { result_code, diagnostic }
            } else {
                Response::Notice { result_code, diagnostic }
            }
        }
        _ => return Err(BerError("unexpected protocolOp")),
    };
    Ok(Some((id, response, used)))
}

fn read_entry(content: &[u8]) -> Result<Vec<(String, Vec<String>)>, BerError> {
    let (_dn, rest) = expect(content, tag::OCTET_STRING, "objectName is not an OCTET STRING")?;
    let (attrs, _) = expect(rest, tag::SEQUENCE, "attributes is not a SEQUENCE")?;
    let mut out = Vec::new();
    let mut cur = attrs.content;
    while !cur.is_empty() {
        let (attr, rest) = expect(cur, tag::SEQUENCE, "attribute is not a SEQUENCE")?;
        cur = rest;
        let (name, rest) = expect(attr.content, tag::OCTET_STRING, "attribute type is not an OCTET STRING")?;
        let (vals, _) = expect(rest, tag::SET, "attribute values are not a SET")?;
        let mut values = Vec::new();
        let mut v = vals.content;
        while !v.is_empty() {
            let (val, rest) = expect(v, tag::OCTET_STRING, "attribute value is not an OCTET STRING")?;
            values.push(String::from_utf8_lossy(val.content).into_owned());
            v = rest;
        }
        out.push((String::from_utf8_lossy(name.content).into_owned(), values));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_root_dse_search_byte_for_byte() {
        // What `ldapsearch -x -b "" -s base "(objectClass=*)" namingContexts` sends,
        // minus controls: checked by hand against RFC 4511 §4.5.1.
        let got = root_dse_search(1, &["namingContexts"]);
        let want: Vec<u8> = [
            &[0x30, 0x35, 0x02, 0x01, 0x01, 0x63, 0x30][..],
            &[0x04, 0x00, 0x0a, 0x01, 0x00, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00],
            &[0x87, 0x0b],
            b"objectClass",
            &[0x30, 0x10, 0x04, 0x0e],
            b"namingContexts",
        ]
        .concat();
        assert_eq!(got, want);
        assert_eq!(unbind(2), vec![0x30, 0x05, 0x02, 0x01, 0x02, 0x42, 0x00]);
    }

    #[test]
    fn integers_are_minimal_twos_complement() {
        assert_eq!(integer(tag::INTEGER, 0), vec![0x02, 0x01, 0x00]);
        assert_eq!(integer(tag::INTEGER, 127), vec![0x02, 0x01, 0x7f]);
        assert_eq!(integer(tag::INTEGER, 128), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(tag::INTEGER, 0x0102_0304), vec![0x02, 0x04, 0x01, 0x02, 0x03, 0x04]);
        assert_eq!(integer(tag::INTEGER, 0x8000_0000), vec![0x02, 0x05, 0x00, 0x80, 0x00, 0x00, 0x00]);
        assert_eq!(tlv(0x04, &[7u8; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        assert_eq!(tlv(0x04, &[0u8; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }

    fn entry_message(id: u32) -> Vec<u8> {
        let attr = |name: &str, vals: &[&str]| {
            let set: Vec<u8> = vals.iter().flat_map(|v| tlv(tag::OCTET_STRING, v.as_bytes())).collect();
            tlv(tag::SEQUENCE, &[tlv(tag::OCTET_STRING, name.as_bytes()), tlv(tag::SET, &set)].concat())
        };
        let attrs =
            [attr("namingContexts", &["dc=corp,dc=example,dc=com"]), attr("supportedLDAPVersion", &["3"])].concat();
        let entry = [tlv(tag::OCTET_STRING, b""), tlv(tag::SEQUENCE, &attrs)].concat();
        tlv(tag::SEQUENCE, &[integer(tag::INTEGER, id), tlv(tag::SEARCH_RESULT_ENTRY, &entry)].concat())
    }

    fn done_message(id: u32, code: u32, diag: &str) -> Vec<u8> {
        let result =
            [integer(tag::ENUMERATED, code), tlv(tag::OCTET_STRING, b""), tlv(tag::OCTET_STRING, diag.as_bytes())]
                .concat();
        tlv(tag::SEQUENCE, &[integer(tag::INTEGER, id), tlv(tag::SEARCH_RESULT_DONE, &result)].concat())
    }

    #[test]
    fn reads_entries_and_results_across_partial_buffers() {
        let stream = [entry_message(1), done_message(1, 0, "")].concat();
        // Every prefix shorter than the first message asks for more bytes.
        let first_len = entry_message(1).len();
        for cut in 0..first_len {
            assert_eq!(read_message(&stream[..cut]).unwrap(), None, "cut {cut}");
        }
        let (id, resp, used) = read_message(&stream).unwrap().unwrap();
        assert_eq!((id, used), (1, first_len));
        assert_eq!(
            resp,
            Response::Entry(vec![
                ("namingContexts".into(), vec!["dc=corp,dc=example,dc=com".into()]),
                ("supportedLDAPVersion".into(), vec!["3".into()]),
            ])
        );
        let (_, resp, used2) = read_message(&stream[used..]).unwrap().unwrap();
        assert_eq!(resp, Response::Done { result_code: 0, diagnostic: String::new() });
        assert_eq!(used + used2, stream.len());
        let (_, resp, _) = read_message(&done_message(1, 50, "insufficient access")).unwrap().unwrap();
        assert_eq!(resp, Response::Done { result_code: 50, diagnostic: "insufficient access".into() });
    }

    #[test]
    fn rejects_garbage() {
        assert!(read_message(&[0x04, 0x00]).is_err());
        assert!(read_message(&[0x30, 0x80, 0x00, 0x00]).is_err());
        assert!(read_message(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(read_message(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
        // HTTP instead of LDAP.
        assert!(read_message(b"HTTP/1.1 400 Bad Request\r\n").is_err());
    }
}
