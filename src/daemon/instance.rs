//! One `tend run` per SQLite file. SQLite has no row claims that several
//! processes could share the way PostgreSQL's `SKIP LOCKED` does, so a
//! second daemon on the same file is refused at start, with a message that
//! names the file and what to do. The lock is the OS's advisory file lock on
//! `FILE.lock`: it ends with the process, however the process ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

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
}
