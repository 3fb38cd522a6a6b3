//! Wake-ups for tails of the log: one LISTEN connection per process, fanned out by a watch
//! channel. Tails also poll, so a lost notification only delays them.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The channel the `events_appended` trigger notifies.
pub const CHANNEL: &str = "mauntic_events";

/// What the notifications named so far: how many named each aggregate type, and how many
/// named none (sent by a writer that did not say what it appended: relevant to everyone).
#[derive(Default)]
struct Named {
    anything: u64,
    by_type: HashMap<String, u64>,
}

impl Named {
    /// A number that changes whenever a notification relevant to `types` arrives.
    fn stamp(&self, types: Option<&[String]>) -> u64 {
        match types {
            None => 0,
            Some(types) => types.iter().fold(self.anything, |n, t| {
                n.wrapping_add(self.by_type.get(t).copied().unwrap_or(0))
            }),
        }
    }

    fn note(&mut self, payload: &str) {
        if payload.is_empty() {
            self.anything += 1;
            return;
        }
        for t in payload.split(',') {
            *self.by_type.entry(t.to_owned()).or_default() += 1;
        }
    }
}

/// A handle that resolves when new events may have been appended: one LISTEN connection per
/// process, shared by cloning. [`Wakeup::only`] narrows a handle to appends of some
/// aggregate types (a worker that waits for delivery jobs is not woken by every contact).
#[derive(Clone)]
pub struct Wakeup {
    rx: watch::Receiver<u64>,
    named: Arc<Mutex<Named>>,
    /// Only notifications naming one of these (or naming nothing) wake this handle.
    types: Option<Arc<[String]>>,
    /// The stamp of `types` when this handle last woke.
    seen: u64,
    /// Keeps a polling-only channel open (a closed channel would never wait).
    _keep: Option<std::sync::Arc<watch::Sender<u64>>>,
}

impl Wakeup {
    /// Starts listening on `pool`'s database until `cancel`.
    pub fn listen(pool: PgPool, cancel: CancellationToken) -> Self {
        let (tx, rx) = watch::channel(0u64);
        let named = Arc::new(Mutex::new(Named::default()));
        let n_ = named.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            let note = |payload: &str| {
                if let Ok(mut named) = n_.lock() {
                    named.note(payload);
                }
            };
            while !cancel.is_cancelled() {
                match PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(CHANNEL).await {
                            tracing::warn!(error = %e, "LISTEN failed; polling only");
                        } else {
                            loop {
                                tokio::select! {
                                    _ = cancel.cancelled() => return,
                                    r = listener.recv() => match r {
                                        Ok(m) => { note(m.payload()); n += 1; tx.send_replace(n); }
                                        Err(e) => { tracing::warn!(error = %e, "LISTEN connection lost"); break; }
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot open LISTEN connection"),
                }
                // Wake everyone once: they may have missed notifications meanwhile.
                note("");
                n += 1;
                tx.send_replace(n);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        Self {
            rx,
            named,
            types: None,
            seen: 0,
            _keep: None,
        }
    }

    /// A handle that only ever wakes by timeout (pure polling).
    pub fn polling() -> Self {
        let (tx, rx) = watch::channel(0u64);
        Self {
            rx,
            named: Arc::default(),
            types: None,
            seen: 0,
            _keep: Some(std::sync::Arc::new(tx)),
        }
    }

    /// This wake-up narrowed to appends of `types` (and to notifications that name nothing).
    pub fn only(&self, types: &[&str]) -> Self {
        let types: Arc<[String]> = types.iter().map(|t| (*t).to_owned()).collect();
        let seen = self.stamp(Some(&types));
        Self {
            types: Some(types),
            seen,
            ..self.clone()
        }
    }

    fn stamp(&self, types: Option<&[String]>) -> u64 {
        self.named.lock().map(|n| n.stamp(types)).unwrap_or(0)
    }

    /// Waits for a notification or `timeout`, whichever comes first; true if notified.
    pub async fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return false,
            }
            if self.types.is_none() {
                return true;
            }
            let stamp = self.stamp(self.types.as_deref());
            if stamp != self.seen {
                self.seen = stamp;
                return true;
            }
        }
    }
}

/// How long a tail of the log waits before reading again.
///
/// Idle, it waits for a notification up to the poll interval. But a notification can arrive
/// while the appended events are still behind the readers' horizon (another transaction in
/// the cluster is open): then no further notification will come, so after a wake-up that
/// found nothing it retries soon, backing off (10 ms, 20 ms, …) to the poll interval.
#[derive(Debug, Clone)]
pub struct Pacer {
    poll: Duration,
    retry: Option<Duration>,
}

impl Pacer {
    pub fn new(poll: Duration) -> Self {
        Self { poll, retry: None }
    }

