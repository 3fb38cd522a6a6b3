use std::fmt;

use serde::{Deserialize, Serialize};

/// An email address, trimmed and lower-cased, checked for the shape mail systems accept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

/// Why a text is not an email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid email address: {1}")]
pub struct InvalidEmail(pub String, pub &'static str);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let s = raw.trim().to_lowercase();
        let bad = |why| Err(InvalidEmail(raw.to_owned(), why));
        if s.len() > 254 {
            return bad("longer than 254 characters");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return bad("no @");
        };
        if local.is_empty() || local.len() > 64 {
            return bad("the part before @ must have 1 to 64 characters");
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return bad("misplaced dot before @");
        }
        let local_ok = local.chars().all(|c| {
            c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c) || !c.is_ascii()
        });
        if !local_ok {
            return bad("character not allowed before @");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return bad("the domain needs a dot");
        }
        for l in &labels {
            let ok = !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-');
            if !ok {
                return bad("malformed domain");
            }
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = InvalidEmail;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> Self {
        e.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        let e = EmailAddress::parse("  Ada.Lovelace@Example.ORG ").map(String::from);
        assert_eq!(e, Ok("ada.lovelace@example.org".to_owned()));
    }

    #[test]
    fn plus_addressing_and_subdomains_are_accepted() {
        assert!(EmailAddress::parse("a+news@mail.example.co.uk").is_ok());
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for s in [
            "",
            "plain",
            "@example.org",
            "a@",
            "a@localhost",
            "a@@b.org",
            "a b@c.org",
            "a..b@c.org",
            ".a@c.org",
            "a@-c.org",
            "a@c..org",
        ] {
            assert!(EmailAddress::parse(s).is_err(), "{s:?} was accepted");
        }
    }
}
