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
//! Round trips per message: [`SmtpPool::send_all`] gives a batch to up to
//! `pool_size` connections, each taking the next message not yet taken.
//! When the server offers PIPELINING (RFC 2920), a connection writes a
//! message's content together with the next message's `MAIL`, `RCPT` and
//! `DATA` (content may be the first command of a group, §3.1) and reads
//! their four replies in order: one round trip a message, and one write
//! and one wake-up for each side, instead of two. A reused connection is
//! not reset with `RSET` first: a connection only goes on after a
//! transaction that ended with a 2xx reply, which leaves the session
//! clean (RFC 5321 §4.1.1.4). Any error drops the connection, so the next
//! message starts on a fresh one. A message that cannot have been
//! delivered goes once more at once on a fresh connection, rather than
//! waiting minutes for the backoff: one whose `MAIL` a connection that
//! had carried mail refused (the server timed it out while idle), and one
//! whose content never left because the message before it failed and its
//! connection went. A message whose content was written is never sent
//! again by the pool.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::sync::{Mutex, Semaphore};

use super::transport::{Accepted, SendError, Sent};
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

/// How long a `QUIT` on a failed connection may wait for its reply.
const QUIT_WAIT: Duration = Duration::from_secs(2);

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

/// Up to `pool_size` connections; idle ones are kept for the next batch.
pub struct SmtpPool {
    settings: SmtpSettings,
    idle: Mutex<Vec<Session>>,
    slots: Arc<Semaphore>,
}

/// The messages of one [`SmtpPool::send_all`], shared by its connections:
/// each takes the next message not yet taken, so a slow connection holds
/// back only the message it is on.
struct Queue<'a> {
    from: &'a Address,
    messages: &'a [(&'a Address, &'a [u8])],
    next: AtomicUsize,
}

impl Queue<'_> {
    fn take(&self) -> Option<usize> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.messages.len()).then_some(i)
    }
}

/// A message whose `DATA` the server accepted: its content goes first in
/// the connection's next write.
struct Pending {
    index: usize,
    started: Instant,
}

/// What one message's turn on a connection came to.
enum Turn {
    /// Accepted, refused, or failed where trying again at once would not
    /// help: the message's outcome.
    Done(Result<Response, SendError>),
    /// Its `DATA` was accepted; its content waits for the next write.
    Waiting,
    /// It cannot have been delivered (refused at `MAIL`, or its content
    /// never left), and its connection is gone: worth once more on a
    /// fresh connection.
    Again(SendError),
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

fn accepted(response: &Response) -> Accepted {
    Accepted {
        code: Some(u16::from(response.code())),
        reply: format!(
            "{} {}",
            u16::from(response.code()),
            response.message().collect::<Vec<_>>().join(" ")
        ),
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
            let _ = tokio::time::timeout(QUIT_WAIT, session.conn.abort()).await;
        }
    }

    /// Sends one message to one recipient.
    pub async fn send(
        &self,
        from: &Address,
        to: &Address,
        bytes: &[u8],
    ) -> Result<Accepted, SendError> {
        let mut sent = self.send_all(from, &[(to, bytes)]).await;
        sent.pop()
            .map_or_else(|| Err(transient("nothing was sent".into())), |(r, _)| r)
    }

    /// Sends each message to its recipient over up to `pool_size`
    /// connections at once, and says what became of each, in order, and
    /// how long it took from when a connection took it to its last reply.
    pub async fn send_all(&self, from: &Address, messages: &[(&Address, &[u8])]) -> Vec<Sent> {
        let queue = Queue {
            from,
            messages,
            next: AtomicUsize::new(0),
        };
        let lanes = (self.settings.pool_size.max(1) as usize).min(messages.len());
        let done = futures_util::future::join_all((0..lanes).map(|_| self.lane(&queue))).await;
        let mut sent: Vec<Option<Sent>> = (0..messages.len()).map(|_| None).collect();
        for (i, outcome) in done.into_iter().flatten() {
            sent[i] = Some(outcome);
        }
        sent.into_iter()
            .map(|s| s.unwrap_or_else(|| (Err(transient("not sent".into())), Duration::ZERO)))
            .collect()
    }

