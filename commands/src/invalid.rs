//! Input that does not fit: every field that is wrong, and why. What a service answers for a
//! request it cannot start on; the API shows it as a 422 naming the fields (`errors`), the
//! console next to each field.

use domain::contact::InvalidValue;

/// Every invalid field of an input (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct Invalid(pub Vec<InvalidValue>);

fn describe(fields: &[InvalidValue]) -> String {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.field, f.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Invalid {
    /// One invalid field.
    pub fn one(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self(vec![InvalidValue::new(field, reason)])
    }

    /// `Err` naming each `(field, reason)` when there is any (what a check against field
    /// definitions answers).
    pub fn check(problems: Vec<(String, String)>) -> Result<(), Self> {
        if problems.is_empty() {
            return Ok(());
        }
        Err(Self(
            problems
                .into_iter()
                .map(|(field, reason)| InvalidValue { field, reason })
                .collect(),
        ))
    }

    /// Why `field` is invalid, if it is (for a form that shows it next to the field).
    pub fn reason(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|f| f.field == field)
            .map(|f| f.reason.as_str())
    }
}

impl From<InvalidValue> for Invalid {
    fn from(v: InvalidValue) -> Self {
        Self(vec![v])
    }
}
