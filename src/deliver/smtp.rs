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
//! Round trips per message: when the server offers PIPELINING (RFC 2920),
//! `MAIL`, `RCPT` and `DATA` go in one write and their three replies are read
//! in order, so a message costs two round trips (the group, then the body)
//! instead of four. A reused connection is not reset with `RSET` first: a
//! connection only goes back to the pool after a transaction that ended
//! with a 2xx reply, which leaves the session clean (RFC 5321 §4.1.1.4).
//! Any error drops the connection, so the next message starts on a fresh
//! one. A reused connection that turns out to be dead (the server timed it
//! out while idle) fails before the server took any part of the message, so
//! the message is tried again at once on a new connection: it cannot have
//! been delivered, and it is not deferred for the backoff because of a
//! stale socket.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
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

/// How long an idle connection is kept. Servers close idle sessions after
/// a few minutes (Postfix: 300 s); one idle for longer than this is closed
/// by tend first rather than found dead.
const IDLE_MAX: Duration = Duration::from_secs(60);

/// One open SMTP session and what its server offers.
struct Session {
    conn: AsyncSmtpConnection,
    pipelining: bool,
    /// When its last transaction ended.
    idle_since: Instant,
}

/// Where a transaction failed: at `MAIL`, before the server took any part
/// of the message (a dead connection, a 4xx such as 421), or anywhere else.
enum Failure {
    AtMail(SendError),
    Final(SendError),
}

fn at_mail(e: lettre::transport::smtp::Error) -> Failure {
    match classify(&e) {
        permanent @ SendError::Permanent { .. } => Failure::Final(permanent),
        transient => Failure::AtMail(transient),
    }
}

fn after_mail(e: lettre::transport::smtp::Error) -> Failure {
    Failure::Final(classify(&e))
}

/// A message this server can never take as it is.
fn unsendable(detail: &str) -> Failure {
    Failure::Final(SendError::Permanent {
        code: 0,
        detail: detail.to_owned(),
    })
}

/// Several commands written as one (RFC 2920 command pipelining).
struct Group(String);

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Up to `pool_size` connections; idle ones are kept for the next message.
pub struct SmtpPool {
    settings: SmtpSettings,
    idle: Mutex<Vec<Session>>,
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

/// Whether an EHLO reply lists `keyword` among the server's extensions.
fn offers(ehlo: &Response, keyword: &str) -> bool {
    ehlo.message().skip(1).any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
    })
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

    /// A new session: TCP with TCP_NODELAY, greeting and EHLO, then TLS
    /// and authentication as configured.
    async fn connect(&self) -> Result<Session, SendError> {
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
        // lettre keeps only the extensions it knows, and PIPELINING is not
        // one of them: ask again (allowed at any time, RFC 5321 §4.1.4), and
        // before AUTH, so the session's authentication is never in question.
        let ehlo = conn
            .command(Ehlo::new(hello.clone()))
            .await
            .map_err(|e| classify(&e))?;
        let pipelining = offers(&ehlo, "PIPELINING");
        if let Some((user, password)) = &s.credentials {
            conn.auth(
                &[Mechanism::Plain, Mechanism::Login],
                &Credentials::new(user.clone(), password.clone()),
            )
            .await
            .map_err(|e| classify(&e))?;
        }
        Ok(Session {
            conn,
            pipelining,
            idle_since: Instant::now(),
        })
    }

    /// An idle session that has not been idle too long, else a new one.
    /// Whether the session was reused comes with it.
    async fn checkout(&self) -> Result<(Session, bool), SendError> {
        loop {
            let reused = self.idle.lock().await.pop();
            let Some(mut session) = reused else {
                let fresh = self.within("connecting", self.connect()).await?;
                return Ok((fresh, false));
            };
            if session.idle_since.elapsed() < IDLE_MAX && !session.conn.has_broken() {
                return Ok((session, true));
            }
            session.conn.abort().await;
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
        let (mut session, reused) = self.checkout().await?;
        let mut result = self.attempt(&mut session, from, to, bytes).await;
        if reused && matches!(result, Err(Failure::AtMail(_))) {
            // Nothing of the message reached the server: a new connection
            // gets it, rather than a retry minutes later.
            session = self.within("connecting", self.connect()).await?;
            result = self.attempt(&mut session, from, to, bytes).await;
        }
        match result {
            Ok(response) => {
                session.idle_since = Instant::now();
                self.idle.lock().await.push(session);
                Ok(Accepted {
                    code: Some(u16::from(response.code())),
                    reply: format!(
                        "{} {}",
                        u16::from(response.code()),
                        response.message().collect::<Vec<_>>().join(" ")
                    ),
                })
            }
            Err(Failure::AtMail(e) | Failure::Final(e)) => Err(e),
        }
    }

    /// One transaction within the timeout; on any failure the session is
    /// closed, so it never goes back to the pool.
    async fn attempt(
        &self,
        session: &mut Session,
        from: &Address,
        to: &Address,
        bytes: &[u8],
    ) -> Result<Response, Failure> {
        // The whole transaction, generously: a big message on a slow link.
        let limit = self.settings.timeout * 4;
        let result = match tokio::time::timeout(limit, transaction(session, from, to, bytes)).await
        {
            Ok(result) => result,
            Err(_) => Err(Failure::Final(transient(format!(
                "timed out during the SMTP transaction with {}:{}",
                self.settings.host, self.settings.port
            )))),
        };
        if result.is_err() {
            session.conn.abort().await;
        }
        result
    }

    /// Says QUIT on every idle connection.
    pub async fn close(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().await);
        for mut session in idle {
            let _ = tokio::time::timeout(Duration::from_secs(2), session.conn.quit()).await;
        }
    }
}