    /// One connection's share of a batch: it takes messages until none is
    /// left, and puts its session back for the next batch when it ends
    /// well.
    async fn lane(&self, queue: &Queue<'_>) -> Vec<(usize, Sent)> {
        let mut done = Vec::new();
        let Ok(_slot) = self.slots.acquire().await else {
            while let Some(i) = queue.take() {
                let closed = transient("the SMTP pool is closed".into());
                done.push((i, (Err(closed), Duration::ZERO)));
            }
            return done;
        };
        let mut lane = Lane {
            pool: self,
            queue,
            session: None,
            proven: false,
            pending: None,
            done,
        };
        // A message to try once more, on a fresh connection.
        let mut again: Option<(usize, Instant)> = None;
        loop {
            let (next, retry) = match again.take() {
                Some((i, started)) => (Some((i, started)), true),
                None => (queue.take().map(|i| (i, Instant::now())), false),
            };
            let Some((index, started)) = next else {
                lane.finish().await;
                break;
            };
            match lane.turn(index, started, retry).await {
                Turn::Waiting => {}
                Turn::Done(result) => lane.settle(index, started, result),
                Turn::Again(e) if retry => lane.settle(index, started, Err(e)),
                Turn::Again(_) => again = Some((index, started)),
            }
        }
        if let Some(mut session) = lane.session.take() {
            session.idle_since = Instant::now();
            self.idle.lock().await.push(session);
        }
        lane.done
    }

    /// Says QUIT on every idle connection.
    pub async fn close(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().await);
        for mut session in idle {
            let _ = tokio::time::timeout(QUIT_WAIT, session.conn.quit()).await;
        }
    }
}

/// One connection working through a [`Queue`].
struct Lane<'p, 'q> {
    pool: &'p SmtpPool,
    queue: &'q Queue<'q>,
    session: Option<Session>,
    /// Whether the session has carried mail (a transaction, or commands
    /// through to `DATA`): one that fails at `MAIL` after that may have
    /// been closed by the server while idle.
    proven: bool,
    pending: Option<Pending>,
    done: Vec<(usize, Sent)>,
}

impl Lane<'_, '_> {
    fn settle(&mut self, index: usize, started: Instant, result: Result<Response, SendError>) {
        let result = result.map(|r| accepted(&r));
        self.done.push((index, (result, started.elapsed())));
    }

    /// Drops the session after an error: the next message starts on a
    /// fresh one. `QUIT` is said only where the server awaits a command:
    /// a server waiting for content would take it as content, and one that
    /// timed out may never answer.
    async fn drop_session(&mut self, quit: bool) {
        if let Some(mut session) = self.session.take()
            && quit
        {
            let _ = tokio::time::timeout(QUIT_WAIT, session.conn.abort()).await;
        }
    }

    /// Sends the waiting content, if any, on its own.
    async fn finish(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let Some(session) = self.session.as_mut() else {
            let lost =
                transient("the connection was lost before the message's content was sent".into());
            self.settle(pending.index, pending.started, Err(lost));
            return;
        };
        let bytes = self.queue.messages[pending.index].1;
        let limit = self.pool.settings.timeout * 4;
        let (reply, timed_out) =
            match tokio::time::timeout(limit, content(&mut session.conn, bytes)).await {
                Ok(reply) => (reply.map_err(|e| classify(&e)), false),
                Err(_) => (Err(self.timed_out()), true),
            };
        if reply.is_err() {
            self.drop_session(!timed_out).await;
        }
        self.settle(pending.index, pending.started, reply);
    }

    fn timed_out(&self) -> SendError {
        let s = &self.pool.settings;
        transient(format!(
            "timed out during the SMTP transaction with {}:{}",
            s.host, s.port
        ))
    }

