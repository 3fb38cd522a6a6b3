//! One batch of an import, applied in one transaction: the emails are claimed in bulk, the
//! contacts that already have them are loaded in bulk and folded with the aggregate's own
//! `apply`, every row is decided by the aggregate's own `handle` (so an update records only
//! what differs), and the events of the whole batch are appended in one statement together
//! with the import's progress. A stream conflict (a concurrent API write) or a contact still
//! being created by someone else rolls the batch back; the caller retries it.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use domain::contact::{Contact, ContactCommand, ContactEvent, NewContact};
use event_store::append::{self, AppendError, NewEvent};
use event_store::reader;
use event_store::recorded::stream_id;
use event_store::reservation::{self, Holder, Scope};
use event_store::shred::FreshKey;
use event_store::StoreError;
use uuid::Uuid;

use super::options::{Plan, Target};
use super::store::{self, Counts, Job};
use crate::contacts::unique::{email_key, upsert_patch};
use crate::error::Rejection;
use crate::fields::claims;
use crate::segments::membership::{self, Decision};
use crate::CommandState;
use domain::field::FieldSchema;
use domain::segment::MembershipReason;

/// One record read from the file.
#[derive(Debug)]
pub struct Parsed {
    /// The physical line where the record starts.
    pub line: i64,
    pub contact: Result<NewContact, String>,
    /// What creating the contact records, decided ahead (on the reader's thread, with the
    /// same `handle`) for the usual case that the email is new; `None` if creating fails.
    pub creation: Option<Creation>,
}

/// A contact's creation made ready off the write transaction's path: its id, the event as
/// decided, and the same event sealed under a fresh key for the new stream.
#[derive(Debug)]
pub struct Creation {
    pub id: Uuid,
    /// The event's JSON text in clear (folded into the batch's state if another row of the
    /// batch names the same contact).
    pub plain: String,
    /// What is appended: the text with its personal fields sealed.
    pub sealed: Decided,
    pub key: FreshKey,
}

/// What the batch appends for one event: its type and JSON text.
#[derive(Debug, Clone)]
pub struct Decided {
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
}

impl Decided {
    fn of(event: &ContactEvent) -> Result<Self, StoreError> {
        let payload =
            serde_json::to_string(event).map_err(|x| StoreError::Malformed(x.to_string()))?;
        Ok(Self {
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload,
        })
    }
}

/// The creation of `new` as a new contact of `tenant`, as `decide` would make it, sealed.
pub fn creation(tenant: Uuid, plan: &Plan, new: &NewContact) -> Option<Creation> {
    let mut state = Contact::default();
    let mut new = new.clone();
    if !plan.schema.check_new(&mut new.fields).is_empty() {
        return None;
    }
    let events = futures::executor::block_on(run(&mut state, ContactCommand::Create(new))).ok()?;
    let plain = Decided::of(events.first()?).ok()?;
    let id = Uuid::now_v7();
    let stream = stream_id(tenant, id);
    let key = FreshKey::generate(&stream).ok()?;
    let sealed = key
        .seal(Contact::TYPE, &stream, &plain.event_type, &plain.payload)
        .ok()?;
    Some(Creation {
        id,
        sealed: Decided {
            event_type: plain.event_type,
            event_version: plain.event_version,
            payload: sealed,
        },
        plain: plain.payload,
        key,
    })
}

/// Whether a row of `rows` has a creation sealed for `id`.
fn batch_creates(rows: &[Parsed], id: Uuid) -> bool {
    rows.iter()
        .any(|r| r.creation.as_ref().is_some_and(|c| c.id == id))
}

/// Records read together, and where the next one starts (byte offset, line).
#[derive(Debug)]
pub struct Batch {
    pub rows: Vec<Parsed>,
    pub end: (i64, i64),
}

/// Why a batch was not applied.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Another writer got in first (a stream conflict, a deadlock, or a contact whose
    /// creation has claimed its email but not committed its event yet): retry.
    #[error("a concurrent write got in the way")]
    Retry,
    /// The import is no longer where this batch starts: another process applied it.
    #[error("another process is applying this import")]
    Lost,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for BatchError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            // deadlock_detected, serialization_failure
            sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40P01" | "40001")) => {
                Self::Retry
            }
            _ => Self::Store(e.into()),
        }
    }
}

