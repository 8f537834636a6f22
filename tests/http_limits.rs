//! The HTTP server under abuse, over real sockets to the real `tend run`:
//! the API's token is checked before a body is read, bodies have limits,
//! slow and idle connections are closed, thousands of idle connections and
//! a stream of oversized bodies leave health checks and survey answers
//! working and memory bounded, a spoofed `X-Forwarded-For` does not escape
//! the per-address limit, and every response carries the security headers
//! under which a real browser still shows and submits tend's pages.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::daemon::{Daemon, request};
use common::{Project, free_port};
use tend::domain::message::MessageId;
use tend::store::Responses;
use tend::token::{Purpose, Signer};

const KEY: &str = "limits-signing-key-of-at-least-32-bytes";
const TOKEN: &str = "limits-api-token";

const PLAYBOOK: &str = r#"name = "checkin"
kind = "checkin"
category = "checkins"

[[step]]
id = "nps"
template = "nps"
anchor = "signup_at"
after = "1d"
expires = "3650d"
survey = "nps"
"#;

/// A 1×1 PNG inline, so the page at `/v/` has an image the policy must let
/// through.
const TEMPLATE: &str = "+++\nsubject = \"How are we doing, {{customer.first_name}}?\"\n+++\n![dot](data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==)\n\nOne question:\n\n{{> survey}}\n";

/// A project with one customer who was sent one NPS check-in (to files),
/// and the id of that message.
fn surveyed(http: &str) -> (Project, MessageId) {
    let p = Project::new(&format!(
        "[mail]\ntransport = \"file\"\n[mail.file]\ndir = \"outbox\"\n\
         [security]\nsecret = \"{KEY}\"\n\
         [http]\napi_token = \"{TOKEN}\"\n{http}\n\
         [schedule]\nplan_every = \"1h\"\ndeliver_every = \"1h\"\n\
         [delivery]\nwindow = {{ days = \"all\", start = \"00:00\", end = \"23:59\" }}\ncap = {{ max = 100, per = \"1d\" }}\n"
    ));
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file("config/playbooks/checkin.toml", PLAYBOOK);
    p.file("templates/nps.md.hbs", TEMPLATE);
    p.file(
        "customers.csv",
        "id,email,name,timezone,plan,signup_at\nana,ana@example.com,Ana Lima,UTC,pro,2026-05-01T10:00:00Z\n",
    );
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    p.tend(&["tick", "--now", "2026-06-01T12:00:00Z"])
        .expect_code(0);
    let messages = common::json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let id: MessageId = messages[0]["id"].as_str().unwrap().parse().unwrap();
    (p, id)
}

fn sign(purpose: Purpose, message: MessageId, value: &str) -> String {
    Signer::new(KEY.as_bytes()).sign(purpose, message, value, chrono::Utc::now())
}

fn survey_path(message: MessageId) -> String {
    format!("/r/{}/9", sign(Purpose::Survey, message, "nps"))
}

const FORM: [(&str, &str); 1] = [("Content-Type", "application/x-www-form-urlencoded")];

/// Sends a request head (and whatever of `body` the server takes) and
/// returns the status line's code and the head, read as soon as they come.
fn head_only(port: u16, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer and close before taking it all.
    let _ = stream.write_all(body);
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no answer: {text:?}"));
    (status, text)
}

