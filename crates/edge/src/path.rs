//! Viewer paths, decoded and normalised before anything else sees them.
//!
//! A viewer's path becomes two things: part of the cache key, and the tail of the origin
//! request's path after the origin's own prefix (`http://origin/siteB` + `/img/a.png`). Both
//! must mean the same resource, and the second must never leave the prefix, whatever the
//! viewer wrote: `/../siteA/secret`, `/%2e%2e/siteA`, `/..%2fsiteA`, `/x/..//../siteA`.
//!
//! So, as CloudFront does before it forwards a request: percent-decode first (RFC 3986
//! §2.1; an escape that is not two hex digits, a decoded NUL, or a backslash — which
//! Windows origins and some servers read as a separator — is refused), split the
//! decoded bytes on `/` (an encoded `%2F` is a separator too, so it cannot smuggle a `..`
//! past the check), remove dot segments (§5.2.4), and only then encode again in one
//! canonical form for the origin. The result always starts with `/` and holds no `.` or
//! `..` segment, so prefix + path stays under the prefix.

use std::fmt::Write as _;

/// A path that cannot be normalised: the viewer gets 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PathError {
    /// `%` not followed by two hex digits.
    #[error("malformed percent-encoding")]
    BadEscape,
    /// `%00`: no origin path can hold it.
    #[error("encoded NUL byte")]
    Nul,
    /// `\\` or `%5C`: a path separator to some origins, so a way around dot-segment removal.
    #[error("backslash in the path")]
    Backslash,
}

/// A viewer path after decoding and dot-segment removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ViewerPath {
    /// The decoded bytes (starting with `/`): what the cache key holds.
    decoded: Vec<u8>,
    /// The canonical encoding of `decoded`: what the origin is sent.
    encoded: String,
}

impl ViewerPath {
    /// Decodes and normalises the path of a request URI (`uri.path()`).
    pub(crate) fn parse(raw: &str) -> Result<Self, PathError> {
        let decoded = percent_decode(raw.as_bytes())?;
        let decoded = remove_dot_segments(&decoded);
        let encoded = encode(&decoded);
        Ok(Self { decoded, encoded })
    }

    /// A path the edge itself names (`defaultRootObject`, `responsePagePath`), normalised the
    /// same way so it cannot leave the origin's prefix either.
    pub(crate) fn configured(path: &str) -> Result<Self, PathError> {
        Self::parse(&format!("/{}", path.trim_start_matches('/')))
    }

    /// Whether this is the root, `/`.
    pub(crate) fn is_root(&self) -> bool {
        self.decoded == b"/"
    }

    /// The decoded bytes, for the cache key.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.decoded
    }

    /// The canonical percent-encoded form, for the origin request.
    pub(crate) fn encoded(&self) -> &str {
        &self.encoded
    }

    /// The decoded path as text for matching `cacheBehaviors` patterns (bytes that are not
    /// UTF-8 become U+FFFD: matching only picks a behaviour, it never names a resource).
    pub(crate) fn for_matching(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.decoded)
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(raw.len() + 1);
    if raw.first() != Some(&b'/') {
        out.push(b'/');
    }
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) = (raw.get(i + 1).copied().and_then(hex), raw.get(i + 2).copied().and_then(hex))
            else {
                return Err(PathError::BadEscape);
            };
            let byte = hi << 4 | lo;
            match byte {
                0 => return Err(PathError::Nul),
                b'\\' => return Err(PathError::Backslash),
                _ => out.push(byte),
            }
            i += 3;
        } else if b == b'\\' {
            return Err(PathError::Backslash);
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

/// RFC 3986 §5.2.4 on an absolute path: `.` segments vanish, `..` removes the segment
/// before it (never more than there is), and a path ending in a dot segment keeps its
/// trailing `/`. Empty segments (`//`) are kept, as the RFC keeps them.
fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let mut kept: Vec<&[u8]> = Vec::new();
    // The leading `/` yields an empty first piece; every later piece is a segment.
    let mut segments = path.split(|b| *b == b'/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            b"." => {
                if last {
                    kept.push(b"");
                }
            }
            b".." => {
                kept.pop();
                if last {
                    kept.push(b"");
                }
            }
            other => kept.push(other),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for segment in kept {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Percent-encodes every byte outside RFC 3986's `pchar` set and `/`: unreserved and
/// sub-delimiters stay as they are, everything else (including `%` itself) is escaped, so
/// one decoded path has exactly one encoding.
fn encode(decoded: &[u8]) -> String {
    let mut out = String::with_capacity(decoded.len());
    for &b in decoded {
        let plain = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
            );
        if plain {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> String {
        ViewerPath::parse(raw).unwrap().encoded().to_owned()
    }

    #[test]
    fn dot_segments_never_climb_above_the_root() {
        let cases = [
            ("/", "/"),
            ("/a/b/c", "/a/b/c"),
            ("/../siteA/secret.txt", "/siteA/secret.txt"),
            ("/%2e%2e/siteA/secret.txt", "/siteA/secret.txt"),
            ("/%2E%2E/siteA/secret.txt", "/siteA/secret.txt"),
            ("/..%2fsiteA/secret.txt", "/siteA/secret.txt"),
            ("/..%2FsiteA/secret.txt", "/siteA/secret.txt"),
            ("/x/..//../siteA/secret.txt", "/siteA/secret.txt"),
            ("/a/./b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/..", "/"),
            ("/../../../../etc/passwd", "/etc/passwd"),
            ("/a/%2e/b", "/a/b"),
            ("/a/.%2e/b", "/b"),
            ("//double//slash", "//double//slash"),
            ("/...", "/..."),
            ("/a..b/", "/a..b/"),
        ];
        for (raw, want) in cases {
            assert_eq!(norm(raw), want, "{raw}");
        }
    }

    #[test]
    fn one_resource_has_one_encoding_and_one_key() {
        let a = ViewerPath::parse("/caf%C3%A9/a%20b").unwrap();
        let b = ViewerPath::parse("/caf%c3%a9/a%20b").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.encoded(), "/caf%C3%A9/a%20b");
        assert_eq!(a.as_bytes(), "/café/a b".as_bytes());
        assert_eq!(norm("/%41%42c"), "/ABc", "unreserved bytes are not escaped");
        assert_eq!(norm("/100%25"), "/100%25", "a literal percent stays escaped");
        assert_eq!(norm("/a%3Fb"), "/a%3Fb", "an encoded ? stays in the path");
    }

    #[test]
    fn malformed_escapes_and_nul_are_refused() {
        assert_eq!(ViewerPath::parse("/a%zzb"), Err(PathError::BadEscape));
        assert_eq!(ViewerPath::parse("/a%2"), Err(PathError::BadEscape));
        assert_eq!(ViewerPath::parse("/a%"), Err(PathError::BadEscape));
        assert_eq!(ViewerPath::parse("/a%00b"), Err(PathError::Nul));
        assert_eq!(ViewerPath::parse("/..%5c../x"), Err(PathError::Backslash));
        assert_eq!(ViewerPath::parse("/..\\../x"), Err(PathError::Backslash));
    }

    #[test]
    fn configured_paths_are_confined_too() {
        assert_eq!(ViewerPath::configured("index.html").unwrap().encoded(), "/index.html");
        assert_eq!(ViewerPath::configured("../../etc/passwd").unwrap().encoded(), "/etc/passwd");
        assert!(ViewerPath::parse("/").unwrap().is_root());
    }
}
