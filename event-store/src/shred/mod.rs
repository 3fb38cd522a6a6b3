//! Crypto-shredding (DESIGN.md §3, ADR 0003): personal values in events are stored encrypted
//! with a per-contact key kept outside the log; erasing a contact deletes the key.
//!
//! - [`policy`]: which fields of which event types are personal, and what they read as
//!   once erased.
//! - [`cipher`]: AES-256-GCM keys (wrapped by the master key) and ciphertext envelopes.
//! - [`keys`]: the `contact_keys` table, a batch of streams per statement.
//! - [`keyring`]: the current and previous master keys by id, for values sealed directly
//!   under the master key (provider credentials) and re-sealed by a rotation.
//! - [`derived`]: the `derived_keys` table, keys of keyed digests (suppression entry ids)
//!   sealed under the master key, so rotating it does not move the digests.
//!
//! [`seal`] runs in the one write path ([`crate::append`]); [`reveal`] and
//! [`reveal_payloads`] wherever events are interpreted (aggregate loads, projections,
//! rebuilds, time travel). The relay publishes stored payloads as they are, so JetStream
//! only ever holds ciphertext for personal fields. A value stored in clear (events written
//! before encryption) passes through untouched.

pub mod cipher;
pub mod derived;
pub mod keyring;
pub mod keys;
pub mod policy;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sqlx::PgConnection;

use crate::append::{AppendError, NewEvent};
use crate::{RecordedEvent, StoreError};
use cipher::DataKey;
use keys::WriteKey;

pub use cipher::configure;

tokio::task_local! {
    /// Keys this command already read (loading its aggregate) or made: its append needs no
    /// second key statement for them. Safe because an erasure always appends to the stream,
    /// so an append sealed with a key shredded meanwhile conflicts and is never stored.
    static SEEN: RefCell<HashMap<String, DataKey>>;
}

/// Runs `f` (one command) with a key memo: the keys its load reads are reused by its append.
pub async fn with_key_memo<F: std::future::Future>(f: F) -> F::Output {
    SEEN.scope(RefCell::new(HashMap::new()), f).await
}

fn seen(stream: &str) -> Option<DataKey> {
    SEEN.try_with(|m| m.borrow().get(stream).cloned())
        .ok()
        .flatten()
}

fn remember<'k>(keys: impl Iterator<Item = (&'k String, &'k DataKey)>) {
    let _ = SEEN.try_with(|m| {
        let mut m = m.borrow_mut();
        for (s, k) in keys {
            m.insert(s.clone(), k.clone());
        }
    });
}

fn aad(aggregate_id: &str, event_type: &str, field: &str) -> String {
    format!("{aggregate_id}/{event_type}/{field}")
}

fn inner_mut<'v>(
    payload: &'v mut Value,
    event_type: &str,
) -> Result<&'v mut Map<String, Value>, StoreError> {
    payload
        .get_mut(event_type)
        .and_then(Value::as_object_mut)
        .ok_or_else(|| {
            StoreError::Malformed(format!("{event_type}: not {{\"{event_type}\": {{…}}}}"))
        })
}

fn inner<'v>(payload: &'v Value, event_type: &str) -> Option<&'v Map<String, Value>> {
    payload.get(event_type).and_then(Value::as_object)
}