#[test]
fn the_token_is_checked_before_the_body_and_bodies_have_limits() {
    let (p, message) = surveyed("max_body = \"1KiB\"");
    let d = Daemon::start(&p, free_port(), &[]);

    // A claim of 100 MB without the token: 401 at once, no body sent.
    let (status, head) = head_only(
        d.port,
        "POST /api/v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n",
        b"",
    );
    assert_eq!(status, 401, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer")
    );

    // With the token, a Content-Length over http.max_body: 413 before the
    // body is read, naming the setting.
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let over = d.request(
        "POST",
        "/api/v1/events",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        &[b' '; 1025],
    );
    assert_eq!(over.status, 413, "{}", over.body);
    let why = over.json()["error"].as_str().unwrap().to_owned();
    assert!(
        why.contains("1.0 KiB") && why.contains("http.max_body"),
        "{why}"
    );
    let (status, _) = head_only(
        d.port,
        &format!(
            "POST /api/v1/events HTTP/1.1\r\nHost: t\r\n{auth}Content-Length: 104857600\r\n\r\n"
        ),
        b"",
    );
    assert_eq!(status, 413);
    // A chunked body that grows past the limit is cut off there.
    let chunk = format!("400\r\n{}\r\n", " ".repeat(1024));
    let (status, _) = head_only(
        d.port,
        &format!(
            "POST /api/v1/events HTTP/1.1\r\nHost: t\r\n{auth}Transfer-Encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n"
        ),
        b"",
    );
    assert_eq!(status, 413);
    // Within the limit the API works as before.
    let fine = d.request(
        "POST",
        "/api/v1/events",
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            ("Content-Type", "application/json"),
        ],
        br#"[{"customer_id":"ana","name":"login","occurred_at":"2026-11-02T10:00:00Z"}]"#,
    );
    assert_eq!(fine.status, 200, "{}", fine.body);

    // The links in mail take a form of at most 64 KiB, whatever
    // http.max_body says; a comment of 5,000 four-byte characters fits.
    let path = survey_path(message);
    let long = format!("answer=9&comment={}", "%F0%9F%99%82".repeat(5000));
    assert!(long.len() > 1024 && long.len() < 64 * 1024);
    let answered = d.request("POST", &path, &FORM, long.as_bytes());
    assert_eq!(answered.status, 200, "{}", answered.body);
    let huge = format!("answer=9&comment={}", "x".repeat(64 * 1024));
    let refused = d.request("POST", &path, &FORM, huge.as_bytes());
    assert_eq!(refused.status, 413, "{}", refused.body);
    assert!(
        refused.body.contains("shorten your comment"),
        "{}",
        refused.body
    );
    let stored = common::json(&p.tend(&["responses", "--format", "json"]).expect_code(0));
    let comments: Vec<usize> = stored
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["comment"].as_str().map(|c| c.chars().count()))
        .collect();
    assert_eq!(
        comments,
        vec![5000],
        "the refused answer changed nothing: {stored:#}"
    );
}

#[test]
fn every_response_carries_the_security_headers() {
    let (p, message) = surveyed("");
    let d = Daemon::start(&p, free_port(), &[]);
    let page = survey_path(message);
    let forged = format!("/r/{}x/9", sign(Purpose::Survey, message, "nps"));
    for reply in [
        d.get("/healthz"),
        d.get(&page),
        d.get(&forged),
        d.get("/nowhere"),
        d.request("POST", "/api/v1/events", &[], b"[]"),
    ] {
        let head = reply.head.to_ascii_lowercase();
        for expected in [
            format!(
                "content-security-policy: {}",
                tend::http::CONTENT_SECURITY_POLICY_VALUE
            ),
            "x-frame-options: deny".into(),
            "referrer-policy: no-referrer".into(),
            "x-content-type-options: nosniff".into(),
        ] {
            assert!(
                head.contains(&expected.to_ascii_lowercase()),
                "{expected} missing from {}",
                reply.head
            );
        }
    }
}

/// Reads until the server closes the connection; the bytes it sent.
fn read_until_closed(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut got = Vec::new();
    stream.read_to_end(&mut got)?;
    Ok(got)
}

#[test]
fn slow_and_idle_connections_are_closed() {
    let (p, _) = surveyed("header_timeout = \"1s\"\nidle_timeout = \"1s\"");
    let d = Daemon::start(&p, free_port(), &[]);

    // Headers begun and never finished: closed at the header deadline. The
    // read timeout only keeps a broken server from hanging the test.
    let mut loris = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    loris
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    loris
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: 1")
        .unwrap();
    let closed = read_until_closed(&mut loris);
    assert!(
        closed
            .as_ref()
            .is_ok_and(|b| !b.starts_with(b"HTTP/1.1 200")),
        "the half-sent request was answered or left open: {closed:?}"
    );

    // A connection opened and never used, and one kept alive after a
    // request: both closed.
    let mut silent = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    assert!(read_until_closed(&mut silent).is_ok_and(|b| b.is_empty()));
    let mut kept = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let answered = read_until_closed(&mut kept).unwrap();
    assert!(answered.starts_with(b"HTTP/1.1 200"), "{answered:?}");

    // A body that stops part-way: 408, naming the setting.
    let (status, _) = head_only(
        d.port,
        &format!(
            "POST /api/v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n[{{"
        ),
        b"",
    );
    assert_eq!(status, 408);
    assert_eq!(d.get("/healthz").status, 200);
}

