//! Custom contact events: something the contact did or that happened to it, named by the
//! organization (`signed_up`, `purchase` with `{"total": 42}`). Journeys trigger on them.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use super::InvalidValue;

/// Longest event name, in characters (all ASCII).
pub const MAX_EVENT_NAME: usize = 100;
/// Largest properties object, serialized as compact JSON, in bytes.
pub const MAX_PROPERTIES_BYTES: usize = 16 * 1024;
/// Deepest properties object: the object itself is level 1, each object or list inside it
/// one more.
pub const MAX_PROPERTIES_DEPTH: usize = 4;
/// How far ahead of now an event may say it occurred (senders' clocks drift; something
/// that has not happened yet is not an event).
pub const MAX_FUTURE_HOURS: i64 = 24;

/// An event's name: 1 to 100 characters of `A-Z a-z 0-9 _ . : -`, as given (case kept).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventName(String);

impl EventName {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_EVENT_NAME
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidValue::new(
                "name",
                format!(
                    "1 to {MAX_EVENT_NAME} characters of letters, digits, '_', '.', ':' and '-'"
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<EventName> for String {
    fn from(n: EventName) -> Self {
        n.0
    }
}

/// An event's properties: a JSON object of at most [`MAX_PROPERTIES_BYTES`] and
/// [`MAX_PROPERTIES_DEPTH`] levels. Names starting with `$` are reserved at the top level
/// (the log marks a sealed personal value as `{"$enc": …}`; properties shaped like one
/// would not be sealed and could not be read back).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventProperties(Map<String, Value>);

impl EventProperties {
    /// `None` (absent or `null`) is no properties.
    pub fn parse(raw: Option<Value>) -> Result<Self, InvalidValue> {
        let invalid = |reason: String| InvalidValue::new("properties", reason);
        let map = match raw {
            None | Some(Value::Null) => return Ok(Self::default()),
            Some(Value::Object(map)) => map,
            Some(_) => return Err(invalid("must be a JSON object".into())),
        };
        if let Some(k) = map.keys().find(|k| k.starts_with('$')) {
            return Err(invalid(format!(
                "{k:?}: names starting with '$' are reserved"
            )));
        }
        let size = serde_json::to_vec(&map).map_or(usize::MAX, |v| v.len());
        if size > MAX_PROPERTIES_BYTES {
            return Err(invalid(format!(
                "at most {MAX_PROPERTIES_BYTES} bytes of JSON ({size} given)"
            )));
        }
        if depth(&map) > MAX_PROPERTIES_DEPTH {
            return Err(invalid(format!(
                "at most {MAX_PROPERTIES_DEPTH} levels of objects and lists"
            )));
        }
        Ok(Self(map))
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

/// Levels of objects and lists: `{}` is 1, `{"a": [1]}` 2.
fn depth(map: &Map<String, Value>) -> usize {
    fn of(v: &Value) -> usize {
        match v {
            Value::Object(m) => depth(m),
            Value::Array(items) => 1 + items.iter().map(of).max().unwrap_or(0),
            _ => 0,
        }
    }
    1 + map.values().map(of).max().unwrap_or(0)
}

/// When an event occurred: `given`, or `now` when absent; refused more than
/// [`MAX_FUTURE_HOURS`] after `now`.
pub fn occurred_at(
    given: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, InvalidValue> {
    match given {
        None => Ok(now),
        Some(at) if at > now + Duration::hours(MAX_FUTURE_HOURS) => Err(InvalidValue::new(
            "occurred_at",
            format!("more than {MAX_FUTURE_HOURS} hours in the future"),
        )),
        Some(at) => Ok(at),
    }
}
