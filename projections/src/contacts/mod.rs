//! The `contacts` read model: one row per contact, for lists and detail views.
//!
//! A batch is applied by loading the rows it touches, folding the events over them in memory
//! ([`ContactRow::apply`]) and writing every touched row back with one multi-row upsert. The
//! live projector and `replay rebuild` both run exactly this code.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::contact::{Channel, Contact, ContactEvent};
use domain::segment::ContactFacts;
use event_store::RecordedEvent;
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{Projection, ProjectionError, Target};

mod projection;
mod queries;
mod render;
mod row;

pub use projection::*;
pub use queries::*;
pub use render::*;
pub use row::*;
