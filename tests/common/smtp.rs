//! A real SMTP server for tests: mailin's protocol engine on a socket of
//! its own, capturing every message it accepts. Recipients can be told to
//! answer with an error (451, 550 5.1.1 …) to drive retries and bounces.
//! Like Postfix, it offers PIPELINING (RFC 2920) unless told not to; it
//! reads one command line at a time and answers in order, which is all
//! pipelining asks of a server.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use mailin::{Handler, Response, SessionBuilder};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    /// The value of header `name` (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = &mut value {
                if line.starts_with([' ', '\t']) {
                    v.push(' ');
                    v.push_str(line.trim());
                    continue;
                }
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_owned());
            }
        }
        value
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// recipient → (code, text) answered to RCPT TO.
    refuse: HashMap<String, (u16, String)>,
    /// recipient → (code, text) answered to the end of the message's
    /// content, which is then not kept.
    refuse_content: HashMap<String, (u16, String)>,
    connections: usize,
    /// Sessions opened before this generation are closed on their next
    /// command, as a server closes connections that sat idle too long.
    generation: u64,
    pipelining: bool,
    /// `MAIL` commands that arrived with the next command already behind
    /// them: the client pipelined.
    pipelined: usize,
    /// Ends of content with the next message's `MAIL` already behind them:
    /// the client pipelined from one message into the next.
    chained: usize,
    /// How long the server takes to accept each message.
    delay: std::time::Duration,
}

/// The running server; stops when dropped.
pub struct SmtpSink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl SmtpSink {
    pub fn start() -> Self {
        Self::start_at("127.0.0.1:0", true)
    }

    /// A server that does not offer PIPELINING.
    pub fn start_without_pipelining() -> Self {
        Self::start_at("127.0.0.1:0", false)
    }

    fn start_at(addr: &str, pipelining: bool) -> Self {
        let std_listener = std::net::TcpListener::bind(addr).unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            pipelining,
            ..State::default()
        }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((socket, peer)) = listener.accept().await else {
                            continue;
                        };
                        // Pipelined commands get their replies as separate
                        // small writes; with Nagle on, each would wait for
                        // the client's delayed ACK.
                        let _ = socket.set_nodelay(true);
                        shared.lock().unwrap().connections += 1;
                        tokio::spawn(session(socket, peer.ip(), Arc::clone(&shared)));
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = stopped => {}
                }
            });
        });
        Self {
            addr,
            state,
            stop: Some(stop),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Answer RCPT TO for `recipient` with `code text` from now on.
    pub fn refuse(&self, recipient: &str, code: u16, text: &str) {
        self.state
            .lock()
            .unwrap()
            .refuse
            .insert(recipient.to_owned(), (code, text.to_owned()));
    }

    /// Answer the end of every message to `recipient` with `code text`
    /// from now on, keeping nothing of it.
    pub fn refuse_content(&self, recipient: &str, code: u16, text: &str) {
        self.state
            .lock()
            .unwrap()
            .refuse_content
            .insert(recipient.to_owned(), (code, text.to_owned()));
    }

    /// Accept `recipient` again.
    pub fn accept(&self, recipient: &str) {
        self.state.lock().unwrap().refuse.remove(recipient);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// Takes `delay` to accept each message from now on: a slow server, so
    /// that sends are in flight when a test needs them to be.
    pub fn slow_down(&self, delay: std::time::Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// How many transactions the client pipelined.
    pub fn pipelined(&self) -> usize {
        self.state.lock().unwrap().pipelined
    }

    /// How many messages' content the client followed, in the same write,
    /// with the next message's `MAIL`.
    pub fn chained(&self) -> usize {
        self.state.lock().unwrap().chained
    }

    /// Closes every open session, without a word, at its next command.
    pub fn close_sessions(&self) {
        self.state.lock().unwrap().generation += 1;
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Capture {
    state: Arc<Mutex<State>>,
    /// The refusal the session answers the end of this content with in
    /// place of mailin's reply: mailin stays in its data state after a
    /// handler's refusal, where a real server's transaction ends.
    refusal: Arc<Mutex<Option<(u16, String)>>>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Capture {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_owned();
        self.to.clear();
        self.data.clear();
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        if let Some((code, text)) = self.state.lock().unwrap().refuse.get(to) {
            return Response::custom(*code, text.clone());
        }
        self.to.push(to.to_owned());
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut state = self.state.lock().unwrap();
        if let Some(refusal) = self.to.iter().find_map(|to| state.refuse_content.get(to)) {
            *self.refusal.lock().unwrap() = Some(refusal.clone());
            return mailin::response::OK;
        }
        state.received.push(Received {
            from: self.from.clone(),
            to: self.to.clone(),
            data: String::from_utf8_lossy(&self.data).into_owned(),
        });
        Response::custom(250, format!("2.0.0 queued as {}", state.received.len()))
    }
}

async fn session(socket: tokio::net::TcpStream, ip: IpAddr, state: Arc<Mutex<State>>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    let (born, pipelining) = {
        let s = state.lock().unwrap();
        (s.generation, s.pipelining)
    };
    let refusal = Arc::new(Mutex::new(None));
    let handler = Capture {
        state: Arc::clone(&state),
        refusal: Arc::clone(&refusal),
        from: String::new(),
        to: Vec::new(),
        data: Vec::new(),
    };
    let mut session = SessionBuilder::new("sink.test").build(ip, handler);
    let greeting = session.greeting().buffer().unwrap();
    if write.write_all(&greeting).await.is_err() {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        {
            let mut s = state.lock().unwrap();
            if s.generation != born {
                return;
            }
            if line.to_ascii_uppercase().starts_with(b"MAIL") && !lines.buffer().is_empty() {
                s.pipelined += 1;
            }
            // A line of one dot ends a message's content (a dot that
            // begins a line of the content arrives doubled).
            if line == b".\r\n" && lines.buffer().to_ascii_uppercase().starts_with(b"MAIL") {
                s.chained += 1;
            }
        }
        let response = session.process(&line);
        match response.action {
            mailin::Action::Reply | mailin::Action::Close => {
                let mut reply = response.buffer().unwrap();
                if let Some((code, text)) = refusal.lock().unwrap().take() {
                    reply = format!("{code} {text}\r\n").into_bytes();
                }
                if reply.windows(9).any(|w| w == b"queued as") {
                    // Only when slowed down: even a zero sleep waits for
                    // the timer's next millisecond tick.
                    let delay = state.lock().unwrap().delay;
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                }
                if pipelining && line.to_ascii_uppercase().starts_with(b"EHLO") {
                    offer_pipelining(&mut reply);
                }
                if write.write_all(&reply).await.is_err() {
                    return;
                }
                if response.action == mailin::Action::Close {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// Adds `250-PIPELINING` after the first line of an EHLO reply.
fn offer_pipelining(reply: &mut Vec<u8>) {
    let first = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(reply.len(), |i| i + 2);
    if first < reply.len() {
        reply.splice(first..first, b"250-PIPELINING\r\n".iter().copied());
    } else {
        // A one-line reply: "250 name" becomes "250-name", then the keyword.
        reply[3] = b'-';
        reply.extend_from_slice(b"250 PIPELINING\r\n");
    }
}

impl SmtpSink {
    /// A server on `port` (a port a test reserved and released).
    pub fn start_on(port: u16) -> Self {
        Self::start_at(&format!("127.0.0.1:{port}"), true)
    }
}