    /// Waits before the next read.
    pub async fn wait(&mut self, wake: &mut Wakeup) -> bool {
        let woken = wake.wait(self.retry.unwrap_or(self.poll)).await;
        // Let a burst gather so it becomes one batch.
        tokio::time::sleep(crate::relay::LINGER).await;
        woken
    }

    /// Records what the read after a wait found.
    pub fn found(&mut self, woken: bool, anything: bool) {
        self.retry = if anything {
            None
        } else if woken || self.retry.is_some() {
            Some((self.retry.unwrap_or(Duration::from_millis(5)) * 2).min(self.poll))
        } else {
            None
        };
    }
}

/// Wakes tails of the log in every process after an append: `NOTIFY`, sent outside the
/// writing transaction (a NOTIFY inside it would serialize all committing writers on
/// Postgres's notify lock) and coalesced, so a burst of appends costs one notification. The
/// notification names the aggregate types appended since the last one (its payload,
/// comma-separated), or nothing when a writer did not say.
#[derive(Clone)]
pub struct Notifier {
    pending: Arc<tokio::sync::Notify>,
    types: Arc<Mutex<Pending>>,
}

#[derive(Default)]
struct Pending {
    /// A writer did not say what it appended.
    anything: bool,
    types: BTreeSet<&'static str>,
}

impl Notifier {
    /// Starts the notifying task on `pool`; it ends with the pool.
    pub fn start(pool: PgPool) -> Self {
        let pending = Arc::new(tokio::sync::Notify::new());
        let types: Arc<Mutex<Pending>> = Arc::default();
        let (p, t) = (pending.clone(), types.clone());
        tokio::spawn(async move {
            loop {
                p.notified().await;
                if pool.is_closed() {
                    return;
                }
                let payload = match t.lock() {
                    Ok(mut t) => {
                        let named = std::mem::take(&mut *t);
                        if named.anything {
                            String::new()
                        } else {
                            named.types.into_iter().collect::<Vec<_>>().join(",")
                        }
                    }
                    Err(_) => String::new(),
                };
                if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(payload)
                    .execute(&pool)
                    .await
                {
                    tracing::debug!(error = %e, "NOTIFY failed; tails fall back to polling");
                }
                // At most one NOTIFY per interval: under load, one wakes readers for many appends.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Self { pending, types }
    }

    /// Asks for a notification soon (many pokes before it is sent make one), naming nothing.
    pub fn poke(&self) {
        if let Ok(mut t) = self.types.lock() {
            t.anything = true;
        }
        self.pending.notify_one();
    }

    /// Asks for a notification soon that names `aggregate_type` among what was appended.
    pub fn poke_type(&self, aggregate_type: &'static str) {
        if let Ok(mut t) = self.types.lock() {
            t.types.insert(aggregate_type);
        }
        self.pending.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_up_that_finds_nothing_is_followed_by_quick_retries_backing_off_to_the_poll() {
        let poll = Duration::from_millis(100);
        let mut p = Pacer::new(poll);
        p.found(true, false);
        assert_eq!(p.retry, Some(Duration::from_millis(10)));
        p.found(false, false);
        assert_eq!(p.retry, Some(Duration::from_millis(20)));
        for _ in 0..10 {
            p.found(false, false);
        }
        assert_eq!(p.retry, Some(poll));
        p.found(false, true);
        assert_eq!(
            p.retry, None,
            "found something: back to waiting for notifications"
        );
        p.found(false, false);
        assert_eq!(p.retry, None, "an idle poll that finds nothing stays idle");
    }
}
