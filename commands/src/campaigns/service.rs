//! The campaigns service: drafts (settings merged and checked, and what they refer to —
//! segments, templates of the campaign's channel, a provider of it — checked on the write
//! side), schedules, send now, pause, resume, cancel, delete, clone. Every command goes
//! through the one write path ([`CampaignWriter`]).

use std::sync::Arc;

use chrono::Utc;
use domain::campaign::{Campaign, CampaignCommand, CampaignError, Settings, Status};
use domain::contact::InvalidValue;
use domain::identity::organization::Organization;
use domain::{CampaignId, SegmentId, TemplateId, TenantId};
use event_store::EventMetadata;
use sqlx::PgPool;

use super::body::{copy_name, CampaignBody, ScheduleBody};
use super::write::{CampaignWriter, StartError};
use crate::executor::{Accepted, Executor};
use crate::segments::Segments;
use crate::templates::Templates;
use crate::{CommandError, Invalid};

/// Why a campaign command was not carried out.
pub type CampaignsError = CommandError<CampaignError>;

fn technical(e: impl std::error::Error + Send + Sync + 'static) -> CampaignsError {
    CommandError::Technical(Box::new(e))
}

/// The blast campaigns of every organization.
#[derive(Clone)]
pub struct Campaigns {
    pool: PgPool,
    writer: Arc<CampaignWriter>,
    segments: Segments,
    templates: Templates,
    organizations: Arc<Executor<Organization>>,
}

impl Campaigns {
    pub fn new(
        pool: PgPool,
        writer: Arc<CampaignWriter>,
        segments: Segments,
        templates: Templates,
        organizations: Arc<Executor<Organization>>,
    ) -> Self {
        Self {
            pool,
            writer,
            segments,
            templates,
            organizations,
        }
    }

    /// The write path underneath (the campaign worker shares it).
    pub fn writer(&self) -> &Arc<CampaignWriter> {
        &self.writer
    }

    /// Campaign `id` as the log has it now.
    pub async fn get(&self, tenant: TenantId, id: CampaignId) -> Result<Campaign, CampaignsError> {
        self.writer.load(tenant.0, id.0).await
    }

    /// Creates a draft from `body` (a name is required).
    pub async fn create(
        &self,
        tenant: TenantId,
        body: CampaignBody,
        meta: &EventMetadata,
    ) -> Result<Accepted, CampaignsError> {
        if body.name.is_none() {
            return Err(Invalid::one("name", "required").into());
        }
        let base = Settings::default();
        let settings = body.merge(&base)?;
        self.check_references(tenant, &base, &settings).await?;
        let command = CampaignCommand::Create {
            settings,
            cloned_from: None,
        };
        self.run(tenant, CampaignId::generate(), command, meta)
            .await
    }

    /// Changes a campaign's settings: any of them before it sends; once it sends, only its
    /// name.
    pub async fn change(
        &self,
        tenant: TenantId,
        id: CampaignId,
        body: CampaignBody,
        meta: &EventMetadata,
    ) -> Result<Accepted, CampaignsError> {
        let current = self.live(tenant, id).await?;
        let settings = body.merge(&current.settings)?;
        let locked = current.status.started()
            && settings
                .changes(&current.settings)
                .iter()
                .any(|f| *f != "name");
        // A locked change is refused by the aggregate, before references are looked up.
        if !locked {
            self.check_references(tenant, &current.settings, &settings)
                .await?;
        }
        self.run(tenant, id, CampaignCommand::Change { settings }, meta)
            .await
    }

    /// Schedules a campaign (or moves its schedule); a local time without a zone is in the
    /// organization's.
    pub async fn schedule(
        &self,
        tenant: TenantId,
        id: CampaignId,
        body: ScheduleBody,
        meta: &EventMetadata,
    ) -> Result<Accepted, CampaignsError> {
        let org = self.organizations.load(tenant.0, tenant.0).await;
        let zone = org.map_err(technical)?.settings.time_zone;
        let schedule = body.validate(&zone)?;
        let now = Utc::now();
        let command = CampaignCommand::Schedule { schedule, now };
        self.writer
            .execute(tenant.0, id.0, command, meta, now)
            .await
    }

    /// Sends a draft or scheduled campaign now: its templates' published versions pinned,
    /// its audience fixed as of this moment.
    pub async fn send(
        &self,
        tenant: TenantId,
        id: CampaignId,
        meta: &EventMetadata,
    ) -> Result<Accepted, CampaignsError> {
        match self.writer.start(tenant.0, id.0, meta, Utc::now()).await {
            Ok(a) => Ok(a),
            Err(StartError::Template { field, reason }) => Err(Invalid::one(field, reason).into()),
            Err(StartError::Command(e)) => Err(e),
        }
    }

