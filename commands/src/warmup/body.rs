//! The body of `PUT /api/v1/warmup/{domain}`, checked into typed input with every bad field
//! reported at once (422, nothing written). Omitted fields take BillionMail's defaults.

use chrono::NaiveDate;
use chrono_tz::Tz;
use domain::contact::InvalidValue;
use domain::delivery::warmup::WarmupSchedule;
use domain::delivery::warmup_config::{valid_domain, valid_zone};
use http_kit::json::present;

use crate::Invalid;
use serde::Deserialize;

/// `PUT /api/v1/warmup/{domain}`: every field is optional.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigureWarmup {
    /// The ramp's first day, a date in `time_zone`. Default: the current start when the
    /// domain is warming up already (a new ramp does not restart it), else today.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date, example = "2026-11-30")]
    pub started_on: Option<NaiveDate>,
    /// The IANA time zone whose midnights begin the days. Default `UTC`.
    #[serde(default)]
    #[schema(example = "Europe/Berlin")]
    pub time_zone: Option<String>,
    /// Messages allowed on day 1, day 2, …: at least one day, each allowing at least one
    /// message, none fewer than the day before. Default BillionMail's
    /// 1000/1500/2000/3000/5000/7000/10000.
    #[serde(default)]
    #[schema(example = json!([1000, 1500, 2000, 3000, 5000, 7000, 10000]))]
    pub ramp: Option<Vec<u64>>,
    /// Each day after the ramp allows this many times the day before (1 to 10). Default 1.3.
    #[serde(default)]
    #[schema(example = 1.3)]
    pub growth: Option<f64>,
    /// Once a day allows this many, the domain is warm and warmup ends; at least the ramp's
    /// last day. Default 1,000,000; `null`: warmup never ends.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, example = 1000000)]
    pub ceiling: Option<Option<u64>>,
}

/// A configuration, checked.
#[derive(Debug, Clone)]
pub struct NewWarmup {
    pub domain: String,
    pub started_on: Option<NaiveDate>,
    pub zone: Tz,
    pub schedule: WarmupSchedule,
}

fn problem(field: &str, reason: impl Into<String>) -> InvalidValue {
    InvalidValue::new(field, reason)
}

/// Which field a schedule refusal is about.
fn schedule_field(e: &domain::delivery::warmup::WarmupError) -> &'static str {
    use domain::delivery::warmup::WarmupError as E;
    match e {
        E::EmptyRamp | E::Shrinking => "ramp",
        E::BadGrowth => "growth",
        E::CeilingBelowRamp => "ceiling",
    }
}

impl ConfigureWarmup {
    /// The configuration of `domain` (the path's) checked; 422 listing every bad field.
    pub fn validate(self, domain: &str) -> Result<NewWarmup, Invalid> {
        let mut problems = Vec::new();
        let domain = valid_domain(domain).unwrap_or_else(|e| {
            problems.push(problem("domain", e.to_string()));
            String::new()
        });
        let zone = match self.time_zone.as_deref() {
            None => Tz::UTC,
            Some(z) => valid_zone(z).unwrap_or_else(|e| {
                problems.push(problem("time_zone", e.to_string()));
                Tz::UTC
            }),
        };
        let defaults = WarmupSchedule::default();
        let schedule = WarmupSchedule {
            ramp: self.ramp.unwrap_or(defaults.ramp),
            growth: self.growth.unwrap_or(defaults.growth),
            ceiling: self.ceiling.unwrap_or(defaults.ceiling),
        };
        if let Err(e) = schedule.check() {
            problems.push(problem(schedule_field(&e), e.to_string()));
        }
        if !problems.is_empty() {
            return Err(Invalid(problems));
        }
        Ok(NewWarmup {
            domain,
            started_on: self.started_on,
            zone,
            schedule,
        })
    }
}
