//! The command line: one binary, `mauntic <subcommand>`. Admin subcommands print JSON.

use std::io::Write;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use commands::identity::admin;
use domain::identity::{KeyKind, Role};
use event_store::reader::{Filter, Until};
use event_store::Cursor;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::settings::{parse_roles, Settings};
use crate::{app, Application};

#[derive(Debug, Parser)]
#[command(
    name = "mauntic",
    version,
    about = "Mauntic3: event-sourced marketing automation"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the platform: command API, query API, relay and projectors (or some of them).
    Serve {
        /// all, api, or a comma-separated list of commands, queries, relay, projector.
        #[arg(long, env = "MAUNTIC_ROLES", default_value = "all")]
        role: String,
    },
    /// Create the database if needed and apply migrations.
    Migrate,
    /// A tenant for machines: an organization without members and an admin API key.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Organizations: create, block, unblock.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Users: create.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API keys: create.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Projection status and rebuilds.
    Replay {
        #[command(subcommand)]
        command: ReplayCommand,
    },
    /// An aggregate's state as of a sequence or time, with the events that built it.
    Inspect {
        /// e.g. contact
        aggregate_type: String,
        id: Uuid,
        /// The tenant; found from the log when omitted.
        #[arg(long)]
        tenant: Option<Uuid>,
        #[arg(long, conflicts_with = "at_time")]
        at_sequence: Option<i64>,
        /// RFC 3339, e.g. 2026-11-22T10:00:00Z
        #[arg(long)]
        at_time: Option<DateTime<Utc>>,
    },
    /// The event log as a stream.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Channel providers: master-key rotation of their credentials.
    Providers {
        #[command(subcommand)]
        command: ProvidersCommand,
    },
    /// Bulk operations on contacts (the same engine as the API).
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Measure throughput and latency; prints figures.
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Create or update contacts by email from a CSV file; prints the counts as JSON.
    Contacts {
        file: std::path::PathBuf,
        #[arg(long)]
        tenant: Uuid,
        /// 'CSV column=target' (email, first_name, last_name, phone, time_zone, locale,
        /// fields.<key>, tags); repeat per column.
        #[arg(long = "map", required = true)]
        map: Vec<String>,
        /// A tag every imported contact gets; repeat for more.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Leave contacts that already exist as they are.
        #[arg(long)]
        no_update: bool,
        /// Add every imported contact to this static segment.
        #[arg(long)]
        segment: Option<Uuid>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// Re-seal every provider's credentials (and re-wrap every contact key) under
    /// MAUNTIC_MASTER_KEY, opening those sealed under MAUNTIC_MASTER_KEY_PREVIOUS; prints the
    /// counts and fails if any row is unreadable. Safe to run while serving, and again.
    RotateKey,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and its first API key; prints {"tenant_id", "api_key"}.
    Create {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization; prints {"organization_id"}.
    Create {
        #[arg(long)]
        name: String,
        /// The email of an existing user who becomes its owner.
        #[arg(long)]
        owner_email: Option<String>,
    },
    /// Block an organization: every API call of it is refused; nothing is deleted.
    Block {
        id: Uuid,
        #[arg(long, default_value = "blocked by an operator")]
        reason: String,
    },
    /// Lift a block.
    Unblock { id: Uuid },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user with a verified email; prints {"user_id"}.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of standard input (otherwise the user
        /// sets one through "forgot password" or signs in with OpenID Connect).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Create an API key; prints {"id", "key", "prefix"} (the key is shown once).
    Create {
        #[arg(long)]
        org: Uuid,
        #[arg(long, default_value = "cli")]
        name: String,
        /// admin, member or viewer.
        #[arg(long, default_value = "admin")]
        role: String,
        /// Public keys may only send tracking and ingest events.
        #[arg(long)]
        public: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// Each projection's checkpoint, the head cursor, and the lag.
    Status,
    /// Rebuild a projection from the log into a shadow table, then swap it in.
    Rebuild { projection: String },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print events as JSON lines: catch up from the log, then follow live.
    Tail {
        #[arg(long)]
        tenant: Option<Uuid>,
        #[arg(long)]
        aggregate_type: Option<String>,
        /// Start after this cursor ("<tx_id>-<position>"); from the beginning when omitted.
        #[arg(long)]
        from_cursor: Option<Cursor>,
    },
}

/// A future that resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn cancel_on_signal() -> CancellationToken {
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested");
        c.cancel();
    });
    cancel
}

