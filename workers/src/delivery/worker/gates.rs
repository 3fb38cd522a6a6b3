//! The gates a pending job passes before it may be sent, in order: the contact's rules
//! (consent, do-not-contact, an address to send to), the suppression list, the contact's
//! frequency rule, the sending domain's warmup. A job stopped at a gate is suppressed or
//! deferred; what passes every gate is ready.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use commands::delivery::jobs::{Loaded, Queue, Write};
use domain::delivery::warmup::Allowance;
use domain::delivery::{Channel, Deferral, DeliveryCommand, Sender, Source, Suppression};
use projections::contacts::ContactRow;
use uuid::Uuid;

use super::batch::{bare, decided, normalized, Ready};
use super::checks::{self, Frequency, Verdict};
use super::partition::Audience;
use super::{compose, limits, Worker, WorkerError};

/// Contact rules: the candidates that may be sent to, each with its address.
pub(super) async fn contact_rules(
    candidates: Vec<(Uuid, Loaded)>,
    audience: &Audience,
    writes: &mut Vec<Write>,
) -> Result<Vec<Ready>, WorkerError> {
    let mut ready: Vec<Ready> = Vec::new();
    for (id, mut l) in candidates {
        let Some(request) = l.job.request.clone() else {
            writes.push(bare(id, l.version, Queue::Remove));
            continue;
        };
        let contact = audience.position(request.contact_id);
        match checks::contact_rules(&request, contact.map(|i| &audience.contacts[i])) {
            Verdict::Send { address } => ready.push(Ready {
                id,
                loaded: l,
                address,
                contact,
            }),
            Verdict::Suppress(reason) => writes
                .push(decided(id, &mut l, DeliveryCommand::Suppress(reason), Queue::Remove).await?),
            Verdict::Defer { reason, until } => writes.push(
                decided(
                    id,
                    &mut l,
                    DeliveryCommand::Defer { reason, until },
                    Queue::DueAt(until),
                )
                .await?,
            ),
        }
    }
    Ok(ready)
}

impl Worker {
    /// Suppresses jobs whose address is on the organization's suppression list.
    pub(super) async fn suppression_list(
        &self,
        tenant: Uuid,
        ready: Vec<Ready>,
        writes: &mut Vec<Write>,
    ) -> Result<Vec<Ready>, WorkerError> {
        let mut by_channel: HashMap<Channel, Vec<String>> = HashMap::new();
        for r in &ready {
            if let Some(req) = &r.loaded.job.request {
                by_channel
                    .entry(req.channel)
                    .or_default()
                    .push(normalized(req.channel, &r.address));
            }
        }
        let mut listed: HashMap<(Channel, String), String> = HashMap::new();
        for (channel, addresses) in by_channel {
            // The log, not the read model: an address suppressed a moment ago counts.
            let found =
                commands::suppressions::suppressed_now(&self.pool, tenant, channel, &addresses)
                    .await?;
            for (address, reason) in found {
                listed.insert((channel, address), reason.as_str().to_owned());
            }
        }
        let mut out = Vec::with_capacity(ready.len());
        for mut r in ready {
            let Some(channel) = r.loaded.job.request.as_ref().map(|q| q.channel) else {
                continue;
            };
            match listed.get(&(channel, normalized(channel, &r.address))) {
                Some(reason) => writes.push(
                    decided(
                        r.id,
                        &mut r.loaded,
                        DeliveryCommand::Suppress(Suppression::SuppressedAddress {
                            reason: reason.clone(),
                        }),
                        Queue::Remove,
                    )
                    .await?,
                ),
                None => out.push(r),
            }
        }
        Ok(out)
    }

