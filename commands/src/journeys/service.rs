//! The journeys service: drafts (create, change), publish (the graph checked whole, then what
//! it refers to — templates, providers, segments, linked journeys — on the write side),
//! pause, resume, archive. Every command goes through the one write path
//! ([`JourneyWriter`]); entries go through `enter::enter_in`.

use std::collections::BTreeSet;
use std::sync::Arc;

use domain::contact::InvalidValue;
use domain::journey::definition::Definition;
use domain::journey::{Journey, JourneyCommand, JourneyError, StepKind, TriggerKind};
use domain::{JourneyId, SegmentId, TemplateId, TenantId};
use event_store::{Clock, EventMetadata};
use sqlx::PgPool;
use uuid::Uuid;

use super::write::JourneyWriter;
use crate::executor::Accepted;
use crate::fields::Fields;
use crate::segments::Segments;
use crate::templates::Templates;
use crate::{CommandError, Invalid};

/// Why a journey command was not carried out.
pub type JourneysError = CommandError<JourneyError>;

fn technical(e: impl std::error::Error + Send + Sync + 'static) -> JourneysError {
    CommandError::Technical(Box::new(e))
}

/// The journeys of every organization.
#[derive(Clone)]
pub struct Journeys {
    pool: PgPool,
    writer: Arc<JourneyWriter>,
    fields: Fields,
    segments: Segments,
    templates: Templates,
    /// The time journeys run by (tests move it; the journey worker reads the same clock).
    clock: Clock,
}

impl Journeys {
    pub fn new(
        pool: PgPool,
        writer: Arc<JourneyWriter>,
        fields: Fields,
        segments: Segments,
        templates: Templates,
        clock: Clock,
    ) -> Self {
        Self {
            pool,
            writer,
            fields,
            segments,
            templates,
            clock,
        }
    }

    /// The write path underneath, and the executions' executor (the journey worker and
    /// the trigger follower share them).
    pub fn writer(&self) -> &Arc<JourneyWriter> {
        &self.writer
    }

    /// The same service running by `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Journey `id` as the log has it now.
    pub async fn get(&self, tenant: TenantId, id: JourneyId) -> Result<Journey, JourneysError> {
        self.writer.load(tenant.0, id.0).await
    }

    /// Creates a journey (a draft).
    pub async fn create(
        &self,
        tenant: TenantId,
        name: Option<String>,
        definition: Option<Definition>,
        meta: &EventMetadata,
    ) -> Result<Accepted, JourneysError> {
        let Some(name) = name else {
            return Err(Invalid::one("name", "required").into());
        };
        let command = JourneyCommand::Create {
            name,
            definition: definition.unwrap_or_default(),
        };
        self.act(tenant, JourneyId::generate(), |_| command, meta)
            .await
    }

    /// Changes a journey's name and/or draft (versions published already do not change).
    pub async fn change(
        &self,
        tenant: TenantId,
        id: JourneyId,
        name: Option<String>,
        definition: Option<Definition>,
        meta: &EventMetadata,
    ) -> Result<Accepted, JourneysError> {
        let command = JourneyCommand::Edit { name, definition };
        self.act(tenant, id, |_| command, meta).await
    }

    /// Publishes the draft as the journey's next version: the graph's own problems first
    /// (all of them), then what it refers to.
    pub async fn publish(
        &self,
        tenant: TenantId,
        id: JourneyId,
        meta: &EventMetadata,
    ) -> Result<Accepted, JourneysError> {
        let journey = self.get(tenant, id).await?;
        if journey.status == domain::journey::Status::None {
            return Err(CommandError::Rejected(JourneyError::NotFound));
        }
        let schema = self.fields.schema(tenant).await;
        let fields = schema.map_err(CommandError::within)?.fields;
        let now = self.clock.now();
        let command = JourneyCommand::Publish { fields, now };
        journey
            .decide(command.clone())
            .map_err(CommandError::Rejected)?;
        self.check_references(tenant.0, id.0, &journey.draft)
            .await?;
        self.writer
            .execute(tenant.0, id.0, command, meta, now)
            .await
    }

