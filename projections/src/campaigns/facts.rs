//! What a delivery-job event means to its campaign: the one reading of job events that the
//! three campaign read models share.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::delivery::{CampaignRef, DeliveryEvent as E, DeliveryJob};
use event_store::RecordedEvent;
use uuid::Uuid;

use crate::ProjectionError;

/// What happened to one of a campaign's jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Requested,
    /// Suppressed; the suppression's kind (`opted_out`, `no_address`, …).
    Suppressed(String),
    Sent,
    GivenUp,
    InDoubt,
    Delivered,
    Bounced,
    Complained,
    Opened {
        first: bool,
    },
    Clicked {
        first: bool,
        url: String,
    },
    Unsubscribed,
    Cancelled,
}

/// A job event of a campaign.
#[derive(Debug, Clone)]
pub struct Fact {
    pub tenant: Uuid,
    pub campaign: CampaignRef,
    /// When the log recorded it (deterministic on a rebuild, unlike the reading's time).
    pub at: DateTime<Utc>,
    pub kind: Kind,
}

/// Job event types that mean something to a campaign (deferrals, dispatches and retries do
/// not change its figures).
const TYPES: &[&str] = &[
    "DeliveryRequested",
    "DeliverySuppressed",
    "DeliverySent",
    "DeliveryGivenUp",
    "DeliveryInDoubt",
    "DeliveryDelivered",
    "DeliveryBounced",
    "DeliveryComplained",
    "DeliveryOpened",
    "DeliveryClicked",
    "DeliveryUnsubscribed",
    "DeliveryCancelled",
];

/// Whether `e` may be a campaign's job event (without decoding it).
pub fn concerns(e: &RecordedEvent) -> bool {
    e.aggregate_type == DeliveryJob::TYPE && TYPES.contains(&e.event_type.as_str())
}

/// The campaign facts among the `events` that are `wanted` (and [`concerns`]: others are
/// not decoded), in their order. Events of jobs that are not a campaign's, and events
/// written before job events named their campaign, give none.
pub fn of(
    events: &[RecordedEvent],
    wanted: impl Fn(&RecordedEvent) -> bool,
) -> Result<Vec<Fact>, ProjectionError> {
    let mut out = Vec::new();
    for e in events.iter().filter(|e| concerns(e) && wanted(e)) {
        let event: E = crate::decode(e)?;
        if let Some((campaign, kind)) = read(event) {
            out.push(Fact {
                tenant: e.tenant_id,
                campaign,
                at: e.recorded_at,
                kind,
            });
        }
    }
    Ok(out)
}

fn read(event: E) -> Option<(CampaignRef, Kind)> {
    let (campaign, kind) = match event {
        E::DeliveryRequested(r) => (CampaignRef::of(&r), Kind::Requested),
        E::DeliverySuppressed { reason, campaign } => {
            let kind = serde_json::to_value(&reason)
                .ok()
                .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "other".to_owned());
            (campaign, Kind::Suppressed(kind))
        }
        E::DeliverySent { campaign, .. } => (campaign, Kind::Sent),
        E::DeliveryGivenUp { campaign, .. } => (campaign, Kind::GivenUp),
        E::DeliveryInDoubt { campaign, .. } => (campaign, Kind::InDoubt),
        E::DeliveryDelivered { campaign, .. } => (campaign, Kind::Delivered),
        E::DeliveryBounced { campaign, .. } => (campaign, Kind::Bounced),
        E::DeliveryComplained { campaign, .. } => (campaign, Kind::Complained),
        E::DeliveryOpened {
            first, campaign, ..
        } => (campaign, Kind::Opened { first }),
        E::DeliveryClicked {
            url,
            first,
            campaign,
            ..
        } => (campaign, Kind::Clicked { first, url }),
        E::DeliveryUnsubscribed { campaign, .. } => (campaign, Kind::Unsubscribed),
        E::DeliveryCancelled { campaign, .. } => (campaign, Kind::Cancelled),
        E::DeliveryDeferred { .. }
        | E::DeliveryDispatching { .. }
        | E::DeliveryAttemptFailed { .. } => return None,
    };
    Some((campaign?, kind))
}