/// The payloads of `rows` with their personal fields sealed, where that changes anything
/// (`None`: store the payload as given). Keys of all streams of the batch are fetched, or
/// created, in one statement. A stream whose contact was erased answers `Conflict`: its
/// erasure is in the log, so reloading the aggregate refuses the command.
///
/// Payloads stay text: each is split into its fields' raw JSON (no value tree is built), the
/// personal ones are sealed as written, and the fields are joined again.
pub async fn seal(
    conn: &mut PgConnection,
    rows: &[NewEvent<'_>],
) -> Result<Vec<Option<String>>, AppendError> {
    let mut todo = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        if !policy::covers(r.aggregate_type) {
            continue;
        }
        let Some(p) = policy::of(r.aggregate_type, r.event_type) else {
            return Err(StoreError::Malformed(format!(
                "{}.{} has no personal-data policy (event-store/src/shred/policy.rs)",
                r.aggregate_type, r.event_type
            ))
            .into());
        };
        let fields = raw_fields(r.payload, r.event_type)?;
        let personal = p.personal.iter().any(|f| {
            fields
                .get(f.field)
                .is_some_and(|v| v.get() != "null" && !cipher::is_envelope_text(v))
        });
        if personal {
            todo.push((i, p, fields));
        }
    }
    let mut out = vec![None; rows.len()];
    if todo.is_empty() {
        return Ok(out);
    }
    let streams: BTreeSet<&str> = todo.iter().map(|(i, _, _)| rows[*i].aggregate_id).collect();
    let mut keys: HashMap<String, WriteKey> = HashMap::with_capacity(streams.len());
    let mut unknown = Vec::with_capacity(streams.len());
    for s in streams {
        match seen(s) {
            Some(k) => {
                keys.insert(s.to_owned(), WriteKey::Key(k));
            }
            None => unknown.push(s),
        }
    }
    if !unknown.is_empty() {
        let fetched = keys::for_write(conn, &unknown).await?;
        remember(fetched.iter().filter_map(|(s, k)| match k {
            WriteKey::Key(k) => Some((s, k)),
            WriteKey::Erased => None,
        }));
        keys.extend(fetched);
    }
    for (i, p, fields) in todo {
        let r = &rows[i];
        let key = match keys.get(r.aggregate_id) {
            Some(WriteKey::Key(k)) => k,
            Some(WriteKey::Erased) => return Err(AppendError::Conflict),
            None => return Err(StoreError::Crypto(format!("no key for {}", r.aggregate_id)).into()),
        };
        out[i] = Some(sealed_text_of(
            key,
            p,
            r.aggregate_id,
            r.event_type,
            &fields,
        )?);
    }
    Ok(out)
}

/// `{"<event_type>":{"<field>":<value or envelope>,…}}`: the fields joined again (keys escaped
/// as JSON strings), each personal value not sealed yet sealed under `key`.
fn sealed_text_of(
    key: &DataKey,
    p: &policy::EventPolicy,
    aggregate_id: &str,
    event_type: &str,
    fields: &BTreeMap<String, &RawValue>,
) -> Result<String, StoreError> {
    let quoted =
        |k: &str| serde_json::to_string(k).map_err(|e| StoreError::Malformed(e.to_string()));
    let size: usize = fields
        .iter()
        .map(|(k, v)| k.len() + v.get().len() + 4)
        .sum();
    let mut text = String::with_capacity(size * 2 + event_type.len() + 8);
    text.push('{');
    text.push_str(&quoted(event_type)?);
    text.push_str(":{");
    for (n, (name, v)) in fields.iter().enumerate() {
        if n > 0 {
            text.push(',');
        }
        text.push_str(&quoted(name)?);
        text.push(':');
        let personal = p.personal.iter().any(|f| f.field == name);
        if personal && v.get() != "null" && !cipher::is_envelope_text(v) {
            key.seal_raw(v, &aad(aggregate_id, event_type, name), &mut text)?;
        } else {
            text.push_str(v.get());
        }
    }
    text.push_str("}}");
    Ok(text)
}

/// A key made for a stream that has none yet (a contact being created), so a bulk writer can
/// seal its first events off the write transaction's path (imports seal on the thread that
/// reads the file). [`FreshKey::store`] puts it beside the log in the transaction that
/// appends those events; `append` then finds their personal values sealed already.
pub struct FreshKey {
    key: DataKey,
    wrapped: Vec<u8>,
}

impl std::fmt::Debug for FreshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FreshKey(…)")
    }
}

impl FreshKey {
    pub fn generate(stream_id: &str) -> Result<Self, StoreError> {
        let (key, wrapped) = DataKey::generate(stream_id)?;
        Ok(Self { key, wrapped })
    }

    /// The key wrapped by the master key, as `contact_keys` stores it
    /// ([`crate::append::Beside::keys`]).
    pub fn wrapped(&self) -> &[u8] {
        &self.wrapped
    }

