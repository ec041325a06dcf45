//! Java-flavoured model patterns, compiled once and matched the way Java's `matches` does.
//!
//! AWS services validate with `java.util.regex`, so a model pattern means what Java says it
//! means: `\w`, `\d` and `\s` are ASCII-only, `\p{LD}` and `\p{Punct}` exist, `\u000D` is an
//! escape, and the whole value must match. [`translate`] rewrites those into the syntax
//! `fancy-regex` understands (lookaheads appear in the models, so plain `regex` will not do).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use fancy_regex::Regex;

/// Compiled patterns by their model text; `None` for a pattern that does not compile.
type Cache = RwLock<HashMap<&'static str, Option<Arc<Regex>>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| RwLock::new(HashMap::new()))
}

/// Whether `value` matches all of `pattern` (a model pattern, as written in the model).
///
/// A pattern that does not compile is treated as matching every value: rejecting valid
/// input because of a translation gap would be worse than accepting a malformed value the
/// handler rejects later. `compile` exposes failures to the test that compiles every pattern.
pub(crate) fn matches(pattern: &'static str, value: &str) -> bool {
    let Some(re) = compiled(pattern) else {
        return true;
    };
    // A backtracking-limit error means the pattern is too expensive for this value; as
    // above, we would rather let it through than reject a value AWS may accept.
    re.is_match(value).unwrap_or(true)
}

fn compiled(pattern: &'static str) -> Option<Arc<Regex>> {
    // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
    if let Some(hit) = cache().read().unwrap_or_else(|e| e.into_inner()).get(pattern) {
        return hit.clone();
    }
    let re = compile(pattern).ok().map(Arc::new);
    cache().write().unwrap_or_else(|e| e.into_inner()).insert(pattern, re.clone());
    re
}

/// Compiles a model pattern anchored at both ends.
pub(crate) fn compile(pattern: &str) -> Result<Regex, fancy_regex::Error> {
    Regex::new(&format!("^(?:{})$", translate(pattern)))
}

/// Java's `\s`: ASCII whitespace only.
const SPACE: &str = r"\t\n\x{0B}\x{0C}\r ";
/// Java's `\p{Punct}`: ``!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~``.
const PUNCT: &str = r"!-/:-@\[-`{-~";

