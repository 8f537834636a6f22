//! What tend tells systemd (`Type=notify`): ready, reloading, stopping, a
//! status line, watchdog pings, and the outcome of each reload in
//! `$RUNTIME_DIRECTORY/reload` for the unit's `ExecReload=` to wait on.
//! Outside systemd (no `NOTIFY_SOCKET`, no `RUNTIME_DIRECTORY`) every call
//! is a no-op.

use std::path::Path;
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

/// The file in `$RUNTIME_DIRECTORY` that tells a reload's outcome.
///
/// systemd 252 (Debian 12, RHEL 9) has no `Type=notify-reload`. Under
/// `Type=notify` it ends a reload when the `ExecReload=` command exits and
/// ignores a READY=1 that comes meanwhile, so the shipped unit's command
/// sends SIGHUP and waits for this file to change.
pub const RELOAD_FILE: &str = "reload";

/// Records that reload number `reload` of this process finished: one line,
/// `PID N ok` or `PID N rejected`. The process id keeps a line from a
/// previous run from passing for this one's.
pub fn reload_finished(runtime_dir: Option<&Path>, reload: u64, applied: bool) {
    let Some(dir) = runtime_dir else {
        return;
    };
    let outcome = if applied { "ok" } else { "rejected" };
    let line = format!("{} {reload} {outcome}\n", std::process::id());
    // Written aside, then renamed over: a reader sees the old line or the
    // new one, never half of one.
    let aside = dir.join(format!(".{RELOAD_FILE}.new"));
    let written =
        std::fs::write(&aside, line).and_then(|()| std::fs::rename(&aside, dir.join(RELOAD_FILE)));
    if let Err(e) = written {
        tracing::warn!(
            error = %e,
            dir = %dir.display(),
            "cannot record the reload's outcome; `systemctl reload` waits for it until its timeout"
        );
    }
}
