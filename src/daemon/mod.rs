//! `tend run`: the long-running process. It owns the periodic jobs (plan,
//! deliver, housekeeping), the HTTP server, signals (SIGTERM stops, SIGHUP
//! reloads), and what systemd is told.
//!
//! Each job is a step function run by one loop of its own, so two runs of
//! one job never overlap; tokio-cron-scheduler only wakes the loops, at UTC
//! intervals from `[schedule]` (its time-zone jobs and stores are avoided:
//! see STACK.md). Anything else may wake a loop early too: an ingested event
//! wakes planning, and planning that put messages in the outbox wakes
//! delivery, so an event's message goes out without waiting for the next
//! interval. A wake-up while the job runs is kept (one), not lost.

pub mod instance;
mod systemd;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::Notify;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::{ConfigPath, Env, Loaded};
use crate::engine::Engine;
use crate::http::AppState;
use crate::store::Db;
use crate::store::{Customers, Outbox, Planning, Signals, Upkeep};

/// Runs the daemon until `shutdown` resolves (`tend run` passes
/// [`stop_signal`]), then drains. `loaded` and `store` are ready
/// (validated, migrated, `instance` held and resumed: see
/// [`instance::resume`]); `path` and `env` are read again on SIGHUP.
pub async fn run(
    path: &ConfigPath,
    env: &Env,
    loaded: Loaded,
    store: Db,
    instance: String,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let listen = loaded.settings.http.listen.clone();
    let stop_timeout = loaded.settings.instance.stop_timeout.as_std();
    let engine = Engine::build(loaded, &instance)?;
    let metrics = match crate::telemetry::install(engine.planner.playbook_names()) {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics are off");
            None
        }
    };
    let shared = Arc::new(AppState::new(
        store,
        engine,
        metrics,
        instance,
        Clock::System,
    ));
    let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {listen} (http.listen): {e}; pick a free address")
    })?;
    let address = listener.local_addr()?;

    // Caught before anything can see tend ready: a SIGHUP sent the moment
    // /readyz answers must reload it, not kill it.
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let tracker = TaskTracker::new();
    tracker.spawn(crate::http::serve(listener, Arc::clone(&shared)));
    spawn_jobs(&tracker, &shared);
    let mut scheduler = start_scheduler(&shared).await?;
    tracing::info!(%address, store = shared.store.backend(), "tend is serving");
    systemd::ready(&format!("serving on {address}"));
    if let Some(every) = systemd::watchdog_interval() {
        tracker.spawn(watchdog(every, shared.stop.clone()));
    }
    // The first passes run at once rather than one interval after start.
    shared.wake_plan.notify_one();
    shared.wake_deliver.notify_one();
    shared.wake_inbound.notify_one();

    serve_until(shutdown, hup, path, env, &shared).await;

    tracing::info!("stopping: no new claims; finishing the sends in flight");
    systemd::stopping();
    shared.stop.cancel();
    let _ = scheduler.shutdown().await;
    tracker.close();
    if tokio::time::timeout(stop_timeout, tracker.wait())
        .await
        .is_err()
    {
        release_at_deadline(&shared, stop_timeout).await;
    }
    shared.engine().deliverer.close().await;
    shared.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The stop timeout ran out with sends in flight: this instance gives up
/// its claims before it exits, so nothing waits for a lease. What it was
/// sending may or may not have reached the server and becomes `unknown`;
/// what it had claimed but not started waits for the next instance.
async fn release_at_deadline(shared: &AppState, stop_timeout: Duration) {
    let resend = shared.engine().loaded.settings.delivery.resend_unknown;
    match shared
        .store
        .release_claims(Some(&shared.instance), Utc::now(), resend)
        .await
    {
        Ok(released) => tracing::warn!(
            timeout = ?stop_timeout,
            interrupted = released.interrupted,
            waiting = released.waiting,
            resend,
            "stopped before every send finished (instance.stop_timeout): the sends in flight are {}, the messages not started wait for the next start",
            if resend { "to go again" } else { "unknown" }
        ),
        Err(e) => tracing::warn!(
            timeout = ?stop_timeout,
            error = format!("{e:#}"),
            "stopped before every send finished (instance.stop_timeout), and could not release the claims: this instance releases them when it starts again, others when their lease runs out"
        ),
    }
}

