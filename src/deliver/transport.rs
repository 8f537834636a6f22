//! Where composed messages go: an SMTP server (through [`super::smtp`]) or
//! a folder of `.eml` files (the default, so a fresh machine runs without a
//! mail server).

use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lettre::Address;

use super::smtp::SmtpPool;

/// What became of one message, and how long sending it took.
pub type Sent = (Result<Accepted, SendError>, Duration);

/// One message to send: the name of its file (for the file transport),
/// its recipient and its bytes.
pub struct Envelope<'a> {
    pub name: String,
    pub to: &'a Address,
    pub bytes: &'a [u8],
}

/// The server took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub code: Option<u16>,
    /// The server's reply, e.g. `250 2.0.0 Ok: queued as 4F2A`.
    pub reply: String,
}

/// The server or the network refused the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later: connection refused or lost, a timeout, a 4xx reply.
    #[error("{detail}")]
    Transient { code: Option<u16>, detail: String },
    /// Never try again: a 5xx reply.
    #[error("{detail}")]
    Permanent { code: u16, detail: String },
}

/// A configured transport.
pub enum Transport {
    File { dir: PathBuf },
    Smtp(SmtpPool),
}

impl Transport {
    /// Sends `bytes` from `from` (the envelope sender) to `to`. `name` names
    /// the file the file transport writes.
    pub async fn send(
        &self,
        name: &str,
        from: &Address,
        to: &Address,
        bytes: &[u8],
    ) -> Result<Accepted, SendError> {
        match self {
            Self::File { dir } => write_file(dir, name, bytes).await,
            Self::Smtp(pool) => pool.send(from, to, bytes).await,
        }
    }

    /// Sends each message from `from` and says what became of each, in
    /// order: over the SMTP pool's connections, or `at_once` files at a
    /// time.
    pub async fn send_all(
        &self,
        from: &Address,
        messages: &[Envelope<'_>],
        at_once: usize,
    ) -> Vec<Sent> {
        match self {
            Self::File { dir } => {
                let writes: Vec<_> = messages
                    .iter()
                    .map(|m| async move {
                        let started = Instant::now();
                        (write_file(dir, &m.name, m.bytes).await, started.elapsed())
                    })
                    .collect();
                futures_util::stream::iter(writes)
                    .buffered(at_once.max(1))
                    .collect()
                    .await
            }
            Self::Smtp(pool) => {
                let messages: Vec<(&Address, &[u8])> =
                    messages.iter().map(|m| (m.to, m.bytes)).collect();
                pool.send_all(from, &messages).await
            }
        }
    }

    /// Closes idle connections politely.
    pub async fn close(&self) {
        if let Self::Smtp(pool) = self {
            pool.close().await;
        }
    }
}

/// Writes `NAME.eml` whole or not at all: a reader never sees half a file.
/// The three file operations run together on one blocking thread.
async fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<Accepted, SendError> {
    let dir = dir.to_owned();
    let path = dir.join(format!("{name}.eml"));
    let partial = dir.join(format!(".{name}.eml.partial"));
    let bytes = bytes.to_vec();
    let written = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&partial, bytes))
            .and_then(|()| std::fs::rename(&partial, &path))
            .map(|()| path)
            .map_err(|e| format!("cannot write to {}: {e}", dir.display()))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    match written {
        Ok(path) => Ok(Accepted {
            code: None,
            reply: format!("written to {}", path.display()),
        }),
        Err(detail) => Err(SendError::Transient { code: None, detail }),
    }
}
