//! Prefix searches with `LIKE`.

/// `text` with `LIKE`'s wildcards and escape character taken literally.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `LIKE` pattern of values starting with `s`, lowercased.
pub fn prefix_pattern(s: &str) -> String {
    format!("{}%", escaped(&s.to_lowercase()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn wildcards_match_themselves() {
        assert_eq!(super::prefix_pattern("A_b%"), "a\\_b\\%%");
    }
}
