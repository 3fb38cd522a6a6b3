use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The channel a message goes out on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    #[default]
    Email,
    Sms,
    Push,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Push => "push",
            Self::Webhook => "webhook",
        }
    }
}

/// Who asked for the message: a campaign, a journey step, or a transactional API call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Campaign {
        campaign_id: Uuid,
        variant: Option<String>,
    },
    Journey {
        journey_id: Uuid,
        execution_id: Uuid,
        step_id: String,
    },
    Transactional {
        /// The client's `Idempotency-Key`, if it sent one.
        idempotency_key: Option<String>,
    },
    Test,
}

/// The campaign a job belongs to, as the job's later events name it: analytics count them
/// by campaign, variant and channel without a job → campaign lookup. Decided in the
/// aggregate from the request's [`Source::Campaign`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRef {
    pub id: Uuid,
    /// The A/B test variant the recipient got (`None`: no test, or the remainder of a test
    /// sent before a winner was named on the job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The channel the message goes out on (a campaign's is fixed once sending started):
    /// rollups are kept per channel, and no later job event says it otherwise.
    pub channel: Channel,
}

impl CampaignRef {
    /// The campaign of a job requested with `request` (`None`: not a campaign's).
    pub fn of(request: &Request) -> Option<Self> {
        match &request.source {
            Source::Campaign {
                campaign_id,
                variant,
            } => Some(Self {
                id: *campaign_id,
                variant: variant.clone(),
                channel: request.channel,
            }),
            _ => None,
        }
    }
}

/// What a job is asked to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub channel: Channel,
    /// The contact it is for (`None`: a bare address, e.g. a test send).
    pub contact_id: Option<Uuid>,
    /// The address, for a message to a bare address (a test send, a transactional message
    /// to someone who is not a contact). Empty for a contact: the worker sends to the
    /// contact's address at send time, so the job's events hold no personal data.
    #[serde(default)]
    pub to: String,
    pub template_id: Uuid,
    pub template_version: u32,
    pub source: Source,
    /// Values the template may use besides the contact's (e.g. an order for a receipt),
    /// under `message` in the render context.
    #[serde(default)]
    pub data: serde_json::Value,
    /// The sender (email: the From address and name); `None`: the organization's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Sender>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Sender>,
    /// The provider that carries the message (one of the organization's providers of the
    /// channel); `None`: the channel's default provider when the message is sent. A named
    /// provider that is gone by then gives the job up: the message is never silently sent
    /// by another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<Uuid>,
}

/// An address a message comes from (or a reply goes to), with an optional display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Why a job was not sent and never will be (checked before dispatch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Suppression {
    /// The address is on the organization's suppression list for the channel.
    SuppressedAddress { reason: String },
    /// The contact opted out of the channel (or never opted in where that is required).
    OptedOut,
    /// The contact is marked do-not-contact on the channel.
    DoNotContact { reason: String },
    /// The contact has no address on the channel.
    NoAddress,
    /// The contact was erased or merged away before the send.
    ContactGone,
    /// A campaign's message to a contact whose frequency rule allows nothing more on the
    /// channel now. A blast is time-bound: the contact is skipped rather than sent the
    /// message days late (journeys' messages wait instead: `Deferral::FrequencyCap`).
    FrequencyCap,
}

/// Why a job waits (it is sent later, never dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Deferral {
    /// The sending domain's warmup allowance for the day is used up.
    Warmup { domain: String },
    /// The provider's rate limit is reached.
    RateLimit { provider: String },
    /// The contact's frequency rule allows no more messages on the channel until then.
    FrequencyCap,
    /// Quiet hours in the contact's time zone.
    QuietHours,
}

/// A bounce's kind: hard (the address does not exist: suppressed for good) or soft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceKind {
    Hard,
    Soft,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No job yet.
    #[default]
    None,
    Requested,
    Deferred,
    /// A transient failure; another attempt is due at `retry_at`.
    Failed,
    /// Handed to the provider: the outcome is not known yet.
    Dispatching,
    /// The provider took it.
    Sent,
    /// A crash came between dispatching and the provider's answer; whether it left is
    /// unknown, and it is not sent again unless the provider deduplicates.
    InDoubt,
    Delivered,
    Bounced,
    Complained,
    Suppressed,
    GivenUp,
    Cancelled,
}

impl Status {
    /// Still to be sent (a worker may dispatch it).
    pub fn pending(self) -> bool {
        matches!(self, Self::Requested | Self::Deferred | Self::Failed)
    }

