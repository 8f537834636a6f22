//! Whether the store takes writes: marked failing when one fails for want
//! of disk (full, or an I/O error), and well again when one commits. A read
//! answering is no proof: on a full disk every read succeeds while every
//! write fails, so `/readyz` asks this too.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Why writes fail, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFailure {
    /// The first failure of this run of failures (wall time: it is shown to
    /// operators, never used to decide what is due).
    pub since: DateTime<Utc>,
    /// The latest failure, as a person reads it.
    pub reason: String,
}

/// Shared by a store's connections and whoever reports readiness.
#[derive(Debug, Default)]
pub struct WriteHealth {
    failure: Mutex<Option<WriteFailure>>,
}

impl WriteHealth {
    /// A write failed for a reason of the disk's. Logged once when writes
    /// start failing; later failures only update the reason.
    pub fn failed(&self, reason: &impl std::fmt::Display) {
        let reason = reason.to_string();
        let mut failure = self.lock();
        match failure.as_mut() {
            Some(known) => known.reason = reason,
            None => {
                tracing::error!(
                    error = %reason,
                    "writes to the store fail; /readyz says not ready until one succeeds again"
                );
                *failure = Some(WriteFailure {
                    since: Utc::now(),
                    reason,
                });
            }
        }
    }

    /// A write committed: the store takes writes again.
    pub fn committed(&self) {
        if let Some(failure) = self.lock().take() {
            tracing::info!(
                failing_since = %failure.since.to_rfc3339(),
                "writes to the store succeed again"
            );
        }
    }

    /// The current run of failures, if writes are failing.
    pub fn failure(&self) -> Option<WriteFailure> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<WriteFailure>> {
        // A panic while holding the lock left a whole value behind: one
        // assignment is all that happens under it.
        self.failure.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_ends_a_run_of_failures_which_keeps_its_start() {
        let health = WriteHealth::default();
        assert_eq!(health.failure(), None);
        health.failed(&"first");
        let since = health.failure().unwrap().since;
        health.failed(&"second");
        let failure = health.failure().unwrap();
        assert_eq!((failure.since, failure.reason.as_str()), (since, "second"));
        health.committed();
        assert_eq!(health.failure(), None);
    }
}
