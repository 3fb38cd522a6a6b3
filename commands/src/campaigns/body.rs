//! The bodies of the campaign routes, checked into domain values with every bad field
//! reported at once (422, nothing written).

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use domain::campaign::{AbTest, Schedule, Settings};
use domain::contact::InvalidValue;
use domain::delivery::{Channel, Sender};
use domain::EmailAddress;
use http_kit::json::present;

use crate::Invalid;
use serde::Deserialize;
use uuid::Uuid;

/// `POST /api/v1/campaigns` (`name` required) and `PATCH /api/v1/campaigns/{id}` (every field
/// optional; `null` clears an optional one). A draft may be incomplete; scheduling or sending
/// needs a template (or an A/B test) and at least one segment.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignBody {
    #[schema(example = "November newsletter")]
    pub name: Option<String>,
    /// `email` (default), `sms`, `push` or `webhook`.
    #[schema(value_type = Option<String>, example = "email")]
    pub channel: Option<Channel>,
    /// The template sent (its published version is pinned when sending starts). Not with an
    /// A/B test, whose variants name theirs.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub template_id: Option<Option<Uuid>>,
    /// The audience: members of any of these segments …
    pub segments: Option<Vec<Uuid>>,
    /// … who are in none of these.
    pub excluded_segments: Option<Vec<Uuid>>,
    /// The sender: `{"address": "news@example.org", "name": "Example"}`; default the
    /// organization's.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub from: Option<Option<Sender>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub reply_to: Option<Option<Sender>>,
    /// The channel provider that carries it; default the organization's default provider of
    /// the channel.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub provider_id: Option<Option<Uuid>>,
    /// At most this many messages per hour.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, example = 10000)]
    pub throttle_per_hour: Option<Option<u32>>,
    /// `{"variants": [{"name": "A", "template_id": …}, …] (2–8), "test_percent": 20,
    /// "metric": "unique_opens" | "unique_clicks", "wait_minutes": 240}`: the test group is
    /// split evenly between the variants; after the wait the winner goes to everyone else.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub ab_test: Option<Option<AbTest>>,
}

fn problem(field: &str, reason: impl Into<String>) -> InvalidValue {
    InvalidValue::new(field, reason)
}

fn check_sender(field: &str, s: &Option<Sender>, problems: &mut Vec<InvalidValue>) {
    if let Some(s) = s {
        if EmailAddress::parse(&s.address).is_err() {
            problems.push(problem(field, "not an email address"));
        }
        if s.name.as_ref().is_some_and(|n| n.chars().count() > 200) {
            problems.push(problem(field, "a name of at most 200 characters"));
        }
    }
}

impl CampaignBody {
    /// `base` with the fields given replaced; 422 listing every bad field.
    pub fn merge(self, base: &Settings) -> Result<Settings, Invalid> {
        let mut s = base.clone();
        let mut problems = Vec::new();
        if let Some(n) = self.name {
            s.name = n.trim().to_owned();
        }
        if let Some(c) = self.channel {
            s.channel = c;
        }
        if let Some(t) = self.template_id {
            s.template_id = t;
        }
        if let Some(v) = self.segments {
            s.segments = v;
        }
        if let Some(v) = self.excluded_segments {
            s.excluded_segments = v;
        }
        if let Some(v) = self.from {
            check_sender("from", &v, &mut problems);
            s.from = v;
        }
        if let Some(v) = self.reply_to {
            check_sender("reply_to", &v, &mut problems);
            s.reply_to = v;
        }
        if let Some(v) = self.provider_id {
            s.provider_id = v;
        }
        if let Some(v) = self.throttle_per_hour {
            s.throttle_per_hour = v;
        }
        if let Some(v) = self.ab_test {
            s.ab_test = v;
        }
        if let Err(e) = s.check() {
            problems.push(problem(e.field, e.message));
        }
        if !problems.is_empty() {
            return Err(Invalid(problems));
        }
        Ok(s)
    }
}

/// `POST /api/v1/campaigns/{id}/schedule`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// When: a local date and time (`2026-12-01T09:00`), read in `time_zone`, or a moment
    /// with its offset (`2026-12-01T09:00:00+01:00`).
    #[schema(example = "2026-12-01T09:00")]
    pub at: String,
    /// The IANA time zone of a local `at`; default the organization's.
    #[schema(example = "Europe/Berlin")]
    pub time_zone: Option<String>,
    /// Send at the local time `at` in each recipient's own time zone (recipients without one:
    /// in `time_zone`). Sending starts when the first zone reaches it; schedule at least a
    /// day ahead for everyone to get it on time (a zone whose moment has passed gets it at
    /// once).
    #[serde(default)]
    pub recipient_time_zone: bool,
}