/// One loop per job: wait for a wake-up or the stop, run one pass, log a
/// failure once with its cause chain, go round again.
fn spawn_jobs(tracker: &TaskTracker, shared: &Arc<AppState>) {
    let s = Arc::clone(shared);
    tracker.spawn(async move {
        while wait(&s.wake_plan, &s.stop).await {
            // Planning is safe to abandon: each page commits whole.
            tokio::select! {
                result = plan_pass(&s) => report("plan", result),
                () = s.stop.cancelled() => break,
            }
        }
    });
    let s = Arc::clone(shared);
    tracker.spawn(async move {
        // Delivery is not abandoned: it stops claiming and finishes what
        // it has started.
        while wait(&s.wake_deliver, &s.stop).await {
            report("deliver", deliver_pass(&s).await);
        }
    });
    let s = Arc::clone(shared);
    tracker.spawn(async move {
        // A poll records each message before marking it: safe to abandon.
        while wait(&s.wake_inbound, &s.stop).await {
            tokio::select! {
                result = inbound_pass(&s) => report("inbound", result),
                () = s.stop.cancelled() => break,
            }
        }
    });
    let s = Arc::clone(shared);
    tracker.spawn(async move {
        while wait(&s.wake_housekeeping, &s.stop).await {
            report("housekeeping", housekeeping_pass(&s).await);
        }
    });
    let s = Arc::clone(shared);
    tracker.spawn(async move {
        // Not abandoned at a stop: the pass finishes the POST or mail in
        // flight, records what went and gives back the rest.
        while wait(&s.wake_notify, &s.stop).await {
            report("notify", notify_pass(&s).await);
        }
    });
}

/// Routes the signals recorded since the last pass and sends the alerts
/// and webhook deliveries that are due.
pub async fn notify_pass(shared: &AppState) -> anyhow::Result<()> {
    let engine = shared.engine();
    let pass = engine
        .notifier
        .pass(&shared.store, &engine.deliverer, shared.clock, &shared.stop)
        .await?;
    if pass.sent + pass.failed > 0 {
        tracing::info!(
            sent = pass.sent,
            retrying = pass.retrying,
            failed = pass.failed,
            "notified"
        );
    }
    if pass.retrying + pass.failed > 0 {
        tracing::warn!(
            retrying = pass.retrying,
            failed = pass.failed,
            "some alerts or webhook deliveries did not land; tend webhooks shows why"
        );
    }
    Ok(())
}

/// True when woken, false when stopping.
async fn wait(wake: &Notify, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = wake.notified() => !stop.is_cancelled(),
        () = stop.cancelled() => false,
    }
}

fn report(job: &'static str, result: anyhow::Result<()>) {
    if let Err(e) = result {
        tracing::error!(
            job,
            error = format!("{e:#}"),
            "job pass failed; it runs again at its next wake-up"
        );
        crate::telemetry::job_failed(job);
    }
}

/// Moves maintenances whose start or end has come, then plans what is due
/// now; wakes delivery when anything went into the outbox.
pub async fn plan_pass(shared: &AppState) -> anyhow::Result<()> {
    let Some(lead) = shared.store.lead_planning().await? else {
        tracing::debug!("another instance is planning; skipping this pass");
        return Ok(());
    };
    let engine = shared.engine();
    let started = Instant::now();
    let now = Utc::now();
    // Before planning and before the next delivery pass: announcements a
    // start makes stale are settled before anything could send them.
    let cx = crate::incident::Context::new(&engine.loaded.settings);
    let advanced = crate::incident::advance(&shared.store, &cx, now).await;
    let planned = engine.planner.plan_once(&shared.store, now).await;
    lead.release().await;
    match advanced {
        Ok(advanced) if advanced.notices > 0 => shared.wake_deliver.notify_one(),
        Ok(_) => {}
        // Planning went on; the next pass tries the maintenances again.
        Err(e) => report(
            "plan",
            Err(anyhow::Error::new(e).context("moving maintenances at their start and end")),
        ),
    }
    let outcome = planned?;
    crate::telemetry::plan_pass(started.elapsed());
    if outcome.planned > 0 {
        tracing::info!(planned = outcome.planned, "planned");
        shared.wake_deliver.notify_one();
    }
    // Planning stands whatever becomes of this; the next pass tries again.
    let filled = fill_search(shared).await.unwrap_or_else(|e| {
        tracing::warn!(
            error = format!("{e:#}"),
            "could not make imported people searchable; the next planning pass tries again, and searches read them meanwhile"
        );
        0
    });
    // A queue emptied of many leaves as many dead rows, which every
    // search reads past until a vacuum (170 ms a search at 600,000).
    crate::store::tidy_after(&shared.store, outcome.rewritten().max(filled)).await;
    Ok(())
}

