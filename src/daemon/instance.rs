//! Who this instance is, and what it takes over when it starts.
//!
//! One `tend run` per SQLite file. SQLite has no row claims that several
//! processes could share the way PostgreSQL's `SKIP LOCKED` does, so a
//! second daemon on the same file is refused at start, with a message that
//! names the file and what to do. The lock is the OS's advisory file lock on
//! `FILE.lock`: it ends with the process, however the process ends.
//!
//! Each daemon has a stable name (`instance.name`, by default the host name
//! and the systemd unit's instance) that it claims messages under, held
//! while it runs (on PostgreSQL by an advisory lock: two live instances
//! never share one; on SQLite the file lock allows one daemon at all).
//!
//! Holding the name proves the earlier process of that name gone, so a
//! starting instance releases at once what that process had claimed
//! ([`resume`]) instead of waiting for the leases to run out: messages it
//! was sending become `unknown`, those it had claimed but not started are
//! sent. One-shot commands claim under names of their own, so a starting
//! daemon never takes what they are sending.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::store::NameHold;
use crate::store::{Outbox, Signals};

/// Held for the daemon's lifetime; dropping it releases the lock.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another tend run is already using {} (its lock is {}); stop it first, or use PostgreSQL (database.url = \"postgres://…\") to run several instances",
        database.display(), lock.display()
    )]
    Taken { database: PathBuf, lock: PathBuf },
    #[error("cannot create the lock file {}: {source}; make its folder writable", lock.display())]
    Io {
        lock: PathBuf,
        source: std::io::Error,
    },
}

/// Takes the lock for the SQLite database at `database`.
pub fn lock(database: &Path) -> Result<InstanceLock, LockError> {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    let lock = PathBuf::from(name);
    let io = |source| LockError::Io {
        lock: lock.clone(),
        source,
    };
    if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(LockError::Taken {
                database: database.to_owned(),
                lock,
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    // For a person looking at the file: which process holds it.
    let _ = file.set_len(0);
    let _ = writeln!(file, "{}", std::process::id());
    Ok(InstanceLock { _file: file })
}

/// How long a starting instance waits for its name to come free. The name
/// of an instance whose machine died takes longer (about 25 s, see
/// `KEEP_NAME_ALIVE_POSTGRES`): the unit's `Restart=` tries again.
const NAME_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// This instance's name on its claims: `instance.name` when set, else the
/// host name plus the systemd unit's instance (`web1/eu` for
/// `tend@eu.service` on `web1`), the same after every restart.
pub fn name(configured: &str) -> String {
    let configured = configured.trim();
    if !configured.is_empty() {
        return configured.to_owned();
    }
    let host = crate::config::hostname();
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    match unit_instance(&cgroup) {
        Some(instance) => format!("{host}/{instance}"),
        None => host,
    }
}

/// The instance of the templated systemd unit this process runs in (`eu`
/// for `tend@eu.service`), read from `/proc/self/cgroup`.
fn unit_instance(cgroup: &str) -> Option<&str> {
    cgroup
        .lines()
        .filter_map(|line| line.rsplit('/').next())
        .filter_map(|unit| unit.strip_suffix(".service"))
        .find_map(|unit| unit.split_once('@').map(|(_, instance)| instance))
        .filter(|instance| !instance.is_empty())
}

/// Takes this instance's place in the store: holds its `name`, then
/// releases what its dead predecessor left claimed under that name. Only
/// those: a one-shot command (`tend incident open`, `tend tick`) claims
/// under a name of its own, on SQLite too (the daemon's file lock does not
/// stop it), and may be sending right now; its claims run out with their
/// lease if it died. `resend` is `delivery.resend_unknown`.
pub async fn resume(
    store: &(impl Outbox + Signals),
    name: &str,
    resend: bool,
) -> anyhow::Result<NameHold> {
    // A predecessor that died a moment ago may still hold the name until
    // the server notices its connection closed.
    let deadline = std::time::Instant::now() + NAME_WAIT;
    let held = loop {
        match store.hold_name(name).await? {
            Some(hold) => break Some(hold),
            None if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            None => break None,
        }
    };
    let Some(hold) = held else {
        anyhow::bail!(
            "another running tend instance on this database is named {name:?}; give each instance its own instance.name (or TEND__INSTANCE__NAME), or stop the other one first: two instances under one name would release each other's claims (if the machine that instance ran on died, PostgreSQL frees its name within about 30 seconds: start again then)"
        );
    };
    let released = store.release_claims(Some(name), Utc::now(), resend).await?;
    if released != Default::default() {
        tracing::warn!(
            interrupted = released.interrupted,
            waiting = released.waiting,
            resend,
            instance = name,
            "released what the previous run left claimed: sends it had started are {}, the rest goes now",
            if resend { "sent again" } else { "unknown" }
        );
    }
    let notes = store.release_owned_notifications(name, Utc::now()).await?;
    if notes > 0 {
        tracing::warn!(
            count = notes,
            instance = name,
            "released the alerts and webhook deliveries the previous run left claimed: webhooks go again, alert mail it was sending is unknown"
        );
    }
    Ok(hold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_until_the_first_ends() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("data/tend.db");
        let first = lock(&db).unwrap();
        let err = lock(&db).unwrap_err().to_string();
        assert!(err.contains("another tend run is already using"), "{err}");
        assert!(err.contains("tend.db"), "{err}");
        drop(first);
        lock(&db).unwrap();
    }

    #[test]
    fn the_unit_instance_comes_from_the_cgroup_of_a_templated_unit() {
        let v2 = "0::/system.slice/system-tend.slice/tend@eu.service\n";
        assert_eq!(unit_instance(v2), Some("eu"));
        let v1 = "12:pids:/\n1:name=systemd:/system.slice/system-tend.slice/tend@us\\x2d1.service\n0::/\n";
        assert_eq!(unit_instance(v1), Some("us\\x2d1"));
        assert_eq!(unit_instance("0::/system.slice/tend.service\n"), None);
        assert_eq!(
            unit_instance(
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/tend.service\n"
            ),
            None
        );
        assert_eq!(unit_instance(""), None);
        assert_eq!(name(" web1 "), "web1");
    }
}
