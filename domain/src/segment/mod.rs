//! Segments: static lists and dynamic rules over contacts, and who is in them.
//!
//! - [`rule`]: the rule language (JSON) and its type check against field definitions.
//! - [`eval`]: evaluating a checked rule against one contact in memory.
//! - [`aggregate`]: the `Segment` aggregate (name, kind, rule).
//! - [`membership`]: the `SegmentMembership` aggregate, one per contact: which segments the
//!   contact entered and left (`SegmentEntered` / `SegmentExited`).

pub mod aggregate;
pub mod eval;
pub mod membership;
pub mod rule;

#[cfg(test)]
mod tests;

pub use aggregate::{
    Definition, Segment, SegmentCommand, SegmentError, SegmentEvent, SegmentKind, SegmentPatch,
};
pub use eval::ContactFacts;
pub use membership::{
    MembershipCommand, MembershipReason, SegmentMembership, SegmentMembershipEvent,
};
pub use rule::{Checked, Rule, RuleError};