/// `MAIL`, `RCPT`, `DATA` (pipelined when the server allows) and the body.
async fn transaction(
    session: &mut Session,
    from: &Address,
    to: &Address,
    bytes: &[u8],
) -> Result<Response, Failure> {
    let conn = &mut session.conn;
    let info = conn.server_info();
    let mut options = Vec::new();
    // As lettre's own `send`: SMTPUTF8 for non-ASCII addresses, 8BITMIME
    // for a non-ASCII body, or a refusal if the server offers neither.
    if !AsRef::<str>::as_ref(from).is_ascii() || !AsRef::<str>::as_ref(to).is_ascii() {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            return Err(unsendable(
                "the address is not ASCII and the server does not support SMTPUTF8",
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !bytes.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            return Err(unsendable(
                "the message is not ASCII and the server does not support 8BITMIME",
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let mail = Mail::new(Some(from.clone()), options);
    let rcpt = Rcpt::new(to.clone(), vec![]);
    if session.pipelining {
        let group = Group(format!("{mail}{rcpt}{Data}"));
        // Every reply is read, even after a refusal, so that what is
        // reported is the first refusal.
        let mail = conn.command(group).await;
        let rcpt = conn.read_response().await;
        let data = conn.read_response().await;
        mail.map_err(at_mail)?;
        rcpt.map_err(after_mail)?;
        data.map_err(after_mail)?;
    } else {
        conn.command(mail).await.map_err(at_mail)?;
        conn.command(rcpt).await.map_err(after_mail)?;
        conn.command(Data).await.map_err(after_mail)?;
    }
    match std::str::from_utf8(bytes) {
        // The body and its end in one write, not lettre's two (one TCP
        // segment each), dot-stuffed as lettre's codec does it.
        Ok(text) => conn.command(Content(text)).await,
        Err(_) => conn.message(bytes).await,
    }
    .map_err(after_mail)
}

/// A message's content as the `DATA` stage sends it (RFC 5321 §4.5.2):
/// a `.` that begins a line (at the start, or after CRLF) doubled, then
/// CRLF `.` CRLF.
struct Content<'a>(&'a str);

impl fmt::Display for Content<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        if rest.starts_with('.') {
            f.write_str(".")?;
        }
        while let Some(at) = rest.find("\r\n.") {
            f.write_str(&rest[..at + 3])?;
            f.write_str(".")?;
            rest = &rest[at + 3..];
        }
        f.write_str(rest)?;
        f.write_str("\r\n.\r\n")
    }
}