const LOCAL_FORMATS: [&str; 2] = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"];

impl ScheduleBody {
    /// The schedule, zones defaulting to the organization's `org_zone`; 422 listing every
    /// bad field.
    pub fn validate(self, org_zone: &str) -> Result<Schedule, Invalid> {
        let zone_name = self.time_zone.unwrap_or_else(|| org_zone.to_owned());
        let zone: Tz = zone_name.parse().map_err(|_| {
            Invalid::one(
                "time_zone",
                format!("{zone_name:?} is not an IANA time zone (such as Europe/Berlin)"),
            )
        })?;
        let local = LOCAL_FORMATS
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(&self.at, f).ok());
        let schedule = match (local, self.recipient_time_zone) {
            (Some(l), true) => Schedule::RecipientLocal {
                date: l.date(),
                time: l.time(),
                default_time_zone: zone.name().to_owned(),
            },
            (None, true) => {
                return Err(Invalid::one(
                    "at",
                    "a local date and time without offset (2026-12-01T09:00) when sending in each recipient's time zone",
                ))
            }
            (Some(l), false) => {
                let at = l
                    .and_local_timezone(zone)
                    .earliest()
                    .ok_or_else(|| {
                        Invalid::one("at", "this local time does not exist in the zone (a clock change skips it)")
                    })?
                    .with_timezone(&Utc);
                Schedule::At {
                    at,
                    time_zone: zone.name().to_owned(),
                }
            }
            (None, false) => {
                let at = DateTime::parse_from_rfc3339(&self.at).map_err(|_| {
                    Invalid::one(
                        "at",
                        "a local date and time (2026-12-01T09:00) or an RFC 3339 moment",
                    )
                })?;
                Schedule::At {
                    at: at.with_timezone(&Utc),
                    time_zone: zone.name().to_owned(),
                }
            }
        };
        Ok(schedule)
    }
}

/// `POST /api/v1/campaigns/{id}/clone`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneBody {
    /// The copy's name; default the original's with " (copy)".
    pub name: Option<String>,
}

/// The name of a copy of `name`, within the length limit.
pub fn copy_name(name: &str) -> String {
    let suffix = " (copy)";
    let room = domain::campaign::settings::MAX_NAME - suffix.len();
    let mut out: String = name.chars().take(room).collect();
    out.push_str(suffix);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn body(at: &str, tz: Option<&str>, local: bool) -> ScheduleBody {
        ScheduleBody {
            at: at.into(),
            time_zone: tz.map(str::to_owned),
            recipient_time_zone: local,
        }
    }

    #[test]
    fn a_local_time_is_read_in_the_zone_given_or_the_organizations() {
        let s = body("2026-12-01T09:00", Some("Europe/Berlin"), false)
            .validate("UTC")
            .unwrap();
        assert_eq!(
            s.starts_at(),
            "2026-12-01T08:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let s = body("2026-12-01T09:00:00", None, false)
            .validate("America/New_York")
            .unwrap();
        assert_eq!(
            s.starts_at(),
            "2026-12-01T14:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let s = body("2026-12-01T09:00:00+02:00", None, false)
            .validate("UTC")
            .unwrap();
        assert_eq!(
            s.starts_at(),
            "2026-12-01T07:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn recipient_time_needs_a_local_time_and_bad_input_names_its_field() {
        assert!(matches!(
            body("2026-12-01T09:00", None, true).validate("Asia/Tokyo").unwrap(),
            Schedule::RecipientLocal { default_time_zone, .. } if default_time_zone == "Asia/Tokyo"
        ));
        for (b, field) in [
            (body("2026-12-01T09:00:00Z", None, true), "at"),
            (body("tomorrow", None, false), "at"),
            (
                body("2026-12-01T09:00", Some("Mars/Base"), false),
                "time_zone",
            ),
        ] {
            let e = b.validate("UTC").unwrap_err();
            assert_eq!(e.0[0].field, field, "{e}");
        }
    }

    #[test]
    fn a_copy_name_stays_within_the_limit() {
        assert_eq!(copy_name("News"), "News (copy)");
        let long = "x".repeat(200);
        assert_eq!(copy_name(&long).chars().count(), 200);
    }
}