/// People a chunk of [`fill_search`] makes searchable in one transaction.
const SEARCH_FILL_CHUNK: u32 = 20_000;

/// Writes the search terms of the people imports added since the last
/// pass ([`Customers::fill_search`]), a chunk at a time, until none wait or
/// the daemon stops. Until then a search reads them from the queue, which
/// is slower the longer it is.
async fn fill_search(shared: &AppState) -> Result<u64, crate::store::Error> {
    let started = Instant::now();
    let mut filled = 0;
    while !shared.stop.is_cancelled() {
        let taken = shared.store.fill_search(SEARCH_FILL_CHUNK).await?;
        filled += taken;
        if taken < u64::from(SEARCH_FILL_CHUNK) {
            break;
        }
    }
    if filled > 0 {
        tracing::info!(
            people = filled,
            seconds = started.elapsed().as_secs_f64(),
            "made imported people searchable"
        );
    }
    Ok(filled)
}

/// Delivers what is due now, stopping early (cleanly) on SIGTERM.
pub async fn deliver_pass(shared: &AppState) -> anyhow::Result<()> {
    let engine = shared.engine();
    let started = Instant::now();
    let now = Utc::now();
    let outcome = engine
        .deliverer
        .deliver_until(&shared.store, now, &shared.stop)
        .await?;
    crate::telemetry::deliver_pass(started.elapsed());
    crate::store::tidy_after(&shared.store, outcome.rewritten()).await;
    crate::telemetry::outbox_due(shared.store.count_due(now).await?);
    if outcome != Default::default() {
        shared.wake_notify.notify_one();
        tracing::info!(
            sent = outcome.sent,
            deferred = outcome.deferred,
            failed = outcome.failed,
            suppressed = outcome.suppressed,
            expired = outcome.expired,
            held = outcome.held,
            "delivered"
        );
        systemd::status(&format!(
            "last delivery: {} sent, {} deferred, {} failed",
            outcome.sent, outcome.deferred, outcome.failed
        ));
    }
    Ok(())
}

/// Takes the mail waiting in the reply mailbox, when one is configured.
pub async fn inbound_pass(shared: &AppState) -> anyhow::Result<()> {
    let engine = shared.engine();
    let polled =
        crate::inbound::poll_mailbox(&engine.loaded, &engine.signer, &shared.store, Utc::now())
            .await?;
    if let Some(polled) = polled.filter(|p| p.taken > 0) {
        tracing::info!(taken = polled.taken, "took inbound mail");
        shared.wake_notify.notify_one();
    }
    Ok(())
}

/// Recovers sends a stopped instance left behind (their lease ran out),
/// deletes attempt details older than `delivery.keep_attempts`, and keeps
/// the metrics' histograms in shape.
pub async fn housekeeping_pass(shared: &AppState) -> anyhow::Result<()> {
    let delivery = shared.engine().loaded.settings.delivery.clone();
    let now = Utc::now();
    let recovered = shared
        .store
        .recover_sending(now, delivery.resend_unknown)
        .await?;
    let resend = delivery.resend_unknown;
    let pruned = shared
        .store
        .prune_attempts(now - delivery.keep_attempts.as_chrono())
        .await?;
    if pruned > 0 {
        tracing::info!(count = pruned, "deleted old delivery attempts");
    }
    if recovered > 0 {
        tracing::warn!(
            count = recovered,
            resend,
            "recovered messages left mid-send by a stopped instance"
        );
    }
    let signals = shared
        .store
        .prune_signals(now - chrono::Duration::days(KEEP_SIGNALS_DAYS))
        .await?;
    if signals > 0 {
        tracing::info!(
            count = signals,
            "deleted old signals and settled notifications"
        );
    }
    crate::telemetry::notification_backlog(&shared.store.notification_targets().await?);
    if let Some(metrics) = &shared.metrics {
        metrics.run_upkeep();
    }
    shared.limiter.forget_idle();
    Ok(())
}

/// How long signals and settled notifications are kept: the history
/// `tend webhooks` reads, and a receiver's window to ask for a replay.
const KEEP_SIGNALS_DAYS: i64 = 30;