    /// Message `index`'s turn: a session for it (a fresh one on a
    /// `retry`), then its transaction, begun after the waiting content
    /// where the server pipelines.
    async fn turn(&mut self, index: usize, started: Instant, retry: bool) -> Turn {
        // Content that is not UTF-8 goes on its own (lettre writes bytes
        // itself); composed mail is always UTF-8.
        if self
            .pending
            .as_ref()
            .is_some_and(|p| std::str::from_utf8(self.queue.messages[p.index].1).is_err())
        {
            self.finish().await;
        }
        if self.session.is_none() {
            let session = if retry {
                self.pool
                    .within("connecting", self.pool.connect())
                    .await
                    .map(|s| (s, false))
            } else {
                self.pool.checkout().await
            };
            match session {
                Ok((session, reused)) => {
                    self.session = Some(session);
                    self.proven = reused;
                }
                Err(e) => return Turn::Done(Err(e)),
            }
        }
        let (to, bytes) = self.queue.messages[index];
        let from = self.queue.from;
        let limit = self.pool.settings.timeout * 4;
        let pipelining = self.session.as_ref().is_some_and(|s| s.pipelining);
        if !pipelining {
            let session = self.session.as_mut().expect("a session was opened");
            let (result, timed_out) =
                match tokio::time::timeout(limit, transaction(session, from, to, bytes)).await {
                    Ok(result) => (result, false),
                    Err(_) => (Err(Failure::Final(self.timed_out())), true),
                };
            return self.after(result, timed_out).await;
        }
        let session = self.session.as_ref().expect("a session was opened");
        let (mail, rcpt) = match envelope(&session.conn, from, to, bytes) {
            Ok(envelope) => envelope,
            Err(failure) => {
                // The waiting content goes on its own before this
                // message's failure drops the connection.
                self.finish().await;
                return self.after(Err(failure), false).await;
            }
        };
        let pending = self.pending.take();
        let waiting = pending.as_ref().map(|p| self.queue.messages[p.index].1);
        let late = self.timed_out();
        let session = self.session.as_mut().expect("a session was opened");
        let replies = group(session, waiting, mail, rcpt, limit, &late).await;
        let content_failed = matches!(replies.content, Some(Err(_)));
        if let (Some(p), Some(reply)) = (pending, replies.content) {
            self.settle(p.index, p.started, reply);
        }
        match replies.next {
            // The content before it failed and the connection goes, so
            // its own content never left.
            Ok(()) if content_failed => {
                self.drop_session(false).await;
                Turn::Again(transient(
                    "the connection failed before the message's content was sent".into(),
                ))
            }
            Ok(()) => {
                self.proven = true;
                self.pending = Some(Pending { index, started });
                Turn::Waiting
            }
            Err(failure) => self.after(Err(failure), replies.unsettled).await,
        }
    }

    /// What a finished transaction (or a failed start of one) comes to;
    /// on any failure the session is closed, so it never goes back to the
    /// pool dirty: without `QUIT` when the server is `unsettled`.
    async fn after(&mut self, result: Result<Response, Failure>, unsettled: bool) -> Turn {
        let turn = match result {
            Ok(response) => {
                self.proven = true;
                return Turn::Done(Ok(response));
            }
            Err(Failure::AtMail(e)) if self.proven => Turn::Again(e),
            Err(Failure::AtMail(e) | Failure::Final(e)) => Turn::Done(Err(e)),
        };
        self.drop_session(!unsettled).await;
        turn
    }
}
/// `MAIL` and `RCPT` for one message, with the parameters its addresses
/// and body need: SMTPUTF8 for non-ASCII addresses, 8BITMIME for a
/// non-ASCII body (as lettre's own `send`), or a refusal if the server
/// offers neither.
fn envelope(
    conn: &AsyncSmtpConnection,
    from: &Address,
    to: &Address,
    bytes: &[u8],
) -> Result<(Mail, Rcpt), Failure> {
    let info = conn.server_info();
    let mut options = Vec::new();
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
    Ok((
        Mail::new(Some(from.clone()), options),
        Rcpt::new(to.clone(), vec![]),
    ))
}

