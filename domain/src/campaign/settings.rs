//! What a campaign sends, to whom and how: its settings, their checks, and when a schedule
//! sends to whom.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::delivery::{Channel, Sender};

/// Most characters of a campaign's name.
pub const MAX_NAME: usize = 200;
/// Most segments in an audience (included, and excluded).
pub const MAX_SEGMENTS: usize = 20;
/// Variants of an A/B test.
pub const MIN_VARIANTS: usize = 2;
pub const MAX_VARIANTS: usize = 8;
/// Most characters of a variant's name.
pub const MAX_VARIANT_NAME: usize = 40;
/// The longest wait before an A/B test's winner is chosen (30 days).
pub const MAX_WAIT_MINUTES: u32 = 30 * 24 * 60;

/// A campaign's settings. Every change is recorded whole (`CampaignSettingsChanged`), with
/// the names of the fields that changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub name: String,
    pub channel: Channel,
    /// The template sent (its published version is pinned when sending starts); `None` with
    /// an A/B test, whose variants name theirs.
    #[serde(default)]
    pub template_id: Option<Uuid>,
    /// The audience: members of any of these segments …
    #[serde(default)]
    pub segments: Vec<Uuid>,
    /// … who are in none of these.
    #[serde(default)]
    pub excluded_segments: Vec<Uuid>,
    /// The sender identity (`None`: the organization's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Sender>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Sender>,
    /// The channel provider that carries it (`None`: the organization's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<Uuid>,
    /// At most this many messages handed over per hour (`None`: as fast as delivery goes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_per_hour: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ab_test: Option<AbTest>,
}

/// An A/B test: a share of the audience split evenly between the variants; after `wait_minutes`
/// the variant with the better `metric` is sent to everyone else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbTest {
    pub variants: Vec<Variant>,
    /// The test group's share of the audience, in percent (100: everyone is tested, the
    /// winner is only reported).
    pub test_percent: u8,
    pub metric: WinnerMetric,
    pub wait_minutes: u32,
}

/// One variant: a name and the template it sends (subject and content differ by template).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    pub name: String,
    pub template_id: Uuid,
}

/// What decides an A/B test: the share of a variant's recipients who opened (or clicked) at
/// least once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WinnerMetric {
    #[default]
    UniqueOpens,
    UniqueClicks,
}

/// Why settings were refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SettingsError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        field,
        message: message.into(),
    }
}

impl Settings {
    /// Every rule a campaign's settings keep, draft or not; the first broken one.
    pub fn check(&self) -> Result<(), SettingsError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(bad("name", format!("1 to {MAX_NAME} characters")));
        }
        if self.segments.len() > MAX_SEGMENTS || self.excluded_segments.len() > MAX_SEGMENTS {
            return Err(bad("segments", format!("at most {MAX_SEGMENTS} segments")));
        }
        if has_duplicates(&self.segments) || has_duplicates(&self.excluded_segments) {
            return Err(bad("segments", "a segment is listed twice"));
        }
        if self
            .segments
            .iter()
            .any(|s| self.excluded_segments.contains(s))
        {
            return Err(bad(
                "excluded_segments",
                "a segment cannot be both included and excluded",
            ));
        }
        if self.throttle_per_hour == Some(0) {
            return Err(bad("throttle_per_hour", "at least 1 message per hour"));
        }
        if let Some(ab) = &self.ab_test {
            if self.template_id.is_some() {
                return Err(bad(
                    "template_id",
                    "an A/B test's variants name their templates; leave template_id out",
                ));
            }
            ab.check()?;
        }
        Ok(())
    }

    /// Complete enough to send: content and an audience.
    pub fn ready(&self) -> Result<(), SettingsError> {
        self.check()?;
        if self.template_id.is_none() && self.ab_test.is_none() {
            return Err(bad("template_id", "a template (or an A/B test) is needed"));
        }
        if self.segments.is_empty() {
            return Err(bad("segments", "at least one segment is needed"));
        }
        Ok(())
    }

    /// The templates it sends, by variant (`None`: no A/B test).
    pub fn templates(&self) -> Vec<(Option<&str>, Uuid)> {
        match (&self.ab_test, self.template_id) {
            (Some(ab), _) => ab
                .variants
                .iter()
                .map(|v| (Some(v.name.as_str()), v.template_id))
                .collect(),
            (None, Some(t)) => vec![(None, t)],
            (None, None) => vec![],
        }
    }

    /// The names of the fields that differ from `other`.
    pub fn changes(&self, other: &Settings) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut diff = |field, changed: bool| {
            if changed {
                out.push(field);
            }
        };
        diff("name", self.name != other.name);
        diff("channel", self.channel != other.channel);
        diff("template_id", self.template_id != other.template_id);
        diff("segments", self.segments != other.segments);
        diff(
            "excluded_segments",
            self.excluded_segments != other.excluded_segments,
        );
        diff("from", self.from != other.from);
        diff("reply_to", self.reply_to != other.reply_to);
        diff("provider_id", self.provider_id != other.provider_id);
        diff(
            "throttle_per_hour",
            self.throttle_per_hour != other.throttle_per_hour,
        );
        diff("ab_test", self.ab_test != other.ab_test);
        out
    }
}

