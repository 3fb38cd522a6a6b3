//! HTTP load: the contact commands, a closed loop of clients, and an open loop at a fixed
//! rate that measures latency from each request's scheduled time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use event_store::Cursor;
use tokio::sync::{mpsc, Semaphore};
use uuid::Uuid;

use super::common::{figure, figure_f, per_second, Latencies};

/// One contact command.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    Create,
    Update(Uuid),
    AddTag(Uuid),
}

impl Op {
    /// Index into per-command figures.
    fn kind(self) -> usize {
        match self {
            Op::Create => 0,
            Op::Update(_) => 1,
            Op::AddTag(_) => 2,
        }
    }
}

const KINDS: [&str; 3] = ["create", "update", "add_tag"];

/// A command's answer.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct Accepted {
    pub id: Uuid,
    pub cursor: Cursor,
}

/// What came back.
pub enum Reply {
    Accepted(Accepted),
    /// A non-2xx status, with the start of its body.
    Status(u16, String),
    /// No answer (connection, timeout, unreadable body).
    Transport(String),
}

/// The command API of one tenant.
pub struct Api {
    client: reqwest::Client,
    base_url: String,
    api_key: String,
}

impl Api {
    /// One client (a keep-alive connection pool) for every request of the run.
    pub fn new(base_url: &str, api_key: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            client,
            base_url: base_url.to_owned(),
            api_key: api_key.to_owned(),
        })
    }

    /// The request for `op`; `n` makes emails and values unique.
    fn request(&self, op: Op, n: &str) -> reqwest::RequestBuilder {
        let b = &self.base_url;
        let rb =
            match op {
                Op::Create => {
                    self.client
                        .post(format!("{b}/api/v1/contacts"))
                        .json(&serde_json::json!({
                            "email": format!("c{n}@bench.example.org"),
                            "first_name": "Bench",
                            "last_name": format!("Contact {n}"),
                            "fields": {"plan": "pro", "source": "bench"},
                            "tags": ["bench"],
                        }))
                }
                Op::Update(id) => self.client.patch(format!("{b}/api/v1/contacts/{id}")).json(
                    &serde_json::json!({
                        "first_name": format!("Renamed {n}"),
                        "fields": {"last_seen": n},
                    }),
                ),
                Op::AddTag(id) => self
                    .client
                    .post(format!("{b}/api/v1/contacts/{id}/tags"))
                    .json(&serde_json::json!({ "tags": [format!("t{n}")] })),
            };
        rb.bearer_auth(&self.api_key)
    }

    async fn send(rb: reqwest::RequestBuilder) -> Reply {
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return Reply::Transport(e.to_string()),
        };
        let status = resp.status();
        if status.is_success() {
            match resp.json::<Accepted>().await {
                Ok(a) => Reply::Accepted(a),
                Err(e) => Reply::Transport(format!("reading a {status} answer: {e}")),
            }
        } else {
            let body = resp.text().await.unwrap_or_default();
            Reply::Status(status.as_u16(), body.chars().take(300).collect())
        }
    }
}

/// A small deterministic generator (xorshift64*), so the mix needs no extra dependency.
pub struct Mix(u64);

impl Mix {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// 50% create, 30% update, 20% add-tag on one of `contacts` (create while there is none).
    pub fn op(&mut self, contacts: &[Uuid]) -> Op {
        let roll = self.next() % 10;
        if roll < 5 || contacts.is_empty() {
            return Op::Create;
        }
        let id = contacts[(self.next() % contacts.len() as u64) as usize];
        if roll < 8 {
            Op::Update(id)
        } else {
            Op::AddTag(id)
        }
    }
}

/// Answers and failures of a run.
#[derive(Default)]
pub struct Outcomes {
    pub ok: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub transport: u64,
    pub first_error: Option<String>,
}

impl Outcomes {
    fn count(&mut self, reply: &Reply) {
        match reply {
            Reply::Accepted(_) => self.ok += 1,
            Reply::Status(s, body) => {
                *self.statuses.entry(*s).or_default() += 1;
                self.first_error
                    .get_or_insert_with(|| format!("HTTP {s}: {body}"));
            }
            Reply::Transport(e) => {
                self.transport += 1;
                self.first_error.get_or_insert_with(|| e.clone());
            }
        }
    }

    fn merge(&mut self, o: Outcomes) {
        self.ok += o.ok;
        for (s, n) in o.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.transport += o.transport;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }

