//! A real browser for tests: Debian's Chromium, driven headless through
//! chromedriver's WebDriver protocol (plain JSON over HTTP). Both come from
//! Debian's packages, installed when missing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key WebDriver names an element by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

static INSTALL: Once = Once::new();

fn install() {
    INSTALL.call_once(|| {
        if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
            return;
        }
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        let packages = ["install", "-y", "-qq", "chromium", "chromium-driver"];
        let installed = apt(&packages) || (apt(&["update", "-qq"]) && apt(&packages));
        assert!(
            installed && Path::new(CHROMEDRIVER).exists(),
            "the browser test needs Debian's chromium and chromium-driver and could not install them"
        );
    });
}

/// The axe-core version the accessibility checks run.
const AXE_CORE: &str = "4.14.1";

static AXE: Once = Once::new();

/// axe-core's browser build, installed from the npm registry under the
/// build directory on first use.
fn axe_core() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("axe-core-{AXE_CORE}"));
    let script = dir.join("node_modules/axe-core/axe.min.js");
    AXE.call_once(|| {
        if script.exists() {
            return;
        }
        std::fs::create_dir_all(&dir).unwrap();
        let installed = Command::new("npm")
            .args([
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
            ])
            .arg(&dir)
            .arg(format!("axe-core@{AXE_CORE}"))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed && script.exists(),
            "the accessibility check needs npm to install axe-core@{AXE_CORE} from the npm registry"
        );
    });
    script
}

/// One headless Chromium session; closed (with its driver) when dropped.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn start() -> Self {
        install();
        let port = super::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let since = Instant::now();
        while http(port, "GET", "/status", b"").is_err() {
            assert!(
                since.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        // Without the background-networking flags Chromium keeps trying to
        // reach Google's hosts, which a closed network refuses.
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let mut browser = Self {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        let created = browser.call(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
            }}}),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("{created}"))
            .to_owned();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let (status, reply) = http(self.port, method, path, &body).unwrap();
        let value: Value = serde_json::from_str(&reply).unwrap_or(Value::Null);
        assert!(status < 300, "{method} {path}: {status} {reply}");
        value["value"].clone()
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn open(&self, url: &str) {
        self.call("POST", &self.at("/url"), json!({ "url": url }));
    }

    /// The page's HTML as the browser holds it now.
    pub fn source(&self) -> String {
        self.call("GET", &self.at("/source"), Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's HTML once it contains `text`, or as it is after thirty
    /// seconds (only a failing run waits that long; headless Chromium on
    /// two loaded cores can take seconds): a click that submits a form
    /// returns before the browser has loaded the answer page.
    pub fn source_with(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let page = self.source();
            if page.contains(text) || std::time::Instant::now() > deadline {
                return page;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn element(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            &self.at("/element"),
            json!({"using": "css selector", "value": css}),
        );
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no {css}: {found}"))
            .to_owned()
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &self.at(&format!("/element/{id}/value")),
            json!({ "text": text }),
        );
    }

    /// Runs `script` (a function body) in the page and returns its value.
    /// WebDriver's scripts run outside the page's Content-Security-Policy,
    /// so they can report what the policy let the page do.
    pub fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.at("/execute/sync"),
            json!({ "script": script, "args": [] }),
        )
    }

    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &self.at(&format!("/element/{id}/click")), json!({}));
    }

    /// Makes the page's viewport `width` × `height` CSS pixels (what
    /// `innerWidth`/`innerHeight` report), whatever the window's frame
    /// takes.
    pub fn resize(&self, width: i64, height: i64) {
        let viewport = || {
            let inner = self.execute("return [window.innerWidth, window.innerHeight];");
            (inner[0].as_i64().unwrap(), inner[1].as_i64().unwrap())
        };
        let mut outer = (width, height);
        let mut seen = Vec::new();
        for _ in 0..5 {
            self.call(
                "POST",
                &self.at("/window/rect"),
                json!({ "width": outer.0, "height": outer.1 }),
            );
            // The page may learn of its new size a moment after the
            // window has it: read until two readings agree.
            let mut inner = viewport();
            for _ in 0..20 {
                std::thread::sleep(std::time::Duration::from_millis(25));
                let again = viewport();
                if again == inner {
                    break;
                }
                inner = again;
            }
            seen.push(inner);
            if inner == (width, height) {
                return;
            }
            outer = (outer.0 + width - inner.0, outer.1 + height - inner.1);
        }
        panic!("the viewport cannot be made {width}x{height}; it was {seen:?}");
    }

    /// Runs `script` (a function body; `return` gives the result) in the
    /// page, as WebDriver's execute/sync does: for reading the page's own
    /// layout numbers. The page itself needs no script.
    pub fn execute(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.at("/execute/sync"),
            json!({ "script": script, "args": [] }),
        )
    }

    /// What axe-core (Deque's accessibility engine, from the npm registry)
    /// finds wrong with the page against WCAG 2.1 A and AA and its best
    /// practices: (rule, impact, help, the elements), one line each.
    pub fn accessibility_violations(&self) -> Vec<String> {
        let engine = std::fs::read_to_string(axe_core()).expect("read axe.min.js");
        // The engine defines `window.axe`; WebDriver's scripts run outside
        // the page's Content-Security-Policy.
        self.execute(&format!("{engine}\n;return typeof window.axe;"));
        let found = self.call(
            "POST",
            &self.at("/execute/async"),
            json!({"script": "const done = arguments[arguments.length - 1];\
                window.axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})\
                .then(r => done(r.violations.map(v => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)))\
                .catch(e => done(['axe failed: ' + e]));", "args": []}),
        );
        found
            .as_array()
            .unwrap_or_else(|| panic!("axe answered {found}"))
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Saves what the viewport shows as a PNG at `path`.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let shot = self.call("GET", &self.at("/screenshot"), Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().expect("a base64 screenshot"))
            .expect("base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(self.port, "DELETE", &self.at(""), b"");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One request to chromedriver, which keeps connections open: the reply is
/// read up to its Content-Length.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status: {status_line:?}")))?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((_, value)) = line
            .split_once(':')
            .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut reply = vec![0; length];
    reader.read_exact(&mut reply)?;
    Ok((status, String::from_utf8_lossy(&reply).into_owned()))
}
