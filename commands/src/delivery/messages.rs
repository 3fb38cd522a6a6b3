//! Transactional messages (a template to a contact or an address, made safe to retry by an
//! idempotency key) and test sends of a template version: checked, then requested through
//! [`Jobs`].

use chrono::Utc;
use domain::contact::InvalidValue;
use domain::delivery::{Channel, Request, Sender, Source};
use domain::template::TemplateError;
use domain::{ContactId, EmailAddress, ProviderId, TemplateId, TenantId};
use event_store::EventMetadata;
use uuid::Uuid;

use super::body::{Address, MessageAccepted, SendMessage, TestSend};
use super::Jobs;
use crate::contacts::Contacts;
use crate::providers::Providers;
use crate::templates::Templates;
use crate::{Invalid, Technical};

/// Why a message was not requested.
#[derive(Debug, thiserror::Error)]
pub enum MessagesError {
    /// The input does not fit (each field named); nothing was requested.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No such template (or version), or a deleted one.
    #[error(transparent)]
    Template(TemplateError),
    /// No such contact (or an erased one).
    #[error("no such contact")]
    NoSuchContact,
    /// The store failed; the cause keeps its own sources.
    #[error("the message could not be requested")]
    Technical(#[source] Technical),
}

fn technical(e: impl std::error::Error + Send + Sync + 'static) -> MessagesError {
    MessagesError::Technical(Box::new(e))
}

/// Transactional messages and test sends.
#[derive(Clone)]
pub struct Messages {
    jobs: Jobs,
    templates: Templates,
    contacts: Contacts,
    providers: Providers,
}

impl Messages {
    pub fn new(jobs: Jobs, templates: Templates, contacts: Contacts, providers: Providers) -> Self {
        Self {
            jobs,
            templates,
            contacts,
            providers,
        }
    }

    /// Requests `msg`. With an idempotency `key`, a repeated request answers the first
    /// one's job (`duplicate`) and requests nothing more; the same key for a different
    /// message is refused.
    pub async fn send(
        &self,
        tenant: TenantId,
        msg: SendMessage,
        key: Option<String>,
        meta: &EventMetadata,
    ) -> Result<MessageAccepted, MessagesError> {
        let mut problems = Vec::new();
        if msg.contact_id.is_some() == msg.to.is_some() {
            problems.push(InvalidValue::new("to", "give either contact_id or to"));
        }
        if msg.data.as_ref().is_some_and(|d| !d.is_object()) {
            problems.push(InvalidValue::new("data", "an object"));
        }
        if !problems.is_empty() {
            return Err(Invalid(problems).into());
        }
        let template = TemplateId(msg.template_id);
        let (channel, version) = self.template_version(tenant, template, msg.version).await?;
        // The sender's form depends on the template's channel.
        let from = sender("from", msg.from, channel, &mut problems);
        let reply_to = sender("reply_to", msg.reply_to, Channel::Email, &mut problems);
        if !problems.is_empty() {
            return Err(Invalid(problems).into());
        }
        let to = match msg.to {
            Some(raw) => address(channel, &raw).map_err(|r| Invalid::one("to", r))?,
            None => String::new(),
        };
        let provider_id = match msg.provider_id {
            Some(p) => Some(self.provider_of(tenant, p, channel).await?),
            None => None,
        };
        let contact_id = self.live_contact(tenant, msg.contact_id).await?;
        let request = Request {
            channel,
            contact_id,
            to,
            template_id: msg.template_id,
            template_version: version,
            source: Source::Transactional {
                idempotency_key: key.clone(),
            },
            data: msg.data.unwrap_or_else(|| serde_json::json!({})),
            from,
            reply_to,
            provider_id,
        };
        let id = key
            .as_deref()
            .map_or_else(Uuid::now_v7, |k| idempotent_id(tenant.0, k));
        let done = self
            .jobs
            .request(tenant.0, meta, &[(id, request.clone())], Utc::now())
            .await
            .map_err(technical)?;
        let duplicate = done.created.is_empty();
        if duplicate {
            let before = self.jobs.load(tenant.0, &[id]).await.map_err(technical)?;
            let same = before
                .get(&id)
                .and_then(|l| l.job.request.as_ref())
                .is_some_and(|r| {
                    r.template_id == request.template_id
                        && r.contact_id == request.contact_id
                        && r.to == request.to
                        && r.data == request.data
                        && r.provider_id == request.provider_id
                });
            if !same {
                let why = "already used for a different message";
                return Err(Invalid::one("Idempotency-Key", why).into());
            }
        }
        Ok(MessageAccepted {
            id,
            cursor: done.cursor.map(|c| c.to_string()).unwrap_or_default(),
            duplicate,
        })
    }

