//! Warmup of a sending domain: how many messages it may send on each day since it started
//! sending, so mailbox providers learn its reputation before the volume comes. Mail over a
//! day's allowance waits for the next day's window; it is never dropped.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A ramp: the allowance of each of the first days, then growth by a factor per day, up to
/// an optional ceiling (after which the domain is warm and unlimited by warmup).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarmupSchedule {
    /// Messages allowed on day 1, day 2, … of the ramp.
    pub ramp: Vec<u64>,
    /// Each day after the ramp allows this many times the day before (≥ 1).
    pub growth: f64,
    /// Once a day's allowance reaches this, warmup is over (`None`: it never ends).
    pub ceiling: Option<u64>,
}

impl Default for WarmupSchedule {
    /// BillionMail's ramp: 1,000 / 1,500 / 2,000 / 3,000 / 5,000 / 7,000 / 10,000 a day for
    /// the first week, then ×1.3 a day, warm at 1,000,000 a day.
    fn default() -> Self {
        Self {
            ramp: vec![1_000, 1_500, 2_000, 3_000, 5_000, 7_000, 10_000],
            growth: 1.3,
            ceiling: Some(1_000_000),
        }
    }
}

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WarmupError {
    #[error("ramp: at least one day, each allowing at least one message")]
    EmptyRamp,
    #[error("ramp: a day may not allow fewer messages than the day before")]
    Shrinking,
    #[error("growth: a factor from 1 to 10")]
    BadGrowth,
    /// The ceiling is below the ramp's last day (the ramp would never be followed).
    #[error("ceiling: at least the ramp's last day")]
    CeilingBelowRamp,
}

/// Where a domain stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    /// At most this many messages today (day `day` of warmup, counted from 1).
    Limited { day: u32, messages: u64 },
    /// Warmup is over.
    Unlimited,
}

impl WarmupSchedule {
    pub fn check(&self) -> Result<(), WarmupError> {
        if self.ramp.is_empty() || self.ramp.contains(&0) {
            return Err(WarmupError::EmptyRamp);
        }
        if self.ramp.windows(2).any(|w| w[1] < w[0]) {
            return Err(WarmupError::Shrinking);
        }
        if !(1.0..=10.0).contains(&self.growth) {
            return Err(WarmupError::BadGrowth);
        }
        if let (Some(c), Some(last)) = (self.ceiling, self.ramp.last()) {
            if c < *last {
                return Err(WarmupError::CeilingBelowRamp);
            }
        }
        Ok(())
    }

    /// The allowance of day `day` (1 = the first day the domain sent).
    pub fn allowance(&self, day: u32) -> Allowance {
        let day = day.max(1);
        let last = self.ramp.last().copied().unwrap_or(1);
        let messages = match self.ramp.get(day as usize - 1) {
            Some(n) => *n,
            None => {
                let extra = day as usize - self.ramp.len();
                let mut n = last as f64;
                for _ in 0..extra {
                    n *= self.growth;
                    if self.ceiling.is_some_and(|c| n >= c as f64) || n >= u64::MAX as f64 / 2.0 {
                        break;
                    }
                }
                n.floor() as u64
            }
        };
        match self.ceiling {
            Some(c) if messages >= c => Allowance::Unlimited,
            _ => Allowance::Limited { day, messages },
        }
    }

    /// The allowance at `now` for a domain that started warming up on `started` (a date in
    /// `zone`, where days begin at midnight), and when the next day's window opens.
    pub fn at(
        &self,
        started: NaiveDate,
        zone: Tz,
        now: DateTime<Utc>,
    ) -> (Allowance, DateTime<Utc>) {
        let today = now.with_timezone(&zone).date_naive();
        (
            self.allowance(day_number(started, today)),
            next_midnight(today, zone),
        )
    }
}

/// The ramp's day number on `today` for a warmup that started on `started` (1 on the first
/// day, and on every day before it).
pub fn day_number(started: NaiveDate, today: NaiveDate) -> u32 {
    u32::try_from((today - started).num_days().max(0))
        .unwrap_or(u32::MAX - 1)
        .saturating_add(1)
}

