//! Query parameters checked whole: every bad one is named (400 `/problems/bad-request`, one
//! entry of `errors` each), not only the first. Parameters a route does not read are
//! ignored (`consistent_after` has its own extractor).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http_kit::problem::FieldProblem;
use http_kit::Problem;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Most items a page holds.
pub const MAX_LIMIT: i64 = 500;

/// The query string's parameters and what was wrong with them so far.
pub struct Params {
    pairs: Vec<(String, String)>,
    bad: Vec<FieldProblem>,
}

impl Params {
    pub fn parse(raw: Option<&str>) -> Self {
        Self {
            pairs: form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
            bad: Vec::new(),
        }
    }

    /// The value of `key` (the last one given; empty counts as absent).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Records that `field` is bad.
    pub fn bad(&mut self, field: &str, reason: impl Into<String>) {
        self.bad.push(FieldProblem {
            field: field.to_owned(),
            reason: reason.into(),
        });
    }

    /// `limit`: 1 to 500, 50 when absent.
    pub fn limit(&mut self) -> i64 {
        let Some(raw) = self.get("limit") else {
            return 50;
        };
        match raw.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                self.bad("limit", format!("an integer from 1 to {MAX_LIMIT}"));
                50
            }
        }
    }

    /// The values of `key` (repeated, or a comma list), each one of `allowed`, without
    /// repeats.
    pub fn choices(&mut self, key: &str, allowed: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut wrong = false;
        for (_, v) in self.pairs.iter().filter(|(k, _)| k == key) {
            for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if !allowed.contains(&s) {
                    wrong = true;
                } else if !out.iter().any(|o| o == s) {
                    out.push(s.to_owned());
                }
            }
        }
        if wrong {
            self.bad(key, format!("each one of {}", allowed.join(", ")));
        }
        out
    }

    /// `key` as an integer of at least 1 (`None`: absent or bad).
    pub fn positive(&mut self, key: &str) -> Option<i64> {
        let raw = self.get(key)?;
        match raw.parse::<i64>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                self.bad(key, "an integer of at least 1");
                None
            }
        }
    }

    /// `key` as a page token of [`token`] (`None`: absent or bad).
    pub fn token<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        let raw = self.get(key)?;
        let decoded = URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|b| serde_json::from_slice::<T>(&b).ok());
        if decoded.is_none() {
            self.bad(key, "the `next` token of a page of this list");
        }
        decoded
    }

    /// `Ok` when every parameter read was good, else 400 naming each bad one.
    pub fn finish(self) -> Result<(), Problem> {
        if self.bad.is_empty() {
            Ok(())
        } else {
            Err(Problem::bad_parameters(self.bad))
        }
    }
}

/// The page token of `key` (the last item's sort key): opaque to clients.
pub fn token<T: Serialize>(key: &T) -> Option<String> {
    serde_json::to_vec(key)
        .ok()
        .map(|b| URL_SAFE_NO_PAD.encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_parameter_is_named() {
        let mut p = Params::parse(Some("limit=0&status=live,nope&after=%25&version=x"));
        assert_eq!(p.limit(), 50);
        assert_eq!(p.choices("status", &["live"]), vec!["live".to_owned()]);
        assert_eq!(p.token::<(String, String)>("after"), None);
        assert_eq!(p.positive("version"), None);
        let problem = p.finish().err().map(|p| p.errors).unwrap_or_default();
        let fields: Vec<&str> = problem.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["limit", "status", "after", "version"]);
    }

    #[test]
    fn repeated_and_comma_separated_choices_agree() {
        let mut p = Params::parse(Some("status=a&status=b,a&limit=7"));
        assert_eq!(p.choices("status", &["a", "b"]), ["a", "b"]);
        assert_eq!(p.limit(), 7);
        assert!(p.finish().is_ok());
    }
}
