//! The suppression list: addresses of an organization that are never sent to on a channel.
//! One `SuppressionEntry` stream per (organization, channel, address); its id is derived from
//! them by the command side (a keyed digest, so the id alone does not give the address away),
//! which makes "is this address suppressed?" one lookup and a second suppression of an
//! address the same stream. The address itself is personal data (sealed in the log).

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::Channel;

/// Why an address is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// The address does not exist (a hard bounce): permanent.
    HardBounce,
    /// The recipient reported a message as spam: permanent.
    Complaint,
    /// The recipient unsubscribed from the channel.
    Unsubscribe,
    /// Added by a person (one at a time or from a file).
    Manual,
}

impl SuppressionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HardBounce => "hard_bounce",
            Self::Complaint => "complaint",
            Self::Unsubscribe => "unsubscribe",
            Self::Manual => "manual",
        }
    }

    /// Bounces and complaints come from mailbox providers; sending again hurts the sender's
    /// reputation, so they outrank an unsubscribe or a manual entry.
    fn rank(self) -> u8 {
        match self {
            Self::HardBounce | Self::Complaint => 2,
            Self::Unsubscribe | Self::Manual => 1,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SuppressionEntry {
    pub active: bool,
    pub channel: Channel,
    pub address: String,
    pub reason: Option<SuppressionReason>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SuppressionCommand {
    /// Suppress `address` (normalized by the caller) on `channel`. `source` says where it
    /// came from: a delivery job id, a provider webhook, a user, an import.
    Add {
        channel: Channel,
        address: String,
        reason: SuppressionReason,
        source: Option<String>,
    },
    Remove {
        source: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SuppressionEvent {
    AddressSuppressed {
        channel: Channel,
        address: String,
        reason: SuppressionReason,
        source: Option<String>,
    },
    AddressUnsuppressed {
        source: Option<String>,
    },
}

impl DomainEvent for SuppressionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AddressSuppressed { .. } => "AddressSuppressed",
            Self::AddressUnsuppressed { .. } => "AddressUnsuppressed",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuppressionError {
    #[error("the address is not suppressed")]
    NotSuppressed,
    #[error("address: required")]
    NoAddress,
    #[error("an entry is for one channel and address; it cannot change them")]
    OtherAddress,
    /// Bounces and complaints are the mailbox providers' word; a person may still remove
    /// them, but only by naming themselves (`source`), which the log keeps.
    #[error("removing a bounce or complaint needs a source (who removes it)")]
    SourceRequired,
}

impl Aggregate for SuppressionEntry {
    const TYPE: &'static str = "suppression";
    type Command = SuppressionCommand;
    type Event = SuppressionEvent;
    type Error = SuppressionError;
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
            SuppressionEvent::AddressSuppressed {
                channel,
                address,
                reason,
                ..
            } => {
                self.active = true;
                self.channel = channel;
                self.address = address;
                self.reason = Some(reason);
            }
            SuppressionEvent::AddressUnsuppressed { .. } => {
                self.active = false;
                self.reason = None;
            }
        }
    }
}

impl SuppressionEntry {
    fn decide(
        &self,
        command: SuppressionCommand,
    ) -> Result<Vec<SuppressionEvent>, SuppressionError> {
        match command {
            SuppressionCommand::Add {
                channel,
                address,
                reason,
                source,
            } => {
                if address.trim().is_empty() {
                    return Err(SuppressionError::NoAddress);
                }
                let known = !self.address.is_empty();
                if known && (self.channel != channel || self.address != address) {
                    return Err(SuppressionError::OtherAddress);
                }
                // Suppressed already for as strong a reason: nothing to record.
                if self.active && self.reason.is_some_and(|r| r.rank() >= reason.rank()) {
                    return Ok(Vec::new());
                }
                Ok(vec![SuppressionEvent::AddressSuppressed {
                    channel,
                    address,
                    reason,
                    source,
                }])
            }
            SuppressionCommand::Remove { source } => {
                if !self.active {
                    return Err(SuppressionError::NotSuppressed);
                }
                if self.reason.is_some_and(|r| r.rank() > 1) && source.is_none() {
                    return Err(SuppressionError::SourceRequired);
                }
                Ok(vec![SuppressionEvent::AddressUnsuppressed { source }])
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;

    type EntryTest = TestFramework<SuppressionEntry>;

    fn add(reason: SuppressionReason) -> SuppressionCommand {
        SuppressionCommand::Add {
            channel: Channel::Email,
            address: "ada@example.org".into(),
            reason,
            source: Some("job:1".into()),
        }
    }

    fn suppressed(reason: SuppressionReason) -> SuppressionEvent {
        SuppressionEvent::AddressSuppressed {
            channel: Channel::Email,
            address: "ada@example.org".into(),
            reason,
            source: Some("job:1".into()),
        }
    }

    #[test]
    fn an_address_is_suppressed_once_and_a_stronger_reason_is_recorded() {
        EntryTest::with(())
            .given_no_previous_events()
            .when(add(SuppressionReason::Unsubscribe))
            .then_expect_events(vec![suppressed(SuppressionReason::Unsubscribe)]);
        EntryTest::with(())
            .given(vec![suppressed(SuppressionReason::Unsubscribe)])
            .when(add(SuppressionReason::Manual))
            .then_expect_events(vec![]);
        EntryTest::with(())
            .given(vec![suppressed(SuppressionReason::Unsubscribe)])
            .when(add(SuppressionReason::HardBounce))
            .then_expect_events(vec![suppressed(SuppressionReason::HardBounce)]);
        EntryTest::with(())
            .given(vec![suppressed(SuppressionReason::Complaint)])
            .when(add(SuppressionReason::HardBounce))
            .then_expect_events(vec![]);
    }

    #[test]
    fn bad_adds_are_refused() {
        EntryTest::with(())
            .given_no_previous_events()
            .when(SuppressionCommand::Add {
                channel: Channel::Email,
                address: "  ".into(),
                reason: SuppressionReason::Manual,
                source: None,
            })
            .then_expect_error(SuppressionError::NoAddress);
        EntryTest::with(())
            .given(vec![suppressed(SuppressionReason::Manual)])
            .when(SuppressionCommand::Add {
                channel: Channel::Sms,
                address: "ada@example.org".into(),
                reason: SuppressionReason::Manual,
                source: None,
            })
            .then_expect_error(SuppressionError::OtherAddress);
    }

    #[test]
    fn removing_needs_an_entry_and_for_provider_reports_a_source() {
        EntryTest::with(())
            .given_no_previous_events()
            .when(SuppressionCommand::Remove { source: None })
            .then_expect_error(SuppressionError::NotSuppressed);
        EntryTest::with(())
            .given(vec![suppressed(SuppressionReason::Manual)])
            .when(SuppressionCommand::Remove { source: None })
            .then_expect_events(vec![SuppressionEvent::AddressUnsuppressed { source: None }]);
        EntryTest::with(())
            .given(vec![suppressed(SuppressionReason::HardBounce)])
            .when(SuppressionCommand::Remove { source: None })
            .then_expect_error(SuppressionError::SourceRequired);
        EntryTest::with(())
            .given(vec![suppressed(SuppressionReason::HardBounce)])
            .when(SuppressionCommand::Remove {
                source: Some("user:7".into()),
            })
            .then_expect_events(vec![SuppressionEvent::AddressUnsuppressed {
                source: Some("user:7".into()),
            }]);
        // Removed, then suppressed again: a new entry on the same stream.
        EntryTest::with(())
            .given(vec![
                suppressed(SuppressionReason::Manual),
                SuppressionEvent::AddressUnsuppressed { source: None },
            ])
            .when(add(SuppressionReason::Manual))
            .then_expect_events(vec![suppressed(SuppressionReason::Manual)]);
    }

    #[test]
    fn events_keep_their_stored_shape() {
        assert_eq!(
            serde_json::to_value(suppressed(SuppressionReason::HardBounce)).unwrap(),
            serde_json::json!({"AddressSuppressed": {"channel": "email", "address": "ada@example.org", "reason": "hard_bounce", "source": "job:1"}})
        );
    }
}
