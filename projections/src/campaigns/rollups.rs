//! The `campaign_rollups` read model: a campaign's delivery figures per variant, channel and
//! hour or day, for its stats over time and by variant.
//!
//! Buckets are UTC hours and days of the events' `recorded_at`, so a rebuild puts every
//! event where the live projection did. A batch is summed in memory and added in one
//! `INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x`: thousands of job events a second
//! become a few rows a batch.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::facts::{self, Fact, Kind};
use crate::{Projection, ProjectionError, Target};

pub struct CampaignRollupsProjection;

/// `hour` or `day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    fn seconds(self) -> i64 {
        match self {
            Self::Hour => 3600,
            Self::Day => 86_400,
        }
    }

    /// The UTC bucket `at` falls in.
    pub fn bucket(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let s = at.timestamp();
        DateTime::from_timestamp(s - s.rem_euclid(self.seconds()), 0).unwrap_or(at)
    }
}

/// Figures of one bucket (or a sum of buckets).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Figures {
    pub sent: i64,
    pub delivered: i64,
    pub bounced: i64,
    pub complained: i64,
    pub opens: i64,
    pub unique_opens: i64,
    pub clicks: i64,
    pub unique_clicks: i64,
    pub unsubscribes: i64,
}

impl Figures {
    /// Counts `kind`; `false` for what rollups do not count (requests, suppressions, …).
    fn add(&mut self, kind: &Kind) -> bool {
        match kind {
            Kind::Sent => self.sent += 1,
            Kind::Delivered => self.delivered += 1,
            Kind::Bounced => self.bounced += 1,
            Kind::Complained => self.complained += 1,
            Kind::Opened { first } => {
                self.opens += 1;
                self.unique_opens += i64::from(*first);
            }
            Kind::Clicked { first, .. } => {
                self.clicks += 1;
                self.unique_clicks += i64::from(*first);
            }
            Kind::Unsubscribed => self.unsubscribes += 1,
            Kind::Requested
            | Kind::Suppressed(_)
            | Kind::GivenUp
            | Kind::InDoubt
            | Kind::Cancelled => return false,
        }
        true
    }

    /// Adds `other` (sums of buckets).
    pub fn merge(&mut self, o: &Figures) {
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.bounced += o.bounced;
        self.complained += o.complained;
        self.opens += o.opens;
        self.unique_opens += o.unique_opens;
        self.clicks += o.clicks;
        self.unique_clicks += o.unique_clicks;
        self.unsubscribes += o.unsubscribes;
    }
}

/// One row of the read model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupRow {
    /// `''` without an A/B test.
    pub variant: String,
    pub channel: String,
    pub bucket: DateTime<Utc>,
    #[serde(flatten)]
    pub figures: Figures,
}

type Key = (Uuid, Uuid, Granularity, DateTime<Utc>, String, &'static str);

/// The batch's figures by row key.
fn sum(facts: &[Fact]) -> BTreeMap<Key, Figures> {
    let mut out: BTreeMap<Key, Figures> = BTreeMap::new();
    for f in facts {
        let mut one = Figures::default();
        if !one.add(&f.kind) {
            continue;
        }
        for g in [Granularity::Hour, Granularity::Day] {
            let key = (
                f.tenant,
                f.campaign.id,
                g,
                g.bucket(f.at),
                f.campaign.variant.clone().unwrap_or_default(),
                f.campaign.channel.as_str(),
            );
            out.entry(key).or_default().merge(&one);
        }
    }
    out
}

#[async_trait]
impl Projection for CampaignRollupsProjection {
    fn name(&self) -> &'static str {
        "campaign_rollups"
    }

    fn table(&self) -> &'static str {
        "campaign_rollups"
    }

    fn needs_personal_data(&self) -> bool {
        false
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        facts::concerns(e) && e.event_type != "DeliveryRequested"
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&["delivery_job"])
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let rows = sum(&facts::of(events, |e| self.concerns(e))?);
        if rows.is_empty() {
            return Ok(());
        }
        let mut cols: (
            Vec<Uuid>,
            Vec<Uuid>,
            Vec<&str>,
            Vec<DateTime<Utc>>,
            Vec<&str>,
            Vec<&str>,
        ) = Default::default();
        let mut figs: [Vec<i64>; 9] = Default::default();
        for ((tenant, campaign, g, bucket, variant, channel), f) in &rows {
            cols.0.push(*tenant);
            cols.1.push(*campaign);
            cols.2.push(g.as_str());
            cols.3.push(*bucket);
            cols.4.push(variant);
            cols.5.push(channel);
            for (v, x) in figs.iter_mut().zip([
                f.sent,
                f.delivered,
                f.bounced,
                f.complained,
                f.opens,
                f.unique_opens,
                f.clicks,
                f.unique_clicks,
                f.unsubscribes,
            ]) {
                v.push(x);
            }
        }
        let table = &target.table;
        let [sent, delivered, bounced, complained, opens, unique_opens, clicks, unique_clicks, unsubscribes] =
            figs;
        sqlx::query(&format!(
            "INSERT INTO {table} AS r (tenant_id, campaign_id, granularity, bucket, variant, channel, \
               sent, delivered, bounced, complained, opens, unique_opens, clicks, unique_clicks, unsubscribes) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[], \
               $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], \
               $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[]) \
             ON CONFLICT (tenant_id, campaign_id, granularity, bucket, variant, channel) DO UPDATE SET \
               sent = r.sent + excluded.sent, delivered = r.delivered + excluded.delivered, \
               bounced = r.bounced + excluded.bounced, complained = r.complained + excluded.complained, \
               opens = r.opens + excluded.opens, unique_opens = r.unique_opens + excluded.unique_opens, \
               clicks = r.clicks + excluded.clicks, unique_clicks = r.unique_clicks + excluded.unique_clicks, \
               unsubscribes = r.unsubscribes + excluded.unsubscribes"
        ))
        .bind(cols.0)
        .bind(cols.1)
        .bind(cols.2)
        .bind(cols.3)
        .bind(cols.4)
        .bind(cols.5)
        .bind(sent)
        .bind(delivered)
        .bind(bounced)
        .bind(complained)
        .bind(opens)
        .bind(unique_opens)
        .bind(clicks)
        .bind(unique_clicks)
        .bind(unsubscribes)
        .persistent(false)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Campaign `campaign`'s rows of `granularity`, oldest bucket first.
pub async fn rows<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    campaign: Uuid,
    granularity: Granularity,
) -> Result<Vec<RollupRow>, sqlx::Error> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT to_jsonb(r) FROM campaign_rollups r \
         WHERE tenant_id = $1 AND campaign_id = $2 AND granularity = $3 \
         ORDER BY bucket, variant, channel",
    )
    .bind(tenant)
    .bind(campaign)
    .bind(granularity.as_str())
    .persistent(false)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(v,)| serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn buckets_are_utc_hours_and_days() {
        let at = Utc.with_ymd_and_hms(2026, 3, 29, 13, 47, 12).unwrap();
        assert_eq!(
            Granularity::Hour.bucket(at),
            Utc.with_ymd_and_hms(2026, 3, 29, 13, 0, 0).unwrap()
        );
        assert_eq!(
            Granularity::Day.bucket(at),
            Utc.with_ymd_and_hms(2026, 3, 29, 0, 0, 0).unwrap()
        );
    }
}