/// A contact the batch works on: its state, how many events its stream has, and whether
/// this batch creates it.
struct Working<'b> {
    id: Uuid,
    state: Contact,
    version: i64,
    ours: bool,
    /// A creation this batch appends but has not folded into `state` yet: most contacts of
    /// an import are named by one row, so their state is only made if another row needs it.
    pending: Option<&'b Creation>,
}

impl Working<'_> {
    fn exists(&self) -> bool {
        self.state.exists || self.pending.is_some()
    }

    /// `state` with the pending creation folded in.
    fn settled(&mut self) -> Result<&mut Contact, String> {
        if let Some(d) = self.pending.take() {
            let event: ContactEvent = serde_json::from_str(&d.plain).map_err(|e| e.to_string())?;
            self.state.apply(event);
        }
        Ok(&mut self.state)
    }
}

/// Applies `batch` (which starts at byte `from`) and returns its counts.
pub async fn apply(
    s: &CommandState,
    job: &Job,
    plan: &Plan,
    from: i64,
    batch: &Batch,
    metadata: &serde_json::Value,
) -> Result<Counts, BatchError> {
    let mut tx = s.pool.begin().await?;
    match apply_in(&mut tx, job, plan, from, batch, metadata).await {
        Ok((counts, appended)) => {
            tx.commit().await?;
            if appended {
                s.notifier.poke();
            }
            Ok(counts)
        }
        Err(e) => {
            // Rolled back now, not when the pool next hands the connection out: its claims
            // and row locks would otherwise hold up the API and the next batch.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// The batch's statements in `tx`: its counts, and whether it appended any event.
async fn apply_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    job: &Job,
    plan: &Plan,
    from: i64,
    batch: &Batch,
    metadata: &serde_json::Value,
) -> Result<(Counts, bool), BatchError> {
    let tenant = job.tenant_id;

    // Claim every email of the batch, each for a new contact id (the one its first creation
    // was sealed for); existing contacts keep theirs.
    let mut candidates: HashMap<String, Uuid> = HashMap::new();
    for row in &batch.rows {
        if let Ok(new) = &row.contact {
            let id = row.creation.as_ref().map(|c| c.id);
            match candidates.entry(new.email.as_str().to_owned()) {
                Entry::Vacant(v) => {
                    v.insert(id.unwrap_or_else(Uuid::now_v7));
                }
                Entry::Occupied(mut o) => {
                    if let Some(id) = id.filter(|_| !batch_creates(&batch.rows, *o.get())) {
                        o.insert(id);
                    }
                }
            }
        }
    }
    let claims: Vec<(String, Holder)> = candidates
        .iter()
        .map(|(email, id)| {
            let holder = Holder {
                tenant_id: tenant,
                owner_id: *id,
            };
            (email_key(tenant, email), holder)
        })
        .collect();
    let holders = reservation::claim_many(tx, Scope::ContactEmail, &claims).await?;

    // Load and fold the contacts that already have an email.
    let mut working: HashMap<String, Working> = HashMap::new();
    let mut existing: HashMap<String, String> = HashMap::new(); // stream id → email
    for (email, candidate) in &candidates {
        let id = holders
            .get(&email_key(tenant, email))
            .map_or(*candidate, |h| h.owner_id);
        let ours = id == *candidate;
        if !ours {
            existing.insert(stream_id(tenant, id), email.clone());
        }
        working.insert(
            email.clone(),
            Working {
                id,
                state: Contact::default(),
                version: 0,
                ours,
                pending: None,
            },
        );
    }
    let streams: Vec<String> = existing.keys().cloned().collect();
    let loaded = reader::load_streams(&mut **tx, Contact::TYPE, &streams).await?;
    let mut payloads: Vec<(String, serde_json::Value)> = loaded
        .iter()
        .map(|e| {
            serde_json::from_str(e.payload.get())
                .map(|v| (e.aggregate_id.clone(), v))
                .map_err(|x| StoreError::Malformed(x.to_string()))
        })
        .collect::<Result<_, _>>()?;
    // Personal values are stored sealed: open them with the contacts' keys (one statement).
    event_store::shred::reveal_values(tx, Contact::TYPE, &mut payloads).await?;
    for (e, (_, payload)) in loaded.iter().zip(payloads) {
        let event: ContactEvent =
            serde_json::from_value(payload).map_err(|x| StoreError::Malformed(x.to_string()))?;
        if let Some(w) = existing
            .get(&e.aggregate_id)
            .and_then(|email| working.get_mut(email))
        {
            w.state.apply(event);
            w.version = e.sequence;
        }
    }
    if working.values().any(|w| !w.ours && !w.state.exists) {
        // Claimed by a create whose event is not committed yet.
        return Err(BatchError::Retry);
    }

    // Values of unique fields, claimed for the contacts the rows name before any is decided.
    let unique = UniqueValues::claim(tx, plan, tenant, &batch.rows, &working).await?;

    // Decide every row, in file order.
    let mut counts = Counts::default();
    let mut errors: Vec<(i64, String)> = Vec::new();
    // The contacts the batch's rows name (created, updated or unchanged).
    let mut imported: BTreeSet<Uuid> = BTreeSet::new();
    let mut events: Vec<(String, i64, Cow<'_, Decided>)> = Vec::new();
    // The keys the creations were sealed under.
    let mut fresh: Vec<(Uuid, &FreshKey)> = Vec::new();
    for row in &batch.rows {
        counts.rows_done += 1;
        let outcome = match (&row.contact, &row.creation) {
            (Err(reason), _) => Err(reason.clone()),
            (Ok(new), creation) => match working.get_mut(new.email.as_str()) {
                None => Err("email: not claimed".to_owned()),
                Some(w) => match unique.refusal(new, w.id) {
                    Some(why) => Err(why),
                    None if !w.exists() && creation.as_ref().is_some_and(|c| c.id == w.id) => {
                        w.pending = creation.as_ref();
                        fresh.extend(creation.as_ref().map(|c| (w.id, &c.key)));
                        let sealed = creation.as_ref().map(|c| Cow::Borrowed(&c.sealed));
                        Ok((Outcome::Created, sealed.into_iter().collect()))
                    }
                    None => match decide(plan, w, new.clone()).await {
                        Ok((kind, events)) => events
                            .iter()
                            .map(|e| Decided::of(e).map(Cow::Owned))
                            .collect::<Result<Vec<_>, _>>()
                            .map(|d| (kind, d))
                            .map_err(|e| e.to_string()),
                        Err(why) => Err(why),
                    },
                },
            },
        };
        match outcome {
            Err(reason) => {
                counts.failed += 1;
                errors.push((row.line, reason));
            }
            Ok((kind, new_events)) => {
                match kind {
                    Outcome::Created => counts.created += 1,
                    Outcome::Updated => counts.updated += 1,
                    Outcome::Unchanged => counts.unchanged += 1,
                }
                if let Ok(new) = &row.contact {
                    if let Some(w) = working.get_mut(new.email.as_str()) {
                        imported.insert(w.id);
                        for event in new_events {
                            w.version += 1;
                            events.push((stream_id(tenant, w.id), w.version, event));
                        }
                    }
                }
            }
        }
    }

    // Emails claimed for contacts no row managed to create are given back.
    let unused: Vec<(String, Holder)> = working
        .iter()
        .filter(|(_, w)| w.ours && !w.exists())
        .map(|(email, w)| {
            let holder = Holder {
                tenant_id: tenant,
                owner_id: w.id,
            };
            (email_key(tenant, email), holder)
        })
        .collect();
    reservation::release_many(tx, Scope::ContactEmail, &unused).await?;
    unique.settle(tx, &mut working).await?;

    let rows: Vec<NewEvent<'_>> = events
        .iter()
        .map(|(stream, seq, a)| NewEvent {
            aggregate_type: Contact::TYPE,
            aggregate_id: stream,
            sequence: *seq,
            event_type: &a.event_type,
            event_version: &a.event_version,
            payload: &a.payload,
            metadata,
        })
        .collect();
    let fresh_streams: Vec<String> = fresh.iter().map(|(id, _)| stream_id(tenant, *id)).collect();
    let fresh: Vec<(&str, &FreshKey)> = fresh_streams
        .iter()
        .map(String::as_str)
        .zip(fresh.iter().map(|(_, k)| *k))
        .collect();
    match FreshKey::store(tx, &fresh).await {
        Ok(()) => {}
        Err(AppendError::Conflict) => return Err(BatchError::Retry),
        Err(AppendError::Store(e)) => return Err(e.into()),
    }
    match append::append(tx, &rows).await {
        Ok(_) => {}
        Err(AppendError::Conflict) => return Err(BatchError::Retry),
        Err(AppendError::Store(e)) => return Err(e.into()),
    }
    let mut appended = !rows.is_empty();
    if let Some(segment) = plan.segment_id {
        appended |= add_to_segment(tx, tenant, segment, &imported, metadata).await?;
    }
    if !store::advance(tx, job, from, batch.end, &counts, &errors).await? {
        return Err(BatchError::Lost);
    }
    Ok((counts, appended))
}

/// Adds the batch's contacts to the import's static segment (those already in it stay).
async fn add_to_segment(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    tenant: Uuid,
    segment: Uuid,
    contacts: &BTreeSet<Uuid>,
    metadata: &serde_json::Value,
) -> Result<bool, BatchError> {
    let metadata: event_store::EventMetadata = serde_json::from_value(metadata.clone())
        .map_err(|e| StoreError::Malformed(e.to_string()))?;
    let decisions: Vec<Decision> = contacts
        .iter()
        .map(|c| Decision {
            contact_id: *c,
            considered: BTreeSet::from([segment]),
            target: BTreeSet::from([segment]),
            reason: MembershipReason::Import,
        })
        .collect();
    match membership::write(tx, tenant, &decisions, &metadata, chrono::Utc::now()).await {
        Ok(w) => Ok(w.cursor.is_some()),
        Err(AppendError::Conflict) => Err(BatchError::Retry),
        Err(AppendError::Store(e)) => Err(e.into()),
    }
}

/// The values of unique custom fields a batch gives its contacts (`<tenant>:<key>:<value>`
/// in scope `contact_field`, as the API reserves them). Every value a row sets is claimed for
/// the row's contact in one statement before deciding; a row whose value another contact
/// holds (or a row before it in the batch claimed for another contact) fails. After deciding,
/// what was claimed or held before and no contact ends up with is given back.
struct UniqueValues<'p> {
    tenant: Uuid,
    /// The fields, when the import sets a unique one (else there is nothing to do).
    schema: Option<&'p FieldSchema>,
    /// value key → the contact holding it.
    holders: HashMap<String, Uuid>,
    /// Per contact, the values it held before the batch and those claimed for it.
    touched: HashMap<Uuid, BTreeSet<String>>,
}

impl<'p> UniqueValues<'p> {
    async fn claim(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        plan: &'p Plan,
        tenant: Uuid,
        rows: &[Parsed],
        working: &HashMap<String, Working<'_>>,
    ) -> Result<Self, BatchError> {
        let mut me = Self {
            tenant,
            schema: None,
            holders: HashMap::new(),
            touched: HashMap::new(),
        };
        let sets_unique = plan
            .columns
            .iter()
            .any(|(_, t)| matches!(t, Target::Field(d) if d.unique));
        if !sets_unique {
            return Ok(me);
        }
        let schema = &plan.schema;
        let mut claims: Vec<(String, Holder)> = Vec::new();
        let mut first: HashMap<String, Uuid> = HashMap::new();
        for row in rows {
            let Ok(new) = &row.contact else { continue };
            let Some(w) = working.get(new.email.as_str()) else {
                continue;
            };
            let held = me.touched.entry(w.id).or_default();
            if w.state.exists {
                held.extend(values_of(schema, tenant, &w.state.fields));
            }
            for (_, value) in claims::unique_values(schema, tenant, fields_of(&new.fields)) {
                if let Entry::Vacant(v) = first.entry(value.clone()) {
                    v.insert(w.id);
                    held.insert(value.clone());
                    let holder = Holder {
                        tenant_id: tenant,
                        owner_id: w.id,
                    };
                    claims.push((value, holder));
                }
            }
        }
        let holders = reservation::claim_many(tx, Scope::ContactField, &claims).await?;
        me.holders = holders.into_iter().map(|(v, h)| (v, h.owner_id)).collect();
        me.schema = Some(&plan.schema);
        Ok(me)
    }

    /// Why `new` cannot be given to `contact`: a value of it another contact holds.
    fn refusal(&self, new: &NewContact, contact: Uuid) -> Option<String> {
        let schema = self.schema?;
        claims::unique_values(schema, self.tenant, fields_of(&new.fields))
            .into_iter()
            .find(|(_, value)| self.holders.get(value).is_some_and(|h| *h != contact))
            .map(|(field, _)| format!("fields.{field}: another contact has this value"))
    }

    /// Gives back what the batch's contacts claimed or held and no longer have.
    async fn settle(
        self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        working: &mut HashMap<String, Working<'_>>,
    ) -> Result<(), BatchError> {
        let Some(schema) = self.schema else {
            return Ok(());
        };
        let mut free: Vec<(String, Holder)> = Vec::new();
        for w in working.values_mut() {
            let Some(touched) = self.touched.get(&w.id) else {
                continue;
            };
            let state = w.settled().map_err(StoreError::Malformed)?;
            let kept: BTreeSet<String> = if state.exists {
                values_of(schema, self.tenant, &state.fields).collect()
            } else {
                BTreeSet::new()
            };
            let holder = Holder {
                tenant_id: self.tenant,
                owner_id: w.id,
            };
            free.extend(touched.difference(&kept).map(|v| (v.clone(), holder)));
        }
        reservation::release_many(tx, Scope::ContactField, &free).await?;
        Ok(())
    }
}

fn fields_of(
    fields: &domain::contact::Fields,
) -> impl Iterator<Item = (&str, &domain::contact::FieldValue)> {
    fields.iter().map(|(k, v)| (k.as_str(), v))
}

/// The reservation keys of the unique values among a contact's fields.
fn values_of<'a>(
    schema: &'a FieldSchema,
    tenant: Uuid,
    fields: &'a std::collections::BTreeMap<String, domain::contact::FieldValue>,
) -> impl Iterator<Item = String> + 'a {
    claims::unique_values(schema, tenant, fields.iter().map(|(k, v)| (k.as_str(), v)))
        .into_iter()
        .map(|(_, value)| value)
}

