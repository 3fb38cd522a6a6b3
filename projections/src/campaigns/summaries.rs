//! The `campaign_summaries` read model: one row per campaign — settings and lifecycle from
//! the campaign's stream, counters from its jobs' events — for the campaign list and detail.
//!
//! Two writers of one row, in one transaction per batch: the campaign's events fold into
//! the row (skipped at or below the row's `version`, the stream's sequence); its jobs'
//! events add to the counters in one `UPDATE … FROM UNNEST` (no per-row version can guard
//! them: the runner's checkpoint does — events at or below it never reach `apply`).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::campaign::{Campaign, CampaignEvent as E, Pinned, Schedule, Settings, Status};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::facts::{self, Fact, Kind};
use crate::{json_rows, Projection, ProjectionError, Target};

pub struct CampaignSummariesProjection;

/// A campaign as its detail view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SummaryRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub name: String,
    /// draft, scheduled, sending, paused, sent, cancelled (deleted ones are not shown).
    pub status: String,
    pub channel: String,
    #[schema(value_type = Object)]
    pub settings: Settings,
    #[schema(value_type = Option<Object>)]
    pub schedule: Option<Schedule>,
    /// When sending starts (a scheduled campaign).
    pub starts_at: Option<DateTime<Utc>>,
    /// The template versions sent, once sending started.
    #[schema(value_type = Vec<Object>)]
    pub pinned: Vec<Pinned>,
    pub audience: i64,
    pub test_group: i64,
    #[serde(flatten)]
    pub counts: Counts,
    pub winner: Option<String>,
    /// The A/B decision: `{winner, metric, figures: [{variant, sent, unique_opens,
    /// unique_clicks}], at}`.
    #[schema(value_type = Option<Object>)]
    pub ab_decision: Option<serde_json::Value>,
    pub cloned_from: Option<Uuid>,
    #[serde(default)]
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    /// Sent or cancelled.
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// What became of a campaign's jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Counts {
    /// Jobs requested so far (the fan-out's progress).
    pub queued: i64,
    /// Handed to a provider.
    pub sent: i64,
    /// Delivery reports received (from providers that send them).
    pub delivered: i64,
    /// Recipients who opened at least once.
    pub opened: i64,
    /// Recipients who clicked at least once.
    pub clicked: i64,
    pub bounced: i64,
    pub complained: i64,
    pub unsubscribed: i64,
    /// Not sent: suppressed before dispatch (by reason in `skipped`).
    pub suppressed: i64,
    /// Given up (permanent failures, attempts exhausted).
    pub failed: i64,
    /// Interrupted between dispatch and the provider's answer: may have left.
    pub in_doubt: i64,
    pub cancelled_jobs: i64,
    /// Suppressed jobs by the suppression's kind (`suppressed_address`, `opted_out`,
    /// `do_not_contact`, `no_address`, `contact_gone`, …).
    #[schema(value_type = Object)]
    pub skipped: BTreeMap<String, i64>,
}

impl Counts {
    fn add(&mut self, kind: &Kind) {
        match kind {
            Kind::Requested => self.queued += 1,
            Kind::Suppressed(why) => {
                self.suppressed += 1;
                *self.skipped.entry(why.clone()).or_default() += 1;
            }
            Kind::Sent => self.sent += 1,
            Kind::GivenUp => self.failed += 1,
            Kind::InDoubt => self.in_doubt += 1,
            Kind::Delivered => self.delivered += 1,
            Kind::Bounced => self.bounced += 1,
            Kind::Complained => self.complained += 1,
            Kind::Opened { first } => self.opened += i64::from(*first),
            Kind::Clicked { first, .. } => self.clicked += i64::from(*first),
            Kind::Unsubscribed => self.unsubscribed += 1,
            Kind::Cancelled => self.cancelled_jobs += 1,
        }
    }
}

fn n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SummaryRow {
    /// Folds one of the campaign's own events into the row (`None` before it exists).
    pub fn apply(row: Option<Self>, e: &RecordedEvent, event: E, id: Uuid) -> Option<Self> {
        let mut r = match (row, event) {
            (Some(r), _) if e.sequence <= r.version => return Some(r),
            (
                None,
                E::CampaignCreated {
                    settings,
                    cloned_from,
                },
            ) => Self {
                tenant_id: e.tenant_id,
                id,
                name: settings.name.clone(),
                status: Status::Draft.as_str().to_owned(),
                channel: settings.channel.as_str().to_owned(),
                settings,
                schedule: None,
                starts_at: None,
                pinned: Vec::new(),
                audience: 0,
                test_group: 0,
                counts: Counts::default(),
                winner: None,
                ab_decision: None,
                cloned_from,
                deleted: false,
                created_at: e.recorded_at,
                started_at: None,
                finished_at: None,
                updated_at: e.recorded_at,
                version: e.sequence,
            },
            (None, _) => return None,
            (Some(mut r), event) => {
                r.fold(event);
                r
            }
        };
        r.updated_at = e.recorded_at;
        r.version = e.sequence;
        Some(r)
    }

    fn set_status(&mut self, s: Status) {
        self.status = s.as_str().to_owned();
    }

    fn fold(&mut self, event: E) {
        match event {
            E::CampaignCreated { .. } => {}
            E::CampaignSettingsChanged { settings, .. } => {
                self.name = settings.name.clone();
                self.channel = settings.channel.as_str().to_owned();
                self.settings = settings;
            }
            E::CampaignScheduled {
                schedule,
                starts_at,
            } => {
                self.set_status(Status::Scheduled);
                self.schedule = Some(schedule);
                self.starts_at = Some(starts_at);
            }
            E::CampaignUnscheduled => {
                self.set_status(Status::Draft);
                self.schedule = None;
                self.starts_at = None;
            }
            E::CampaignSendingStarted {
                pinned,
                audience,
                test_group,
                at,
            } => {
                self.set_status(Status::Sending);
                self.pinned = pinned;
                self.audience = n(audience);
                self.test_group = n(test_group);
                self.started_at = Some(at);
            }
            E::CampaignFannedOut { .. } => {}
            E::CampaignWinnerChosen {
                winner,
                metric,
                figures,
                at,
            } => {
                self.ab_decision = Some(serde_json::json!({
                    "winner": winner, "metric": metric, "figures": figures, "at": at,
                }));
                self.winner = Some(winner);
            }
            E::CampaignPaused { .. } => self.set_status(Status::Paused),
            E::CampaignResumed { .. } => self.set_status(Status::Sending),
            E::CampaignCancelled { at } => {
                self.set_status(Status::Cancelled);
                self.finished_at = Some(at);
            }
            E::CampaignSent { at } => {
                self.set_status(Status::Sent);
                self.finished_at = Some(at);
            }
            E::CampaignDeleted => {
                self.set_status(Status::Deleted);
                self.deleted = true;
            }
        }
    }
}

