//! What every HTTP handler reads: the store, the configuration in force, the
//! per-address limiter, the wake-ups that let a request start a job early,
//! and the clock the handlers take the time from. The daemon builds one,
//! shares it with its jobs, and swaps the configuration in on reload.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::engine::Engine;
use crate::store::Db;

use super::Limiter;

/// The state the HTTP handlers and the daemon's jobs share.
pub struct AppState {
    pub store: Db,
    engine: RwLock<Arc<Engine>>,
    /// Where the handlers take "now" from: the system clock in production,
    /// a fixed instant in tests.
    pub clock: Clock,
    pub wake_plan: Notify,
    pub wake_deliver: Notify,
    pub wake_inbound: Notify,
    pub wake_housekeeping: Notify,
    /// Routes and sends alerts and webhooks; a recorded answer wakes it
    /// at once, so an alert leaves within seconds.
    pub wake_notify: Notify,
    /// When the scheduler last woke delivery (Unix ms): readiness checks
    /// that it is still alive.
    heartbeat: AtomicI64,
    /// The delivery interval the scheduler was started with (a reload does
    /// not change it).
    deliver_every: Duration,
    pub metrics: Option<PrometheusHandle>,
    /// The per-address limit on the links in mail (fixed at start).
    pub limiter: Limiter,
    /// The name this instance claims under (fixed at start: the store
    /// holds it for this process).
    pub instance: String,
    pub stop: CancellationToken,
    /// The console overview's last reading of the figures.
    pub overview: super::console::Overview,
}

impl AppState {
    pub fn new(
        store: Db,
        engine: Engine,
        metrics: Option<PrometheusHandle>,
        instance: String,
        clock: Clock,
    ) -> Self {
        let settings = &engine.loaded.settings;
        let deliver_every = settings.schedule.deliver_every.as_std();
        let limiter = Limiter::new(&settings.http);
        Self {
            store,
            engine: RwLock::new(Arc::new(engine)),
            clock,
            wake_plan: Notify::new(),
            wake_deliver: Notify::new(),
            wake_inbound: Notify::new(),
            wake_housekeeping: Notify::new(),
            wake_notify: Notify::new(),
            heartbeat: AtomicI64::new(clock.now().timestamp_millis()),
            deliver_every,
            metrics,
            limiter,
            instance,
            stop: CancellationToken::new(),
            overview: super::console::Overview::default(),
        }
    }

    /// The configuration in force now. A pass keeps the one it started with.
    pub fn engine(&self) -> Arc<Engine> {
        // A poisoned lock only means a panic elsewhere mid-swap, and a swap
        // is one assignment: the value inside is whole.
        Arc::clone(&self.engine.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Puts a reloaded configuration in force for every later request and pass.
    pub fn swap(&self, engine: Engine) {
        use crate::store::Signals;
        self.store.listen(engine.notifier.routes().interest());
        *self.engine.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(engine);
    }

    /// The scheduler is alive: it has just woken delivery.
    pub fn beat(&self) {
        self.heartbeat
            .store(self.clock.now().timestamp_millis(), Ordering::Relaxed);
    }

    /// Whether the scheduler has woken delivery recently enough.
    pub fn scheduler_alive(&self) -> bool {
        let allowed = self.deliver_every * 3 + Duration::from_secs(10);
        let last = self.heartbeat.load(Ordering::Relaxed);
        self.clock.now().timestamp_millis() - last <= allowed.as_millis() as i64
    }
}