#[test]
fn a_spoofed_left_most_forwarded_for_does_not_escape_the_limit() {
    let (p, message) = surveyed("rate_per_minute = 3\nclient_ip_header = \"X-Forwarded-For\"");
    let d = Daemon::start(&p, free_port(), &[]);
    let path = survey_path(message);
    // The proxy appends 203.0.113.9; the client writes anything left of it.
    for i in 0..3 {
        let spoof = format!("198.51.100.{i}, 203.0.113.9");
        let r = d.request("GET", &path, &[("X-Forwarded-For", &spoof)], b"");
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let spoof = "192.0.2.200, 203.0.113.9";
    let r = d.request("GET", &path, &[("X-Forwarded-For", spoof)], b"");
    assert_eq!(r.status, 429, "a new left-most address is the same client");
    // Another client behind the same proxy has its own allowance.
    let other = d.request(
        "GET",
        &path,
        &[("X-Forwarded-For", "192.0.2.200, 203.0.113.10")],
        b"",
    );
    assert_eq!(other.status, 200, "{}", other.body);
}

/// The daemon's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Posts `size` bytes without the token, writing as long as the server
/// reads; the status it answered, if the answer arrived before the reset
/// that closing on an unread body causes.
fn post_unauthenticated(port: u16, size: usize) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /api/v1/customers HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).ok()?;
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < size {
        if stream.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let mut got = vec![0; 4096];
    let n = stream.read(&mut got).ok()?;
    String::from_utf8_lossy(&got[..n])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
}

