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

/// A phone number in E.164 form (`+` and 8 to 15 digits), from any usual way of writing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let compact: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or("");
        let ok = (8..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Self(compact))
        } else {
            Err(InvalidValue::new(
                "phone",
                "an international number: + country code and number, e.g. +4915123456789",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where and how to reach a contact: phone, time zone (IANA) and locale. Absent keys are
/// left out of events, so events from before these existed keep their shape.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// A change to a profile: `None` leaves a value as it is, `Some(None)` clears it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfilePatch {
    pub phone: Option<Option<Phone>>,
    pub time_zone: Option<Option<String>>,
    pub locale: Option<Option<String>>,
}

impl ProfilePatch {
    /// `profile` with the patch applied, and the names of what changed.
    pub fn apply_to(self, profile: &Profile) -> (Profile, Vec<String>) {
        let mut out = profile.clone();
        let mut changed = Vec::new();
        let mut set = |name: &str, slot: &mut Option<String>, v: Option<Option<String>>| {
            if let Some(v) = v {
                if *slot != v {
                    *slot = v;
                    changed.push(name.to_owned());
                }
            }
        };
        set("phone", &mut out.phone, self.phone.map(|p| p.map(|p| p.0)));
        set("time_zone", &mut out.time_zone, self.time_zone);
        set("locale", &mut out.locale, self.locale);
        (out, changed)
    }
}

/// What a change of custom fields does to `current`: the fields set and unset, their names
/// (`fields.<key>`) for a `changed` list, and how many fields there are afterwards.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldsDiff {
    pub changed: Vec<String>,
    pub set: BTreeMap<String, FieldValue>,
    pub unset: Vec<String>,
    pub count_after: usize,
}

impl FieldsDiff {
    /// Only what differs: setting a field to its value, or unsetting an absent one, is no change.
    pub fn of(
        current: &BTreeMap<String, FieldValue>,
        patch: BTreeMap<FieldKey, Option<FieldValue>>,
    ) -> Self {
        let mut d = Self::default();
        for (k, v) in patch {
            let key = k.as_str().to_owned();
            match v {
                Some(v) if current.get(&key) != Some(&v) => {
                    d.changed.push(format!("fields.{key}"));
                    d.set.insert(key, v);
                }
                None if current.contains_key(&key) => {
                    d.changed.push(format!("fields.{key}"));
                    d.unset.push(key);
                }
                _ => {}
            }
        }
        let added = d.set.keys().filter(|k| !current.contains_key(*k)).count();
        d.count_after = current.len() + added - d.unset.len();
        d
    }
}
