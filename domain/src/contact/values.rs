use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why a value was refused, naming the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidValue {
    pub field: String,
    pub reason: String,
}

impl InvalidValue {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A first or last name: trimmed, 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonName(String);

impl PersonName {
    /// `None` for a blank name.
    pub fn parse(field: &str, raw: &str) -> Result<Option<Self>, InvalidValue> {
        let s = raw.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if s.chars().count() > 200 {
            return Err(InvalidValue::new(field, "longer than 200 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidValue::new(field, "contains control characters"));
        }
        Ok(Some(Self(s.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tag: trimmed, 1 to 64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tag(String);

impl Tag {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let s = raw.trim();
        if s.is_empty() || s.chars().count() > 64 {
            return Err(InvalidValue::new(
                "tags",
                format!("{raw:?} must have 1 to 64 characters"),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidValue::new(
                "tags",
                format!("{raw:?} contains control characters"),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A custom field's key: a lower-case identifier of at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FieldKey(String);

impl FieldKey {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidValue::new(
                format!("fields.{raw}"),
                "a field key is a lower-case identifier (a-z, 0-9, _) of at most 64 characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A custom field's value. Typed field definitions arrive with the CRM issue; until then a
/// value is text, a number, a boolean, or a list of texts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    Bool(bool),
    Number(serde_json::Number),
    Text(String),
    List(Vec<String>),
}

impl FieldValue {
    /// Reads a JSON value; `null` is `None` (unset). Objects and mixed lists are refused.
    pub fn from_json(key: &FieldKey, v: &serde_json::Value) -> Result<Option<Self>, InvalidValue> {
        use serde_json::Value as J;
        let field = format!("fields.{}", key.as_str());
        let text_ok = |s: &str| {
            if s.len() > 10_000 {
                Err(InvalidValue::new(&field, "text longer than 10000 bytes"))
            } else {
                Ok(())
            }
        };
        Ok(Some(match v {
            J::Null => return Ok(None),
            J::Bool(b) => Self::Bool(*b),
            J::Number(n) => Self::Number(n.clone()),
            J::String(s) => {
                text_ok(s)?;
                Self::Text(s.clone())
            }
            J::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    match i {
                        J::String(s) => {
                            text_ok(s)?;
                            out.push(s.clone())
                        }
                        _ => {
                            return Err(InvalidValue::new(
                                &field,
                                "unknown field type: a list may only hold texts",
                            ))
                        }
                    }
                }
                Self::List(out)
            }
            J::Object(_) => {
                return Err(InvalidValue::new(
                    &field,
                    "unknown field type: a value is text, number, boolean or a list of texts",
                ))
            }
        }))
    }
}

/// Custom fields by key.
pub type Fields = BTreeMap<FieldKey, FieldValue>;