/// Rewrites a Java pattern into fancy-regex syntax with the same meaning.
pub(crate) fn translate(java: &str) -> String {
    let chars: Vec<char> = java.chars().collect();
    let mut out = String::with_capacity(java.len() + 16);
    let mut class_depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '[' => {
                class_depth += 1;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal in Java.
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push_str(r"\]");
                    i += 1;
                }
                continue;
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(c);
                continue;
            }
            '\\' => {}
            _ => {
                out.push(c);
                continue;
            }
        }
        // An escape.
        let Some(&e) = chars.get(i) else {
            out.push_str(r"\\");
            break;
        };
        i += 1;
        let in_class = class_depth > 0;
        // Set members for class-like escapes; `negated` ones only have a form outside classes.
        let (set, negated) = match e {
            'w' => ("a-zA-Z0-9_".to_owned(), false),
            'W' => ("a-zA-Z0-9_".to_owned(), true),
            'd' => ("0-9".to_owned(), false),
            'D' => ("0-9".to_owned(), true),
            's' => (SPACE.to_owned(), false),
            'S' => (SPACE.to_owned(), true),
            'p' | 'P' if chars.get(i) == Some(&'{') => {
                let end = chars[i..].iter().position(|&c| c == '}').map(|p| i + p);
                let Some(end) = end else {
                    out.push('\\');
                    out.push(e);
                    continue;
                };
                let name: String = chars[i + 1..end].iter().collect();
                i = end + 1;
                let set = match name.as_str() {
                    "LD" => r"\p{L}\p{Nd}",
                    "Punct" => PUNCT,
                    "Alpha" => "a-zA-Z",
                    "Digit" => "0-9",
                    "Alnum" => "a-zA-Z0-9",
                    "Upper" => "A-Z",
                    "Lower" => "a-z",
                    "XDigit" => "0-9a-fA-F",
                    "Space" => SPACE,
                    _ => {
                        // Unicode categories and scripts mean the same in both engines.
                        out.push_str(&format!("\\{e}{{{name}}}"));
                        continue;
                    }
                };
                (set.to_owned(), e == 'P')
            }
            'u' | 'x' => {
                let digits = if e == 'u' { 4 } else { 2 };
                let hex: String = chars[i..].iter().take(digits).collect();
                if hex.len() == digits && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    i += digits;
                    out.push_str(&format!("\\x{{{hex}}}"));
                } else {
                    out.push('\\');
                    out.push(e);
                }
                continue;
            }
            // Java allows escaping `/`, which needs no escape at all.
            '/' => {
                out.push('/');
                continue;
            }
            _ => {
                out.push('\\');
                out.push(e);
                continue;
            }
        };
        match (in_class, negated) {
            (false, false) => out.push_str(&format!("[{set}]")),
            (false, true) => out.push_str(&format!("[^{set}]")),
            (true, false) => out.push_str(&set),
            (true, true) => out.push_str(&format!("[^{set}]")),
        }
        // In Java a `-` after a class escape cannot start a range, so it is a literal; after
        // expansion it would become one (`[\w-x]` → `[a-zA-Z0-9_-x]`), so escape it.
        if in_class && chars.get(i) == Some(&'-') && chars.get(i + 1) != Some(&']') {
            out.push_str(r"\-");
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_isms_translate() {
        assert_eq!(translate(r"\w+"), "[a-zA-Z0-9_]+");
        assert_eq!(translate(r"[\w-]"), r"[a-zA-Z0-9_-]");
        assert_eq!(translate(r"[\w-x]"), r"[a-zA-Z0-9_\-x]");
        assert_eq!(translate(r"\u000D?\u000A"), r"\x{000D}?\x{000A}");
        assert_eq!(translate(r"[\x60\/]"), r"[\x{60}/]");
        assert_eq!(translate(r"^(\p{LD}|\p{Punct}| )+$"), r"^([\p{L}\p{Nd}]|[!-/:-@\[-`{-~]| )+$");
    }

    #[test]
    fn matching_is_whole_value_and_ascii_like_java() {
        assert!(matches(r"\w+", "abc_1"));
        assert!(!matches(r"\w+", "abc def"));
        assert!(!matches(r"\w+", "é"));
        assert!(matches(r"^[a-z0-9]{1,2}|[a-z0-9][a-z0-9-]+[a-z0-9]$", "ab"));
        assert!(!matches(r"^[a-z0-9]{1,2}|[a-z0-9][a-z0-9-]+[a-z0-9]$", "-abc"));
        assert!(matches(r"^(\p{LD}|\p{Punct}| )+$", "Pa$$ word!"));
        assert!(!matches(r"^(\p{LD}|\p{Punct}| )+$", "tab\there"));
        let password = "(?=^.{8,64}$)((?=.*\\d)(?=.*[A-Z])(?=.*[a-z])|(?=.*\\d)(?=.*[^A-Za-z0-9\\s])(?=.*[a-z])|(?=.*[^A-Za-z0-9\\s])(?=.*[A-Z])(?=.*[a-z])|(?=.*\\d)(?=.*[A-Z])(?=.*[^A-Za-z0-9\\s]))^.*";
        assert!(matches(password, "Secret123"));
        // A `-` after a range is a literal; `+-.` is a range holding `,`.
        assert!(matches(r"^[a-zA-Z0-9-/. _]*$", "a-b/c. d_"));
        assert!(!matches(r"^[a-zA-Z0-9-/. _]*$", "a,b"));
        assert!(matches(r"[&\w+-.@]+", "a,b&c@d"));
        assert!(!matches(r"[&\w+-.@]+", "a b"));
        assert!(!matches(password, "secret"));
    }
}
