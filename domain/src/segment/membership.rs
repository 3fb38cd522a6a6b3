use std::collections::BTreeSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Which segments one contact is in: a stream per contact (the contact's id, aggregate
/// type `segment_membership`), so entries of one segment never contend on one stream and
/// a contact's entries and exits are ordered. Journeys start from `SegmentEntered`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentMembership {
    pub segments: BTreeSet<Uuid>,
}

/// Why a contact entered or left a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipReason {
    /// A dynamic segment's rule started or stopped matching.
    Rule,
    /// Added to or removed from a static segment (API).
    Manual,
    /// Added by an import.
    Import,
    /// The segment was deleted.
    SegmentDeleted,
    /// The contact was merged away or erased.
    ContactGone,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SegmentMembershipEvent {
    SegmentEntered {
        segment_id: Uuid,
        /// The contact (the stream's entity), so the timeline and journeys see it.
        contact_id: Uuid,
        reason: MembershipReason,
    },
    SegmentExited {
        segment_id: Uuid,
        contact_id: Uuid,
        reason: MembershipReason,
    },
}

impl SegmentMembershipEvent {
    pub fn segment_id(&self) -> Uuid {
        match self {
            Self::SegmentEntered { segment_id, .. } | Self::SegmentExited { segment_id, .. } => {
                *segment_id
            }
        }
    }
}

impl DomainEvent for SegmentMembershipEvent {
    fn event_type(&self) -> String {
        match self {
            Self::SegmentEntered { .. } => "SegmentEntered",
            Self::SegmentExited { .. } => "SegmentExited",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Membership changes are decided in bulk by the segment writer (a contact's whole set at
/// once); this aggregate folds them so a contact's memberships can be inspected as of any
/// point. Its commands are the writer's decisions: entering a segment one is in, or leaving
/// one one is not in, records nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum MembershipCommand {
    /// Make the contact's segments exactly `target` among `considered`.
    Reconcile {
        contact_id: Uuid,
        considered: BTreeSet<Uuid>,
        target: BTreeSet<Uuid>,
        reason: MembershipReason,
    },
}

impl SegmentMembership {
    /// The events that take the contact from its segments to `target` among `considered`
    /// (segments outside `considered` are left alone).
    pub fn reconcile(
        &self,
        contact_id: Uuid,
        considered: &BTreeSet<Uuid>,
        target: &BTreeSet<Uuid>,
        reason: MembershipReason,
    ) -> Vec<SegmentMembershipEvent> {
        let mut out = Vec::new();
        for s in considered {
            match (self.segments.contains(s), target.contains(s)) {
                (false, true) => out.push(SegmentMembershipEvent::SegmentEntered {
                    segment_id: *s,
                    contact_id,
                    reason,
                }),
                (true, false) => out.push(SegmentMembershipEvent::SegmentExited {
                    segment_id: *s,
                    contact_id,
                    reason,
                }),
                _ => {}
            }
        }
        out
    }
}

impl Aggregate for SegmentMembership {
    const TYPE: &'static str = "segment_membership";
    type Command = MembershipCommand;
    type Event = SegmentMembershipEvent;
    type Error = std::convert::Infallible;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let MembershipCommand::Reconcile {
            contact_id,
            considered,
            target,
            reason,
        } = command;
        for e in self.reconcile(contact_id, &considered, &target, reason) {
            sink.write(e, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            SegmentMembershipEvent::SegmentEntered { segment_id, .. } => {
                self.segments.insert(segment_id);
            }
            SegmentMembershipEvent::SegmentExited { segment_id, .. } => {
                self.segments.remove(&segment_id);
            }
        }
    }
}
