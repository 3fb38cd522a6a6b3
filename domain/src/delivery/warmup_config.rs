//! The warmup configuration of a sending domain (`delivery_warmup`): one aggregate per
//! organization and domain, its stream id derived from both ([`stream_id`]), so configuring
//! a domain twice reaches the same stream. The delivery worker follows the configured
//! [`WarmupSchedule`] (see [`super::warmup`]); removing it lifts the limit.

use chrono::NaiveDate;
use chrono_tz::Tz;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::warmup::{Warmup, WarmupError, WarmupSchedule};

/// Most characters of a domain name (RFC 1035).
pub const MAX_DOMAIN: usize = 253;

/// A sending domain's name, lower-cased (a trailing dot dropped): two or more labels of
/// 1 to 63 letters, digits and hyphens, none starting or ending with a hyphen, the last
/// not all digits.
pub fn valid_domain(raw: &str) -> Result<String, WarmupConfigError> {
    let d = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let ok = d.len() <= MAX_DOMAIN
        && labels.len() >= 2
        && labels.iter().all(label_ok)
        && labels
            .last()
            .is_some_and(|l| !l.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(d)
    } else {
        Err(WarmupConfigError::BadDomain)
    }
}

/// An IANA time zone (`Europe/Berlin`, `UTC`).
pub fn valid_zone(raw: &str) -> Result<Tz, WarmupConfigError> {
    raw.trim()
        .parse::<Tz>()
        .map_err(|_| WarmupConfigError::BadTimeZone(raw.to_owned()))
}

/// The stream id of `domain`'s warmup in `tenant` (`domain` as [`valid_domain`] gives it).
pub fn stream_id(tenant: Uuid, domain: &str) -> Uuid {
    Uuid::new_v5(&tenant, format!("warmup:{domain}").as_bytes())
}

/// A domain's warmup configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WarmupConfig {
    /// Configured and not removed since.
    pub active: bool,
    /// The warmup while active (the last one after a removal).
    pub warmup: Option<Warmup>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WarmupCommand {
    /// Configure the domain's warmup, or replace it. `started_on`: when absent, the current
    /// start is kept (changing a ramp does not restart it), else it starts `today` (the
    /// date in `time_zone` now, from the caller).
    Configure {
        domain: String,
        started_on: Option<NaiveDate>,
        today: NaiveDate,
        time_zone: String,
        schedule: WarmupSchedule,
    },
    /// Stop warming up: sending from the domain is no longer limited by warmup.
    Remove,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WarmupEvent {
    /// The whole configuration (a replacement repeats every field).
    WarmupConfigured {
        domain: String,
        started_on: NaiveDate,
        time_zone: String,
        ramp: Vec<u64>,
        growth: f64,
        ceiling: Option<u64>,
    },
    WarmupRemoved {
        domain: String,
    },
}

impl DomainEvent for WarmupEvent {
    fn event_type(&self) -> String {
        match self {
            Self::WarmupConfigured { .. } => "WarmupConfigured",
            Self::WarmupRemoved { .. } => "WarmupRemoved",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a warmup command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WarmupConfigError {
    /// Not a domain name.
    #[error("domain: a domain name such as mail.example.org")]
    BadDomain,
    /// Not an IANA time zone.
    #[error("time_zone: {0:?} is not an IANA time zone (such as Europe/Berlin)")]
    BadTimeZone(String),
    /// The schedule is not one the worker can follow.
    #[error(transparent)]
    Schedule(WarmupError),
    /// The stream belongs to another domain (ids are derived from the domain).
    #[error("domain: this warmup is of {0:?}")]
    OtherDomain(String),
    /// No warmup is configured for the domain.
    #[error("no warmup is configured for this domain")]
    NotConfigured,
}

impl Aggregate for WarmupConfig {
    const TYPE: &'static str = "delivery_warmup";
    type Command = WarmupCommand;
    type Event = WarmupEvent;
    type Error = WarmupConfigError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for e in self.decide(command)? {
            sink.write(e, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            WarmupEvent::WarmupConfigured {
                domain,
                started_on,
                time_zone,
                ramp,
                growth,
                ceiling,
            } => {
                self.active = true;
                self.warmup = Some(Warmup {
                    domain,
                    started_on,
                    time_zone,
                    schedule: WarmupSchedule {
                        ramp,
                        growth,
                        ceiling,
                    },
                });
            }
            WarmupEvent::WarmupRemoved { .. } => self.active = false,
        }
    }
}

impl WarmupConfig {
    /// The warmup in force (`None` when none is).
    pub fn current(&self) -> Option<&Warmup> {
        self.warmup.as_ref().filter(|_| self.active)
    }

    /// The events `command` leads to (pure; `handle` writes them).
    pub fn decide(&self, command: WarmupCommand) -> Result<Vec<WarmupEvent>, WarmupConfigError> {
        match command {
            WarmupCommand::Configure {
                domain,
                started_on,
                today,
                time_zone,
                schedule,
            } => {
                let domain = valid_domain(&domain)?;
                if let Some(w) = &self.warmup {
                    if w.domain != domain {
                        return Err(WarmupConfigError::OtherDomain(w.domain.clone()));
                    }
                }
                let time_zone = valid_zone(&time_zone)?.name().to_owned();
                schedule.check().map_err(WarmupConfigError::Schedule)?;
                let started_on = started_on
                    .or_else(|| self.current().map(|w| w.started_on))
                    .unwrap_or(today);
                let next = Warmup {
                    domain,
                    started_on,
                    time_zone,
                    schedule,
                };
                if self.current() == Some(&next) {
                    return Ok(vec![]);
                }
                Ok(vec![WarmupEvent::WarmupConfigured {
                    domain: next.domain,
                    started_on: next.started_on,
                    time_zone: next.time_zone,
                    ramp: next.schedule.ramp,
                    growth: next.schedule.growth,
                    ceiling: next.schedule.ceiling,
                }])
            }
            WarmupCommand::Remove => match self.current() {
                Some(w) => Ok(vec![WarmupEvent::WarmupRemoved {
                    domain: w.domain.clone(),
                }]),
                None => Err(WarmupConfigError::NotConfigured),
            },
        }
    }
}
