//! Each routed job rendered (its template version, compiled once per process, with the
//! contact's context) and composed into its provider's message, then decided dispatching:
//! what the batch hands to providers. A version that is gone or a render that fails gives the
//! job up.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use commands::delivery::jobs::{Queue, Write};
use cqrs_es::Aggregate;
use domain::delivery::{Channel, DeliveryCommand, Request, Sender};
use domain::field::FieldSchema;
use domain::template::render::{self, Known, Prepared};
use domain::template::Content;
use event_store::reader;
use uuid::Uuid;

use super::batch::{decided, given_up, Dispatched, Routed, Version};
use super::partition::Audience;
use super::{compose, Worker, WorkerError};

impl Worker {
    /// The routed jobs' messages, and the `DeliveryDispatching` write of each (same order).
    pub(super) async fn render(
        &self,
        tenant: Uuid,
        routed: Vec<Routed>,
        audience: &Audience,
        default_from: &Sender,
        now: DateTime<Utc>,
        writes: &mut Vec<Write>,
    ) -> Result<(Vec<Write>, Vec<Dispatched>), WorkerError> {
        let mut known: Option<Known> = None;
        let mut dispatch: Vec<Dispatched> = Vec::new();
        let mut dispatching: Vec<Write> = Vec::new();
        for Routed {
            ready,
            provider: resolved,
        } in routed
        {
            let (id, mut loaded, address, contact) =
                (ready.id, ready.loaded, ready.address, ready.contact);
            let Some(request) = loaded.job.request.clone() else {
                continue;
            };
            let version = match self.version(tenant, &request).await? {
                Some(v) => v,
                None => {
                    let error = format!(
                        "template {} version {} is gone",
                        request.template_id, request.template_version
                    );
                    writes.push(given_up(id, &mut loaded, error).await?);
                    continue;
                }
            };
            let known = match &known {
                Some(k) => k,
                None => known.insert(self.known_fields(tenant).await?),
            };
            let mut data = match &request.data {
                serde_json::Value::Object(m) => m.clone(),
                _ => serde_json::Map::new(),
            };
            if let Some(t) = &self.tracker {
                data.insert(
                    "unsubscribe_url".into(),
                    t.unsubscribe_url(tenant, id).into(),
                );
            }
            let data = serde_json::Value::Object(data);
            let org = audience.org.as_ref();
            let mut context = match contact {
                Some(i) => audience.contacts[i].render_context(org, data),
                None => serde_json::json!({
                    "contact": {
                        "id": null, "email": (request.channel == Channel::Email).then_some(&address),
                        "first_name": null, "last_name": null,
                        "phone": (request.channel == Channel::Sms).then_some(&address),
                        "time_zone": null, "locale": null, "fields": {}, "tags": [],
                        "stage": null, "points": 0,
                    },
                    "organization": projections::contacts::organization_context(tenant, org),
                    "message": data,
                }),
            };
            render::fill_fields(&mut context, known);
            let rendered = match version.prepared.render(context) {
                Ok(r) => r,
                Err(errors) => {
                    let error = errors
                        .iter()
                        .map(|e| format!("{}: {}", e.part, e.message))
                        .collect::<Vec<_>>()
                        .join("; ");
                    writes.push(given_up(id, &mut loaded, error).await?);
                    continue;
                }
            };
            let envelope = compose::Envelope {
                tenant,
                job_id: id,
                request: &request,
                address: &address,
                default_from,
                tracker: self.tracker.as_ref(),
                bounce_domain: self.config.bounce_domain.as_deref(),
                method: version.method.as_deref(),
                provider_from: resolved.from.as_deref(),
            };
            let message = match compose::compose(&envelope, rendered) {
                Ok(m) => m,
                Err(error) => {
                    writes.push(given_up(id, &mut loaded, error).await?);
                    continue;
                }
            };
            let mut w = decided(
                id,
                &mut loaded,
                DeliveryCommand::BeginDispatch {
                    provider: resolved.name.clone(),
                },
                Queue::Keep,
            )
            .await?;
            w.send = request
                .contact_id
                .filter(|_| contact.is_some())
                .map(|c| (c, request.channel.as_str(), now));
            let version = w.version + w.events.len() as i64;
            dispatching.push(w);
            dispatch.push(Dispatched {
                id,
                job: loaded.job,
                version,
                message,
                provider: resolved,
            });
        }
        Ok((dispatching, dispatch))
    }

    /// The compiled template version a request names (`None`: it is gone).
    async fn version(
        &self,
        tenant: Uuid,
        request: &Request,
    ) -> Result<Option<Arc<Version>>, WorkerError> {
        let key = (tenant, request.template_id, request.template_version);
        if let Some(v) = self.versions.lock().await.get(&key) {
            return Ok(Some(v.clone()));
        }
        let row = projections::templates::get(&self.pool, tenant, request.template_id).await?;
        let content = row.and_then(|t| {
            t.versions
                .into_iter()
                .find(|v| v.version as u32 == request.template_version)
                .map(|v| v.content)
        });
        let version = match content {
            Some(content) => {
                let method = match &content {
                    Content::Webhook { method, .. } => Some(method.clone()),
                    _ => None,
                };
                Prepared::new(&content)
                    .ok()
                    .map(|prepared| Arc::new(Version { prepared, method }))
            }
            None => None,
        };
        // A version not found may still arrive (the templates read model lags): only keep
        // what was found.
        if let Some(v) = &version {
            self.versions.lock().await.insert(key, v.clone());
        }
        Ok(version)
    }

    /// The organization's custom fields (every one is present when rendering).
    async fn known_fields(&self, tenant: Uuid) -> Result<Known, WorkerError> {
        let stream = event_store::recorded::stream_id(tenant, tenant);
        let events =
            reader::load_stream(&self.pool, FieldSchema::TYPE, &stream, reader::Until::End).await?;
        let mut schema = FieldSchema::default();
        for e in events {
            if let Ok(event) = e.decode() {
                schema.apply(event);
            }
        }
        Ok(Known {
            fields: schema.fields.keys().cloned().collect(),
        })
    }
}