    /// Left us (the provider has it, or may have it).
    pub fn handed_over(self) -> bool {
        matches!(
            self,
            Self::Sent | Self::InDoubt | Self::Delivered | Self::Bounced | Self::Complained
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Requested => "requested",
            Self::Deferred => "deferred",
            Self::Failed => "failed",
            Self::Dispatching => "dispatching",
            Self::Sent => "sent",
            Self::InDoubt => "in_doubt",
            Self::Delivered => "delivered",
            Self::Bounced => "bounced",
            Self::Complained => "complained",
            Self::Suppressed => "suppressed",
            Self::GivenUp => "given_up",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One message to one recipient, from request to its last tracking event. The job is the
/// unit of "never two sends": `BeginDispatch` is appended (with the stream's optimistic
/// concurrency) before the provider is called, so a second worker or a redelivered broker
/// message finds the job dispatching or sent and calls nobody.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryJob {
    pub status: Status,
    pub request: Option<Request>,
    /// Attempts begun (the current one while dispatching).
    pub attempts: u32,
    pub provider: Option<String>,
    pub provider_message_id: Option<String>,
    pub retry_at: Option<DateTime<Utc>>,
    pub deferred_until: Option<DateTime<Utc>>,
    pub opens: u32,
    pub clicks: u32,
    pub unsubscribed: bool,
}

// A command is built, decided and dropped one at a time: its size costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryCommand {
    Request(Request),
    Suppress(Suppression),
    Defer {
        reason: Deferral,
        until: DateTime<Utc>,
    },
    /// About to call `provider`: attempt `attempts + 1` begins.
    BeginDispatch {
        provider: String,
    },
    /// The provider took the current attempt.
    RecordSent {
        provider_message_id: String,
    },
    /// The current attempt failed and may be tried again at `retry_at`.
    RecordTransientFailure {
        error: String,
        retry_at: DateTime<Utc>,
    },
    /// The message can never be sent as it is (or attempts are exhausted).
    GiveUp {
        error: String,
    },
    /// Recovery after a crash: a job left dispatching with no outcome. With a provider that
    /// deduplicates, the attempt is retried (`retry`); otherwise the job is in doubt.
    Recover {
        retry: bool,
        now: DateTime<Utc>,
    },
    RecordDelivered {
        at: DateTime<Utc>,
    },
    RecordBounce {
        kind: BounceKind,
        diagnostic: String,
        at: DateTime<Utc>,
    },
    RecordComplaint {
        at: DateTime<Utc>,
    },
    RecordOpen {
        at: DateTime<Utc>,
        user_agent: Option<String>,
    },
    RecordClick {
        url: String,
        at: DateTime<Utc>,
    },
    RecordUnsubscribe {
        at: DateTime<Utc>,
    },
    Cancel {
        reason: String,
    },
}

// Events are decoded and applied one at a time, and a batch holds a few per job: the
// request's size (the largest variant) costs little, and boxing it would change every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DeliveryEvent {
    DeliveryRequested(Request),
    DeliverySuppressed {
        reason: Suppression,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryDeferred {
        reason: Deferral,
        until: DateTime<Utc>,
    },
    DeliveryDispatching {
        attempt: u32,
        provider: String,
    },
    DeliverySent {
        attempt: u32,
        provider: String,
        provider_message_id: String,
        /// The job's contact (the contact's timeline lists the message from here, not from
        /// its request); `None`: a bare address, or written before sends named it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_id: Option<Uuid>,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryAttemptFailed {
        attempt: u32,
        error: String,
        retry_at: DateTime<Utc>,
    },
    DeliveryGivenUp {
        attempt: u32,
        error: String,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    /// A crash came between dispatching `attempt` and its outcome; not retried.
    DeliveryInDoubt {
        attempt: u32,
        provider: String,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryDelivered {
        at: DateTime<Utc>,
        /// The job's contact (the contact's timeline lists the event); `None`: a bare address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_id: Option<Uuid>,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryBounced {
        kind: BounceKind,
        diagnostic: String,
        at: DateTime<Utc>,
        /// The job's contact (the contact's timeline lists the event); `None`: a bare address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_id: Option<Uuid>,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryComplained {
        at: DateTime<Utc>,
        /// The job's contact (the contact's timeline lists the event); `None`: a bare address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_id: Option<Uuid>,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryOpened {
        at: DateTime<Utc>,
        user_agent: Option<String>,
        /// The contact's first open of this message.
        first: bool,
        /// The job's contact (the contact's timeline lists the event); `None`: a bare address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_id: Option<Uuid>,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryClicked {
        url: String,
        at: DateTime<Utc>,
        first: bool,
        /// The job's contact (the contact's timeline lists the event); `None`: a bare address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_id: Option<Uuid>,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryUnsubscribed {
        at: DateTime<Utc>,
        /// The job's contact (the contact's timeline lists the event); `None`: a bare address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_id: Option<Uuid>,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryCancelled {
        reason: String,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
}

impl DomainEvent for DeliveryEvent {
    fn event_type(&self) -> String {
        match self {
            Self::DeliveryRequested(_) => "DeliveryRequested",
            Self::DeliverySuppressed { .. } => "DeliverySuppressed",
            Self::DeliveryDeferred { .. } => "DeliveryDeferred",
            Self::DeliveryDispatching { .. } => "DeliveryDispatching",
            Self::DeliverySent { .. } => "DeliverySent",
            Self::DeliveryAttemptFailed { .. } => "DeliveryAttemptFailed",
            Self::DeliveryGivenUp { .. } => "DeliveryGivenUp",
            Self::DeliveryInDoubt { .. } => "DeliveryInDoubt",
            Self::DeliveryDelivered { .. } => "DeliveryDelivered",
            Self::DeliveryBounced { .. } => "DeliveryBounced",
            Self::DeliveryComplained { .. } => "DeliveryComplained",
            Self::DeliveryOpened { .. } => "DeliveryOpened",
            Self::DeliveryClicked { .. } => "DeliveryClicked",
            Self::DeliveryUnsubscribed { .. } => "DeliveryUnsubscribed",
            Self::DeliveryCancelled { .. } => "DeliveryCancelled",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a delivery command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("the delivery job exists already")]
    AlreadyRequested,
    #[error("no such delivery job")]
    NotFound,
    /// Dispatch, suppression, deferral and cancellation need a job still to be sent.
    #[error("the job is {0}, not waiting to be sent")]
    NotPending(&'static str),
    /// An outcome needs an attempt being dispatched.
    #[error("the job is {0}, not being dispatched")]
    NotDispatching(&'static str),
    /// Delivery reports and tracking need a message that left.
    #[error("the job is {0}: nothing was handed to a provider")]
    NotSent(&'static str),
    #[error("{0}")]
    Invalid(&'static str),
}

impl Aggregate for DeliveryJob {
    const TYPE: &'static str = "delivery_job";
    type Command = DeliveryCommand;
    type Event = DeliveryEvent;
    type Error = DeliveryError;
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
        use DeliveryEvent as E;
        match event {
            E::DeliveryRequested(r) => {
                self.status = Status::Requested;
                self.request = Some(r);
            }
            E::DeliverySuppressed { .. } => self.status = Status::Suppressed,
            E::DeliveryDeferred { until, .. } => {
                self.status = Status::Deferred;
                self.deferred_until = Some(until);
            }
            E::DeliveryDispatching { attempt, provider } => {
                self.status = Status::Dispatching;
                self.attempts = attempt;
                self.provider = Some(provider);
                self.retry_at = None;
                self.deferred_until = None;
            }
            E::DeliverySent {
                provider_message_id,
                ..
            } => {
                self.status = Status::Sent;
                self.provider_message_id = Some(provider_message_id);
            }
            E::DeliveryAttemptFailed { retry_at, .. } => {
                self.status = Status::Failed;
                self.retry_at = Some(retry_at);
            }
            E::DeliveryGivenUp { .. } => self.status = Status::GivenUp,
            E::DeliveryInDoubt { .. } => self.status = Status::InDoubt,
            E::DeliveryDelivered { .. } => {
                if matches!(self.status, Status::Sent | Status::InDoubt) {
                    self.status = Status::Delivered;
                }
            }
            E::DeliveryBounced { .. } => self.status = Status::Bounced,
            E::DeliveryComplained { .. } => self.status = Status::Complained,
            E::DeliveryOpened { .. } => {
                self.opens += 1;
                self.mark_delivered();
            }
            E::DeliveryClicked { .. } => {
                self.clicks += 1;
                self.mark_delivered();
            }
            E::DeliveryUnsubscribed { .. } => self.unsubscribed = true,
            E::DeliveryCancelled { .. } => self.status = Status::Cancelled,
        }
    }
}

impl DeliveryJob {
    /// An open or a click proves the message arrived.
    fn mark_delivered(&mut self) {
        if matches!(self.status, Status::Sent | Status::InDoubt) {
            self.status = Status::Delivered;
        }
    }

    fn decide(&self, command: DeliveryCommand) -> Result<Vec<DeliveryEvent>, DeliveryError> {
        use DeliveryCommand as C;
        use DeliveryEvent as E;
        let status = self.status;
        if status == Status::None && !matches!(command, C::Request(_)) {
            return Err(DeliveryError::NotFound);
        }
        let pending = || {
            if status.pending() {
                Ok(())
            } else {
                Err(DeliveryError::NotPending(status.as_str()))
            }
        };
        let dispatching = || {
            if status == Status::Dispatching {
                Ok(())
            } else {
                Err(DeliveryError::NotDispatching(status.as_str()))
            }
        };
        // Reports and tracking: after the message left (an open may come before the
        // delivery report, and a bounce after it).
        let left = || {
            if status.handed_over() {
                Ok(())
            } else {
                Err(DeliveryError::NotSent(status.as_str()))
            }
        };
        let provider = || self.provider.clone().unwrap_or_default();
        // Reports and tracking name the job's contact, for the contact's timeline.
        let contact_id = self.request.as_ref().and_then(|r| r.contact_id);
        // Every outcome, report and tracking event names the job's campaign, for analytics.
        let campaign = self.request.as_ref().and_then(CampaignRef::of);
        Ok(match command {
            C::Request(r) => {
                if status != Status::None {
                    return Err(DeliveryError::AlreadyRequested);
                }
                if r.contact_id.is_none() && r.to.trim().is_empty() {
                    return Err(DeliveryError::Invalid(
                        "to: an address or a contact is required",
                    ));
                }
                vec![E::DeliveryRequested(r)]
            }
            C::Suppress(reason) => {
                pending()?;
                vec![E::DeliverySuppressed { reason, campaign }]
            }
            C::Defer { reason, until } => {
                pending()?;
                vec![E::DeliveryDeferred { reason, until }]
            }
            C::BeginDispatch { provider } => {
                pending()?;
                vec![E::DeliveryDispatching {
                    attempt: self.attempts + 1,
                    provider,
                }]
            }
            C::RecordSent {
                provider_message_id,
            } => {
                // A job found in doubt may still get its answer (a slow provider whose
                // worker's lease lapsed): the answer settles the doubt.
                if status != Status::InDoubt {
                    dispatching()?;
                }
                vec![E::DeliverySent {
                    attempt: self.attempts,
                    provider: provider(),
                    provider_message_id,
                    contact_id,
                    campaign,
                }]
            }
            C::RecordTransientFailure { error, retry_at } => {
                dispatching()?;
                vec![E::DeliveryAttemptFailed {
                    attempt: self.attempts,
                    error,
                    retry_at,
                }]
            }
            C::GiveUp { error } => {
                if status != Status::Dispatching {
                    pending()?;
                }
                vec![E::DeliveryGivenUp {
                    attempt: self.attempts,
                    error,
                    campaign,
                }]
            }
            C::Recover { retry, now } => {
                dispatching()?;
                if retry {
                    vec![E::DeliveryAttemptFailed {
                        attempt: self.attempts,
                        error: "interrupted before the provider answered; the provider \
                                deduplicates, so the attempt is repeated"
                            .to_owned(),
                        retry_at: now,
                    }]
                } else {
                    vec![E::DeliveryInDoubt {
                        attempt: self.attempts,
                        provider: provider(),
                        campaign,
                    }]
                }
            }
            C::RecordDelivered { at } => {
                left()?;
                if !matches!(status, Status::Sent | Status::InDoubt) {
                    return Ok(Vec::new()); // already delivered, or bounced since
                }
                vec![E::DeliveryDelivered {
                    at,
                    contact_id,
                    campaign,
                }]
            }
            C::RecordBounce {
                kind,
                diagnostic,
                at,
            } => {
                left()?;
                if status == Status::Bounced {
                    return Ok(Vec::new());
                }
                vec![E::DeliveryBounced {
                    kind,
                    diagnostic,
                    at,
                    contact_id,
                    campaign,
                }]
            }
            C::RecordComplaint { at } => {
                left()?;
                if status == Status::Complained {
                    return Ok(Vec::new());
                }
                vec![E::DeliveryComplained {
                    at,
                    contact_id,
                    campaign,
                }]
            }
            C::RecordOpen { at, user_agent } => {
                left()?;
                vec![E::DeliveryOpened {
                    at,
                    user_agent,
                    first: self.opens == 0,
                    contact_id,
                    campaign,
                }]
            }
            C::RecordClick { url, at } => {
                left()?;
                vec![E::DeliveryClicked {
                    url,
                    at,
                    first: self.clicks == 0,
                    contact_id,
                    campaign,
                }]
            }
            C::RecordUnsubscribe { at } => {
                left()?;
                if self.unsubscribed {
                    return Ok(Vec::new());
                }
                vec![E::DeliveryUnsubscribed {
                    at,
                    contact_id,
                    campaign,
                }]
            }
            C::Cancel { reason } => {
                pending()?;
                vec![E::DeliveryCancelled { reason, campaign }]
            }
        })
    }
}
