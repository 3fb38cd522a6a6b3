//! One typed `Settings`, from the environment, with defaults that work on a developer machine.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use commands::identity::password::PasswordCost;
use commands::identity::{IdentityConfig, OidcConfig};
use commands::imports::ImportConfig;
use event_store::nats::NatsConfig;
use event_store::Clock;
use http_kit::auth::SessionConfig;

/// The parts `mauntic serve` can run; `all` is every one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The command API (`POST`/`PATCH`/`DELETE` under `/api/v1`).
    Commands,
    /// The query API (`GET` under `/api/v1`).
    Queries,
    /// The relay from the log to JetStream (one leader among all processes).
    Relay,
    /// The projectors that build the read models.
    Projector,
    /// Process managers: the segment evaluator and refresher.
    Workers,
    /// The web console at `/` (pages over the command services and the read models).
    Web,
}

impl Role {
    pub fn all() -> BTreeSet<Role> {
        [
            Role::Commands,
            Role::Queries,
            Role::Relay,
            Role::Projector,
            Role::Workers,
            Role::Web,
        ]
        .into()
    }
}

impl FromStr for Role {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "commands" => Self::Commands,
            "queries" => Self::Queries,
            "relay" => Self::Relay,
            "projector" | "projectors" => Self::Projector,
            "workers" | "worker" => Self::Workers,
            "web" | "console" => Self::Web,
            other => {
                bail!("unknown role {other:?}: use all, api, commands, queries, relay, projector, workers or web")
            }
        })
    }
}

/// Parses `all`, `api` (commands + queries) or a comma-separated list of roles.
pub fn parse_roles(s: &str) -> anyhow::Result<BTreeSet<Role>> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "all" => out.extend(Role::all()),
            "api" => out.extend([Role::Commands, Role::Queries]),
            other => {
                out.insert(other.parse()?);
            }
        }
    }
    if out.is_empty() {
        bail!("no role given");
    }
    Ok(out)
}

/// Where projectors read events from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectionSource {
    /// JetStream when `NATS_URL` is set, else the Postgres tail.
    Auto,
    Postgres,
    JetStream,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// `DATABASE_URL`; the database is created if missing.
    pub database_url: String,
    /// `MAUNTIC_DB_POOL`: connections in the pool.
    pub pool_size: u32,
    /// `NATS_URL` (optional), `MAUNTIC_NATS_STREAM`, `MAUNTIC_NATS_SUBJECT_PREFIX`.
    pub nats: Option<NatsConfig>,
    /// `MAUNTIC_HTTP_ADDR`.
    pub http_addr: SocketAddr,
    /// `MAUNTIC_MAX_BODY_BYTES`: larger request bodies are refused with 413.
    pub max_body_bytes: usize,
    /// `MAUNTIC_CONSISTENCY_TIMEOUT_MS`: how long a query waits for `consistent_after`.
    pub consistency_timeout: Duration,
    /// `MAUNTIC_PROJECTION_SOURCE`: auto, postgres or jetstream.
    pub projection_source: ProjectionSource,
    /// `MAUNTIC_ROLES` or `serve --role`.
    pub roles: BTreeSet<Role>,
    /// `MAUNTIC_PUBLIC_URL`, `MAUNTIC_SMTP_URL`, `MAUNTIC_MAIL_FROM`, `MAUNTIC_OIDC_*`,
    /// `MAUNTIC_ARGON2_*`: sign-up, login, mail and tokens.
    pub identity: IdentityConfig,
    /// `MAUNTIC_SESSION_TTL_HOURS`, `MAUNTIC_SESSION_IDLE_MINUTES`, `MAUNTIC_COOKIE_SECURE`.
    pub sessions: SessionConfig,
    /// `MAUNTIC_TRUST_PROXY`: take client addresses from `X-Forwarded-For`.
    pub trust_proxy: bool,
    /// The time tokens and sessions see (tests move it).
    pub clock: Clock,
    /// `MAUNTIC_SEGMENT_REFRESH_SECS`: how often segments whose rules use relative dates
    /// are re-evaluated in full.
    pub segment_refresh_every: Duration,
    /// `MAUNTIC_DATA_DIR` (default `data`: uploads under `data/imports/`),
    /// `MAUNTIC_IMPORT_MAX_BYTES` (default 1 GiB), `MAUNTIC_IMPORT_BATCH_ROWS` (default 2000).
    pub imports: ImportConfig,
    /// `MAUNTIC_MASTER_KEY`: 32 bytes, base64; wraps every contact's key (crypto-shredding,
    /// ADR 0003) and seals provider credentials. Absent: a development key, with a warning
    /// at start.
    pub master_key: Option<MasterKey>,
    /// The delivery worker (`MAUNTIC_DELIVERY_*`, `MAUNTIC_TRACKING_*`, `MAUNTIC_BOUNCE_DOMAIN`).
    pub delivery: DeliverySettings,
    /// `MAUNTIC_MASTER_KEY_PREVIOUS`: during a rotation, the key `MAUNTIC_MASTER_KEY`
    /// replaces; provider credentials sealed under it still open (`mauntic providers
    /// rotate-key` re-seals them under the current key).
    pub master_key_previous: Option<MasterKey>,
    /// The campaign worker (`MAUNTIC_CAMPAIGN_PAGE`: recipients per fan-out transaction,
    /// default 5000).
    pub campaigns: workers::campaigns::CampaignWorkerConfig,
    /// The journey runner (`MAUNTIC_JOURNEY_BATCH`: executions per transaction, default 500;
    /// `MAUNTIC_JOURNEY_LOOPS`: runner loops per process, default 2).
    pub journeys: workers::journeys::JourneyWorkerConfig,
}