    /// `payload` (`{"<event_type>": {…}}` text of an event of `stream_id`) with its personal
    /// fields sealed under this key.
    pub fn seal(
        &self,
        aggregate_type: &str,
        stream_id: &str,
        event_type: &str,
        payload: &str,
    ) -> Result<String, StoreError> {
        if !policy::covers(aggregate_type) {
            return Ok(payload.to_owned());
        }
        let p = policy::of(aggregate_type, event_type).ok_or_else(|| {
            StoreError::Malformed(format!(
                "{aggregate_type}.{event_type} has no personal-data policy"
            ))
        })?;
        let fields = raw_fields(payload, event_type)?;
        sealed_text_of(&self.key, p, stream_id, event_type, &fields)
    }

    /// Stores the keys of `fresh` (stream id, key) in one statement. A stream that has a key
    /// (or a tombstone) already answers `Conflict`: its events were sealed under another.
    pub async fn store(
        conn: &mut PgConnection,
        fresh: &[(&str, &FreshKey)],
    ) -> Result<(), AppendError> {
        let streams: Vec<&str> = fresh.iter().map(|(s, _)| *s).collect();
        let wrapped: Vec<&[u8]> = fresh.iter().map(|(_, k)| k.wrapped.as_slice()).collect();
        keys::insert(conn, &streams, &wrapped)
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => {
                    AppendError::Conflict
                }
                e => AppendError::Store(e.into()),
            })?;
        Ok(())
    }
}

/// The fields of payload text `{"<event_type>": {…}}`, each as its raw JSON.
fn raw_fields<'p>(
    payload: &'p str,
    event_type: &str,
) -> Result<BTreeMap<String, &'p RawValue>, StoreError> {
    let malformed =
        || StoreError::Malformed(format!("{event_type}: not {{\"{event_type}\": {{…}}}}"));
    let mut outer: BTreeMap<String, BTreeMap<String, &RawValue>> =
        serde_json::from_str(payload).map_err(|_| malformed())?;
    outer.remove(event_type).ok_or_else(malformed)
}

/// Whether a stored payload holds any envelope (a cheap test on the raw text).
fn sealed_text(aggregate_type: &str, payload: &str) -> bool {
    policy::covers(aggregate_type) && payload.contains("\"$enc\"")
}

/// Opens the envelopes of one payload with `keys`; a field whose key is gone reads as its
/// erased value.
fn open(
    keys: &HashMap<String, DataKey>,
    aggregate_type: &str,
    aggregate_id: &str,
    event_type: &str,
    payload: &mut Value,
) -> Result<(), StoreError> {
    let p = policy::of(aggregate_type, event_type);
    let key = keys.get(aggregate_id);
    let fields = inner_mut(payload, event_type)?;
    for (name, v) in fields.iter_mut() {
        let Some(b64) = cipher::envelope(v) else {
            continue;
        };
        *v = match key {
            Some(k) => k.open(b64, &aad(aggregate_id, event_type, name))?,
            None => p
                .and_then(|p| p.personal.iter().find(|f| f.field == name))
                .and_then(|f| serde_json::from_str(f.erased).ok())
                .unwrap_or(Value::Null),
        };
    }
    Ok(())
}

/// `events` with the personal fields of those `wanted` in clear (or erased), with one key
/// query for the batch; `None` when no such event is sealed (use `events` as they are).
pub async fn reveal(
    conn: &mut PgConnection,
    events: &[RecordedEvent],
    wanted: impl Fn(&RecordedEvent) -> bool,
) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
    let todo = |e: &RecordedEvent| wanted(e) && sealed_text(&e.aggregate_type, e.payload.get());
    let sealed: BTreeSet<&str> = events
        .iter()
        .filter(|e| todo(e))
        .map(|e| e.aggregate_id.as_str())
        .collect();
    if sealed.is_empty() {
        return Ok(None);
    }
    let streams: Vec<&str> = sealed.into_iter().collect();
    let keys = keys::for_read(conn, &streams).await?;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        if !todo(e) {
            out.push(e.clone());
            continue;
        }
        let mut payload: Value = serde_json::from_str(e.payload.get())
            .map_err(|x| StoreError::Malformed(x.to_string()))?;
        open(
            &keys,
            &e.aggregate_type,
            &e.aggregate_id,
            &e.event_type,
            &mut payload,
        )?;
        let raw = RawValue::from_string(payload.to_string())
            .map_err(|x| StoreError::Malformed(x.to_string()))?;
        out.push(RecordedEvent {
            payload: raw,
            ..e.clone()
        });
    }
    Ok(Some(out))
}