/// The scope of a domain's daily allowance in `delivery_allowances` (`domain` lower-cased).
pub fn allowance_scope(domain: &str) -> String {
    format!("warmup:{domain}")
}

/// A sending domain's warmup as configured: the schedule, the day it started (in its zone)
/// and the zone whose midnights begin its days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warmup {
    /// The sending domain, lower-cased.
    pub domain: String,
    pub started_on: NaiveDate,
    /// An IANA time zone name.
    pub time_zone: String,
    pub schedule: WarmupSchedule,
}

/// Where a domain's warmup stands now, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarmupStatus {
    pub domain: String,
    pub started_on: NaiveDate,
    pub time_zone: String,
    pub ramp: Vec<u64>,
    pub growth: f64,
    pub ceiling: Option<u64>,
    /// The ramp's day today (1 = the first day).
    pub day: u32,
    /// Messages allowed today (`None`: warm, unlimited by warmup).
    pub allowance: Option<u64>,
    /// Messages taken from today's allowance.
    pub used: u64,
    /// Messages still allowed today (`None`: unlimited).
    pub remaining: Option<u64>,
    /// When today's window ends (and the next day's allowance begins).
    pub window_ends: DateTime<Utc>,
    /// Whether the domain reached its ceiling (warmup is over).
    pub warm: bool,
}

impl Warmup {
    /// The schedule's zone (UTC should a stored name not parse; names are checked when
    /// configured).
    pub fn zone(&self) -> Tz {
        self.time_zone.parse().unwrap_or(Tz::UTC)
    }

    /// Today's allowance at `now` and when today's window ends (the next one opens).
    pub fn today(&self, now: DateTime<Utc>) -> (Allowance, DateTime<Utc>) {
        self.schedule.at(self.started_on, self.zone(), now)
    }

    /// The scope its allowance is counted under in `delivery_allowances`.
    pub fn scope(&self) -> String {
        allowance_scope(&self.domain)
    }

    /// Where it stands at `now`, `used` messages having been taken from the window that
    /// ends at `self.today(now).1`.
    pub fn status(&self, now: DateTime<Utc>, used: u64) -> WarmupStatus {
        let (allowance, window_ends) = self.today(now);
        let day = day_number(
            self.started_on,
            now.with_timezone(&self.zone()).date_naive(),
        );
        let allowance = match allowance {
            Allowance::Limited { messages, .. } => Some(messages),
            Allowance::Unlimited => None,
        };
        WarmupStatus {
            domain: self.domain.clone(),
            started_on: self.started_on,
            time_zone: self.time_zone.clone(),
            ramp: self.schedule.ramp.clone(),
            growth: self.schedule.growth,
            ceiling: self.schedule.ceiling,
            day,
            allowance,
            used,
            remaining: allowance.map(|a| a.saturating_sub(used)),
            window_ends,
            warm: allowance.is_none(),
        }
    }
}