enum Outcome {
    Created,
    Updated,
    Unchanged,
}

/// One row against its contact's current state, through the aggregate's own `handle`:
/// create it, or update it with only what differs and add the tags.
async fn decide(
    plan: &Plan,
    w: &mut Working<'_>,
    mut new: NewContact,
) -> Result<(Outcome, Vec<ContactEvent>), String> {
    let reason = |problems: Vec<(String, String)>| {
        problems
            .into_iter()
            .map(|(f, r)| format!("{f}: {r}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let state = w.settled()?;
    if !state.exists {
        let problems = plan.schema.check_new(&mut new.fields);
        if !problems.is_empty() {
            return Err(reason(problems));
        }
        let events = run(state, ContactCommand::Create(new)).await?;
        return Ok((Outcome::Created, events));
    }
    if !plan.update_existing {
        return Ok((Outcome::Unchanged, Vec::new()));
    }
    let mut patch = upsert_patch(&new);
    let problems = plan.schema.check_patch(&mut patch.fields);
    if !problems.is_empty() {
        return Err(reason(problems));
    }
    let before = state.clone();
    let mut events = run(state, ContactCommand::Update(patch)).await?;
    if !new.tags.is_empty() {
        match run(state, ContactCommand::AddTags(new.tags)).await {
            Ok(more) => events.extend(more),
            Err(why) => {
                *state = before;
                return Err(why);
            }
        }
    }
    let kind = if events.is_empty() {
        Outcome::Unchanged
    } else {
        Outcome::Updated
    };
    Ok((kind, events))
}

/// The events `command` causes on `state` (applied to it), or the rejection as a reason.
async fn run(state: &mut Contact, command: ContactCommand) -> Result<Vec<ContactEvent>, String> {
    let sink = EventSink::default();
    state
        .handle(command, &(), &sink)
        .await
        .map_err(|e| match e.problem() {
            p if !p.errors.is_empty() => p
                .errors
                .iter()
                .map(|f| format!("{}: {}", f.field, f.reason))
                .collect::<Vec<_>>()
                .join("; "),
            p => p.detail.unwrap_or(p.title),
        })?;
    Ok(sink.collect().await)
}