    pub fn errors(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.transport
    }

    pub fn print(&self, prefix: &str) {
        figure(&format!("{prefix}.ok"), self.ok, "count");
        figure(&format!("{prefix}.errors"), self.errors(), "count");
        for (s, n) in &self.statuses {
            figure(&format!("{prefix}.errors_http_{s}"), n, "count");
        }
        if self.transport > 0 {
            figure(
                &format!("{prefix}.errors_transport"),
                self.transport,
                "count",
            );
        }
        if let Some(e) = &self.first_error {
            eprintln!("bench {prefix}: first error: {e}");
        }
    }
}

/// Latencies overall and per command kind, and outcomes.
pub struct Measured {
    pub all: Latencies,
    pub by_kind: [Latencies; 3],
    pub outcomes: Outcomes,
}

impl Measured {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            all: Latencies::new()?,
            by_kind: [Latencies::new()?, Latencies::new()?, Latencies::new()?],
            outcomes: Outcomes::default(),
        })
    }

    fn record(&mut self, op: Op, latency: Duration, reply: &Reply) {
        // Latency of every answered request; requests that got no answer only count as errors.
        if !matches!(reply, Reply::Transport(_)) {
            self.all.record(latency);
            self.by_kind[op.kind()].record(latency);
        }
        self.outcomes.count(reply);
    }

    fn merge(&mut self, o: Measured) -> anyhow::Result<()> {
        self.all.add(&o.all)?;
        for (a, b) in self.by_kind.iter_mut().zip(o.by_kind.iter()) {
            a.add(b)?;
        }
        self.outcomes.merge(o.outcomes);
        Ok(())
    }

    pub fn print_latencies(&self, prefix: &str) {
        self.all.print(&format!("{prefix}.latency"), &[50, 95, 99]);
        for (name, l) in KINDS.iter().zip(self.by_kind.iter()) {
            figure(&format!("{prefix}.{name}_commands"), l.len(), "count");
            l.print(&format!("{prefix}.{name}_latency"), &[50, 99]);
        }
    }
}

/// What a closed loop measured.
pub struct ClosedReport {
    pub measured: Measured,
    pub elapsed: Duration,
    /// Contacts the clients created (for later updates).
    pub contacts: Vec<Uuid>,
}

/// `clients` clients, each sending its next command when the previous one answered, for
/// `warmup` (unmeasured) then `measure`.
pub async fn closed_loop(
    api: Arc<Api>,
    clients: usize,
    warmup: Duration,
    measure: Duration,
) -> anyhow::Result<ClosedReport> {
    let start = Instant::now();
    let measure_from = start + warmup;
    let deadline = measure_from + measure;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let api = api.clone();
        tasks.spawn(async move {
            let mut m = Measured::new()?;
            let mut mine: Vec<Uuid> = Vec::new();
            let mut mix = Mix::new(c as u64 + 1);
            let mut i = 0u64;
            loop {
                let began = Instant::now();
                if began >= deadline {
                    break;
                }
                let op = mix.op(&mine);
                let reply = Api::send(api.request(op, &format!("{c}-{i}"))).await;
                let took = began.elapsed();
                if let (Op::Create, Reply::Accepted(a)) = (op, &reply) {
                    mine.push(a.id);
                }
                if began >= measure_from {
                    m.record(op, took, &reply);
                }
                i += 1;
            }
            anyhow::Ok((m, mine))
        });
    }
    let mut measured = Measured::new()?;
    let mut contacts = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (m, mine) = joined.context("a client task panicked")??;
        measured.merge(m)?;
        contacts.extend(mine);
    }
    Ok(ClosedReport {
        measured,
        elapsed: Instant::now().saturating_duration_since(measure_from),
        contacts,
    })
}

/// An accepted command, for the lag watcher.
#[derive(Debug, Clone, Copy)]
pub struct Answered {
    pub cursor: Cursor,
    /// When the answer arrived: the commit happened before this.
    pub at: Instant,
    /// Whether the request was scheduled in the measured phase.
    pub measured: bool,
}

/// The shape of an open loop.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub rate: u64,
    pub warmup: Duration,
    pub measure: Duration,
    pub max_in_flight: usize,
}

