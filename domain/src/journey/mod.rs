//! Journeys: multi-step, multi-channel automation.
//!
//! - [`definition`]: triggers, the graph of typed steps, exit criteria, goal, re-entry,
//!   quiet hours; the checks of a draft and of a publish.
//! - [`aggregate`]: the `Journey` aggregate (draft, numbered immutable versions, pause,
//!   archive).
//! - [`execution`]: the `JourneyExecution` aggregate (one contact's way through one version)
//!   and the engine, [`execution::advance`].
//! - [`timing`]: local times, quiet hours, date fields, recurring schedules.

pub mod aggregate;
pub mod definition;
pub mod execution;
pub mod timing;

#[cfg(test)]
mod tests;

pub use aggregate::{Journey, JourneyCommand, JourneyError, JourneyEvent, Status, Version};
pub use definition::{Definition, Problem, Step, StepKind, Trigger, TriggerKind};
pub use execution::{
    advance, effect_id, Action, Env, ExecStatus, Execution, ExecutionCommand, ExecutionEvent,
    Signal,
};