/// The first instant of the day after `day` in `zone` (the earliest valid local time, should
/// midnight be skipped by a clock change).
fn next_midnight(day: NaiveDate, zone: Tz) -> DateTime<Utc> {
    let next = day.checked_add_days(Days::new(1)).unwrap_or(day);
    let mut t = next.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        if let Some(local) = zone.from_local_datetime(&t).earliest() {
            return local.with_timezone(&Utc);
        }
        t += chrono::Duration::minutes(30);
    }
    Utc.from_utc_datetime(&t)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_billionmails_week_then_thirty_percent_a_day() {
        let s = WarmupSchedule::default();
        assert!(s.check().is_ok());
        let first_week: Vec<u64> = (1..=7)
            .map(|d| match s.allowance(d) {
                Allowance::Limited { messages, .. } => messages,
                Allowance::Unlimited => 0,
            })
            .collect();
        assert_eq!(
            first_week,
            [1_000, 1_500, 2_000, 3_000, 5_000, 7_000, 10_000]
        );
        assert_eq!(
            s.allowance(8),
            Allowance::Limited {
                day: 8,
                messages: 13_000
            }
        );
        assert_eq!(
            s.allowance(9),
            Allowance::Limited {
                day: 9,
                messages: 16_900
            }
        );
        // 10,000 × 1.3^18 ≈ 1,124,554: warm from day 25.
        assert!(
            matches!(s.allowance(24), Allowance::Limited { messages, .. } if messages < 1_000_000)
        );
        assert_eq!(s.allowance(25), Allowance::Unlimited);
        assert_eq!(s.allowance(10_000), Allowance::Unlimited);
    }

    #[test]
    fn days_are_counted_in_the_schedules_zone_and_the_next_window_opens_at_its_midnight() {
        let s = WarmupSchedule::default();
        let started = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 23:30 UTC on Nov 2 is already Nov 3 in Berlin: day 3.
        let now = Utc.with_ymd_and_hms(2026, 11, 2, 23, 30, 0).unwrap();
        let (allowance, next) = s.at(started, berlin, now);
        assert_eq!(
            allowance,
            Allowance::Limited {
                day: 3,
                messages: 2_000
            }
        );
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 3, 23, 0, 0).unwrap());
        // Before the start: day 1.
        let early = Utc.with_ymd_and_hms(2026, 10, 1, 12, 0, 0).unwrap();
        assert_eq!(
            s.at(started, berlin, early).0,
            Allowance::Limited {
                day: 1,
                messages: 1_000
            }
        );
    }

    #[test]
    fn a_midnight_skipped_by_a_clock_change_opens_the_window_at_the_first_valid_time() {
        // Santiago skipped 2026-09-06 00:00 → 01:00 (spring forward at midnight).
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 9, 5).unwrap();
        let next = next_midnight(day, santiago);
        let local = next.with_timezone(&santiago);
        assert_eq!(
            local.date_naive(),
            NaiveDate::from_ymd_opt(2026, 9, 6).unwrap()
        );
        assert!(local.format("%H:%M").to_string().as_str() <= "01:00");
    }

    #[test]
    fn bad_schedules_are_refused() {
        let bad = |ramp: Vec<u64>, growth| {
            WarmupSchedule {
                ramp,
                growth,
                ceiling: None,
            }
            .check()
        };
        assert_eq!(bad(vec![], 1.3), Err(WarmupError::EmptyRamp));
        assert_eq!(bad(vec![10, 0], 1.3), Err(WarmupError::EmptyRamp));
        assert_eq!(bad(vec![10, 5], 1.3), Err(WarmupError::Shrinking));
        assert_eq!(bad(vec![10], 0.9), Err(WarmupError::BadGrowth));
        assert_eq!(bad(vec![10], 1.0), Ok(()));
        let low_ceiling = WarmupSchedule {
            ramp: vec![10, 20],
            growth: 1.3,
            ceiling: Some(19),
        };
        assert_eq!(low_ceiling.check(), Err(WarmupError::CeilingBelowRamp));
        let flat = WarmupSchedule {
            ramp: vec![10],
            growth: 1.0,
            ceiling: None,
        };
        assert_eq!(
            flat.allowance(400),
            Allowance::Limited {
                day: 400,
                messages: 10
            }
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod status_tests {
    use super::*;

    #[test]
    fn the_status_counts_what_is_left_of_today_and_says_when_the_window_ends() {
        let w = Warmup {
            domain: "mail.example.org".into(),
            started_on: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            time_zone: "Europe/Berlin".into(),
            schedule: WarmupSchedule::default(),
        };
        let now = Utc.with_ymd_and_hms(2026, 11, 2, 10, 0, 0).unwrap();
        let s = w.status(now, 400);
        assert_eq!(
            (s.day, s.allowance, s.used, s.remaining),
            (2, Some(1_500), 400, Some(1_100))
        );
        assert_eq!(
            s.window_ends,
            Utc.with_ymd_and_hms(2026, 11, 2, 23, 0, 0).unwrap()
        );
        assert!(!s.warm);
        assert_eq!(w.scope(), "warmup:mail.example.org");
        // Over-used (an allowance lowered mid-day): nothing remains, never a negative.
        assert_eq!(w.status(now, 9_000).remaining, Some(0));
        // Day 30: warm.
        let later = Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap();
        let s = w.status(later, 0);
        assert_eq!(
            (s.day, s.allowance, s.remaining, s.warm),
            (30, None, None, true)
        );
    }
}