/// The columns the campaign's own events rewrite (never the counters).
const UPDATED: &[&str] = &[
    "name",
    "status",
    "channel",
    "settings",
    "schedule",
    "starts_at",
    "pinned",
    "audience",
    "test_group",
    "winner",
    "ab_decision",
    "cloned_from",
    "deleted",
    "started_at",
    "finished_at",
    "updated_at",
    "version",
];

#[async_trait]
impl Projection for CampaignSummariesProjection {
    fn name(&self) -> &'static str {
        "campaign_summaries"
    }

    fn table(&self) -> &'static str {
        "campaign_summaries"
    }

    /// Campaign and job events hold no sealed values.
    fn needs_personal_data(&self) -> bool {
        false
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.aggregate_type == Campaign::TYPE || facts::concerns(e)
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Campaign::TYPE, "delivery_job"])
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        // Rows first: a campaign created in this batch is there for its jobs' counts.
        json_rows::fold_rows::<SummaryRow, E>(
            conn,
            target,
            events,
            Campaign::TYPE,
            SummaryRow::apply,
            UPDATED,
        )
        .await?;
        add_counts(conn, &target.table, &facts::of(events, |_| true)?).await
    }
}

/// Adds what `facts` say to their campaigns' counters: summed in memory, one statement.
async fn add_counts(
    conn: &mut PgConnection,
    table: &str,
    facts: &[Fact],
) -> Result<(), ProjectionError> {
    let mut by: HashMap<(Uuid, Uuid), Counts> = HashMap::new();
    for f in facts {
        by.entry((f.tenant, f.campaign.id))
            .or_default()
            .add(&f.kind);
    }
    if by.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<(Uuid, Uuid)> = by.keys().copied().collect();
    keys.sort_unstable();
    let col = |f: fn(&Counts) -> i64| -> Vec<i64> { keys.iter().map(|k| f(&by[k])).collect() };
    let skipped: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| serde_json::to_value(&by[k].skipped).unwrap_or_default())
        .collect();
    sqlx::query(&format!(
        "UPDATE {table} s SET queued = s.queued + d.queued, sent = s.sent + d.sent, \
           delivered = s.delivered + d.delivered, opened = s.opened + d.opened, \
           clicked = s.clicked + d.clicked, bounced = s.bounced + d.bounced, \
           complained = s.complained + d.complained, unsubscribed = s.unsubscribed + d.unsubscribed, \
           suppressed = s.suppressed + d.suppressed, failed = s.failed + d.failed, \
           in_doubt = s.in_doubt + d.in_doubt, cancelled_jobs = s.cancelled_jobs + d.cancelled_jobs, \
           skipped = CASE WHEN d.skipped = '{{}}'::jsonb THEN s.skipped ELSE ( \
             SELECT jsonb_object_agg(k, coalesce((s.skipped ->> k)::bigint, 0) + coalesce((d.skipped ->> k)::bigint, 0)) \
             FROM jsonb_object_keys(s.skipped || d.skipped) AS k) END \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], \
                     $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], \
                     $13::bigint[], $14::bigint[], $15::jsonb[]) \
              AS d(tenant_id, id, queued, sent, delivered, opened, clicked, bounced, complained, \
                   unsubscribed, suppressed, failed, in_doubt, cancelled_jobs, skipped) \
         WHERE s.tenant_id = d.tenant_id AND s.id = d.id"
    ))
    .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
    .bind(col(|c| c.queued))
    .bind(col(|c| c.sent))
    .bind(col(|c| c.delivered))
    .bind(col(|c| c.opened))
    .bind(col(|c| c.clicked))
    .bind(col(|c| c.bounced))
    .bind(col(|c| c.complained))
    .bind(col(|c| c.unsubscribed))
    .bind(col(|c| c.suppressed))
    .bind(col(|c| c.failed))
    .bind(col(|c| c.in_doubt))
    .bind(col(|c| c.cancelled_jobs))
    .bind(skipped)
    .persistent(false)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
