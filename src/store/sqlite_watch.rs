//! Watching the SQLite write connection as the pool hands it back: whether
//! it can serve another write (a full disk can leave it believing a
//! transaction is still open), and whether a write committed on it (which
//! ends a run of write failures in [`WriteHealth`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use sqlx::{Connection, SqliteConnection};

use super::WriteHealth;

/// What the write connection did between two of its releases to the pool,
/// as SQLite's own rollback hook and change counter tell it: the proof that
/// a write committed, whichever store method made it.
#[derive(Debug, Default)]
pub(super) struct WriterWatch {
    /// A transaction rolled back since the last release: by a ROLLBACK, or
    /// by SQLite itself after a statement or a COMMIT failed.
    rolled_back: AtomicBool,
    /// `sql::TOTAL_CHANGES_SQLITE` at the last release.
    changes: AtomicI64,
}

impl WriterWatch {
    /// Watches a new write connection from its first statement.
    pub(super) async fn attach(
        self: Arc<Self>,
        conn: &mut SqliteConnection,
    ) -> Result<(), sqlx::Error> {
        self.rolled_back.store(false, Ordering::Release);
        self.changes.store(0, Ordering::Release);
        let watch = Arc::clone(&self);
        conn.lock_handle()
            .await?
            .set_rollback_hook(move || watch.rolled_back.store(true, Ordering::Release));
        Ok(())
    }

    /// Whether the write connection coming back to the pool can serve
    /// another write; records a committed write in `health`.
    ///
    /// On a full disk SQLite rolls a transaction back by itself (a failed
    /// COMMIT always, a failed statement often). sqlx does not see it: its
    /// ROLLBACK on drop then fails ("no transaction is active") and the
    /// connection keeps counting one open transaction, so every later
    /// `BEGIN IMMEDIATE` on it fails with "attempted to call begin_with at
    /// non-zero transaction depth" until restart. Such a connection is
    /// closed here; the next write opens a fresh one.
    pub(super) async fn release(
        &self,
        conn: &mut SqliteConnection,
        health: &WriteHealth,
    ) -> Result<bool, sqlx::Error> {
        // Queued behind the ROLLBACK a dropped transaction sent, so the
        // transaction depth read below is the one that ROLLBACK left.
        let changes: i64 = sqlx::query_scalar(super::sql::TOTAL_CHANGES_SQLITE)
            .fetch_one(&mut *conn)
            .await?;
        if conn.is_in_transaction() {
            tracing::warn!(
                "closing the SQLite write connection: SQLite rolled back a failed transaction by itself; the next write opens a new connection"
            );
            return Ok(false);
        }
        let rolled_back = self.rolled_back.swap(false, Ordering::AcqRel);
        let before = self.changes.swap(changes, Ordering::AcqRel);
        // A transaction that changed rows and did not roll back committed.
        // One that changed nothing proves nothing: on a full disk an empty
        // commit succeeds.
        if changes > before && !rolled_back {
            health.committed();
        }
        Ok(true)
    }
}
