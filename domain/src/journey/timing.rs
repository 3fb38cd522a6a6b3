//! Local times: the next moment a time of day comes round in a zone (on allowed weekdays),
//! the end of quiet hours, a date field's moment, and a recurring schedule's occurrences.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;

use super::definition::{parse_time, Frequency, QuietHours, Recurrence};
use crate::campaign::settings::local_moment;

/// The first moment at or after `now` that is `time` in `tz` on one of `weekdays` (empty: any).
pub fn next_time_of_day(
    now: DateTime<Utc>,
    tz: Tz,
    time: NaiveTime,
    weekdays: &[Weekday],
) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    for d in 0..8 {
        let date = today + Duration::days(d);
        if !weekdays.is_empty() && !weekdays.contains(&date.weekday()) {
            continue;
        }
        let at = local_moment(tz, date.and_time(time));
        if at >= now {
            return at;
        }
    }
    now
}

/// When a message due at `now` may go out given quiet hours in `tz`: `now` outside them,
/// else their end.
pub fn after_quiet_hours(now: DateTime<Utc>, tz: Tz, quiet: &QuietHours) -> DateTime<Utc> {
    let (Some(start), Some(end)) = (parse_time(&quiet.start), parse_time(&quiet.end)) else {
        return now;
    };
    let local = now.with_timezone(&tz).time();
    let inside = if start < end {
        local >= start && local < end
    } else {
        local >= start || local < end
    };
    if inside {
        next_time_of_day(now, tz, end, &[])
    } else {
        now
    }
}

/// The moment of a date (`YYYY-MM-DD`) or instant (RFC 3339) field value, shifted by
/// `offset_days`, at `time` in `tz` for a date (midnight by default).
pub fn field_moment(
    value: &str,
    offset_days: i32,
    time: Option<NaiveTime>,
    tz: Tz,
) -> Option<DateTime<Utc>> {
    let offset = Duration::days(i64::from(offset_days));
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let t = time.unwrap_or(NaiveTime::MIN);
        return Some(local_moment(tz, (d + offset).and_time(t)));
    }
    let at = DateTime::parse_from_rfc3339(value)
        .ok()?
        .with_timezone(&Utc)
        + offset;
    Some(match time {
        Some(t) => local_moment(tz, at.with_timezone(&tz).date_naive().and_time(t)),
        None => at,
    })
}

impl Recurrence {
    /// The first occurrence strictly after `after` (`None`: the schedule has ended).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let tz: Tz = self.time_zone.parse().ok()?;
        let time = parse_time(&self.time)?;
        let start_local = self.starts_at.with_timezone(&tz).date_naive();
        let interval = i64::from(self.interval.max(1));
        let from = after.max(self.starts_at - Duration::seconds(1));
        let mut date = from.with_timezone(&tz).date_naive().max(start_local);
        // At most a few years of days, weeks or months to look at.
        for _ in 0..(400 * interval) {
            let matches = match self.frequency {
                Frequency::Daily => (date - start_local).num_days() % interval == 0,
                Frequency::Weekly => {
                    let week = (date - start_local).num_days().div_euclid(7);
                    let days: &[Weekday] = if self.weekdays.is_empty() {
                        &[start_local.weekday()]
                    } else {
                        &self.weekdays
                    };
                    week % interval == 0 && days.contains(&date.weekday())
                }
                Frequency::Monthly => {
                    let months = (date.year() - start_local.year()) * 12 + date.month() as i32
                        - start_local.month() as i32;
                    date.day() == start_local.day() && i64::from(months) % interval == 0
                }
            };
            if matches {
                let at = local_moment(tz, date.and_time(time));
                if at > after && at >= self.starts_at {
                    return match self.ends_at {
                        Some(end) if at > end => None,
                        _ => Some(at),
                    };
                }
            }
            date += Duration::days(1);
        }
        None
    }
}

/// `tz` of a contact, else the fallback zone, else UTC.
pub fn zone(contact: Option<&str>, fallback: Option<&str>) -> Tz {
    contact
        .and_then(|z| z.parse().ok())
        .or_else(|| fallback.and_then(|z| z.parse().ok()))
        .unwrap_or(Tz::UTC)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn next_time_of_day_skips_disallowed_weekdays_and_uses_the_zone() {
        // 2026-11-30 is a Monday. 09:00 in New York is 14:00 UTC.
        let now = at("2026-11-30T15:00:00Z");
        let t = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        assert_eq!(
            next_time_of_day(now, chrono_tz::America::New_York, t, &[]),
            at("2026-12-01T14:00:00Z")
        );
        assert_eq!(
            next_time_of_day(now, chrono_tz::America::New_York, t, &[Weekday::Thu]),
            at("2026-12-03T14:00:00Z")
        );
    }

    #[test]
    fn quiet_hours_across_midnight_move_a_message_to_their_end() {
        let q = QuietHours {
            start: "21:00".into(),
            end: "08:00".into(),
        };
        assert_eq!(
            after_quiet_hours(at("2026-11-30T23:30:00Z"), Tz::UTC, &q),
            at("2026-12-01T08:00:00Z")
        );
        assert_eq!(
            after_quiet_hours(at("2026-11-30T12:00:00Z"), Tz::UTC, &q),
            at("2026-11-30T12:00:00Z")
        );
    }

    #[test]
    fn recurrence_weekly_on_weekdays_and_ending() {
        let r = Recurrence {
            frequency: Frequency::Weekly,
            interval: 1,
            time: "10:00".into(),
            time_zone: "UTC".into(),
            weekdays: vec![Weekday::Mon, Weekday::Wed],
            starts_at: at("2026-11-30T00:00:00Z"),
            ends_at: Some(at("2026-12-03T00:00:00Z")),
        };
        let first = r.next_after(at("2026-11-29T00:00:00Z")).unwrap();
        assert_eq!(first, at("2026-11-30T10:00:00Z"));
        let second = r.next_after(first).unwrap();
        assert_eq!(second, at("2026-12-02T10:00:00Z"));
        assert_eq!(r.next_after(second), None);
    }

    #[test]
    fn field_moment_reads_dates_and_instants() {
        assert_eq!(
            field_moment("2026-12-24", -1, NaiveTime::from_hms_opt(9, 0, 0), Tz::UTC),
            Some(at("2026-12-23T09:00:00Z"))
        );
        assert_eq!(
            field_moment("2026-12-24T10:00:00+00:00", 2, None, Tz::UTC),
            Some(at("2026-12-26T10:00:00Z"))
        );
        assert_eq!(field_moment("soon", 0, None, Tz::UTC), None);
    }
}
