//! What may be asked of a delivery job.

use super::*;

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