    /// Runs a command that needs only the time: pause, resume, archive (and create, change).
    pub async fn act(
        &self,
        tenant: TenantId,
        id: JourneyId,
        command: impl FnOnce(chrono::DateTime<chrono::Utc>) -> JourneyCommand,
        meta: &EventMetadata,
    ) -> Result<Accepted, JourneysError> {
        let now = self.clock.now();
        self.writer
            .execute(tenant.0, id.0, command(now), meta, now)
            .await
    }

    /// What the draft refers to, checked on the write side: templates (live, of the step's
    /// channel, with a published version), segments, providers of the channel, linked journeys.
    async fn check_references(
        &self,
        tenant: Uuid,
        journey: Uuid,
        d: &Definition,
    ) -> Result<(), JourneysError> {
        let mut problems = Vec::new();
        for step in &d.steps {
            let path = format!("definition.steps.{}.config", step.id);
            if let Some((channel, m)) = step.kind.channel() {
                let t = self
                    .templates
                    .get(TenantId(tenant), TemplateId(m.template_id))
                    .await
                    .map_err(technical)?;
                if !t.live() {
                    problems.push(InvalidValue::new(
                        format!("{path}.template_id"),
                        format!("no such template {}", m.template_id),
                    ));
                } else if t.channel != channel {
                    problems.push(InvalidValue::new(
                        format!("{path}.template_id"),
                        format!(
                            "a {} template; {} sends {}",
                            t.channel.as_str(),
                            step.kind.as_str(),
                            channel.as_str()
                        ),
                    ));
                } else if t.published_version.is_none() {
                    problems.push(InvalidValue::new(
                        format!("{path}.template_id"),
                        "the template has no published version".to_owned(),
                    ));
                }
                if let Some(p) = m.provider_id {
                    let found: Option<(String,)> = sqlx::query_as(
                        "SELECT channel FROM provider_configs WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(tenant)
                    .bind(p)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(technical)?;
                    if found.as_ref().map(|(c,)| c.as_str()) != Some(channel.as_str()) {
                        problems.push(InvalidValue::new(
                            format!("{path}.provider_id"),
                            format!("no {} provider {p}", channel.as_str()),
                        ));
                    }
                }
            }
            if let StepKind::Link(link) = &step.kind {
                if link.journey_id != journey {
                    let j = self.writer.load(tenant, link.journey_id).await?;
                    if matches!(
                        j.status,
                        domain::journey::Status::None | domain::journey::Status::Archived
                    ) {
                        problems.push(InvalidValue::new(
                            format!("{path}.journey_id"),
                            format!("no such journey {}", link.journey_id),
                        ));
                    }
                }
            }
        }
        self.check_segments(tenant, d, &mut problems).await?;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Invalid(problems).into())
        }
    }

    /// The segments the draft's triggers and exit criteria name exist.
    async fn check_segments(
        &self,
        tenant: Uuid,
        d: &Definition,
        problems: &mut Vec<InvalidValue>,
    ) -> Result<(), JourneysError> {
        let mut segments = BTreeSet::new();
        for (i, t) in d.triggers.iter().enumerate() {
            match &t.kind {
                TriggerKind::SegmentEntered { segment_id }
                | TriggerKind::Schedule { segment_id, .. } => {
                    segments.insert((format!("definition.triggers.{i}.segment_id"), *segment_id));
                }
                _ => {}
            }
        }
        for (i, c) in d.exit_criteria.iter().enumerate() {
            if let domain::journey::definition::ExitCriterion::SegmentExited { segment_id } = c {
                segments.insert((
                    format!("definition.exit_criteria.{i}.segment_id"),
                    *segment_id,
                ));
            }
        }
        for (field, id) in segments {
            let seg = self
                .segments
                .get(TenantId(tenant), SegmentId(id))
                .await
                .map_err(CommandError::within)?;
            if !seg.live() {
                problems.push(InvalidValue::new(field, format!("no such segment {id}")));
            }
        }
        Ok(())
    }
}