/// How messages go out.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// `MAUNTIC_DELIVERY_SMTP`: a platform SMTP relay (the JSON of an `smtp` provider, e.g.
    /// `{"host":"127.0.0.1","port":25,"security":"none"}`) for email of organizations that
    /// configured no provider; without it their email goes to the development mailbox.
    pub smtp: Option<serde_json::Value>,
    /// `MAUNTIC_TRACKING_URL` (default: the public URL): where open, click and unsubscribe
    /// links point.
    pub tracking_url: String,
    /// `MAUNTIC_TRACKING_KEYS`: base64 keys, comma-separated, the signing one first; default:
    /// one derived from the master key.
    pub tracking_keys: Vec<Vec<u8>>,
    /// `MAUNTIC_DELIVERY_LOOPS`, `_BATCH`, `_CONCURRENCY`, `_LEASE_SECS`, `_RETRY_BASE_SECS`,
    /// `_MAX_ATTEMPTS`, `MAUNTIC_BOUNCE_DOMAIN`; the default sender is `MAUNTIC_MAIL_FROM`.
    pub worker: workers::delivery::worker::WorkerConfig,
    /// `MAUNTIC_INBOUND_SECRET`: the bearer secret of `POST /inbound/mail`, where the MTA of
    /// the bounce domain (`MAUNTIC_BOUNCE_DOMAIN`) pipes bounces, complaints and mailto
    /// unsubscribes; without it the endpoint does not exist.
    pub inbound_secret: Option<InboundSecret>,
}

/// The inbound endpoint's bearer secret; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct InboundSecret(pub String);

impl std::fmt::Debug for InboundSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InboundSecret(<redacted>)")
    }
}

/// The master key that wraps contact keys; never printed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MasterKey(pub [u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// 32 bytes in standard base64.
    pub fn parse(b64: &str) -> anyhow::Result<Self> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .context("MAUNTIC_MASTER_KEY must be base64")?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            anyhow::anyhow!("MAUNTIC_MASTER_KEY must be 32 bytes (base64 of 32 random bytes)")
        })?;
        Ok(Self(key))
    }
}

impl Settings {
    /// The master keys that seal provider credentials.
    pub fn provider_keys(&self) -> event_store::shred::keyring::Keyring {
        event_store::shred::keyring::Keyring::new(
            self.master_key.map(|k| k.0),
            self.master_key_previous.map(|k| k.0),
        )
    }
}

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/mauntic";