impl AbTest {
    fn check(&self) -> Result<(), SettingsError> {
        let n = self.variants.len();
        if !(MIN_VARIANTS..=MAX_VARIANTS).contains(&n) {
            return Err(bad(
                "ab_test.variants",
                format!("{MIN_VARIANTS} to {MAX_VARIANTS} variants"),
            ));
        }
        for v in &self.variants {
            let len = v.name.trim().chars().count();
            if len == 0 || len > MAX_VARIANT_NAME || v.name.trim() != v.name {
                return Err(bad(
                    "ab_test.variants",
                    format!("a variant's name is 1 to {MAX_VARIANT_NAME} characters, without surrounding spaces"),
                ));
            }
        }
        let names: Vec<&str> = self.variants.iter().map(|v| v.name.as_str()).collect();
        if has_duplicates(&names) {
            return Err(bad("ab_test.variants", "two variants have the same name"));
        }
        if !(1..=100).contains(&self.test_percent) {
            return Err(bad("ab_test.test_percent", "1 to 100 percent"));
        }
        if !(1..=MAX_WAIT_MINUTES).contains(&self.wait_minutes) {
            return Err(bad(
                "ab_test.wait_minutes",
                format!("1 to {MAX_WAIT_MINUTES} minutes"),
            ));
        }
        Ok(())
    }

    /// The test group's size in an audience of `audience` (every variant gets at least one
    /// recipient when the audience allows).
    pub fn test_group(&self, audience: u64) -> u64 {
        let share = (audience * u64::from(self.test_percent)).div_ceil(100);
        share.max((self.variants.len() as u64).min(audience))
    }
}

fn has_duplicates<T: PartialEq>(items: &[T]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, x)| items[..i].contains(x))
}

/// When a scheduled campaign sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// At one moment for everyone (`time_zone`: the zone it was given in, for display).
    At {
        at: DateTime<Utc>,
        time_zone: String,
    },
    /// On `date` at `time` in each recipient's own time zone; recipients without one (or
    /// with one that is not an IANA zone) get it in `default_time_zone`.
    RecipientLocal {
        date: NaiveDate,
        time: NaiveTime,
        default_time_zone: String,
    },
}

/// The largest offset from UTC of any zone (Pacific/Kiritimati, UTC+14): the earliest moment a
/// local time is reached anywhere.
const EARLIEST_OFFSET_HOURS: i64 = 14;

impl Schedule {
    /// When sending starts: the moment, or when the first zone reaches the local time.
    pub fn starts_at(&self) -> DateTime<Utc> {
        match self {
            Self::At { at, .. } => *at,
            Self::RecipientLocal { date, time, .. } => {
                Utc.from_utc_datetime(&date.and_time(*time))
                    - Duration::hours(EARLIEST_OFFSET_HOURS)
            }
        }
    }

    /// The zones are IANA zones.
    pub fn check(&self) -> Result<(), SettingsError> {
        let zone = match self {
            Self::At { time_zone, .. } => time_zone,
            Self::RecipientLocal {
                default_time_zone, ..
            } => default_time_zone,
        };
        zone.parse::<Tz>()
            .map(|_| ())
            .map_err(|_| bad("time_zone", format!("{zone:?} is not an IANA time zone")))
    }

    /// When a recipient in `zone` is due, for a send that started at `started`: the local
    /// moment in their zone (a time skipped by a clock change moves an hour later; a repeated
    /// one is its first occurrence), or `started` when that moment was already past.
    pub fn due_for(&self, zone: Option<&str>, started: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::At { at, .. } => (*at).max(started),
            Self::RecipientLocal {
                date,
                time,
                default_time_zone,
            } => {
                let tz = zone
                    .and_then(|z| z.parse::<Tz>().ok())
                    .or_else(|| default_time_zone.parse::<Tz>().ok())
                    .unwrap_or(Tz::UTC);
                local_moment(tz, date.and_time(*time)).max(started)
            }
        }
    }
}

pub(crate) fn local_moment(tz: Tz, local: chrono::NaiveDateTime) -> DateTime<Utc> {
    let mut l = local;
    // A gap is at most a few hours long (most are one).
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&l).earliest() {
            return t.with_timezone(&Utc);
        }
        l += Duration::hours(1);
    }
    Utc.from_utc_datetime(&local)
}

/// A recipient's delivery job id: derived from the campaign and the contact, so a restarted
/// fan-out requests the same job again, which is a no-op.
pub fn job_id(campaign: Uuid, contact: Uuid) -> Uuid {
    Uuid::new_v5(&campaign, contact.as_bytes())
}