/// Whether a decoded payload holds any envelope.
pub fn is_sealed(event_type: &str, payload: &Value) -> bool {
    inner(payload, event_type).is_some_and(|f| f.values().any(|v| cipher::envelope(v).is_some()))
}

/// One stream's payloads (`(event_type, payload)`, as cqrs-es loads them) revealed in place.
pub async fn reveal_payloads<'a>(
    conn: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
    payloads: impl Iterator<Item = (&'a str, &'a mut Value)>,
) -> Result<(), StoreError> {
    if !policy::covers(aggregate_type) {
        return Ok(());
    }
    let mut keys: Option<HashMap<String, DataKey>> = None;
    for (event_type, payload) in payloads {
        if !is_sealed(event_type, payload) {
            continue;
        }
        if keys.is_none() {
            let k = keys::for_read(conn, &[aggregate_id]).await?;
            remember(k.iter());
            keys = Some(k);
        }
        if let Some(k) = &keys {
            open(k, aggregate_type, aggregate_id, event_type, payload)?;
        }
    }
    Ok(())
}

/// One stream's payloads (`(event_type, payload)`) revealed in place with its key row as
/// read beside them (`None`: no row; `Some(None)`: erased). The key is kept for the
/// command's append.
pub(crate) fn reveal_with_key(
    aggregate_type: &str,
    stream: &str,
    key: Option<Option<Vec<u8>>>,
    payloads: &mut [(String, Value)],
) -> Result<(), StoreError> {
    if !policy::covers(aggregate_type) {
        return Ok(());
    }
    let mut keys = HashMap::with_capacity(1);
    if let Some(Some(wrapped)) = key {
        keys.insert(stream.to_owned(), DataKey::unwrap(stream, &wrapped)?);
        remember(keys.iter());
    }
    for (event_type, payload) in payloads.iter_mut() {
        if is_sealed(event_type, payload) {
            open(&keys, aggregate_type, stream, event_type, payload)?;
        }
    }
    Ok(())
}

/// Payloads of bulk loads (`reader::load_streams`: `(stream, {"<EventType>": {…}})`) revealed
/// in place, with the keys of all their streams read in one statement.
pub async fn reveal_values(
    conn: &mut PgConnection,
    aggregate_type: &str,
    events: &mut [(String, Value)],
) -> Result<(), StoreError> {
    if !policy::covers(aggregate_type) {
        return Ok(());
    }
    let event_type = |v: &Value| v.as_object().and_then(|m| m.keys().next().cloned());
    let streams: BTreeSet<&str> = events
        .iter()
        .filter(|(_, v)| event_type(v).is_some_and(|t| is_sealed(&t, v)))
        .map(|(s, _)| s.as_str())
        .collect();
    if streams.is_empty() {
        return Ok(());
    }
    let streams: Vec<&str> = streams.into_iter().collect();
    let keys = keys::for_read(conn, &streams).await?;
    for (stream, payload) in events.iter_mut() {
        if let Some(t) = event_type(payload) {
            if is_sealed(&t, payload) {
                open(&keys, aggregate_type, stream, &t, payload)?;
            }
        }
    }
    Ok(())
}

/// Deletes the keys of `streams` (tombstones stay): their personal values read as erased
/// from now on, in every replay. Run it in the transaction that appends the erasure.
pub async fn erase(conn: &mut PgConnection, streams: &[String]) -> Result<(), StoreError> {
    keys::shred(conn, streams).await.map(|_| ())
}