#[test]
fn two_thousand_idle_connections_and_oversized_bodies_leave_the_server_answering() {
    hold_under_abuse("");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_too_the_server_answers_under_abuse() {
    common::on_fresh_postgres(|url| hold_under_abuse(&format!("[database]\nurl = \"{url}\"")))
        .await;
}

/// 2,000 idle connections and a stream of oversized unauthenticated
/// bodies; `store` is the `[database]` section (empty: SQLite).
fn hold_under_abuse(store: &str) {
    const IDLE: usize = 2000;
    // One at a time: this process holds each test's connections.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Both ends hold the connections: raise this process's own soft limit
    // (the daemon raises its own at start).
    let limit = rlimit::increase_nofile_limit(IDLE as u64 + 1024).unwrap();
    assert!(
        limit > IDLE as u64 + 256,
        "the open-file limit ({limit}) is too low for this test"
    );
    // Idle connections are kept for the whole test: the deadlines are
    // tested above.
    let (p, message) = surveyed(&format!(
        "header_timeout = \"5m\"\nidle_timeout = \"5m\"\nrate_per_minute = 0\n{store}"
    ));
    let d = Daemon::start(&p, free_port(), &[]);
    let pid = d.child.id();
    assert_eq!(d.get("/healthz").status, 200);
    let before = rss_kib(pid);

    // Half of them silent, half with headers begun.
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
            if i % 2 == 1 {
                s.write_all(b"POST /api/v1/customers HTTP/1.1\r\nHost: t\r\n")
                    .unwrap();
            }
            s
        })
        .collect();

    // Sixteen clients at once, each posting 13 bodies of 16 MiB without the
    // token: were the body read first, 256 MiB would be held at a time.
    let answers: Vec<Option<u16>> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| {
                    (0..13)
                        .map(|_| post_unauthenticated(d.port, 16 * 1024 * 1024))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    assert!(answers.iter().flatten().all(|&s| s == 401), "{answers:?}");
    assert!(answers.iter().flatten().count() > 0, "{answers:?}");

    // With all that open, health and a survey answer still answer.
    assert_eq!(d.get("/healthz").status, 200);
    let answered = request(
        d.port,
        "POST",
        &survey_path(message),
        &FORM,
        b"answer=9&comment=still+here",
    )
    .unwrap();
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert!(answered.body.contains("We recorded your answer"));
    let after = rss_kib(pid);
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    println!(
        "tend run: VmRSS {} MB before, {} MB with {IDLE} idle connections ({open} descriptors open) after {} unauthenticated 16 MiB bodies ({} answered 401 before the reset)",
        before / 1024,
        after / 1024,
        answers.len(),
        answers.iter().flatten().count()
    );
    assert!(
        open > IDLE,
        "the daemon held the idle connections ({open} descriptors)"
    );
    assert!(
        after.saturating_sub(before) < 200 * 1024,
        "memory grew from {before} KiB to {after} KiB"
    );
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_the_pages_work_under_the_security_policy() {
    let (p, message) = surveyed("");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let d = tokio::task::block_in_place(|| {
        Daemon::start(&p, port, &[("TEND__HTTP__PUBLIC_URL", &base)])
    });
    let rendered = chrono::Utc::now().timestamp().to_string();
    let view = format!("{base}/v/{}", sign(Purpose::View, message, &rendered));
    let survey = format!("{base}{}", survey_path(message));
    let preferences = format!(
        "{base}/u/{}",
        sign(Purpose::Unsubscribe, message, "checkins")
    );
    let browser = tokio::task::block_in_place(common::browser::Browser::start);
    let style = |css: &str, property: &str| {
        browser.script(&format!(
            "return getComputedStyle(document.querySelector('{css}')).{property};"
        ))
    };

    tokio::task::block_in_place(|| {
        // The message as a web page: its layout's <style> applies and its
        // inline image loads.
        browser.open(&view);
        assert!(
            browser.source().contains("One question"),
            "{}",
            browser.source()
        );
        assert_eq!(style(".card", "borderTopLeftRadius"), "8px");
        assert_eq!(style("body", "backgroundColor"), "rgb(244, 245, 247)");
        let image = browser.script(
            "const i = document.querySelector('img[alt=dot]'); return i && i.complete ? i.naturalWidth : -1;",
        );
        assert_eq!(image, 1, "the inline image was blocked");

        // The preferences page: styled, and its form posts back to tend.
        browser.open(&preferences);
        assert_eq!(style("main", "borderTopLeftRadius"), "8px");
        assert_eq!(style("button", "backgroundColor"), "rgb(34, 81, 204)");

        // The survey page: styled, and the button records the answer.
        browser.open(&survey);
        assert_eq!(style("main", "borderTopLeftRadius"), "8px");
        browser.type_into("textarea", "Fine under the policy");
        browser.click("button[type=submit]");
        let thanks = browser.source_with("We recorded your answer");
        assert!(thanks.contains("We recorded your answer"), "{thanks}");
    });
    let store = p.store().await;
    assert_eq!(
        store.responses_of(message).await.unwrap(),
        vec![(
            "survey".to_owned(),
            Some("9".to_owned()),
            Some("Fine under the policy".to_owned())
        )]
    );
    drop(d);
}

#[test]
fn stopping_finishes_the_request_in_progress_and_closes_idle_connections() {
    let (p, _) = surveyed("header_timeout = \"5m\"\nidle_timeout = \"5m\"");
    let mut d = Daemon::start(&p, free_port(), &[]);
    let mut idle = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let body = br#"[{"customer_id":"ana","name":"login","occurred_at":"2026-11-02T10:00:00Z"}]"#;
    let mut busy = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    busy.write_all(
        format!(
            "POST /api/v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    // The server asks for the body only once a handler reads it: from then
    // on the request is in progress, not bytes the server has yet to read
    // (which a stopping server may rightly drop with the connection).
    let mut go_on = [0; 25];
    busy.read_exact(&mut go_on).unwrap();
    assert_eq!(&go_on, b"HTTP/1.1 100 Continue\r\n\r\n");
    busy.write_all(&body[..10]).unwrap();

    d.signal("TERM");
    d.wait_for_log("stopping");
    // The idle connection is closed; the half-sent request is still taken.
    assert!(read_until_closed(&mut idle).is_ok_and(|b| b.is_empty()));
    busy.write_all(&body[10..]).unwrap();
    let answer = read_until_closed(&mut busy).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"imported\":1"), "{answer}");
    assert!(d.stop(Duration::from_secs(20)).success(), "{}", d.log());
}

#[test]
fn a_response_the_client_stops_reading_is_abandoned_after_the_idle_timeout() {
    let (p, _) = surveyed("idle_timeout = \"1s\"\nheader_timeout = \"5m\"");
    let d = Daemon::start(&p, free_port(), &[]);
    // 300,000 invalid rows (12 MB, under http.max_body): the 422 lists each,
    // many times what the sockets' buffers hold.
    let rows: Vec<String> = (0..300_000)
        .map(|i| format!(r#"{{"id":"c{i}","email":"not-an-address"}}"#))
        .collect();
    let body = format!("[{}]", rows.join(","));
    let mut stream = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
        .write_all(
            format!(
                "POST /api/v1/customers HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut head = vec![0; 2048];
    stream.read_exact(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 422"), "{head}");
    let whole: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    // Not reading for twice the idle deadline: the server's writes stop
    // once the buffers are full, and the deadline closes the connection.
    std::thread::sleep(Duration::from_secs(2));
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(
        2048 + rest.len() < whole,
        "all {whole} bytes reached a client that stopped reading"
    );
    assert_eq!(d.get("/healthz").status, 200);
}