/// Wakes the job loops at their intervals. UTC wake-ups only.
async fn start_scheduler(shared: &Arc<AppState>) -> anyhow::Result<JobScheduler> {
    let schedule = shared.engine().loaded.settings.schedule.clone();
    let scheduler = JobScheduler::new().await?;
    type Wake = fn(&AppState);
    let alerts_every = shared.engine().loaded.settings.alerts.every.as_std();
    let jobs: [(Duration, Wake); 5] = [
        (alerts_every, |s| s.wake_notify.notify_one()),
        (schedule.plan_every.as_std(), |s| s.wake_plan.notify_one()),
        (schedule.deliver_every.as_std(), |s| {
            s.beat();
            s.wake_deliver.notify_one();
        }),
        (schedule.inbound_every.as_std(), |s| {
            s.wake_inbound.notify_one()
        }),
        (schedule.housekeeping_every.as_std(), |s| {
            s.wake_housekeeping.notify_one()
        }),
    ];
    for (every, wake) in jobs {
        let s = Arc::clone(shared);
        let job = Job::new_repeated_async(every.max(Duration::from_secs(1)), move |_, _| {
            wake(&s);
            Box::pin(async {})
        })?;
        scheduler.add(job).await?;
    }
    scheduler.start().await?;
    Ok(scheduler)
}

async fn watchdog(every: Duration, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticks.tick() => systemd::watchdog(),
            () = stop.cancelled() => return,
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C: the stop `tend run` passes to [`run`].
/// Both are caught from when this is called, not from the first poll: a
/// SIGTERM sent the moment /readyz answers must stop tend gracefully, not
/// kill it.
pub fn stop_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// Returns when `shutdown` resolves; reloads on each SIGHUP meanwhile.
async fn serve_until(
    shutdown: impl Future<Output = ()>,
    mut hup: tokio::signal::unix::Signal,
    path: &ConfigPath,
    env: &Env,
    shared: &AppState,
) {
    tokio::pin!(shutdown);
    let mut reloads: u64 = 0;
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = hup.recv() => {
                reloads += 1;
                reload(path, env, shared, reloads);
            }
        }
    }
}

/// Reads config, playbooks and templates again and swaps them in whole; a
/// broken edit keeps the running version, and the log says why, one line
/// a problem. `number` counts this process's reloads.
fn reload(path: &ConfigPath, env: &Env, shared: &AppState, number: u64) {
    systemd::reloading();
    let result = build(path, env, shared);
    let applied = result.is_ok();
    crate::telemetry::reloaded(applied);
    match result {
        Ok(()) => {
            tracing::info!("reloaded config, playbooks and templates");
            // Changed playbooks may change what is due.
            shared.wake_plan.notify_one();
        }
        Err(problems) => {
            for problem in &problems {
                tracing::error!(problem = %problem, "reload problem");
            }
            tracing::error!(
                problems = problems.len(),
                "reload rejected; still running the previous version"
            );
        }
    }
    systemd::ready("serving");
    // Last: whoever waits on it finds the reload wholly done.
    systemd::reload_finished(env.runtime_directory(), number, applied);
}

/// The new engine swapped in, or every reason it was not.
fn build(path: &ConfigPath, env: &Env, shared: &AppState) -> Result<(), Vec<String>> {
    let report = crate::check::check(path, env);
    if !report.problems.is_empty() {
        return Err(report.problems.iter().map(ToString::to_string).collect());
    }
    let loaded = crate::config::load(path, env).map_err(|e| vec![e.to_string()])?;
    let running = shared.engine();
    // A daemon started from a file never falls back to the defaults: a
    // deleted file is a mistake, not a wish for a new signing key.
    if let (Some(file), None) = (&running.loaded.file, &loaded.file) {
        return Err(vec![format!(
            "{}: the config file the daemon started with is gone; put it back, then reload",
            file.display()
        )]);
    }
    let before = &running.loaded.settings;
    let after = &loaded.settings;
    for (key, changed) in [
        ("database.url", before.database.url != after.database.url),
        ("http.listen", before.http.listen != after.http.listen),
        ("schedule", before.schedule != after.schedule),
        ("log", before.log != after.log),
        ("instance", before.instance != after.instance),
    ] {
        if changed {
            tracing::warn!(
                key,
                "this setting changed but takes effect only after a restart"
            );
        }
    }
    shared.swap(Engine::build(loaded, &shared.instance).map_err(|e| vec![format!("{e:#}")])?);
    Ok(())
}