    /// Runs a command that needs only the time: unschedule, pause, resume, cancel, delete.
    pub async fn act(
        &self,
        tenant: TenantId,
        id: CampaignId,
        command: impl FnOnce(chrono::DateTime<Utc>) -> CampaignCommand,
        meta: &EventMetadata,
    ) -> Result<Accepted, CampaignsError> {
        let now = Utc::now();
        self.writer
            .execute(tenant.0, id.0, command(now), meta, now)
            .await
    }

    /// Copies campaign `id`'s settings into a new draft, named `name` (or "<name> (copy)").
    pub async fn clone_campaign(
        &self,
        tenant: TenantId,
        id: CampaignId,
        name: Option<String>,
        meta: &EventMetadata,
    ) -> Result<Accepted, CampaignsError> {
        let source = self.live(tenant, id).await?;
        let name = name
            .map(|n| n.trim().to_owned())
            .unwrap_or_else(|| copy_name(&source.settings.name));
        let settings = Settings {
            name,
            ..source.settings
        };
        let command = CampaignCommand::Create {
            settings,
            cloned_from: Some(id.0),
        };
        self.run(tenant, CampaignId::generate(), command, meta)
            .await
    }

    async fn run(
        &self,
        tenant: TenantId,
        id: CampaignId,
        command: CampaignCommand,
        meta: &EventMetadata,
    ) -> Result<Accepted, CampaignsError> {
        self.writer
            .execute(tenant.0, id.0, command, meta, Utc::now())
            .await
    }

    /// The campaign, if it exists and is not deleted.
    async fn live(&self, tenant: TenantId, id: CampaignId) -> Result<Campaign, CampaignsError> {
        let campaign = self.get(tenant, id).await?;
        if matches!(campaign.status, Status::None | Status::Deleted) {
            return Err(CommandError::Rejected(CampaignError::NotFound));
        }
        Ok(campaign)
    }

    /// Checks what `next` refers to where it differs from `base`: segments that exist,
    /// templates of the campaign's channel, a provider of the channel; every bad reference
    /// named.
    async fn check_references(
        &self,
        tenant: TenantId,
        base: &Settings,
        next: &Settings,
    ) -> Result<(), CampaignsError> {
        let changed = next.changes(base);
        let mut problems = Vec::new();
        if changed.contains(&"segments") || changed.contains(&"excluded_segments") {
            for (field, ids) in [
                ("segments", &next.segments),
                ("excluded_segments", &next.excluded_segments),
            ] {
                for id in ids {
                    let seg = self.segments.get(tenant, SegmentId(*id)).await;
                    if !seg.map_err(CommandError::within)?.live() {
                        problems.push(InvalidValue::new(field, format!("no such segment {id}")));
                    }
                }
            }
        }
        if ["template_id", "ab_test", "channel"]
            .iter()
            .any(|f| changed.contains(f))
        {
            for (variant, id) in next.templates() {
                let field = match variant {
                    Some(_) => "ab_test.variants",
                    None => "template_id",
                };
                let t = self.templates.get(tenant, TemplateId(id)).await;
                let t = t.map_err(technical)?;
                if !t.live() {
                    problems.push(InvalidValue::new(field, format!("no such template {id}")));
                } else if t.channel != next.channel {
                    let why = format!(
                        "template {id} is a {} template, the campaign sends {}",
                        t.channel.as_str(),
                        next.channel.as_str()
                    );
                    problems.push(InvalidValue::new(field, why));
                }
            }
        }
        if changed.contains(&"provider_id") || changed.contains(&"channel") {
            if let Some(p) = next.provider_id {
                let found: Option<(String,)> = sqlx::query_as(
                    "SELECT channel FROM provider_configs WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.0)
                .bind(p)
                .fetch_optional(&self.pool)
                .await
                .map_err(technical)?;
                match found {
                    None => problems.push(InvalidValue::new("provider_id", "no such provider")),
                    Some((ch,)) if ch != next.channel.as_str() => {
                        let why = format!(
                            "a {ch} provider; the campaign sends {}",
                            next.channel.as_str()
                        );
                        problems.push(InvalidValue::new("provider_id", why));
                    }
                    Some(_) => {}
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Invalid(problems).into())
        }
    }
}
