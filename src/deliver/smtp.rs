//! SMTP out: a pool of long-lived connections to one server.
//!
//! Why not lettre's pooled `AsyncSmtpTransport` as it is: lettre writes a
//! message's body and its terminating `<CRLF>.<CRLF>` as two writes before
//! reading the reply. On a socket with Nagle's algorithm on, the second,
//! small write waits for the ACK of the first, and the server delays that
//! ACK (up to 40 ms on Linux) — about 44 ms per message on loopback, 22
//! messages a second per connection. tend opens each TCP connection itself
//! with `TCP_NODELAY` and hands it to lettre's SMTP client, keeping lettre's
//! protocol handling (EHLO, STARTTLS, AUTH, dot-stuffing, reply parsing).
//!
//! Correctness between messages: a reused connection is reset with `RSET`
//! first, and any error drops the connection (lettre closes it), so the
//! next message starts on a fresh one.

use std::sync::Arc;
use std::time::Duration;

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::Rset;
use lettre::transport::smtp::extension::ClientId;
use tokio::sync::{Mutex, Semaphore};

use super::transport::{Accepted, SendError};
use crate::config::settings::Tls;

/// How to reach the server.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub credentials: Option<(String, String)>,
    pub pool_size: u32,
    pub timeout: Duration,
    /// The name tend gives in EHLO.
    pub hello: String,
}

/// Up to `pool_size` connections; idle ones are kept for the next message.
pub struct SmtpPool {
    settings: SmtpSettings,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    slots: Arc<Semaphore>,
}

fn transient(detail: String) -> SendError {
    SendError::Transient { code: None, detail }
}

/// A lettre error as tend's: 5xx permanent, everything else transient.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let code = e.status().map(u16::from);
    match code {
        Some(code) if e.is_permanent() => SendError::Permanent {
            code,
            detail: e.to_string(),
        },
        _ => SendError::Transient {
            code,
            detail: e.to_string(),
        },
    }
}

impl SmtpPool {
    pub fn new(settings: SmtpSettings) -> Self {
        let slots = Arc::new(Semaphore::new(settings.pool_size.max(1) as usize));
        Self {
            settings,
            idle: Mutex::new(Vec::new()),
            slots,
        }
    }

    async fn within<T>(
        &self,
        what: &str,
        work: impl Future<Output = Result<T, SendError>>,
    ) -> Result<T, SendError> {
        match tokio::time::timeout(self.settings.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(transient(format!(
                "timed out after {:?} while {what} ({}:{})",
                self.settings.timeout, self.settings.host, self.settings.port
            ))),
        }
    }

    /// A new connection: TCP with TCP_NODELAY, greeting and EHLO, then TLS
    /// and authentication as configured.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let s = &self.settings;
        let hello = ClientId::Domain(s.hello.clone());
        let tls = || {
            TlsParameters::new(s.host.clone())
                .map_err(|e| transient(format!("cannot set up TLS for {}: {e}", s.host)))
        };
        let mut conn = match s.tls {
            Tls::Tls => AsyncSmtpConnection::connect_tokio1(
                (s.host.as_str(), s.port),
                Some(s.timeout),
                &hello,
                Some(tls()?),
                None,
            )
            .await
            .map_err(|e| classify(&e))?,
            Tls::None | Tls::Starttls => {
                let stream = tokio::net::TcpStream::connect((s.host.as_str(), s.port))
                    .await
                    .map_err(|e| {
                        transient(format!("cannot connect to {}:{}: {e}", s.host, s.port))
                    })?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| transient(format!("cannot set TCP_NODELAY: {e}")))?;
                let mut conn =
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello)
                        .await
                        .map_err(|e| classify(&e))?;
                if s.tls == Tls::Starttls {
                    if !conn.can_starttls() {
                        return Err(transient(format!(
                            "{}:{} does not offer STARTTLS; set mail.smtp.tls = \"none\" or \"tls\" to match the server",
                            s.host, s.port
                        )));
                    }
                    conn.starttls(tls()?, &hello)
                        .await
                        .map_err(|e| classify(&e))?;
                }
                conn
            }
        };
        if let Some((user, password)) = &s.credentials {
            conn.auth(
                &[Mechanism::Plain, Mechanism::Login],
                &Credentials::new(user.clone(), password.clone()),
            )
            .await
            .map_err(|e| classify(&e))?;
        }
        Ok(conn)
    }

    /// An idle connection that still answers (after `RSET`), or a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, SendError> {
        loop {
            let reused = self.idle.lock().await.pop();
            let Some(mut conn) = reused else {
                return self.within("connecting", self.connect()).await;
            };
            let reset = tokio::time::timeout(self.settings.timeout, conn.command(Rset)).await;
            if matches!(reset, Ok(Ok(_))) && !conn.has_broken() {
                return Ok(conn);
            }
            // A connection the server closed while idle: try the next one.
            conn.abort().await;
        }
    }

    /// Sends one message to one recipient.
    pub async fn send(
        &self,
        from: &Address,
        to: &Address,
        bytes: &[u8],
    ) -> Result<Accepted, SendError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| transient("the SMTP pool is closed".into()))?;
        let mut conn = self.checkout().await?;
        let envelope = Envelope::new(Some(from.clone()), vec![to.clone()]).map_err(|e| {
            SendError::Permanent {
                code: 0,
                detail: format!("bad envelope: {e}"),
            }
        })?;
        let sent = tokio::time::timeout(
            // The whole transaction, generously: a big message on a slow link.
            self.settings.timeout * 4,
            conn.send(&envelope, bytes),
        )
        .await;
        match sent {
            Ok(Ok(response)) => {
                let reply = format!(
                    "{} {}",
                    u16::from(response.code()),
                    response.message().collect::<Vec<_>>().join(" ")
                );
                if !conn.has_broken() {
                    self.idle.lock().await.push(conn);
                }
                Ok(Accepted {
                    code: Some(u16::from(response.code())),
                    reply,
                })
            }
            // lettre has already closed the connection on an error.
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => {
                conn.abort().await;
                Err(transient(format!(
                    "timed out during the SMTP transaction with {}:{}",
                    self.settings.host, self.settings.port
                )))
            }
        }
    }

    /// Says QUIT on every idle connection.
    pub async fn close(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().await);
        for mut conn in idle {
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.quit()).await;
        }
    }
}