/// What an open loop measured.
pub struct OpenReport {
    /// Latency from each request's scheduled time to its answer.
    pub measured: Measured,
    /// Latency from the moment each request was actually sent (hides queueing).
    pub service: Latencies,
    pub scheduled: u64,
    /// Measured requests not sent because the loop fell too far behind.
    pub not_sent: u64,
    /// From the first measured scheduled time to the last measured answer.
    pub elapsed: Duration,
}

impl OpenReport {
    pub fn print(&self, prefix: &str, rate: u64) {
        let done = self.measured.outcomes.ok + self.measured.outcomes.errors();
        figure(&format!("{prefix}.target_rate"), rate, "requests/s");
        figure(&format!("{prefix}.scheduled"), self.scheduled, "count");
        figure_f(
            &format!("{prefix}.achieved_rate"),
            per_second(self.measured.outcomes.ok, self.elapsed),
            "commands/s",
        );
        figure_f(
            &format!("{prefix}.answered_rate"),
            per_second(done, self.elapsed),
            "requests/s",
        );
        figure(&format!("{prefix}.not_sent"), self.not_sent, "count");
        self.measured.outcomes.print(prefix);
        self.measured
            .all
            .print(&format!("{prefix}.latency_from_schedule"), &[50, 95, 99]);
        self.service
            .print(&format!("{prefix}.latency_service"), &[50, 99]);
    }
}

/// Sends request `i` at `start + i / rate` for `warmup + measure`, each in its own task
/// (at most `max_in_flight` at once), and measures each from its scheduled time, so a slow
/// answer never hides the requests that should have been sent meanwhile. Accepted commands
/// are reported to `answered` when given.
pub async fn open_loop(
    api: Arc<Api>,
    schedule: Schedule,
    mut pick: impl FnMut(u64) -> Op,
    answered: Option<mpsc::UnboundedSender<Answered>>,
) -> anyhow::Result<OpenReport> {
    let rate = schedule.rate as f64;
    let warm_n = (schedule.warmup.as_secs_f64() * rate).round() as u64;
    let total = warm_n + (schedule.measure.as_secs_f64() * rate).round() as u64;
    let stats = Arc::new(Mutex::new((
        Measured::new()?,
        Latencies::new()?,
        None::<Instant>,
    )));
    let sem = Arc::new(Semaphore::new(schedule.max_in_flight));
    let start = Instant::now() + Duration::from_millis(10);
    // Past this the loop is hopelessly behind: it stops sending rather than run on.
    let give_up = start + (schedule.warmup + schedule.measure) * 2 + Duration::from_secs(10);
    let mut not_sent = 0;
    for i in 0..total {
        let scheduled = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(scheduled.into()).await;
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => p.context("the in-flight semaphore closed")?,
            _ = tokio::time::sleep_until(give_up.into()) => {
                not_sent = total - i.max(warm_n);
                break;
            }
        };
        let measured = i >= warm_n;
        let op = pick(i);
        let rb = api.request(op, &format!("o{i}"));
        let stats = stats.clone();
        let answered = answered.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let sent = Instant::now();
            let reply = Api::send(rb).await;
            let at = Instant::now();
            if let (Reply::Accepted(a), Some(tx)) = (&reply, &answered) {
                let _ = tx.send(Answered {
                    cursor: a.cursor,
                    at,
                    measured,
                });
            }
            if measured {
                let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
                s.0.record(op, at.saturating_duration_since(scheduled), &reply);
                if !matches!(reply, Reply::Transport(_)) {
                    s.1.record(at.saturating_duration_since(sent));
                }
                s.2 = Some(s.2.map_or(at, |t| t.max(at)));
            }
        });
    }
    drop(answered);
    // Every request has a 30 s client timeout, so all permits come back well within this.
    let all = u32::try_from(schedule.max_in_flight).context("--max-in-flight")?;
    tokio::time::timeout(Duration::from_secs(60), sem.acquire_many(all))
        .await
        .context("requests still in flight after 60 s")?
        .context("the in-flight semaphore closed")?
        .forget();
    let (measured, service, last) = {
        let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
        let m = std::mem::replace(&mut s.0, Measured::new()?);
        let l = std::mem::replace(&mut s.1, Latencies::new()?);
        (m, l, s.2)
    };
    let measure_from = start + Duration::from_secs_f64(warm_n as f64 / rate);
    Ok(OpenReport {
        measured,
        service,
        scheduled: total - warm_n,
        not_sent,
        elapsed: last.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(measure_from)
        }),
    })
}