/// The command side, for admin subcommands (no NATS needed: the relay publishes later).
async fn admin_state(settings: &mut Settings) -> anyhow::Result<commands::CommandState> {
    settings.nats = None;
    let (pool, _) = app::connect(settings).await?;
    crate::http::command_state(settings, pool)
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Runs one subcommand.
pub async fn run(cli: Cli, mut settings: Settings) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { role } => {
            settings.roles = parse_roles(&role)?;
            let app = Application::build(settings).await?;
            app.run(cancel_on_signal()).await
        }
        Command::Migrate => {
            settings.nats = None;
            app::connect(&settings).await?;
            print_json(&serde_json::json!({"migrated": true}))
        }
        Command::Tenant {
            command: TenantCommand::Create { name },
        } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 200 {
                bail!("--name must have 1 to 200 characters");
            }
            let s = admin_state(&mut settings).await?;
            print_json(&admin::create_tenant(&s, name).await?)
        }
        Command::Org { command } => {
            let s = admin_state(&mut settings).await?;
            match command {
                OrgCommand::Create { name, owner_email } => {
                    let id = admin::create_organization(&s, &name, owner_email.as_deref()).await?;
                    print_json(&serde_json::json!({"organization_id": id}))
                }
                OrgCommand::Block { id, reason } => {
                    admin::set_blocked(&s, id, Some(reason)).await?;
                    print_json(&serde_json::json!({"organization_id": id, "blocked": true}))
                }
                OrgCommand::Unblock { id } => {
                    admin::set_blocked(&s, id, None).await?;
                    print_json(&serde_json::json!({"organization_id": id, "blocked": false}))
                }
            }
        }
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    name,
                    password_stdin,
                },
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let s = admin_state(&mut settings).await?;
            let id = admin::create_user(&s, &email, password, name).await?;
            print_json(&serde_json::json!({"user_id": id}))
        }
        Command::Apikey {
            command:
                ApikeyCommand::Create {
                    org,
                    name,
                    role,
                    public,
                },
        } => {
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let kind = if public {
                KeyKind::Public
            } else {
                KeyKind::Secret
            };
            let s = admin_state(&mut settings).await?;
            print_json(&admin::create_api_key(&s, org, &name, role, kind).await?)
        }
        Command::Import {
            command:
                ImportCommand::Contacts {
                    file,
                    tenant,
                    map,
                    tags,
                    no_update,
                    segment,
                },
        } => {
            let options = commands::imports::ImportOptions {
                mapping: crate::import::mapping(&map)?,
                tags,
                update_existing: !no_update,
                segment_id: segment,
            };
            let s = admin_state(&mut settings).await?;
            let view = crate::import::contacts(&s, tenant, &file, options, true).await?;
            print_json(&view)
        }
        Command::Providers {
            command: ProvidersCommand::RotateKey,
        } => {
            if settings.master_key.is_none() {
                bail!("set MAUNTIC_MASTER_KEY to the new key (and MAUNTIC_MASTER_KEY_PREVIOUS to the old one)");
            }
            settings.nats = None;
            let (pool, _) = app::connect(&settings).await?;
            // The same master key wraps contact keys and seals the derived (digest) keys:
            // all of them move to the new key, so the previous one can be dropped afterwards.
            let report = crate::rotate::rotate_master_key(&pool, &settings.provider_keys()).await?;
            print_json(&report)?;
            let unreadable = report.unreadable();
            if unreadable > 0 {
                bail!(
                    "{unreadable} rows are sealed under a key that is neither \
                     MAUNTIC_MASTER_KEY nor MAUNTIC_MASTER_KEY_PREVIOUS"
                );
            }
            Ok(())
        }
        Command::Replay { command } => {
            settings.nats = None;
            let (pool, _) = app::connect(&settings).await?;
            match command {
                ReplayCommand::Status => print_json(&projections::status::all(&pool).await?),
                ReplayCommand::Rebuild { projection } => {
                    let Some(p) = projections::by_name(&projection) else {
                        let names: Vec<_> = projections::all().iter().map(|p| p.name()).collect();
                        bail!(
                            "no projection {projection:?}; there are: {}",
                            names.join(", ")
                        );
                    };
                    let report = replay::rebuild::rebuild(&pool, p.as_ref(), |pr| {
                        eprintln!(
                            "rebuild {}: {} events, at {} of head {}, {:.0} events/s",
                            projection,
                            pr.events,
                            pr.at,
                            pr.head,
                            pr.events as f64 / pr.elapsed.as_secs_f64().max(1e-9)
                        );
                    })
                    .await?;
                    print_json(&report)
                }
            }
        }
        Command::Inspect {
            aggregate_type,
            id,
            tenant,
            at_sequence,
            at_time,
        } => {
            settings.nats = None;
            let (pool, _) = app::connect(&settings).await?;
            let tenant = match tenant {
                Some(t) => t,
                None => {
                    let found = replay::inspect::tenants_of(&pool, &aggregate_type, id).await?;
                    match found.as_slice() {
                        [t] => *t,
                        [] => bail!("no {aggregate_type} {id} in the log"),
                        _ => {
                            bail!("{aggregate_type} {id} exists in several tenants; pass --tenant")
                        }
                    }
                }
            };
            let until = match (at_sequence, at_time) {
                (Some(n), _) => Until::Sequence(n),
                (None, Some(t)) => Until::Time(t),
                (None, None) => Until::End,
            };
            let found = replay::inspect::inspect(&pool, tenant, &aggregate_type, id, until)
                .await?
                .with_context(|| format!("{aggregate_type} {id} did not exist at that point"))?;
            print_json(&found)
        }
        Command::Events {
            command:
                EventsCommand::Tail {
                    tenant,
                    aggregate_type,
                    from_cursor,
                },
        } => {
            settings.nats = None;
            let (pool, _) = app::connect(&settings).await?;
            let filter = Filter {
                tenant_id: tenant,
                aggregate_type,
            };
            let mut failed = None;
            replay::tail::tail(
                pool,
                filter,
                from_cursor.unwrap_or(Cursor::ZERO),
                cancel_on_signal(),
                |e| match print_json(e) {
                    Ok(()) => true,
                    Err(x) => {
                        failed = Some(x);
                        false
                    }
                },
            )
            .await?;
            failed.map_or(Ok(()), Err)
        }
        Command::Bench(args) => crate::bench::run(settings, args).await,
    }
}