    /// Marketing messages to contacts whose frequency rule allows none now: a journey's waits
    /// (deferred until the oldest message in the window leaves it), a campaign's is
    /// suppressed (`Suppression::FrequencyCap`: a blast is time-bound, and its row leaves the
    /// queue so the campaign's pending count reaches zero).
    pub(super) async fn frequency(
        &self,
        tenant: Uuid,
        ready: Vec<Ready>,
        contacts: &[ContactRow],
        now: DateTime<Utc>,
        writes: &mut Vec<Write>,
    ) -> Result<Vec<Ready>, WorkerError> {
        let ruled = |r: &Ready| -> Option<(Channel, Frequency)> {
            let req = r.loaded.job.request.as_ref()?;
            if !matches!(req.source, Source::Campaign { .. } | Source::Journey { .. }) {
                return None;
            }
            let c = &contacts[r.contact?];
            Some((req.channel, Frequency::of(c, req.channel)?))
        };
        let ids: Vec<Uuid> = ready
            .iter()
            .filter(|r| ruled(r).is_some())
            .filter_map(|r| r.contact.map(|i| contacts[i].id))
            .collect();
        if ids.is_empty() {
            return Ok(ready);
        }
        let rows: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT contact_id, channel, at FROM delivery_sends \
             WHERE tenant_id = $1 AND contact_id = ANY($2) AND at > $3 ORDER BY at",
        )
        .bind(tenant)
        .bind(&ids)
        .bind(now - chrono::Duration::days(366))
        .fetch_all(&self.pool)
        .await?;
        let mut sent: HashMap<(Uuid, &str), Vec<DateTime<Utc>>> = HashMap::new();
        for (c, ch, at) in &rows {
            sent.entry((*c, ch.as_str())).or_default().push(*at);
        }
        let mut out = Vec::with_capacity(ready.len());
        for mut r in ready {
            let Some((channel, f)) = ruled(&r) else {
                out.push(r);
                continue;
            };
            let contact = r.contact.map(|i| contacts[i].id).unwrap_or_default();
            let times = sent.entry((contact, channel.as_str())).or_default();
            let within: Vec<DateTime<Utc>> = times
                .iter()
                .copied()
                .filter(|t| *t > now - f.window())
                .collect();
            match f.next_allowed(&within) {
                None => {
                    times.push(now);
                    out.push(r);
                }
                Some(until) => {
                    // `ruled` found the request: a campaign's is suppressed, others wait.
                    let verdict = match r.loaded.job.request.as_ref() {
                        Some(request) => checks::over_cap(request, until),
                        None => Verdict::Defer {
                            reason: Deferral::FrequencyCap,
                            until,
                        },
                    };
                    let (command, queue) = match verdict {
                        Verdict::Suppress(reason) => {
                            (DeliveryCommand::Suppress(reason), Queue::Remove)
                        }
                        Verdict::Defer { reason, until } => (
                            DeliveryCommand::Defer { reason, until },
                            Queue::DueAt(until),
                        ),
                        Verdict::Send { .. } => {
                            out.push(r);
                            continue;
                        }
                    };
                    writes.push(decided(r.id, &mut r.loaded, command, queue).await?);
                }
            }
        }
        Ok(out)
    }

    /// Defers email over its sending domain's warmup allowance for today to the next day.
    pub(super) async fn warmup(
        &self,
        tenant: Uuid,
        ready: Vec<Ready>,
        default_from: &Sender,
        now: DateTime<Utc>,
        writes: &mut Vec<Write>,
    ) -> Result<Vec<Ready>, WorkerError> {
        let domain_of = |r: &Ready| -> Option<String> {
            let req = r.loaded.job.request.as_ref()?;
            (req.channel == Channel::Email).then(|| {
                compose::domain_of(&compose::sender(req, default_from).address).to_ascii_lowercase()
            })
        };
        if !ready.iter().any(|r| domain_of(r).is_some()) {
            return Ok(ready);
        }
        let schedules = limits::warmups(&self.pool, tenant).await?;
        if schedules.is_empty() {
            return Ok(ready);
        }
        let mut wants: HashMap<String, i64> = HashMap::new();
        for r in &ready {
            if let Some(d) = domain_of(r) {
                *wants.entry(d).or_default() += 1;
            }
        }
        let mut left: HashMap<String, (i64, DateTime<Utc>)> = HashMap::new();
        for w in &schedules {
            let domain = w.domain.clone();
            let Some(want) = wants.get(&domain) else {
                continue;
            };
            if let (Allowance::Limited { messages, .. }, ends) = w.today(now) {
                let scope = w.scope();
                let granted = limits::take_allowance(
                    &self.pool,
                    tenant,
                    &scope,
                    ends,
                    messages as i64,
                    *want,
                )
                .await?;
                left.insert(domain, (granted, ends));
            }
        }
        let mut out = Vec::with_capacity(ready.len());
        for mut r in ready {
            let Some(domain) = domain_of(&r) else {
                out.push(r);
                continue;
            };
            match left.get_mut(&domain) {
                Some((n, _)) if *n > 0 => {
                    *n -= 1;
                    out.push(r);
                }
                Some((_, ends)) => {
                    let until = *ends;
                    writes.push(
                        decided(
                            r.id,
                            &mut r.loaded,
                            DeliveryCommand::Defer {
                                reason: Deferral::Warmup { domain },
                                until,
                            },
                            Queue::DueAt(until),
                        )
                        .await?,
                    )
                }
                None => out.push(r),
            }
        }
        Ok(out)
    }
}
