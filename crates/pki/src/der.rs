//! A deliberately tiny DER writer and reader for the few structures rcgen and x509-parser
//! do not build or parse for us: the outer layers of PKCS#8 / PKCS#1 / SEC1 private keys
//! (the AIA and certificate-policies extensions are built with x509-cert's types).
//!
//! Only definite-length encodings with single-byte tags are supported, which is all DER
//! (X.690 §10.1) allows for the universal and context tags used here.

/// ASN.1 universal tag: INTEGER.
pub(crate) const INTEGER: u8 = 0x02;
/// ASN.1 universal tag: OCTET STRING.
pub(crate) const OCTET_STRING: u8 = 0x04;
/// ASN.1 universal tag: OBJECT IDENTIFIER.
pub(crate) const OID: u8 = 0x06;
/// ASN.1 universal tag: SEQUENCE (constructed).
pub(crate) const SEQUENCE: u8 = 0x30;
/// Encodes one TLV: `tag || length || content`.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
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

/// Encodes an OBJECT IDENTIFIER from its arcs (X.690 §8.19). The first two arcs must be a
/// valid pair (0–2, and below 40 unless the first is 2), which holds for every constant here.
pub(crate) fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut content = Vec::new();
    let (first, rest) = match arcs {
        [a, b, rest @ ..] => (a * 40 + b, rest),
        [a] => (a * 40, &[][..]),
        [] => return tlv(OID, &[]),
    };
    for arc in std::iter::once(first).chain(rest.iter().copied()) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut v = arc >> 7;
        while v > 0 {
            groups.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        content.extend(groups.iter().rev());
    }
    tlv(OID, &content)
}

/// A DER structure that could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DerError;

/// Reads one TLV from the front of `input`: returns `(tag, content, rest)`.
pub(crate) fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), DerError> {
    let (&tag, rest) = input.split_first().ok_or(DerError)?;
    if tag & 0x1f == 0x1f {
        return Err(DerError); // multi-byte tags: never used by the structures we read
    }
    let (&first, rest) = rest.split_first().ok_or(DerError)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        // 0x80 is the BER indefinite form, forbidden in DER; > 4 length bytes is absurd here.
        if n == 0 || n > 4 || rest.len() < n {
            return Err(DerError);
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(DerError);
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// Reads one TLV that must carry `expected` as its tag: returns `(content, rest)`.
pub(crate) fn expect_tlv(input: &[u8], expected: u8) -> Result<(&[u8], &[u8]), DerError> {
    match read_tlv(input)? {
        (tag, content, rest) if tag == expected => Ok((content, rest)),
        _ => Err(DerError),
    }
}

/// An INTEGER's magnitude without leading zero bytes, so two encodings of the same positive
/// number compare equal.
pub(crate) fn unsigned_magnitude(content: &[u8]) -> &[u8] {
    let skip = content.iter().take_while(|b| **b == 0).count();
    &content[skip..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lengths() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0u8; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = tlv(0x04, &[0u8; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2c]);
        for (encoded, len) in [(tlv(0x04, &[1, 2]), 2), (long, 200), (longer, 300)] {
            let (tag, content, rest) = read_tlv(&encoded).unwrap();
            assert_eq!(tag, 0x04);
            assert_eq!(content.len(), len);
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn oid_encoding_matches_known_values() {
        // id-ad-ocsp 1.3.6.1.5.5.7.48.1
        assert_eq!(oid(&[1, 3, 6, 1, 5, 5, 7, 48, 1]), hex::decode("06082b06010505073001").unwrap());
        // sha256WithRSAEncryption 1.2.840.113549.1.1.11 (multi-byte arcs)
        assert_eq!(oid(&[1, 2, 840, 113549, 1, 1, 11]), hex::decode("06092a864886f70d01010b").unwrap());
        // CA/B Forum domain-validated 2.23.140.1.2.1
        assert_eq!(oid(&[2, 23, 140, 1, 2, 1]), hex::decode("060667810c010201").unwrap());
    }

    #[test]
    fn reader_rejects_malformed_input() {
        assert_eq!(read_tlv(&[]), Err(DerError));
        assert_eq!(read_tlv(&[0x30]), Err(DerError));
        assert_eq!(read_tlv(&[0x30, 0x80, 0, 0]), Err(DerError)); // indefinite length
        assert_eq!(read_tlv(&[0x30, 0x05, 1, 2]), Err(DerError)); // truncated
        assert_eq!(read_tlv(&[0x1f, 0x01, 0x00]), Err(DerError)); // multi-byte tag
        assert_eq!(expect_tlv(&[0x02, 0x01, 0x05], 0x04), Err(DerError));
        assert_eq!(expect_tlv(&[0x02, 0x01, 0x05, 0xff], 0x02), Ok((&[5u8][..], &[0xffu8][..])));
    }

    #[test]
    fn magnitude_strips_sign_byte() {
        assert_eq!(unsigned_magnitude(&[0, 0x80, 1]), &[0x80, 1]);
        assert_eq!(unsigned_magnitude(&[0x7f]), &[0x7f]);
    }
}
