//! The `campaign_link_clicks` read model: clicks per link of a campaign.
//!
//! "Unique" follows the job's `first` flag: a recipient's first click on any link of the
//! message counts as a unique click of the link it was on, and of no other. So the links'
//! unique clicks add up to the campaign's clickers (`campaign_summaries.clicked`), and a
//! recipient who clicked two links counts unique on the first only.

use std::collections::BTreeMap;

use async_trait::async_trait;
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::facts::{self, Kind};
use crate::{Projection, ProjectionError, Target};

pub struct CampaignLinkClicksProjection;

/// The longest URL kept, in bytes: the key's index has a size limit (about 2,700 bytes) that
/// a longer one would break, stopping the projection.
pub const MAX_URL: usize = 1024;

/// Clicks on one link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LinkRow {
    pub url: String,
    pub clicks: i64,
    /// Recipients whose first click was on this link.
    pub unique_clicks: i64,
}

fn cut(url: &str) -> &str {
    if url.len() <= MAX_URL {
        return url;
    }
    let mut end = MAX_URL;
    while !url.is_char_boundary(end) {
        end -= 1;
    }
    &url[..end]
}

#[async_trait]
impl Projection for CampaignLinkClicksProjection {
    fn name(&self) -> &'static str {
        "campaign_link_clicks"
    }

    fn table(&self) -> &'static str {
        "campaign_link_clicks"
    }

    fn needs_personal_data(&self) -> bool {
        false
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        facts::concerns(e) && e.event_type == "DeliveryClicked"
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
        let mut by: BTreeMap<(uuid::Uuid, uuid::Uuid, String), (i64, i64)> = BTreeMap::new();
        for f in facts::of(events, |e| self.concerns(e))? {
            if let Kind::Clicked { first, url } = &f.kind {
                let n = by
                    .entry((f.tenant, f.campaign.id, cut(url).to_owned()))
                    .or_default();
                n.0 += 1;
                n.1 += i64::from(*first);
            }
        }
        if by.is_empty() {
            return Ok(());
        }
        let mut cols: (Vec<Uuid>, Vec<Uuid>, Vec<&str>, Vec<i64>, Vec<i64>) = Default::default();
        for ((tenant, campaign, url), (clicks, unique)) in &by {
            cols.0.push(*tenant);
            cols.1.push(*campaign);
            cols.2.push(url);
            cols.3.push(*clicks);
            cols.4.push(*unique);
        }
        sqlx::query(&format!(
            "INSERT INTO {} AS l (tenant_id, campaign_id, url, clicks, unique_clicks) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::bigint[]) \
             ON CONFLICT (tenant_id, campaign_id, url) DO UPDATE SET \
               clicks = l.clicks + excluded.clicks, \
               unique_clicks = l.unique_clicks + excluded.unique_clicks",
            target.table
        ))
        .bind(cols.0)
        .bind(cols.1)
        .bind(cols.2)
        .bind(cols.3)
        .bind(cols.4)
        .persistent(false)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Campaign `campaign`'s links, most clicked first.
pub async fn rows<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    campaign: Uuid,
    limit: i64,
) -> Result<Vec<LinkRow>, sqlx::Error> {
    sqlx::query_as::<_, (String, i64, i64)>(
        "SELECT url, clicks, unique_clicks FROM campaign_link_clicks \
         WHERE tenant_id = $1 AND campaign_id = $2 ORDER BY clicks DESC, url LIMIT $3",
    )
    .bind(tenant)
    .bind(campaign)
    .bind(limit)
    .persistent(false)
    .fetch_all(db)
    .await
    .map(|rows| {
        rows.into_iter()
            .map(|(url, clicks, unique_clicks)| LinkRow {
                url,
                clicks,
                unique_clicks,
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_urls_are_cut_on_a_character_boundary() {
        let url = format!("https://example.org/{}", "é".repeat(600));
        let kept = cut(&url);
        assert!(kept.len() <= MAX_URL && kept.len() > MAX_URL - 2);
        assert!(url.starts_with(kept));
        assert_eq!(cut("https://example.org/a"), "https://example.org/a");
    }
}