/// One transaction command by command, for a server that does not
/// pipeline: `MAIL`, `RCPT`, `DATA`, then the content.
async fn transaction(
    session: &mut Session,
    from: &Address,
    to: &Address,
    bytes: &[u8],
) -> Result<Response, Failure> {
    let conn = &mut session.conn;
    let (mail, rcpt) = envelope(conn, from, to, bytes)?;
    conn.command(mail).await.map_err(at_mail)?;
    conn.command(rcpt).await.map_err(after_mail)?;
    conn.command(Data).await.map_err(after_mail)?;
    content(conn, bytes).await.map_err(after_mail)
}

/// What one pipelined group came to.
struct Replies {
    /// The reply to the content that went first, if any.
    content: Option<Result<Response, SendError>>,
    /// Whether the next message may send its content.
    next: Result<(), Failure>,
    /// The server may not be waiting for a command: it accepted `DATA`
    /// and waits for content, or it did not answer in time. A connection
    /// in that state is dropped without `QUIT`, which it would take as
    /// content or never answer.
    unsettled: bool,
}

/// The content of the message before (`waiting`, if any), then `MAIL`,
/// `RCPT` and `DATA` of the next, in one write (RFC 2920 §3.1: content
/// may be the first command of a group, `DATA` must be the last); then
/// every reply, in order, so that what is reported is the first refusal.
/// The content's reply is read under a timeout of its own, before the
/// others: a slow answer to the next message's commands never costs the
/// message before it the record of what became of it.
async fn group(
    session: &mut Session,
    waiting: Option<&[u8]>,
    mail: Mail,
    rcpt: Rcpt,
    limit: Duration,
    late: &SendError,
) -> Replies {
    let conn = &mut session.conn;
    let waiting = waiting.map(|w| std::str::from_utf8(w).expect("content sent alone unless UTF-8"));
    let mut text = waiting.map(|w| Content(w).to_string()).unwrap_or_default();
    text.push_str(&format!("{mail}{rcpt}{Data}"));
    let Ok(first) = tokio::time::timeout(limit, conn.command(Group(text))).await else {
        return Replies {
            content: waiting.map(|_| Err(late.clone())),
            next: Err(Failure::Final(late.clone())),
            unsettled: true,
        };
    };
    let (content, mail) = match waiting {
        Some(_) => (Some(first.map_err(|e| classify(&e))), None),
        None => (None, Some(first)),
    };
    let rest = tokio::time::timeout(limit, async {
        let mail = match mail {
            Some(mail) => mail,
            None => conn.read_response().await,
        };
        (mail, conn.read_response().await, conn.read_response().await)
    })
    .await;
    let Ok((mail, rcpt, data)) = rest else {
        return Replies {
            content,
            next: Err(Failure::Final(late.clone())),
            unsettled: true,
        };
    };
    let unsettled = data.is_ok();
    let next = mail
        .map_err(at_mail)
        .and_then(|_| rcpt.map_err(after_mail))
        .and_then(|_| data.map_err(after_mail))
        .map(drop);
    Replies {
        content,
        next,
        unsettled,
    }
}

/// A message's content, after the server's `354`, and the server's reply.
async fn content(
    conn: &mut AsyncSmtpConnection,
    bytes: &[u8],
) -> Result<Response, lettre::transport::smtp::Error> {
    match std::str::from_utf8(bytes) {
        // The body and its end in one write, not lettre's two (one TCP
        // segment each), dot-stuffed as lettre's codec does it.
        Ok(text) => conn.command(Content(text)).await,
        Err(_) => conn.message(bytes).await,
    }
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
