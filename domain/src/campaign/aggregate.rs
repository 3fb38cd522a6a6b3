//! The `Campaign` aggregate: a blast send to segments, from draft to sent.
//!
//! ```text
//! draft ──schedule──► scheduled ──start (due)──► sending ──complete──► sent
//!   ▲  ◄──unschedule──   │                        │  ▲
//!   └────────────────────┴──start (send now)──────┘  │ resume
//!                                          pause ──► paused
//! scheduled | sending | paused ──cancel──► cancelled
//! ```
//!
//! Sending goes in phases, each fanned out (its delivery jobs requested) by the campaign
//! worker: `all`; or, with an A/B test, `test`, then — once the winner is chosen on the
//! figures the worker reads after the wait — `remainder`. A campaign is sent when every phase
//! is fanned out and no job of it is waiting any more.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::settings::{Schedule, Settings, SettingsError, WinnerMetric};

/// Where a campaign stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not created.
    #[default]
    None,
    Draft,
    Scheduled,
    Sending,
    Paused,
    Sent,
    Cancelled,
    Deleted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Draft => "draft",
            Self::Scheduled => "scheduled",
            Self::Sending => "sending",
            Self::Paused => "paused",
            Self::Sent => "sent",
            Self::Cancelled => "cancelled",
            Self::Deleted => "deleted",
        }
    }

    /// Sending has begun (its settings, but its name, are fixed).
    pub fn started(self) -> bool {
        matches!(
            self,
            Self::Sending | Self::Paused | Self::Sent | Self::Cancelled
        )
    }
}

/// A part of a send, fanned out as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Everyone (no A/B test).
    All,
    /// An A/B test's test group, each recipient with their variant.
    Test,
    /// Everyone else, with the winner.
    Remainder,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Test => "test",
            Self::Remainder => "remainder",
        }
    }
}

/// A template version pinned when sending starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinned {
    /// The variant (`None`: no A/B test).
    pub variant: Option<String>,
    pub template_id: Uuid,
    pub version: u32,
}

/// A variant's figures when the winner was chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantFigures {
    pub variant: String,
    /// Messages handed to a provider.
    pub sent: u64,
    pub unique_opens: u64,
    pub unique_clicks: u64,
}

impl VariantFigures {
    /// The share of recipients who opened (or clicked), in parts per million.
    pub fn rate(&self, metric: WinnerMetric) -> u64 {
        let hits = match metric {
            WinnerMetric::UniqueOpens => self.unique_opens,
            WinnerMetric::UniqueClicks => self.unique_clicks,
        };
        (hits * 1_000_000).checked_div(self.sent).unwrap_or(0)
    }
}

/// The winner of `figures` by `metric`: the highest rate; on a tie the variant listed first.
pub fn winner(figures: &[VariantFigures], metric: WinnerMetric) -> Option<&VariantFigures> {
    figures
        .iter()
        .fold(None, |best: Option<&VariantFigures>, f| match best {
            Some(b) if b.rate(metric) >= f.rate(metric) => Some(b),
            _ => Some(f),
        })
}

