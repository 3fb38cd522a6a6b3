//! The `DeliveryJob` aggregate: its status, state and decisions.

use super::*;

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
    /// Every status a job can be in (all but `None`), in the order of a job's life.
    pub const ALL: [Status; 12] = [
        Self::Requested,
        Self::Deferred,
        Self::Failed,
        Self::Dispatching,
        Self::Sent,
        Self::InDoubt,
        Self::Delivered,
        Self::Bounced,
        Self::Complained,
        Self::Suppressed,
        Self::GivenUp,
        Self::Cancelled,
    ];

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
