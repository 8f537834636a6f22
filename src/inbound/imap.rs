//! Polling a reply mailbox over IMAP (`[inbound.imap]`): every message not
//! yet taken is fetched, taken (classified, matched, recorded), then marked
//! with the `$TendTaken` keyword and `\Seen`. Marking follows recording, so
//! a crash between the two fetches the message again next time, and the
//! store, which keeps each message once, records nothing twice. A person
//! reading the mailbox in a mail client does not hide mail from tend: the
//! search is for the keyword, not for unread mail.

use std::sync::Arc;
use std::time::Duration;

use async_imap::Client;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::{Rules, take};
use crate::config::secret::Secret;
use crate::config::settings::{Imap, Tls};
use crate::store::{self, InboundRecorded, Outbox, Responses, Source};

/// The keyword tend sets on every message it has taken.
pub const TAKEN: &str = "$TendTaken";

/// Messages fetched per round trip.
const BATCH: usize = 50;

/// How long connecting and each command may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a poll stopped. The messages taken before it stay taken.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("cannot reach the IMAP server {0}: {1}; check inbound.imap.host and port")]
    Connect(String, String),
    #[error("the IMAP server {0} did not answer within {1:?}; check it is up")]
    Timeout(String, Duration),
    #[error(
        "the IMAP server refused the login of {0}: {1}; check inbound.imap.username and the password"
    )]
    Login(String, String),
    #[error("the IMAP server has no mailbox {0:?}: {1}; check inbound.imap.mailbox")]
    Mailbox(String, String),
    #[error("IMAP: {0}")]
    Protocol(String),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Polled {
    pub taken: u64,
    /// Already taken before (a crash between recording and marking).
    pub duplicates: u64,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

/// Takes every message in the mailbox not yet taken.
pub async fn poll(
    imap: &Imap,
    password: Option<&Secret>,
    store: &(impl Responses + Outbox),
    rules: &Rules<'_>,
    now: DateTime<Utc>,
) -> Result<Polled, PollError> {
    let server = format!("{}:{}", imap.host, imap.port);
    let client = within(&server, connect(imap)).await??;
    let password = password.map(Secret::expose).unwrap_or_default();
    let mut session = within(&server, client.login(&imap.username, password))
        .await?
        .map_err(|(e, _)| PollError::Login(imap.username.clone(), e.to_string()))?;
    within(&server, session.select(&imap.mailbox))
        .await?
        .map_err(|e| PollError::Mailbox(imap.mailbox.clone(), e.to_string()))?;
    let protocol = |e: async_imap::error::Error| PollError::Protocol(e.to_string());
    let mut uids: Vec<u32> = within(&server, session.uid_search(format!("UNKEYWORD {TAKEN}")))
        .await?
        .map_err(protocol)?
        .into_iter()
        .collect();
    uids.sort_unstable();
    let mut polled = Polled::default();
    for batch in uids.chunks(BATCH) {
        let set = batch
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let fetched: Vec<(u32, Vec<u8>)> = {
            let stream = within(&server, session.uid_fetch(&set, "(UID BODY.PEEK[])"))
                .await?
                .map_err(protocol)?;
            let all: Vec<_> = within(&server, stream.collect::<Vec<_>>()).await?;
            let mut out = Vec::new();
            for fetch in all {
                let fetch = fetch.map_err(protocol)?;
                if let (Some(uid), Some(body)) = (fetch.uid, fetch.body()) {
                    out.push((uid, body.to_vec()));
                }
            }
            out
        };
        for (uid, raw) in fetched {
            match take(store, rules, &raw, Source::Imap, now).await?.recorded {
                InboundRecorded::Duplicate => polled.duplicates += 1,
                InboundRecorded::Kept { .. } => polled.taken += 1,
            }
            let marked = within(
                &server,
                session.uid_store(uid.to_string(), format!("+FLAGS ({TAKEN} \\Seen)")),
            )
            .await?
            .map_err(protocol)?;
            let _: Vec<_> = within(&server, marked.collect::<Vec<_>>()).await?;
        }
    }
    // The messages are taken and marked; a failed goodbye changes nothing.
    let _ = within(&server, session.logout()).await;
    Ok(polled)
}

/// `what`, unless the server takes longer than [`TIMEOUT`].
async fn within<F: std::future::Future>(server: &str, what: F) -> Result<F::Output, PollError> {
    tokio::time::timeout(TIMEOUT, what)
        .await
        .map_err(|_| PollError::Timeout(server.to_owned(), TIMEOUT))
}

/// A client past the greeting (and past STARTTLS when configured).
async fn connect(imap: &Imap) -> Result<Client<Box<dyn Io>>, PollError> {
    let server = format!("{}:{}", imap.host, imap.port);
    let fail = |e: &dyn std::fmt::Display| PollError::Connect(server.clone(), e.to_string());
    let tcp = TcpStream::connect((imap.host.as_str(), imap.port))
        .await
        .map_err(|e| fail(&e))?;
    let stream: Box<dyn Io> = match imap.tls {
        Tls::Tls => Box::new(tls(&imap.host, tcp).await.map_err(|e| fail(&e))?),
        Tls::None | Tls::Starttls => Box::new(tcp),
    };
    let mut client = Client::new(stream);
    client
        .read_response()
        .await
        .map_err(|e| fail(&e))?
        .ok_or_else(|| fail(&"it closed the connection before its greeting"))?;
    if imap.tls != Tls::Starttls {
        return Ok(client);
    }
    client
        .run_command_and_check_ok("STARTTLS", None)
        .await
        .map_err(|e| fail(&e))?;
    let plain = client.into_inner();
    let secured: Box<dyn Io> = Box::new(tls(&imap.host, plain).await.map_err(|e| fail(&e))?);
    Ok(Client::new(secured))
}

async fn tls<S: AsyncRead + AsyncWrite + Unpin>(
    host: &str,
    stream: S,
) -> std::io::Result<tokio_rustls::client::TlsStream<S>> {
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A certificate the system store holds but rustls cannot read is
        // skipped, as every TLS client does.
        let _ = roots.add(cert);
    }
    let config = tokio_rustls::rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
}