    /// Sends version `version` of template `template` to an address, rendered for
    /// `contact_id` when given (with the organization's sample values otherwise). Consent
    /// and frequency rules do not apply; the suppression list does.
    pub async fn test_send(
        &self,
        tenant: TenantId,
        template: TemplateId,
        version: u32,
        test: TestSend,
        meta: &EventMetadata,
    ) -> Result<MessageAccepted, MessagesError> {
        let (channel, version) = match self.template_version(tenant, template, Some(version)).await
        {
            Err(MessagesError::Invalid(_)) => {
                return Err(MessagesError::Template(TemplateError::NoSuchVersion(
                    version,
                )))
            }
            other => other?,
        };
        let mut problems = Vec::new();
        let from = sender("from", test.from, channel, &mut problems);
        if !problems.is_empty() {
            return Err(Invalid(problems).into());
        }
        let to = address(channel, &test.to).map_err(|r| Invalid::one("to", r))?;
        let contact_id = self.live_contact(tenant, test.contact_id).await?;
        let request = Request {
            channel,
            contact_id,
            to,
            template_id: template.0,
            template_version: version,
            source: Source::Test,
            data: test.data.unwrap_or_else(|| serde_json::json!({})),
            from,
            reply_to: None,
            provider_id: None,
        };
        let job = Uuid::now_v7();
        let done = self
            .jobs
            .request(tenant.0, meta, &[(job, request)], Utc::now())
            .await
            .map_err(technical)?;
        Ok(MessageAccepted {
            id: job,
            cursor: done.cursor.map(|c| c.to_string()).unwrap_or_default(),
            duplicate: false,
        })
    }
}

/// An SMS sender: an E.164 number, or an alphanumeric sender id (1 to 11 letters, digits
/// and spaces, at least one letter) where the destination allows one.
fn sms_sender(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let digits = raw.strip_prefix('+').unwrap_or("");
    let number = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    let alphanumeric = (1..=11).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && raw.bytes().any(|b| b.is_ascii_alphabetic());
    if number || alphanumeric {
        Ok(raw.to_owned())
    } else {
        Err(
            "an SMS sender: an E.164 number (+ and 8 to 15 digits) or 1 to 11 letters, digits \
             and spaces"
                .to_owned(),
        )
    }
}

/// The sender of a message on `channel`: a phone number or sender id for SMS, an email
/// address otherwise.
fn sender(
    field: &str,
    a: Option<Address>,
    channel: Channel,
    problems: &mut Vec<InvalidValue>,
) -> Option<Sender> {
    let a = a?;
    if channel == Channel::Sms {
        return match sms_sender(&a.address) {
            Ok(address) => Some(Sender {
                address,
                name: None,
            }),
            Err(reason) => {
                problems.push(InvalidValue::new(format!("{field}.address"), reason));
                None
            }
        };
    }
    match EmailAddress::parse(&a.address) {
        Ok(e) => Some(Sender {
            address: e.as_str().to_owned(),
            name: a
                .name
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty()),
        }),
        Err(e) => {
            problems.push(InvalidValue::new(format!("{field}.address"), e.to_string()));
            None
        }
    }
}

/// The address as the channel wants it, or why not.
fn address(channel: Channel, raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    match channel {
        Channel::Email => EmailAddress::parse(raw)
            .map(|e| e.as_str().to_owned())
            .map_err(|e| e.to_string()),
        Channel::Sms => {
            let digits = raw.strip_prefix('+').unwrap_or("");
            if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
                Ok(raw.to_owned())
            } else {
                Err("an E.164 number: + and 8 to 15 digits".to_owned())
            }
        }
        Channel::Push | Channel::Webhook => {
            if raw.is_empty() || raw.len() > 4096 {
                Err("required, at most 4096 characters".to_owned())
            } else {
                Ok(raw.to_owned())
            }
        }
    }
}

impl Messages {
    /// The template's channel and the version to send (published unless `version` is
    /// given).
    async fn template_version(
        &self,
        tenant: TenantId,
        id: TemplateId,
        version: Option<u32>,
    ) -> Result<(Channel, u32), MessagesError> {
        let t = self.templates.get(tenant, id).await.map_err(technical)?;
        if !t.exists {
            return Err(MessagesError::Template(TemplateError::NotFound));
        }
        if t.deleted {
            return Err(MessagesError::Template(TemplateError::Deleted));
        }
        let v = match version {
            Some(v) if v >= 1 && v <= t.latest_version => v,
            Some(_) => return Err(Invalid::one("version", "no such version").into()),
            None => t.published_version.ok_or_else(|| {
                Invalid::one(
                    "template_id",
                    "the template has no published version (publish one or name a version)",
                )
            })?,
        };
        Ok((t.channel, v))
    }

    /// The contact `id` (if one is named) as a send sees it: it must exist (a merged
    /// contact's survivor answers).
    async fn live_contact(
        &self,
        tenant: TenantId,
        id: Option<Uuid>,
    ) -> Result<Option<Uuid>, MessagesError> {
        let Some(mut id) = id else {
            return Ok(None);
        };
        for _ in 0..crate::executor::MAX_REDIRECTS {
            let c = self.contacts.get(tenant, ContactId(id)).await;
            let c = c.map_err(technical)?;
            if let Some(next) = c.merged_into {
                id = next;
                continue;
            }
            if !c.exists || c.erased {
                break;
            }
            return Ok(Some(id));
        }
        Err(MessagesError::NoSuchContact)
    }

    /// The provider `id`, which must be one of the organization's live providers of
    /// `channel` (read from its stream: a provider configured a moment ago counts).
    async fn provider_of(
        &self,
        tenant: TenantId,
        id: Uuid,
        channel: Channel,
    ) -> Result<Uuid, MessagesError> {
        let p = self.providers.get(tenant, ProviderId(id)).await;
        let p = p.map_err(technical)?;
        if p.exists && !p.removed && p.channel == channel {
            Ok(id)
        } else {
            let why = format!(
                "no {} provider with this id in the organization",
                channel.as_str()
            );
            Err(Invalid::one("provider_id", why).into())
        }
    }
}

/// The job id of a request with `Idempotency-Key: key`: derived, so a retried request
/// names the same job.
fn idempotent_id(tenant: Uuid, key: &str) -> Uuid {
    Uuid::new_v5(&tenant, format!("message:{key}").as_bytes())
}