/// A blast campaign.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub status: Status,
    pub settings: Settings,
    pub schedule: Option<Schedule>,
    /// The versions sent, once sending started.
    pub pinned: Vec<Pinned>,
    /// The audience when sending started, and the test group's size within it.
    pub audience: u64,
    pub test_group: u64,
    pub started_at: Option<DateTime<Utc>>,
    /// Phases fanned out, with the jobs each requested.
    pub fanned_out: Vec<(Phase, u64)>,
    /// The A/B test's test group was fanned out at this time (the wait counts from it).
    pub test_fanned_out_at: Option<DateTime<Utc>>,
    pub winner: Option<String>,
    /// When the winner was chosen (the remainder's throttle counts from it).
    pub decided_at: Option<DateTime<Utc>>,
    pub cloned_from: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CampaignCommand {
    Create {
        settings: Settings,
        cloned_from: Option<Uuid>,
    },
    /// Replace the settings (the caller merged its patch into the current ones). Before
    /// sending, anything may change; once sending started, only the name.
    Change {
        settings: Settings,
    },
    Schedule {
        schedule: Schedule,
        now: DateTime<Utc>,
    },
    Unschedule,
    /// Sending begins: the audience (frozen by the caller in the same transaction), the
    /// test group's size in it, and the published versions pinned.
    Start {
        pinned: Vec<Pinned>,
        audience: u64,
        test_group: u64,
        now: DateTime<Utc>,
    },
    /// A phase's jobs are all requested.
    RecordFannedOut {
        phase: Phase,
        queued: u64,
        now: DateTime<Utc>,
    },
    /// The A/B test's wait is over: the winner follows from these figures.
    ChooseWinner {
        figures: Vec<VariantFigures>,
        now: DateTime<Utc>,
    },
    Pause {
        now: DateTime<Utc>,
    },
    Resume {
        now: DateTime<Utc>,
    },
    Cancel {
        now: DateTime<Utc>,
    },
    /// Every phase is fanned out and no job waits any more.
    Complete {
        now: DateTime<Utc>,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CampaignEvent {
    CampaignCreated {
        settings: Settings,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cloned_from: Option<Uuid>,
    },
    CampaignSettingsChanged {
        settings: Settings,
        /// The fields that changed.
        changed: Vec<String>,
    },
    CampaignScheduled {
        schedule: Schedule,
        starts_at: DateTime<Utc>,
    },
    CampaignUnscheduled,
    CampaignSendingStarted {
        pinned: Vec<Pinned>,
        audience: u64,
        test_group: u64,
        at: DateTime<Utc>,
    },
    CampaignFannedOut {
        phase: Phase,
        queued: u64,
        at: DateTime<Utc>,
    },
    CampaignWinnerChosen {
        winner: String,
        metric: WinnerMetric,
        figures: Vec<VariantFigures>,
        at: DateTime<Utc>,
    },
    CampaignPaused {
        at: DateTime<Utc>,
    },
    CampaignResumed {
        at: DateTime<Utc>,
    },
    CampaignCancelled {
        at: DateTime<Utc>,
    },
    CampaignSent {
        at: DateTime<Utc>,
    },
    CampaignDeleted,
}

impl DomainEvent for CampaignEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CampaignCreated { .. } => "CampaignCreated",
            Self::CampaignSettingsChanged { .. } => "CampaignSettingsChanged",
            Self::CampaignScheduled { .. } => "CampaignScheduled",
            Self::CampaignUnscheduled => "CampaignUnscheduled",
            Self::CampaignSendingStarted { .. } => "CampaignSendingStarted",
            Self::CampaignFannedOut { .. } => "CampaignFannedOut",
            Self::CampaignWinnerChosen { .. } => "CampaignWinnerChosen",
            Self::CampaignPaused { .. } => "CampaignPaused",
            Self::CampaignResumed { .. } => "CampaignResumed",
            Self::CampaignCancelled { .. } => "CampaignCancelled",
            Self::CampaignSent { .. } => "CampaignSent",
            Self::CampaignDeleted => "CampaignDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a campaign command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CampaignError {
    #[error("the campaign exists already")]
    AlreadyExists,
    #[error("no such campaign")]
    NotFound,
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The command does not apply in the campaign's state.
    #[error("the campaign is {status}: {action} is not possible")]
    Status {
        status: &'static str,
        action: &'static str,
    },
    /// Once sending started only the name may change.
    #[error("{0}: cannot change once sending started")]
    Locked(&'static str),
    #[error("schedule: the time must be in the future")]
    InThePast,
    /// Start without a pinned version of every template the campaign sends.
    #[error("template versions pinned do not match the campaign's templates")]
    PinMismatch,
    /// A winner before the test group was fanned out (or its wait is over), or twice.
    #[error("{0}")]
    NoDecision(&'static str),
}

impl Campaign {
    fn refuse(&self, action: &'static str) -> CampaignError {
        match self.status {
            Status::None | Status::Deleted => CampaignError::NotFound,
            s => CampaignError::Status {
                status: s.as_str(),
                action,
            },
        }
    }

    fn phase_done(&self, phase: Phase) -> bool {
        self.fanned_out.iter().any(|(p, _)| *p == phase)
    }

    /// The phase the fan-out works on now (`None`: nothing to fan out now — done, or the A/B
    /// test's wait is running).
    pub fn phase_due(&self) -> Option<Phase> {
        if self.status != Status::Sending {
            return None;
        }
        match &self.settings.ab_test {
            None => (!self.phase_done(Phase::All)).then_some(Phase::All),
            Some(_) if !self.phase_done(Phase::Test) => Some(Phase::Test),
            Some(_) if self.winner.is_some() && !self.phase_done(Phase::Remainder) => {
                Some(Phase::Remainder)
            }
            Some(_) => None,
        }
    }

    /// When the A/B test's winner is to be chosen (`None`: no test, or not yet fanned out, or
    /// chosen).
    pub fn decision_due(&self) -> Option<DateTime<Utc>> {
        let ab = self.settings.ab_test.as_ref()?;
        if self.winner.is_some() {
            return None;
        }
        Some(self.test_fanned_out_at? + Duration::minutes(i64::from(ab.wait_minutes)))
    }

    /// Every phase is fanned out.
    pub fn fully_fanned_out(&self) -> bool {
        match &self.settings.ab_test {
            None => self.phase_done(Phase::All),
            Some(_) => self.phase_done(Phase::Test) && self.phase_done(Phase::Remainder),
        }
    }

    /// When the `index`-th recipient (from 0) of `phase`, in time zone `zone`, is due: at the
    /// schedule's time for them when sending started on schedule (a send started early, by
    /// hand, goes at once), and no earlier than the throttle allows — `index` hours ×
    /// 1/`throttle_per_hour` after the phase began (the start; for the remainder, the
    /// decision).
    pub fn due_at(&self, phase: Phase, index: u64, zone: Option<&str>) -> DateTime<Utc> {
        let started = self.started_at.unwrap_or_default();
        let scheduled = match &self.schedule {
            Some(s) if started >= s.starts_at() => s.due_for(zone, started),
            _ => started,
        };
        let began = match phase {
            Phase::Remainder => self.decided_at.unwrap_or(started),
            Phase::All | Phase::Test => started,
        };
        let paced = match self.settings.throttle_per_hour {
            Some(n) if n > 0 => {
                let micros = (index as u128 * 3_600_000_000 / u128::from(n)) as i64;
                began + Duration::microseconds(micros)
            }
            _ => began,
        };
        scheduled.max(paced)
    }

    /// Jobs requested so far.
    pub fn queued(&self) -> u64 {
        self.fanned_out.iter().map(|(_, n)| n).sum()
    }

    /// The events `command` leads to (pure; `handle` writes them).
    pub fn decide(&self, command: CampaignCommand) -> Result<Vec<CampaignEvent>, CampaignError> {
        use CampaignCommand as C;
        use CampaignEvent as E;
        let s = self.status;
        match command {
            C::Create {
                settings,
                cloned_from,
            } => {
                if s != Status::None {
                    return Err(CampaignError::AlreadyExists);
                }
                settings.check()?;
                Ok(vec![E::CampaignCreated {
                    settings,
                    cloned_from,
                }])
            }
            C::Change { settings } => {
                if matches!(s, Status::None | Status::Deleted) {
                    return Err(CampaignError::NotFound);
                }
                settings.check()?;
                let changed = settings.changes(&self.settings);
                if changed.is_empty() {
                    return Ok(vec![]);
                }
                if s.started() {
                    if let Some(f) = changed.iter().find(|f| **f != "name") {
                        return Err(CampaignError::Locked(f));
                    }
                }
                if s == Status::Scheduled {
                    settings.ready()?;
                }
                Ok(vec![E::CampaignSettingsChanged {
                    settings,
                    changed: changed.into_iter().map(str::to_owned).collect(),
                }])
            }
            C::Schedule { schedule, now } => {
                if !matches!(s, Status::Draft | Status::Scheduled) {
                    return Err(self.refuse("scheduling"));
                }
                self.settings.ready()?;
                schedule.check()?;
                let starts_at = schedule.starts_at();
                let in_future = match &schedule {
                    Schedule::At { at, .. } => *at > now,
                    // The last zone reaches the local time 26 hours after the first.
                    Schedule::RecipientLocal { .. } => starts_at + Duration::hours(26) > now,
                };
                if !in_future {
                    return Err(CampaignError::InThePast);
                }
                Ok(vec![E::CampaignScheduled {
                    schedule,
                    starts_at,
                }])
            }
            C::Unschedule => {
                if s != Status::Scheduled {
                    return Err(self.refuse("unscheduling"));
                }
                Ok(vec![E::CampaignUnscheduled])
            }
            C::Start {
                pinned,
                audience,
                test_group,
                now,
            } => {
                if !matches!(s, Status::Draft | Status::Scheduled) {
                    return Err(self.refuse("sending"));
                }
                self.settings.ready()?;
                let wanted = self.settings.templates();
                let matches = wanted.len() == pinned.len()
                    && wanted.iter().zip(&pinned).all(|((v, t), p)| {
                        p.variant.as_deref() == *v && p.template_id == *t && p.version > 0
                    });
                if !matches {
                    return Err(CampaignError::PinMismatch);
                }
                let test_group = if self.settings.ab_test.is_some() {
                    test_group.min(audience)
                } else {
                    0
                };
                Ok(vec![E::CampaignSendingStarted {
                    pinned,
                    audience,
                    test_group,
                    at: now,
                }])
            }
            C::RecordFannedOut { phase, queued, now } => {
                if self.phase_done(phase) {
                    return Ok(vec![]);
                }
                if self.phase_due() != Some(phase) {
                    return Err(self.refuse("fanning out"));
                }
                Ok(vec![E::CampaignFannedOut {
                    phase,
                    queued,
                    at: now,
                }])
            }
            C::ChooseWinner { figures, now } => {
                if s != Status::Sending {
                    return Err(self.refuse("choosing a winner"));
                }
                let Some(ab) = &self.settings.ab_test else {
                    return Err(CampaignError::NoDecision("the campaign has no A/B test"));
                };
                match self.decision_due() {
                    None if self.winner.is_some() => {
                        return Err(CampaignError::NoDecision("the winner is chosen already"))
                    }
                    Some(due) if due <= now => {}
                    _ => return Err(CampaignError::NoDecision("the test is still running")),
                }
                // Figures in the variants' order, one per variant.
                let figures: Vec<VariantFigures> = ab
                    .variants
                    .iter()
                    .map(|v| {
                        figures
                            .iter()
                            .find(|f| f.variant == v.name)
                            .cloned()
                            .unwrap_or(VariantFigures {
                                variant: v.name.clone(),
                                sent: 0,
                                unique_opens: 0,
                                unique_clicks: 0,
                            })
                    })
                    .collect();
                let best = winner(&figures, ab.metric)
                    .ok_or(CampaignError::NoDecision("the campaign has no variants"))?;
                Ok(vec![E::CampaignWinnerChosen {
                    winner: best.variant.clone(),
                    metric: ab.metric,
                    figures: figures.clone(),
                    at: now,
                }])
            }
            C::Pause { now } => {
                if s != Status::Sending {
                    return Err(self.refuse("pausing"));
                }
                Ok(vec![E::CampaignPaused { at: now }])
            }
            C::Resume { now } => {
                if s != Status::Paused {
                    return Err(self.refuse("resuming"));
                }
                Ok(vec![E::CampaignResumed { at: now }])
            }
            C::Cancel { now } => {
                if !matches!(s, Status::Scheduled | Status::Sending | Status::Paused) {
                    return Err(self.refuse("cancelling"));
                }
                Ok(vec![E::CampaignCancelled { at: now }])
            }
            C::Complete { now } => {
                if s != Status::Sending || !self.fully_fanned_out() {
                    return Err(self.refuse("completing"));
                }
                Ok(vec![E::CampaignSent { at: now }])
            }
            C::Delete => {
                if !matches!(
                    s,
                    Status::Draft | Status::Scheduled | Status::Sent | Status::Cancelled
                ) {
                    return Err(self.refuse("deleting"));
                }
                Ok(vec![E::CampaignDeleted])
            }
        }
    }
}

impl Aggregate for Campaign {
    const TYPE: &'static str = "campaign";
    type Command = CampaignCommand;
    type Event = CampaignEvent;
    type Error = CampaignError;
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
        use CampaignEvent as E;
        match event {
            E::CampaignCreated {
                settings,
                cloned_from,
            } => {
                self.status = Status::Draft;
                self.settings = settings;
                self.cloned_from = cloned_from;
            }
            E::CampaignSettingsChanged { settings, .. } => self.settings = settings,
            E::CampaignScheduled { schedule, .. } => {
                self.status = Status::Scheduled;
                self.schedule = Some(schedule);
            }
            E::CampaignUnscheduled => {
                self.status = Status::Draft;
                self.schedule = None;
            }
            E::CampaignSendingStarted {
                pinned,
                audience,
                test_group,
                at,
            } => {
                self.status = Status::Sending;
                self.pinned = pinned;
                self.audience = audience;
                self.test_group = test_group;
                self.started_at = Some(at);
            }
            E::CampaignFannedOut { phase, queued, at } => {
                self.fanned_out.push((phase, queued));
                if phase == Phase::Test {
                    self.test_fanned_out_at = Some(at);
                }
            }
            E::CampaignWinnerChosen { winner, at, .. } => {
                self.winner = Some(winner);
                self.decided_at = Some(at);
            }
            E::CampaignPaused { .. } => self.status = Status::Paused,
            E::CampaignResumed { .. } => self.status = Status::Sending,
            E::CampaignCancelled { .. } => self.status = Status::Cancelled,
            E::CampaignSent { .. } => self.status = Status::Sent,
            E::CampaignDeleted => self.status = Status::Deleted,
        }
    }
}
