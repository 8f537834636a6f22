//! What tend tells systemd (`Type=notify-reload`): ready, reloading,
//! stopping, a status line, and watchdog pings. Outside systemd (no
//! `NOTIFY_SOCKET`) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Serving: the HTTP server listens and the jobs run.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload has begun; systemd wants the monotonic time with it.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[
            NotifyState::Reloading,
            now,
            NotifyState::Status("reloading"),
        ]),
        Err(e) => tracing::warn!(error = %e, "cannot read the monotonic clock for systemd"),
    }
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

pub fn status(line: &str) {
    send(&[NotifyState::Status(line)]);
}

/// How often to ping the watchdog: half the interval systemd set, if any.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|every| every / 2)
}

pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}
