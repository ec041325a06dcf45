//! A deliberately tiny DER reader for the one structure no crate in the tree parses for us:
//! the outer layer of a PKCS#1 `RSAPrivateKey` (modulus and exponent, to match a key with
//! its certificate), and INTEGER magnitudes compared without sign bytes. PKCS#8 and SEC1
//! keys are read with the `pkcs8` and `sec1` crates, and the AIA and certificate-policies
//! extensions are built with x509-cert's types.
//!
//! Only definite-length encodings with single-byte tags are supported, which is all DER
//! (X.690 §10.1) allows for the universal tags used here.

/// ASN.1 universal tag: INTEGER.
pub(crate) const INTEGER: u8 = 0x02;
/// ASN.1 universal tag: SEQUENCE (constructed).
pub(crate) const SEQUENCE: u8 = 0x30;

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
        let long = [&[0x04, 0x81, 200][..], &[0u8; 200]].concat();
        let longer = [&[0x04, 0x82, 0x01, 0x2c][..], &[0u8; 300]].concat();
        for (encoded, len) in [(vec![0x04, 2, 1, 2], 2), (long, 200), (longer, 300)] {
            let (tag, content, rest) = read_tlv(&encoded).unwrap();
            assert_eq!(tag, 0x04);
            assert_eq!(content.len(), len);
            assert!(rest.is_empty());
        }
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