impl Settings {
    /// Reads the environment.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let parse = |k: &str, default: &str| -> anyhow::Result<String> {
            Ok(var(k).unwrap_or_else(|| default.to_owned()))
        };
        let nats = var("NATS_URL").map(|url| NatsConfig {
            // Unset: the installation's own names (event_store::nats::Names).
            stream: var("MAUNTIC_NATS_STREAM"),
            subject_prefix: var("MAUNTIC_NATS_SUBJECT_PREFIX"),
            ..NatsConfig::new(url)
        });
        let number = |k: &str, default: &str| -> anyhow::Result<u64> {
            parse(k, default)?
                .parse()
                .with_context(|| format!("{k} must be a number"))
        };
        let http_addr: SocketAddr = parse("MAUNTIC_HTTP_ADDR", "127.0.0.1:8080")?
            .parse()
            .context("MAUNTIC_HTTP_ADDR")?;
        let oidc = match (var("MAUNTIC_OIDC_ISSUER"), var("MAUNTIC_OIDC_CLIENT_ID")) {
            (Some(issuer), Some(client_id)) => Some(OidcConfig {
                issuer,
                client_id,
                client_secret: var("MAUNTIC_OIDC_CLIENT_SECRET").unwrap_or_default(),
            }),
            (None, None) => None,
            _ => bail!("set both MAUNTIC_OIDC_ISSUER and MAUNTIC_OIDC_CLIENT_ID, or neither"),
        };
        let identity = IdentityConfig {
            public_url: parse("MAUNTIC_PUBLIC_URL", &format!("http://{http_addr}"))?,
            password_cost: PasswordCost {
                memory_kib: number("MAUNTIC_ARGON2_MEMORY_KIB", "19456")? as u32,
                iterations: number("MAUNTIC_ARGON2_ITERATIONS", "2")? as u32,
                lanes: 1,
            },
            smtp_url: var("MAUNTIC_SMTP_URL"),
            mail_from: parse("MAUNTIC_MAIL_FROM", "Mauntic3 <no-reply@localhost>")?,
            oidc,
            ..IdentityConfig::default()
        };
        let sessions = SessionConfig {
            ttl: Duration::from_secs(3600 * number("MAUNTIC_SESSION_TTL_HOURS", "168")?),
            idle: Duration::from_secs(60 * number("MAUNTIC_SESSION_IDLE_MINUTES", "720")?),
            secure: parse("MAUNTIC_COOKIE_SECURE", "false")? == "true",
        };
        let imports = ImportConfig {
            data_dir: parse("MAUNTIC_DATA_DIR", "data")?.into(),
            max_bytes: number("MAUNTIC_IMPORT_MAX_BYTES", "1073741824")?,
            batch_rows: number("MAUNTIC_IMPORT_BATCH_ROWS", "2000")? as usize,
        };
        let master_key = var("MAUNTIC_MASTER_KEY")
            .map(|k| MasterKey::parse(&k))
            .transpose()?;
        let from = sender_of(&identity.mail_from)
            .context("MAUNTIC_MAIL_FROM must be an address, e.g. Acme <news@acme.example>")?;
        let smtp = var("MAUNTIC_DELIVERY_SMTP")
            .map(|j| serde_json::from_str::<serde_json::Value>(&j))
            .transpose()
            .context("MAUNTIC_DELIVERY_SMTP must be the JSON of an smtp provider")?;
        let tracking_keys = match var("MAUNTIC_TRACKING_KEYS") {
            Some(keys) => keys
                .split(',')
                .map(|k| {
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, k.trim())
                        .context("MAUNTIC_TRACKING_KEYS: base64 keys, comma-separated")
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
            None => vec![tracking_key(master_key.as_ref())],
        };
        let defaults = workers::delivery::worker::WorkerConfig::default();
        let delivery = DeliverySettings {
            smtp,
            tracking_url: parse("MAUNTIC_TRACKING_URL", &identity.public_url)?,
            tracking_keys,
            inbound_secret: var("MAUNTIC_INBOUND_SECRET").map(InboundSecret),
            worker: workers::delivery::worker::WorkerConfig {
                loops: number("MAUNTIC_DELIVERY_LOOPS", &defaults.loops.to_string())? as usize,
                batch: number("MAUNTIC_DELIVERY_BATCH", &defaults.batch.to_string())? as i64,
                concurrency: number(
                    "MAUNTIC_DELIVERY_CONCURRENCY",
                    &defaults.concurrency.to_string(),
                )? as usize,
                lease: Duration::from_secs(number(
                    "MAUNTIC_DELIVERY_LEASE_SECS",
                    &defaults.lease.as_secs().to_string(),
                )?),
                retry_base: Duration::from_secs(number(
                    "MAUNTIC_DELIVERY_RETRY_BASE_SECS",
                    &defaults.retry_base.as_secs().to_string(),
                )?),
                max_attempts: number(
                    "MAUNTIC_DELIVERY_MAX_ATTEMPTS",
                    &defaults.max_attempts.to_string(),
                )? as u32,
                default_from: from,
                bounce_domain: var("MAUNTIC_BOUNCE_DOMAIN"),
                ..defaults
            },
        };
        let master_key_previous = var("MAUNTIC_MASTER_KEY_PREVIOUS")
            .map(|k| MasterKey::parse(&k).context("MAUNTIC_MASTER_KEY_PREVIOUS"))
            .transpose()?;
        if master_key_previous.is_some() && master_key.is_none() {
            bail!("MAUNTIC_MASTER_KEY_PREVIOUS is set without MAUNTIC_MASTER_KEY");
        }
        Ok(Self {
            delivery,
            imports,
            master_key,
            master_key_previous,
            identity,
            sessions,
            trust_proxy: parse("MAUNTIC_TRUST_PROXY", "false")? == "true",
            clock: Clock::system(),
            database_url: parse("DATABASE_URL", DEFAULT_DATABASE_URL)?,
            pool_size: parse("MAUNTIC_DB_POOL", "16")?
                .parse()
                .context("MAUNTIC_DB_POOL")?,
            nats,
            http_addr,
            max_body_bytes: parse("MAUNTIC_MAX_BODY_BYTES", "262144")?
                .parse()
                .context("MAUNTIC_MAX_BODY_BYTES")?,
            consistency_timeout: Duration::from_millis(
                parse("MAUNTIC_CONSISTENCY_TIMEOUT_MS", "5000")?
                    .parse()
                    .context("MAUNTIC_CONSISTENCY_TIMEOUT_MS")?,
            ),
            projection_source: match parse("MAUNTIC_PROJECTION_SOURCE", "auto")?.as_str() {
                "auto" => ProjectionSource::Auto,
                "postgres" => ProjectionSource::Postgres,
                "jetstream" => ProjectionSource::JetStream,
                other => {
                    bail!("MAUNTIC_PROJECTION_SOURCE={other:?}: use auto, postgres or jetstream")
                }
            },
            roles: parse_roles(&parse("MAUNTIC_ROLES", "all")?)?,
            segment_refresh_every: Duration::from_secs(number(
                "MAUNTIC_SEGMENT_REFRESH_SECS",
                "3600",
            )?),
            campaigns: workers::campaigns::CampaignWorkerConfig {
                page: number("MAUNTIC_CAMPAIGN_PAGE", "5000")?.max(1) as i64,
                ..Default::default()
            },
            journeys: workers::journeys::JourneyWorkerConfig {
                batch: number("MAUNTIC_JOURNEY_BATCH", "500")?.max(1) as i64,
                loops: number("MAUNTIC_JOURNEY_LOOPS", "2")?.max(1) as usize,
                ..Default::default()
            },
        })
    }

    /// Whether projectors read from JetStream.
    pub fn projects_from_jetstream(&self) -> anyhow::Result<bool> {
        match (self.projection_source, &self.nats) {
            (ProjectionSource::Postgres, _) => Ok(false),
            (ProjectionSource::JetStream, None) => {
                bail!("MAUNTIC_PROJECTION_SOURCE=jetstream needs NATS_URL")
            }
            (_, Some(_)) => Ok(true),
            (ProjectionSource::Auto, None) => Ok(false),
        }
    }
}

