//! A real IMAP server for tests: Debian's dovecot-imapd, installed from
//! Debian's packages when missing, run as a private instance (its own
//! config, state and mail folder in a scratch directory, its own port) and
//! stopped when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

const DOVECOT: &str = "/usr/sbin/dovecot";
pub const USER: &str = "replies";
pub const PASSWORD: &str = "imap-secret";

static INSTALL: Once = Once::new();

/// Installs dovecot-imapd from Debian's packages once, if it is missing.
fn install() {
    INSTALL.call_once(|| {
        if Path::new(DOVECOT).exists() {
            return;
        }
        let quiet = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        let installed = quiet(&["install", "-y", "-qq", "dovecot-imapd"])
            || (quiet(&["update", "-qq"]) && quiet(&["install", "-y", "-qq", "dovecot-imapd"]));
        assert!(
            installed && Path::new(DOVECOT).exists(),
            "the IMAP tests need Debian's dovecot-imapd and could not install it (apt-get install dovecot-imapd)"
        );
    });
}

pub struct Dovecot {
    dir: tempfile::TempDir,
    port: u16,
}

impl Dovecot {
    pub fn start() -> Self {
        install();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let port = super::free_port();
        // dovecot's own users must reach the mail folder and the sockets.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mail = root.join("mail");
        std::fs::create_dir_all(&mail).unwrap();
        let chown = Command::new("chown")
            .args(["dovecot:dovecot", mail.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(chown.success());
        let root_s = root.display();
        let config = format!(
            "first_valid_uid = 100\n\
             base_dir = {root_s}/run\n\
             state_dir = {root_s}/state\n\
             log_path = {root_s}/dovecot.log\n\
             protocols = imap\n\
             listen = 127.0.0.1\n\
             ssl = no\n\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             mail_location = maildir:{root_s}/mail/%u\n\
             passdb {{\n  driver = static\n  args = password={PASSWORD}\n}}\n\
             userdb {{\n  driver = static\n  args = uid=dovecot gid=dovecot home={root_s}/mail/%u\n}}\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n"
        );
        std::fs::write(root.join("dovecot.conf"), config).unwrap();
        let server = Self { dir, port };
        let started = server.control(&[]);
        assert!(started, "dovecot did not start:\n{}", server.log());
        let since = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                since.elapsed() < Duration::from_secs(10),
                "dovecot is not listening:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    fn control(&self, args: &[&str]) -> bool {
        Command::new(DOVECOT)
            .arg("-c")
            .arg(self.conf())
            .args(args)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Puts a message into the INBOX, as a mail server delivering it would.
    pub fn deliver(&self, raw: &[u8]) {
        let mut s = Session::open(self.port);
        s.command(&format!("APPEND INBOX {{{}}}", raw.len()), Some(raw));
        s.close();
    }

    /// Each message's flags, in UID order.
    pub fn flags(&self) -> Vec<String> {
        let mut s = Session::open(self.port);
        s.command("SELECT INBOX", None);
        let lines = s.command("UID FETCH 1:* (FLAGS)", None);
        s.close();
        lines
            .iter()
            .filter(|l| l.contains("FETCH"))
            .map(|l| {
                l[l.find("FLAGS (").unwrap() + 7..]
                    .split(')')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    /// Takes a flag off every message (as if marking had never happened).
    pub fn unflag(&self, flag: &str) {
        let mut s = Session::open(self.port);
        s.command("SELECT INBOX", None);
        s.command(&format!("UID STORE 1:* -FLAGS ({flag})"), None);
        s.close();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.control(&["stop"]);
    }
}

/// A plain IMAP conversation, for setting up and inspecting the mailbox.
struct Session {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

impl Session {
    fn open(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let writer = stream.try_clone().unwrap();
        let mut s = Self {
            reader: BufReader::new(stream),
            writer,
            tag: 0,
        };
        let mut greeting = String::new();
        s.reader.read_line(&mut greeting).unwrap();
        s.command(&format!("LOGIN {USER} {PASSWORD}"), None);
        s
    }

    /// Sends one command (with a literal after the server's `+`), returns
    /// the lines up to its tagged OK.
    fn command(&mut self, command: &str, literal: Option<&[u8]>) -> Vec<String> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        write!(self.writer, "{tag} {command}\r\n").unwrap();
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if line.starts_with('+') {
                if let Some(literal) = literal {
                    self.writer.write_all(literal).unwrap();
                    self.writer.write_all(b"\r\n").unwrap();
                }
                continue;
            }
            if line.starts_with(&format!("{tag} ")) {
                assert!(line.starts_with(&format!("{tag} OK")), "{command}: {line}");
                return lines;
            }
            lines.push(line);
        }
    }

    fn close(mut self) {
        let _ = self.command("LOGOUT", None);
        let mut rest = Vec::new();
        let _ = self.reader.read_to_end(&mut rest);
    }
}
