//! What the stages of a batch share, at the bottom of the worker: the jobs moving through
//! them and how a decision on a job becomes a write.

use commands::delivery::jobs::{self, JobsError, Loaded, Queue, Write};
use domain::delivery::{Channel, DeliveryCommand, DeliveryJob};
use domain::template::render::Prepared;
use uuid::Uuid;

use super::super::message::{Channel as MessageChannel, Message};
use super::super::resolve::Resolved;
use super::WorkerError;

/// A job's provider, as the batch resolves it once: the channel and the provider its request
/// names (`None`: the channel's default).
pub(super) type ProviderKey = (Channel, Option<Uuid>);

/// A job that passed every check, with what it needs to be sent.
pub(super) struct Ready {
    pub id: Uuid,
    pub loaded: Loaded,
    pub address: String,
    /// Its contact's place in the batch's [`super::partition::Audience`].
    pub contact: Option<usize>,
}

/// A ready job and the provider that carries it.
pub(super) struct Routed {
    pub ready: Ready,
    pub provider: Resolved,
}

/// A job handed to its provider: the version after `DeliveryDispatching`.
pub(super) struct Dispatched {
    pub id: Uuid,
    pub job: DeliveryJob,
    pub version: i64,
    pub message: Message,
    pub provider: Resolved,
}

/// A template version compiled once (versions never change).
pub(super) struct Version {
    pub prepared: Prepared,
    pub method: Option<String>,
}

pub(super) fn message_channel(c: Channel) -> MessageChannel {
    match c {
        Channel::Email => MessageChannel::Email,
        Channel::Sms => MessageChannel::Sms,
        Channel::Push => MessageChannel::Push,
        Channel::Webhook => MessageChannel::Webhook,
    }
}

/// A write with no events (a queue row whose job needs nothing more).
pub(super) fn bare(id: Uuid, version: i64, queue: Queue) -> Write {
    Write {
        id,
        version,
        events: Vec::new(),
        queue,
        send: None,
        provider_message: None,
    }
}

/// `command` decided on the loaded job (applied to it), as a write with `queue`.
pub(super) async fn decided(
    id: Uuid,
    l: &mut Loaded,
    command: DeliveryCommand,
    queue: Queue,
) -> Result<Write, WorkerError> {
    let version = l.version;
    let events = jobs::decide(&mut l.job, command)
        .await
        .map_err(JobsError::Rejected)?;
    l.version += events.len() as i64;
    Ok(Write {
        id,
        version,
        events,
        queue,
        send: None,
        provider_message: None,
    })
}

/// The job given up with `error`: out of the queue, never tried again.
pub(super) async fn given_up(
    id: Uuid,
    l: &mut Loaded,
    error: String,
) -> Result<Write, WorkerError> {
    decided(id, l, DeliveryCommand::GiveUp { error }, Queue::Remove).await
}

/// An address as the suppression list keys it (as given when it does not normalize: then no
/// entry can match it either).
pub fn normalized(channel: Channel, address: &str) -> String {
    commands::suppressions::normalize(channel, address)
        .unwrap_or_else(|_| address.trim().to_owned())
}