/// The tracking key when none is configured: derived from the master key (so every process
/// of one deployment signs alike), or a fixed development key without one.
fn tracking_key(master: Option<&MasterKey>) -> Vec<u8> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"mauntic tracking tokens v1");
    h.update(master.map_or([7u8; 32], |m| m.0));
    h.finalize().to_vec()
}

/// `Name <address>` or `address` as a sender.
fn sender_of(raw: &str) -> anyhow::Result<domain::delivery::Sender> {
    let raw = raw.trim();
    let (name, address) = match (raw.rfind('<'), raw.ends_with('>')) {
        (Some(i), true) => (
            raw[..i].trim().trim_matches('"'),
            &raw[i + 1..raw.len() - 1],
        ),
        _ => ("", raw),
    };
    let address = address.trim();
    // `localhost` (the development default) is a domain mail can name, though not a public one.
    let address = match domain::EmailAddress::parse(address) {
        Ok(a) => a.as_str().to_owned(),
        Err(e) => match address.split_once('@') {
            Some((local, "localhost")) if !local.is_empty() && !local.contains(' ') => {
                address.to_owned()
            }
            _ => return Err(e.into()),
        },
    };
    Ok(domain::delivery::Sender {
        address,
        name: (!name.is_empty()).then(|| name.to_owned()),
    })
}
