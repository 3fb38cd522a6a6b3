//! One message to one recipient, from request to outcome (`delivery_job` streams):
//! `values` (channel, source, request, reasons), `command`, `event`, `aggregate` (status, state,
//! decisions).

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod aggregate;
mod command;
mod event;
mod values;

pub use aggregate::*;
pub use command::*;
pub use event::*;
pub use values::*;
