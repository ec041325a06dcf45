//! Turning model names and documentation into Rust identifiers and doc lines.

use std::collections::BTreeSet;

/// Keywords that need `r#` as identifiers.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn", "else", "enum",
    "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod", "move",
    "mut", "override", "priv", "pub", "ref", "return", "static", "struct", "trait", "true", "try", "type", "typeof",
    "union", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// `CertificateArn` → `certificate_arn`, `LDAPSSettingsInfo` → `ldaps_settings_info`,
/// `type` → `r#type`.
pub fn field_name(member: &str) -> String {
    let chars: Vec<char> = member.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let boundary =
                prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower);
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    let out = out.trim_end_matches('_').to_owned();
    match out.as_str() {
        "self" | "super" | "crate" | "_" => format!("{out}_"),
        s if s.starts_with(|c: char| c.is_ascii_digit()) => format!("f_{out}"),
        s if KEYWORDS.contains(&s) => format!("r#{out}"),
        _ => out,
    }
}

/// CamelCase variant names for enum values, valid and unique: `RSA_2048` → `Rsa2048`,
/// `EC_prime256v1` → `EcPrime256v1`, `TLSv1.1_2016` → `TLSv1_1_2016`, `us-east-1` → `UsEast1`.
pub fn enum_variants(values: &[String]) -> Vec<String> {
    let mut used = BTreeSet::new();
    values
        .iter()
        .map(|value| {
            let mut name = String::new();
            for word in value.split(|c: char| !c.is_ascii_alphanumeric()) {
                let Some(first) = word.chars().next() else {
                    continue;
                };
                // Digits on both sides of a separator keep it, or `1.1_2016` would run together.
                if first.is_ascii_digit() && name.ends_with(|c: char| c.is_ascii_digit()) {
                    name.push('_');
                }
                name.push(first.to_ascii_uppercase());
                let rest = &word[first.len_utf8()..];
                // SHOUTING words become Camel; mixed-case words keep their casing.
                if word.chars().any(|c| c.is_ascii_lowercase()) {
                    name.push_str(rest);
                } else {
                    name.push_str(&rest.to_ascii_lowercase());
                }
            }
            if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                name.insert(0, 'V');
            }
            if name == "Self" {
                name.push('_');
            }
            let base = name.clone();
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}V{n}");
                n += 1;
            }
            name
        })
        .collect()
}

/// The first sentence of a model documentation string, HTML stripped, for a `///` line;
/// `fallback` when there is none.
pub fn doc_line(doc: Option<&str>, fallback: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in doc.unwrap_or("").chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if in_tag => {}
            c if c.is_whitespace() => text.push(' '),
            c => text.push(c),
        }
    }
    let text = text.replace("&nbsp;", " ");
    let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
    let mut sentence = String::new();
    for (i, word) in words.iter().enumerate() {
        if !sentence.is_empty() {
            sentence.push(' ');
        }
        sentence.push_str(word);
        let abbreviation = ["e.g.", "i.e.", "etc.", "vs."].iter().any(|a| word.ends_with(a));
        let ends = word.ends_with('.') && !abbreviation && i + 1 < words.len();
        if ends {
            break;
        }
        if sentence.len() > 200 && i + 1 < words.len() {
            sentence.push_str(" ...");
            break;
        }
    }
    // Tidy punctuation the tag stripping separated from its word, e.g. `<code>x</code> .`.
    let sentence = sentence
        .replace(" .", ".")
        .replace(" ,", ",")
        .replace(" )", ")")
        .replace("( ", "(")
        .replace('[', "\\[")
        .replace(']', "\\]");
    if sentence.is_empty() { fallback.to_owned() } else { sentence }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names() {
        assert_eq!(field_name("CertificateArn"), "certificate_arn");
        assert_eq!(field_name("LDAPSSettingsInfo"), "ldaps_settings_info");
        assert_eq!(field_name("distributionName"), "distribution_name");
        assert_eq!(field_name("ipv6Address"), "ipv6_address");
        assert_eq!(field_name("type"), "r#type");
        assert_eq!(field_name("DnsIpAddrs"), "dns_ip_addrs");
    }

    #[test]
    fn variants() {
        let v = |s: &[&str]| enum_variants(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(v(&["RSA_2048", "EC_prime256v1"]), ["Rsa2048", "EcPrime256v1"]);
        assert_eq!(v(&["TLSv1.1_2016"]), ["TLSv1_1_2016"]);
        assert_eq!(v(&["PendingValidation", "One-Way: Outgoing"]), ["PendingValidation", "OneWayOutgoing"]);
        assert_eq!(v(&["RSA-2048", "RSA_2048"]), ["Rsa2048", "Rsa2048V2"]);
        assert_eq!(v(&["1d"]), ["V1d"]);
    }

    #[test]
    fn docs() {
        assert_eq!(doc_line(Some("<p>Returns the <code>Arn</code>. More text.</p>"), "X"), "Returns the Arn.");
        assert_eq!(doc_line(Some("<p></p>"), "X"), "X");
        assert_eq!(doc_line(Some("Use e.g. this. Then"), "X"), "Use e.g. this.");
    }
}
