use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::contact::{FieldValue, Phone};
use crate::identity::OrgSettings;
use crate::EmailAddress;

/// What a custom field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// At most 255 characters.
    Text,
    /// At most 10,000 characters.
    LongText,
    Number,
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339.
    Datetime,
    /// One of the options.
    Select,
    /// Any of the options.
    Multiselect,
    Email,
    /// `http://` or `https://`.
    Url,
    /// Stored as E.164.
    Phone,
    /// ISO 3166-1 alpha-2, stored upper case.
    Country,
    /// IANA time zone.
    Timezone,
    /// BCP 47 tag.
    Locale,
}

/// One custom field of an organization's contacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDefinition {
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Every contact must have a value (the default fills it on create, if there is one).
    pub required: bool,
    pub default: Option<FieldValue>,
    /// The choices of a select or multiselect.
    pub options: Vec<String>,
    /// No two contacts of the organization may have the same value (set only when the field
    /// is defined: existing values could not be checked).
    #[serde(default)]
    pub unique: bool,
}

impl FieldDefinition {
    /// The value a text cell (a CSV column, a form field) holds for this field, before
    /// [`check`](Self::check): numbers and booleans are read from their text, a
    /// multiselect's choices are separated by `,` or `;`, everything else stays text.
    pub fn value_from_text(&self, raw: &str) -> Result<FieldValue, String> {
        use FieldType as T;
        let s = raw.trim();
        match self.field_type {
            T::Number => s
                .parse::<i64>()
                .map(serde_json::Number::from)
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(serde_json::Number::from_f64))
                .map(FieldValue::Number)
                .ok_or_else(|| "expected a number".to_owned()),
            T::Boolean => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Ok(FieldValue::Bool(true)),
                "false" | "no" | "0" => Ok(FieldValue::Bool(false)),
                _ => Err("expected true or false".to_owned()),
            },
            T::Multiselect => Ok(FieldValue::List(
                s.split([',', ';'])
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )),
            _ => Ok(FieldValue::Text(s.to_owned())),
        }
    }

    /// `value` checked and normalised for this field, or why it does not fit.
    pub fn check(&self, value: &FieldValue) -> Result<FieldValue, String> {
        use FieldType as T;
        use FieldValue as V;
        let text = |max: usize| match value {
            V::Text(s) if s.chars().count() <= max => Ok(V::Text(s.clone())),
            V::Text(_) => Err(format!("at most {max} characters")),
            _ => Err("expected text".to_owned()),
        };
        let as_text = || match value {
            V::Text(s) => Ok(s.trim()),
            _ => Err("expected text".to_owned()),
        };
        match self.field_type {
            T::Text => text(255),
            T::LongText => text(10_000),
            T::Number => match value {
                V::Number(_) => Ok(value.clone()),
                _ => Err("expected a number".into()),
            },
            T::Boolean => match value {
                V::Bool(_) => Ok(value.clone()),
                _ => Err("expected true or false".into()),
            },
            T::Date => NaiveDate::parse_from_str(as_text()?, "%Y-%m-%d")
                .map(|d| V::Text(d.to_string()))
                .map_err(|_| "expected a date like 2026-11-22".into()),
            T::Datetime => DateTime::parse_from_rfc3339(as_text()?)
                .map(|t| V::Text(t.to_utc().to_rfc3339()))
                .map_err(|_| "expected a date and time like 2026-11-22T10:00:00Z".into()),
            T::Select => {
                let s = as_text()?;
                if self.options.iter().any(|o| o == s) {
                    Ok(V::Text(s.to_owned()))
                } else {
                    Err(format!("expected one of {}", self.options.join(", ")))
                }
            }
            T::Multiselect => match value {
                V::List(items) if items.iter().all(|i| self.options.contains(i)) => {
                    let mut items = items.clone();
                    items.sort();
                    items.dedup();
                    Ok(V::List(items))
                }
                _ => Err(format!("expected a list of {}", self.options.join(", "))),
            },
            T::Email => EmailAddress::parse(as_text()?)
                .map(|e| V::Text(e.as_str().to_owned()))
                .map_err(|e| e.to_string()),
            T::Url => {
                let s = as_text()?;
                let ok = (s.starts_with("https://") || s.starts_with("http://"))
                    && s.len() <= 2048
                    && !s.contains(char::is_whitespace);
                if ok {
                    Ok(V::Text(s.to_owned()))
                } else {
                    Err("expected an http(s) URL".into())
                }
            }
            T::Phone => Phone::parse(as_text()?)
                .map(|p| V::Text(p.as_str().to_owned()))
                .map_err(|e| e.reason),
            T::Country => {
                let s = as_text()?;
                if s.len() == 2 && s.chars().all(|c| c.is_ascii_alphabetic()) {
                    Ok(V::Text(s.to_ascii_uppercase()))
                } else {
                    Err("expected a two-letter country code like FR".into())
                }
            }
            T::Timezone => OrgSettings::parse_time_zone(as_text()?)
                .map(V::Text)
                .map_err(|e| e.reason),
            T::Locale => OrgSettings::parse_locale(as_text()?)
                .map(V::Text)
                .map_err(|e| e.reason),
        }
    }
}
