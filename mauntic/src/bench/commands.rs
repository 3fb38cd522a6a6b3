//! `bench commands`: contact commands through the real HTTP API of the in-process application.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::common::{
    delete_stream, figure, figure_f, fresh_database, fresh_nats, header, per_second, RunningApp,
};
use super::load::{closed_loop, open_loop, Api, Mix, Schedule};
use super::BenchArgs;
use crate::Settings;

const DATABASE: &str = "mauntic_bench_commands";

pub async fn run(settings: &Settings, args: &BenchArgs) -> anyhow::Result<()> {
    let mut s = fresh_database(settings, DATABASE).await?;
    // With NATS configured the relay runs too, into a stream of this run's own.
    s.nats = settings.nats.as_ref().map(|n| fresh_nats(&n.url));
    let nats = s.nats.clone();
    let app = RunningApp::start(s).await?;
    let outcome = measure(&app, args, nats.is_some()).await;
    let stopped = app.stop().await;
    if let Some(cfg) = &nats {
        delete_stream(cfg).await?;
    }
    outcome?;
    stopped
}

async fn measure(app: &RunningApp, args: &BenchArgs, nats: bool) -> anyhow::Result<()> {
    let tenant = app.tenant().await?;
    let api = Arc::new(Api::new(&app.base_url, &tenant.api_key)?);
    let warmup = Duration::from_secs(args.warmup);
    let measure = Duration::from_secs(args.seconds);

    header(&format!(
        "commands (database {DATABASE}, relay to JetStream: {}, projectors: {})",
        if nats { "on" } else { "off" },
        if nats { "JetStream" } else { "Postgres tail" },
    ));
    eprintln!(
        "bench commands: closed loop, {} clients, {}+{} s",
        args.clients, args.warmup, args.seconds
    );
    let closed = closed_loop(api.clone(), args.clients, warmup, measure).await?;
    let m = &closed.measured;
    figure("closed.clients", args.clients, "clients");
    figure_f("closed.seconds", closed.elapsed.as_secs_f64(), "s");
    figure_f(
        "closed.throughput",
        per_second(m.outcomes.ok, closed.elapsed),
        "commands/s",
    );
    m.outcomes.print("closed");
    m.print_latencies("closed");
    // The open loop measures the steady state at its rate, not the readers catching up
    // with the closed loop's backlog (every reader of the log, in this process).
    let caught_up = app.caught_up(Duration::from_secs(600)).await?;
    figure_f("closed.readers_caught_up_s", caught_up.as_secs_f64(), "s");
    // Nor the disk writing out what the closed loop left dirty: a checkpoint now, rather
    // than the kernel's writeback during the open loop, whose commits would wait behind it.
    let flushing = Instant::now();
    match sqlx::query("CHECKPOINT").execute(&app.pool).await {
        Ok(_) => figure_f("closed.checkpoint_s", flushing.elapsed().as_secs_f64(), "s"),
        Err(e) => eprintln!("bench commands: no checkpoint before the open loop ({e})"),
    }

    eprintln!(
        "bench commands: open loop, {}/s, {}+{} s",
        args.rate, args.warmup, args.seconds
    );
    let contacts = Arc::new(closed.contacts);
    let targets = contacts.clone();
    let mut mix = Mix::new(0xC0FFEE);
    let schedule = Schedule {
        rate: args.rate,
        warmup,
        measure,
        max_in_flight: args.max_in_flight,
    };
    let open = open_loop(api, schedule, move |_| mix.op(&targets), None).await?;
    figure("open.max_in_flight", args.max_in_flight, "requests");
    open.print("open", args.rate);
    Ok(())
}
