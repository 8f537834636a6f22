//! The console's sign-in, through the binary over a real socket, on both
//! stores: `tend team set-password`, the sign-in form and its token, the
//! session cookie's attributes, the overview's figures against `tend
//! report`, signing out, forged tokens and foreign cookies refused, and
//! the limit on failed sign-ins.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use chrono::{Datelike, Duration, Utc};
use common::daemon::{Daemon, Reply};
use common::{Project, Run, free_port, json};

const PLAYBOOK: &str = r#"
name = "notice"
kind = "incident"
category = "incidents"

[[step]]
id = "notice"
template = "notice"
anchor = "signup_at"
after = "1m"
expires = "30d"
"#;

/// An NPS question to everyone a minute after signup.
const PULSE: &str = r#"
name = "pulse"
kind = "checkin"
category = "checkins"

[[step]]
id = "nps"
template = "pulse"
anchor = "signup_at"
after = "1m"
survey = "nps"
expires = "30d"

[[step]]
id = "again"
template = "pulse"
anchor = "signup_at"
after = "10d"
survey = "nps"
expires = "30d"
"#;

const PASSWORD: &str = "correct horse battery staple";

/// A project with a manager and a viewer on the team, and three customers
/// whose notice, due a minute ago, was sent by a tick at the real time
/// (the daemon's overview reads the real clock).
fn project(database: Option<&str>) -> Project {
    project_at(database).0
}

/// [`project`], and when its notices were due.
fn project_at(database: Option<&str>) -> (Project, chrono::DateTime<Utc>) {
    let mut p = Project::new(
        "[delivery.window]\ndays = \"all\"\nstart = \"00:00\"\nend = \"23:59\"\n\
         [[team]]\nid = \"ann\"\nname = \"Ann Manager\"\nemail = \"Ann@Acme.example\"\nrole = \"manager\"\n\
         [[team]]\nid = \"vic\"\nname = \"Vic Viewer\"\nemail = \"vic@acme.example\"\n",
    );
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    for dir in ["config/playbooks", "templates"] {
        std::fs::create_dir_all(p.path().join(dir)).unwrap();
    }
    p.file("config/playbooks/notice.toml", PLAYBOOK);
    p.file("config/playbooks/pulse.toml", PULSE);
    p.file(
        "templates/pulse.md.hbs",
        "+++\nsubject = \"How are we doing, {{customer.first_name}}?\"\n+++\nOne question.\n\n{{> survey}}\n",
    );
    p.file(
        "templates/notice.md.hbs",
        "+++\nsubject = \"Maintenance for {{customer.first_name}}\"\n+++\nHi {{customer.first_name}}.\n",
    );
    let signed_up = Utc::now() - Duration::minutes(2);
    let signup = signed_up.to_rfc3339();
    p.file(
        "customers.csv",
        format!(
            "id,email,name,timezone,plan,signup_at\n\
             a,a@example.com,Ada A,UTC,pro,{signup}\n\
             b,b@example.com,Bea B,UTC,pro,{signup}\n\
             c,c@example.com,Cy C,UTC,pro,{signup}\n"
        ),
    );
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    // The send window closes for the day's last minute.
    let mut at = Utc::now();
    if at.format("%H:%M").to_string() == "23:59" {
        at += Duration::minutes(2);
    }
    p.tend(&["tick", "--now", &at.to_rfc3339()]).expect_code(0);
    (p, signed_up + Duration::minutes(1))
}

/// `tend team set-password ID` with `password` on standard input.
fn set_password(p: &Project, id: &str, password: &str) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tend"));
    cmd.args(["team", "set-password", id])
        .current_dir(p.path())
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in p.env_pairs() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    Run(child.wait_with_output().unwrap())
}

/// The `Set-Cookie` line for `name`, whole.
fn set_cookie<'r>(reply: &'r Reply, name: &str) -> &'r str {
    reply
        .head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(h, _)| h.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.trim())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie for {name}: {}", reply.head))
}

fn cookie_value(line: &str) -> &str {
    line.split(';').next().unwrap().split_once('=').unwrap().1
}

fn location(reply: &Reply) -> &str {
    reply
        .head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(h, _)| h.eq_ignore_ascii_case("location"))
        .map(|(_, v)| v.trim())
        .unwrap_or_else(|| panic!("no Location: {}", reply.head))
}

/// The value of hidden field `name` in a page.
fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field: {body}"))
        + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

/// The number a page shows for `figure`.
fn figure(body: &str, figure: &str) -> i64 {
    let marker = format!("data-figure=\"{figure}\">");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {figure}: {body}"))
        + marker.len();
    body[start..].split('<').next().unwrap().parse().unwrap()
}

/// Opens the sign-in form; returns its cookie header and form token.
fn open_form(d: &Daemon, cookie_name: &str) -> (String, String) {
    let form = d.get("/console/sign-in");
    assert_eq!(form.status, 200, "{}", form.body);
    let token = cookie_value(set_cookie(&form, cookie_name)).to_owned();
    assert_eq!(
        hidden(&form.body, "form"),
        token,
        "the form repeats its cookie"
    );
    (format!("{cookie_name}={token}"), token)
}

fn sign_in(d: &Daemon, who: &str, password: &str) -> Reply {
    let (cookie, token) = open_form(d, "tend_sign_in");
    let body = format!(
        "form={token}&member={}&password={}",
        who.replace('@', "%40"),
        password.replace(' ', "+")
    );
    d.request(
        "POST",
        "/console/sign-in",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    )
}

fn signs_in_reads_and_signs_out(database: Option<&str>) {
    let (p, due) = project_at(database);
    // Setting a password: too short, an unknown id, then right.
    let short = set_password(&p, "ann", "short").expect_code(2);
    assert!(short.stderr().contains("at least 12"), "{}", short.stderr());
    let unknown = set_password(&p, "zed", PASSWORD).expect_code(2);
    assert!(
        unknown.stderr().contains("ann, vic"),
        "{}",
        unknown.stderr()
    );
    let set = set_password(&p, "ann", PASSWORD).expect_code(0);
    assert!(
        set.stdout().contains("password set for ann"),
        "{}",
        set.stdout()
    );
    let team = json(&p.tend(&["team", "list", "--format", "json"]).expect_code(0));
    assert_eq!(team[0]["role"], "manager");
    assert_eq!(team[0]["password_set"], true);
    assert_eq!(team[1]["password_set"], false);

    let d = Daemon::start(&p, free_port(), &[]);
    // Anonymous: every page and form sends them to sign in.
    for (method, path) in [
        ("GET", "/console"),
        ("GET", "/console/next?customer=a"),
        ("GET", "/console/preview?template=pulse&customer=a"),
        ("GET", "/console/preview/html?template=pulse&customer=a"),
        ("GET", "/console/incidents"),
        ("GET", "/console/customers"),
        ("GET", "/console/customers/a"),
        ("GET", "/console/suppressions"),
        ("GET", "/console/suppressions/lift?id=incidents%3Aa"),
        ("POST", "/console/suppressions/lift"),
        ("POST", "/console/sign-out"),
    ] {
        let anonymous = d.request(method, path, &[], b"");
        assert_eq!(anonymous.status, 303, "{method} {path}");
        assert_eq!(location(&anonymous), "/console/sign-in");
    }
    // The form's cookie: HttpOnly, SameSite=Strict, under /console.
    let form = d.get("/console/sign-in");
    let line = set_cookie(&form, "tend_sign_in");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(line.contains(part), "{line}");
    }
    assert!(!line.contains("Secure"), "plain HTTP: {line}");

    // A wrong password, a member without one, and a form without its
    // cookie are refused.
    let wrong = sign_in(&d, "ann", "not the password at all");
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("do not match"), "{}", wrong.body);
    assert_eq!(sign_in(&d, "vic", PASSWORD).status, 401);
    let (_, token) = open_form(&d, "tend_sign_in");
    let cookieless = d.request(
        "POST",
        "/console/sign-in",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!(
            "form={token}&member=ann&password={}",
            PASSWORD.replace(' ', "+")
        )
        .as_bytes(),
    );
    assert_eq!(cookieless.status, 403, "{}", cookieless.body);

    // Signed in by email, in another case.
    let signed = sign_in(&d, "ann@acme.EXAMPLE", PASSWORD);
    assert_eq!(signed.status, 303, "{}", signed.body);
    assert_eq!(location(&signed), "/console");
    let session = set_cookie(&signed, "tend_session");
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
    ] {
        assert!(session.contains(part), "{session}");
    }
    let cookie = format!("tend_session={}", cookie_value(session));

    // The overview's figures are the report's (checked when no midnight
    // passed while the page was made).
    let before = Utc::now();
    let overview = d.request("GET", "/console", &[("Cookie", &cookie)], b"");
    let after = Utc::now();
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(overview.body.contains("Signed in as Ann Manager"));
    assert!(
        overview
            .head
            .to_ascii_lowercase()
            .contains("cache-control: no-store")
    );
    let midnight = before.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let monday = midnight - Duration::days(i64::from(before.weekday().num_days_from_monday()));
    let same_day = before.date_naive() == after.date_naive();
    for (since, id) in [(midnight, "today"), (monday, "this-week")]
        .into_iter()
        .filter(|_| same_day)
    {
        let report = json(
            &p.tend(&["report", "--since", &since.to_rfc3339(), "--format", "json"])
                .expect_code(0),
        );
        let n = |s: &str| report["messages"][s].as_i64().unwrap_or(0);
        assert_eq!(
            figure(&overview.body, &format!("{id}-sent")),
            n("sent"),
            "{report:#}"
        );
        assert_eq!(
            figure(&overview.body, &format!("{id}-waiting")),
            n("planned") + n("deferred") + n("sending")
        );
        assert_eq!(
            figure(&overview.body, &format!("{id}-failed")),
            n("failed") + n("unknown")
        );
        assert_eq!(
            figure(&overview.body, &format!("{id}-suppressed")),
            n("suppressed")
        );
    }
    if same_day {
        let expected = if due >= monday { 6 } else { 0 };
        assert_eq!(figure(&overview.body, "this-week-sent"), expected);
    }
    // A person's timeline, found by id.
    let found = d.request(
        "GET",
        "/console/customers?id=a",
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(found.status, 303);
    assert_eq!(location(&found), "/console/customers/a");
    // Found by how a name, its last word or an address begins; a search
    // that finds only the id typed goes to it.
    let search = |q: &str| {
        d.request(
            "GET",
            &format!("/console/customers?q={q}"),
            &[("Cookie", &cookie)],
            b"",
        )
    };
    for q in ["bea", "BEA+b", "b%40ex"] {
        let bea = search(q);
        assert_eq!(bea.status, 200, "{}", bea.body);
        assert!(bea.body.contains("Bea B"), "{q}: {}", bea.body);
        assert!(!bea.body.contains("Ada A"), "{q}: {}", bea.body);
    }
    let by_id = search("a");
    assert_eq!(by_id.status, 303, "{}", by_id.body);
    assert_eq!(location(&by_id), "/console/customers/a");
    let none = search("zz");
    assert_eq!(none.status, 200);
    assert!(
        none.body.contains("Nothing found for “zz”"),
        "{}",
        none.body
    );
    let ada = d.request("GET", "/console/customers/a", &[("Cookie", &cookie)], b"");
    assert_eq!(ada.status, 200, "{}", ada.body);
    for shown in [
        "Ada A",
        "notice/notice",
        "data-status=\"sent\"",
        "Maintenance for Ada",
    ] {
        assert!(ada.body.contains(shown), "{shown}: {}", ada.body);
    }
    let nobody = d.request("GET", "/console/customers/zed", &[("Cookie", &cookie)], b"");
    assert_eq!(nobody.status, 404);
    assert!(nobody.body.contains("No customer has the id zed"));
    // What comes next for Ada: the calendar holds what `tend forecast`
    // says, at the same instants.
    let next = d.request("GET", "/console/next", &[("Cookie", &cookie)], b"");
    assert!(next.body.contains("Choose a customer"), "{}", next.body);
    let next = d.request(
        "GET",
        "/console/next?customer=a&days=14",
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(next.status, 200, "{}", next.body);
    let forecast = json(
        &p.tend(&[
            "forecast",
            "--customer",
            "a",
            "--days",
            "14",
            "--format",
            "json",
        ])
        .expect_code(0),
    );
    let rows = forecast.as_array().unwrap();
    assert!(!rows.is_empty(), "the second pulse is coming");
    for row in rows {
        let at = chrono::DateTime::parse_from_rfc3339(row["at"].as_str().unwrap()).unwrap();
        assert!(
            next.body
                .contains(&format!("<time datetime=\"{}\">", at.to_utc().to_rfc3339())),
            "{row}: {}",
            next.body
        );
    }
    assert!(next.body.contains("pulse/again"), "{}", next.body);
    let unknown = d.request(
        "GET",
        "/console/next?customer=zed",
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(unknown.status, 404);
    // A template as Ada would get it, as `tend preview` renders it.
    let preview = d.request(
        "GET",
        "/console/preview?template=pulse&customer=a",
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(preview.status, 200, "{}", preview.body);
    let cli = p
        .tend(&["preview", "pulse", "--customer", "a"])
        .expect_code(0)
        .stdout();
    let subject = cli
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("Subject:")
        .trim();
    assert!(
        preview
            .body
            .contains(&format!("data-figure=\"subject\">{}<", subject)),
        "{subject}: {}",
        preview.body
    );
    assert!(preview.body.contains("One question."));
    let html = d.request(
        "GET",
        "/console/preview/html?template=pulse&customer=a",
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(html.status, 200);
    assert!(
        html.body.contains("/r/"),
        "the survey's answers: {}",
        html.body
    );
    let nobody = d.request(
        "GET",
        "/console/preview?template=pulse&customer=zed",
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(nobody.status, 404);
    // The same cookie sent twice (one may be planted by a neighbouring
    // host) signs nobody in.
    let twice = format!("{cookie}; {cookie}");
    assert_eq!(
        d.request("GET", "/console", &[("Cookie", &twice)], b"")
            .status,
        303
    );

    // Signing out takes the session's token; a forged one is refused.
    let csrf = hidden(&overview.body, "csrf");
    let forged = d.request(
        "POST",
        "/console/sign-out",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"csrf=forged-token",
    );
    assert_eq!(forged.status, 403);
    assert_eq!(
        d.request("GET", "/console", &[("Cookie", &cookie)], b"")
            .status,
        200
    );
    let out = d.request(
        "POST",
        "/console/sign-out",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        format!("csrf={csrf}").as_bytes(),
    );
    assert_eq!(out.status, 303);
    assert!(set_cookie(&out, "tend_session").contains("Max-Age=0"));
    // The old cookie no longer signs in, nor does one never issued.
    for stale in [cookie.clone(), "tend_session=made-up-by-someone".to_owned()] {
        let again = d.request("GET", "/console", &[("Cookie", &stale)], b"");
        assert_eq!(again.status, 303, "{stale}");
    }

    // A new password ends the sessions opened with the old.
    let signed = sign_in(&d, "ann", PASSWORD);
    let cookie = format!(
        "tend_session={}",
        cookie_value(set_cookie(&signed, "tend_session"))
    );
    assert_eq!(
        d.request("GET", "/console", &[("Cookie", &cookie)], b"")
            .status,
        200
    );
    set_password(&p, "ann", "another long passphrase").expect_code(0);
    assert_eq!(
        d.request("GET", "/console", &[("Cookie", &cookie)], b"")
            .status,
        303
    );
}

#[test]
fn signs_in_reads_and_signs_out_on_sqlite() {
    signs_in_reads_and_signs_out(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_in_reads_and_signs_out_on_postgres() {
    common::on_fresh_postgres(|url| signs_in_reads_and_signs_out(Some(url))).await;
}

#[test]
fn failed_sign_ins_wait_after_five_for_one_member() {
    let p = project(None);
    set_password(&p, "ann", PASSWORD).expect_code(0);
    let d = Daemon::start(&p, free_port(), &[]);
    for _ in 0..5 {
        assert_eq!(
            sign_in(&d, "ann", "a wrong guess of a password").status,
            401
        );
    }
    // Even the right password waits now, and says for how long.
    let limited = sign_in(&d, "ann", PASSWORD);
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(limited.body.contains("Wait 15 minutes"), "{}", limited.body);
    assert!(
        limited
            .head
            .to_ascii_lowercase()
            .contains("retry-after: 900")
    );
    // Another member is not held back by Ann's failures.
    set_password(&p, "vic", PASSWORD).expect_code(0);
    assert_eq!(sign_in(&d, "vic", PASSWORD).status, 303);
}

/// Asks for a sign-in link for `who` through the sign-in page's form.
fn ask_for_link(d: &Daemon, who: &str) -> Reply {
    let (cookie, token) = open_form(d, "tend_sign_in");
    let body = format!("form={token}&member={}", who.replace('@', "%40"));
    d.request(
        "POST",
        "/console/sign-in/link",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    )
}

/// The sign-in mails the `file` transport wrote, by recipient and text.
fn sign_in_mails(p: &Project) -> Vec<(String, String)> {
    let Ok(dir) = std::fs::read_dir(p.path().join("data/outbox")) else {
        return Vec::new();
    };
    // The daemon may be writing one now, under another name until whole.
    dir.filter_map(|e| {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "eml") {
            return None;
        }
        let raw = std::fs::read(&path).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        (parsed.subject() == Some("Sign in to tend")).then(|| {
            let to = parsed.to().unwrap().first().unwrap().address().unwrap();
            (to.to_owned(), parsed.body_text(0).unwrap().into_owned())
        })
    })
    .collect()
}

/// The path of the link in a sign-in mail's text.
fn link_path(text: &str) -> String {
    let start = text.find("/console/sign-in/link/").expect("a link");
    text[start..].split_whitespace().next().unwrap().to_owned()
}

#[test]
fn a_mailed_link_signs_in_once() {
    let p = project(None);
    let d = Daemon::start(&p, free_port(), &[]);
    // Whether the entry names anyone, the answer reads the same.
    let stranger = ask_for_link(&d, "nobody@example.com");
    assert_eq!(stranger.status, 200, "{}", stranger.body);
    let ann = ask_for_link(&d, "ann@acme.example");
    assert_eq!(ann.status, 200, "{}", ann.body);
    assert_eq!(
        stranger.body.replace("nobody@example.com", "ENTRY"),
        ann.body.replace("ann@acme.example", "ENTRY")
    );
    // The mail goes after the answer: wait for the file to be written.
    let mut mails = sign_in_mails(&p);
    for _ in 0..100 {
        if !mails.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        mails = sign_in_mails(&p);
    }
    assert_eq!(mails.len(), 1, "one mail, to Ann only: {mails:?}");
    let (to, text) = &mails[0];
    assert_eq!(to, "Ann@Acme.example");
    assert!(text.contains("as ann from 127.0.0.1"), "{text}");
    assert!(
        text.contains("http://127.0.0.1:8080/console/sign-in/link/"),
        "{text}"
    );
    let path = link_path(text);

    // Following it shows whose it is and a button, and spends nothing.
    for _ in 0..2 {
        let page = d.get(&path);
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains("Sign in as Ann Manager"),
            "{}",
            page.body
        );
        assert!(
            page.head
                .to_ascii_lowercase()
                .contains("referrer-policy: no-referrer")
        );
    }
    let page = d.get(&path);
    let token = cookie_value(set_cookie(&page, "tend_sign_in")).to_owned();
    let cookie = format!("tend_sign_in={token}");
    let post = |cookie: &str, form: &str| {
        d.request(
            "POST",
            &path,
            &[
                ("Cookie", cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            format!("form={form}").as_bytes(),
        )
    };
    // The button's form must come with its cookie.
    assert_eq!(post("", &token).status, 403);
    assert_eq!(post(&cookie, "forged").status, 403);
    let signed_in = post(&cookie, &token);
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(location(&signed_in), "/console");
    let session = cookie_value(set_cookie(&signed_in, "tend_session")).to_owned();
    let overview = d.request(
        "GET",
        "/console",
        &[("Cookie", &format!("tend_session={session}"))],
        b"",
    );
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(overview.body.contains("Ann Manager"), "{}", overview.body);

    // Once used, the link opens nothing.
    let again = d.get(&path);
    assert_eq!(again.status, 410, "{}", again.body);
    assert!(again.body.contains("Ask for a new one"), "{}", again.body);
    assert_eq!(post(&cookie, &token).status, 410);
    let made_up = d.get("/console/sign-in/link/not-a-link");
    assert_eq!(made_up.status, 410);

    // Three links in fifteen minutes for one member; the fourth waits.
    assert_eq!(ask_for_link(&d, "ann").status, 200);
    assert_eq!(ask_for_link(&d, "ann").status, 200);
    let limited = ask_for_link(&d, "ann");
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(
        limited
            .head
            .to_ascii_lowercase()
            .contains("retry-after: 900")
    );
    // A form without its cookie asks for nothing.
    let forged = d.request(
        "POST",
        "/console/sign-in/link",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"form=abc&member=vic",
    );
    assert_eq!(forged.status, 403);

    let audit = json(
        &p.tend(&["team", "audit", "--format", "json"])
            .expect_code(0),
    );
    let lines: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{} {} {}", a["member"], a["action"], a["detail"]))
        .collect();
    assert!(
        lines.contains(&"\"ann\" \"sign-in\" \"by mailed link\"".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(
            &"\"nobody@example.com\" \"sign-in link asked\" \"no such team member\"".to_owned()
        ),
        "{lines:?}"
    );
}

#[test]
fn over_https_the_cookies_are_secure_and_host_bound() {
    let p = project(None).env("TEND__HTTP__PUBLIC_URL", "https://tend.acme.example");
    set_password(&p, "ann", PASSWORD).expect_code(0);
    let d = Daemon::start(&p, free_port(), &[]);
    let (cookie, token) = open_form(&d, "__Host-tend_sign_in");
    let signed = d.request(
        "POST",
        "/console/sign-in",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        format!(
            "form={token}&member=ann&password={}",
            PASSWORD.replace(' ', "+")
        )
        .as_bytes(),
    );
    assert_eq!(signed.status, 303, "{}", signed.body);
    let session = set_cookie(&signed, "__Host-tend_session");
    for part in ["Secure", "Path=/;", "HttpOnly", "SameSite=Strict"] {
        assert!(session.contains(part), "{session}");
    }
}

/// The one-click unsubscribe URL in the maintenance notice sent to `to`.
fn unsubscribe_url(p: &Project, to: &str) -> String {
    for entry in std::fs::read_dir(p.path().join("data/outbox")).unwrap() {
        let raw = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let addressed = raw.contains(&format!("To: {to}")) || raw.contains(&format!("<{to}>"));
        if !addressed || !raw.contains("Subject: Maintenance for") {
            continue;
        }
        let at = raw.find("List-Unsubscribe: <").expect("List-Unsubscribe") + 19;
        return raw[at..].split('>').next().unwrap().to_owned();
    }
    panic!("no message to {to}");
}

#[test]
fn managers_lift_suppressions_viewers_only_read_them() {
    let p = project(None);
    set_password(&p, "ann", PASSWORD).expect_code(0);
    set_password(&p, "vic", PASSWORD).expect_code(0);
    let d = Daemon::start(&p, free_port(), &[]);
    // Ada unsubscribes with her mail client's one-click request.
    let url = unsubscribe_url(&p, "a@example.com");
    let path = &url[url.find("/u/").unwrap()..];
    let stop = d.request(
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"List-Unsubscribe=One-Click",
    );
    assert_eq!(stop.status, 200, "{}", stop.body);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let signed_in = |who: &str| {
        let signed = sign_in(&d, who, PASSWORD);
        assert_eq!(signed.status, 303, "{}", signed.body);
        let cookie = format!(
            "tend_session={}",
            cookie_value(set_cookie(&signed, "tend_session"))
        );
        let page = d.request("GET", "/console/suppressions", &[("Cookie", &cookie)], b"");
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = hidden(&page.body, "csrf");
        (cookie, csrf, page.body)
    };

    // Vic reads, and is refused every change.
    let (vic, vic_csrf, listed) = signed_in("vic");
    assert!(listed.contains("a@example.com"), "{listed}");
    assert!(!listed.contains("Lift…"), "no lift link for a viewer");
    let asked = d.request(
        "GET",
        "/console/suppressions/lift?id=incidents%3Aa",
        &[("Cookie", &vic)],
        b"",
    );
    assert_eq!(asked.status, 403);
    assert!(asked.body.contains("Managers only"), "{}", asked.body);
    let post = |cookie: &str, body: String| {
        let headers = [form[0], ("Cookie", cookie)];
        d.request(
            "POST",
            "/console/suppressions/lift",
            &headers,
            body.as_bytes(),
        )
    };
    let tried = post(
        &vic,
        format!("csrf={vic_csrf}&id=incidents%3Aa&reason=asked"),
    );
    assert_eq!(tried.status, 403);

    // Ann lifts it, with a reason; without one, or with a forged token,
    // nothing changes.
    let (ann, ann_csrf, listed) = signed_in("ann");
    assert!(
        listed.contains("/console/suppressions/lift?id=incidents%3Aa"),
        "{listed}"
    );
    let confirm = d.request(
        "GET",
        "/console/suppressions/lift?id=incidents%3Aa",
        &[("Cookie", &ann)],
        b"",
    );
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm
            .body
            .contains("gets no <strong>incidents</strong> mail")
    );
    let empty = post(&ann, format!("csrf={ann_csrf}&id=incidents%3Aa&reason=+"));
    assert_eq!(empty.status, 422, "{}", empty.body);
    assert_eq!(
        post(&ann, "csrf=forged&id=incidents%3Aa&reason=x".into()).status,
        403
    );
    let still = d.request("GET", "/console/suppressions", &[("Cookie", &ann)], b"");
    assert!(still.body.contains("a@example.com"));
    let lifted = post(
        &ann,
        format!("csrf={ann_csrf}&id=incidents%3Aa&reason=Asked+by+phone+to+hear+from+us+again"),
    );
    assert_eq!(lifted.status, 303, "{}", lifted.body);
    assert_eq!(
        location(&lifted),
        "/console/suppressions?lifted=incidents%3Aa"
    );
    let after = d.request("GET", location(&lifted), &[("Cookie", &ann)], b"");
    assert!(after.body.contains("Lifted incidents:a"), "{}", after.body);
    assert!(
        after.body.contains("No suppressions match."),
        "{}",
        after.body
    );
    // Kept with the person, and in the console's audit.
    let export = json(&p.tend(&["customer", "export", "a"]).expect_code(0));
    assert_eq!(
        export["lifted_suppressions"][0]["lifted_by"],
        "ann (console)"
    );
    assert_eq!(
        export["lifted_suppressions"][0]["why"],
        "Asked by phone to hear from us again"
    );
    let audit = json(
        &p.tend(&["team", "audit", "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(audit[0]["member"], "ann");
    assert_eq!(audit[0]["action"], "suppression lifted");
    assert_eq!(
        audit[0]["detail"],
        "incidents:a: Asked by phone to hear from us again"
    );
    assert_eq!(audit[0]["address"], "127.0.0.1");
    let filtered = d.request(
        "GET",
        "/console/suppressions?customer=tab%09inside",
        &[("Cookie", &ann)],
        b"",
    );
    assert_eq!(filtered.status, 400, "{}", filtered.body);
    assert!(
        filtered.body.contains("control character"),
        "{}",
        filtered.body
    );
}

/// Where the browser test keeps its screenshots (test artifacts).
fn screenshots() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

fn in_a_browser(database: Option<&str>, store: &str) {
    use common::browser::Browser;
    let p = project(database);
    set_password(&p, "ann", PASSWORD).expect_code(0);
    let d = Daemon::start(&p, free_port(), &[]);
    let url = unsubscribe_url(&p, "a@example.com");
    let stop = d.request(
        "POST",
        &url[url.find("/u/").unwrap()..],
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"List-Unsubscribe=One-Click",
    );
    assert_eq!(stop.status, 200);
    // Bea answers, so the charts have a point and the detractors a name.
    let answered = d.request(
        "POST",
        &survey_path(&p, "b@example.com", "3"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"comment=Too+slow",
    );
    assert_eq!(answered.status, 200);
    let base = format!("http://127.0.0.1:{}", d.port);
    let browser = Browser::start();
    let check = |name: &str| {
        let serious: Vec<String> = browser
            .accessibility_violations()
            .into_iter()
            .filter(|v| v.contains("(serious)") || v.contains("(critical)"))
            .collect();
        assert!(serious.is_empty(), "{name}: {serious:#?}");
        for width in [375, 1280] {
            browser.resize(width, 900);
            let wide = browser.execute("return document.documentElement.scrollWidth;");
            assert!(
                wide.as_i64().unwrap() <= width,
                "{name} is wider than {width} px: {wide}"
            );
            browser.screenshot(&screenshots().join(format!("{store}-{name}-{width}.png")));
        }
    };
    browser.open(&format!("{base}/console"));
    assert!(
        browser
            .source_with("Sign in to tend")
            .contains("Sign in to tend")
    );
    check("sign-in");
    browser.type_into("#member", "ann@acme.example");
    browser.type_into("#password", PASSWORD);
    let before = Utc::now();
    browser.click("button[type=submit]");
    let overview = browser.source_with("Signed in as");
    assert!(overview.contains("This week"), "{overview}");
    let shown = browser
        .execute("return document.querySelector('[data-figure=\"today-sent\"]').textContent;");
    let after = Utc::now();
    check("overview");
    let midnight = after.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let report = json(
        &p.tend(&[
            "report",
            "--since",
            &midnight.to_rfc3339(),
            "--format",
            "json",
        ])
        .expect_code(0),
    );
    // Today's figure is the report's (checked when no midnight passed
    // while the page was made).
    if before.date_naive() == after.date_naive() {
        assert_eq!(
            shown.as_str().unwrap(),
            report["messages"]["sent"].as_i64().unwrap_or(0).to_string()
        );
    }
    for (name, path, text) in [
        ("customers", "/console/customers", "Name, email or id"),
        ("search", "/console/customers?q=bea", "Bea B"),
        ("customer", "/console/customers/a", "Maintenance for Ada"),
        ("next", "/console/next?customer=a&days=14", "pulse/again"),
        (
            "preview",
            "/console/preview?template=pulse&customer=a",
            "One question.",
        ),
        ("suppressions", "/console/suppressions", "a@example.com"),
        (
            "lift",
            "/console/suppressions/lift?id=incidents%3Aa",
            "Lift the suppression",
        ),
    ] {
        browser.open(&format!("{base}{path}"));
        assert!(browser.source_with(text).contains(text), "{name}");
        check(name);
    }
    // Lifting it, in the browser.
    browser.type_into("#reason", "Asked by phone to hear from us again");
    browser.click("main button[type=submit]");
    let after = browser.source_with("Lifted incidents:a");
    assert!(after.contains("No suppressions match."), "{after}");
    // Opening an incident: the list, who it reaches, then its page.
    browser.open(&format!("{base}/console/incidents"));
    assert!(
        browser
            .source_with("Open an incident")
            .contains("No incidents yet.")
    );
    check("incidents");
    browser.type_into("#id", "db-1");
    browser.type_into("#title", "Slow dashboards");
    browser.type_into("#affects", "true");
    browser.type_into("#message", "Dashboards load slowly; we are on it.");
    browser.click("main button[type=submit]");
    assert!(browser.source_with("will reach").contains("Ada A"));
    check("incident-preview");
    browser.click("main button[type=submit]");
    let page = browser.source_with("Post an update");
    assert!(page.contains("Told (3)"), "{page}");
    check("incident");
}

#[test]
fn in_a_browser_every_page_passes_axe_and_fits_a_phone_on_sqlite() {
    in_a_browser(None, "sqlite");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_every_page_passes_axe_and_fits_a_phone_on_postgres() {
    common::on_fresh_postgres(|url| in_a_browser(Some(url), "postgres")).await;
}

/// The survey link for `answer` in the pulse sent to `to`.
fn survey_path(p: &Project, to: &str, answer: &str) -> String {
    for entry in std::fs::read_dir(p.path().join("data/outbox")).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let sent_to = parsed
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address());
        let Some(html) = parsed.body_html(0).filter(|h| h.contains("/r/")) else {
            continue;
        };
        if sent_to != Some(to) {
            continue;
        }
        let end = format!("/{answer}\"");
        return html
            .match_indices("/r/")
            .map(|(at, _)| &html[at..])
            .map(|link| &link[..link.find('"').unwrap() + 1])
            .find(|link| link.ends_with(&end))
            .map(|link| link.trim_end_matches('"').to_owned())
            .unwrap_or_else(|| panic!("no survey link for {answer}"));
    }
    panic!("no survey to {to}");
}

fn the_overview_charts_what_the_report_counts(database: Option<&str>) {
    let p = project(database);
    set_password(&p, "ann", PASSWORD).expect_code(0);
    let d = Daemon::start(&p, free_port(), &[]);
    // Ada and Cy promote, Bea detracts with a comment.
    for (to, answer, comment) in [
        ("a@example.com", "10", ""),
        ("b@example.com", "3", "Setup+took+a+week.%0AToo+long."),
        ("c@example.com", "9", ""),
    ] {
        let path = survey_path(&p, to, answer);
        let answered = d.request(
            "POST",
            &path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            format!("comment={comment}").as_bytes(),
        );
        assert_eq!(answered.status, 200, "{}", answered.body);
    }
    let signed = sign_in(&d, "ann", PASSWORD);
    let cookie = format!(
        "tend_session={}",
        cookie_value(set_cookie(&signed, "tend_session"))
    );
    let before = Utc::now();
    let overview = d.request("GET", "/console", &[("Cookie", &cookie)], b"");
    let after = Utc::now();
    assert_eq!(overview.status, 200, "{}", overview.body);
    let page = &overview.body;
    // This week's point is `tend report --since` this week's Monday.
    let midnight = before.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let monday = midnight - Duration::days(i64::from(before.weekday().num_days_from_monday()));
    if before.date_naive() == after.date_naive() {
        let report = json(
            &p.tend(&[
                "report",
                "--since",
                &monday.to_rfc3339(),
                "--format",
                "json",
            ])
            .expect_code(0),
        );
        let day = monday.format("%Y-%m-%d");
        let nps = report["surveys"]["nps"]["score"].as_f64().unwrap();
        assert_eq!(nps, 33.3, "{report:#}");
        let shown = |id: String| {
            let marker = format!("data-figure=\"{id}\">");
            let at = page.find(&marker).unwrap_or_else(|| panic!("no {id}")) + marker.len();
            page[at..].split('<').next().unwrap().to_owned()
        };
        assert_eq!(shown(format!("nps-{day}")), nps.to_string());
        assert_eq!(shown(format!("csat-{day}")), "—");
        // The response rate per step over the twelve weeks.
        let twelve = monday - Duration::weeks(11);
        let report = json(
            &p.tend(&[
                "report",
                "--since",
                &twelve.to_rfc3339(),
                "--format",
                "json",
            ])
            .expect_code(0),
        );
        for step in report["playbooks"].as_array().unwrap() {
            let name = format!(
                "{}/{}",
                step["playbook"].as_str().unwrap(),
                step["step"].as_str().unwrap()
            );
            assert_eq!(
                shown(format!("rate-{name}")),
                step["response_rate"].as_f64().unwrap().to_string(),
                "{name}"
            );
        }
        assert!(page.contains("NPS by week"), "the chart is drawn");
        assert!(
            page.contains(
                "aria-labelledby=\"nps-chart-title\" aria-describedby=\"nps-chart-desc\""
            )
        );
    }
    // Bea is the latest detractor, with her words; nobody replied yet.
    let detractors = &page[page.find("id=\"detractors\"").unwrap()..];
    assert!(
        detractors.contains("href=\"/console/customers/b\""),
        "{detractors}"
    );
    assert!(
        detractors.contains("Setup took a week.<br>Too long."),
        "{detractors}"
    );
    assert!(!detractors.contains("/console/customers/a\""));
    assert!(page.contains("No replies yet."));
}

#[test]
fn the_overview_charts_what_the_report_counts_on_sqlite() {
    the_overview_charts_what_the_report_counts(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_charts_what_the_report_counts_on_postgres() {
    common::on_fresh_postgres(|url| the_overview_charts_what_the_report_counts(Some(url))).await;
}

#[test]
fn a_manager_opens_updates_and_resolves_an_incident_after_seeing_who_it_reaches() {
    let p = project(None);
    set_password(&p, "ann", PASSWORD).expect_code(0);
    set_password(&p, "vic", PASSWORD).expect_code(0);
    let d = Daemon::start(&p, free_port(), &[]);
    let session = |who: &str| {
        let signed = sign_in(&d, who, PASSWORD);
        let cookie = format!(
            "tend_session={}",
            cookie_value(set_cookie(&signed, "tend_session"))
        );
        let page = d.request("GET", "/console/incidents", &[("Cookie", &cookie)], b"");
        assert_eq!(page.status, 200, "{}", page.body);
        (cookie, hidden(&page.body, "csrf"), page.body)
    };
    let post = |cookie: &str, path: &str, body: &str| {
        d.request(
            "POST",
            path,
            &[
                ("Cookie", cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body.as_bytes(),
        )
    };
    // A viewer sees the list without the form and is refused the change.
    let (vic, vic_csrf, listed) = session("vic");
    assert!(listed.contains("No incidents yet."));
    assert!(!listed.contains("Open an incident"));
    let refused = post(
        &vic,
        "/console/incidents/open",
        &format!("csrf={vic_csrf}&id=db-1&title=Slow&affects=true&message=x"),
    );
    assert_eq!(refused.status, 403);

    // A manager first sees how many it reaches and who.
    let (ann, csrf, _) = session("ann");
    let bad = post(
        &ann,
        "/console/incidents/preview",
        &format!("csrf={csrf}&id=db-1&title=Slow&affects=customer.plann+%3D%3D+1&message=x"),
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body.contains("plann"),
        "the error names what is wrong: {}",
        bad.body
    );
    let form = format!(
        "csrf={csrf}&id=db-1&title=Slow+dashboards&affects=customer.id+%21%3D+%22c%22&message=Dashboards+load+slowly."
    );
    let preview = post(&ann, "/console/incidents/preview", &form);
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview.body.contains("data-figure=\"would-reach\">2<"),
        "{}",
        preview.body
    );
    assert!(preview.body.contains("Ada A") && preview.body.contains("Bea B"));
    assert!(!preview.body.contains("Cy C"));
    assert_eq!(
        json(
            &p.tend(&["incident", "list", "--format", "json"])
                .expect_code(0)
        ),
        serde_json::json!([]),
        "a preview opens nothing"
    );
    assert_eq!(
        post(
            &ann,
            "/console/incidents/open",
            &form.replace(&csrf, "forged")
        )
        .status,
        403
    );
    let opened = post(&ann, "/console/incidents/open", &form);
    assert_eq!(opened.status, 303, "{}", opened.body);
    assert_eq!(location(&opened), "/console/incidents/db-1");
    assert_eq!(
        post(&ann, "/console/incidents/open", &form).status,
        409,
        "ids are unique"
    );

    let page = d.request("GET", "/console/incidents/db-1", &[("Cookie", &ann)], b"");
    assert!(
        page.body.contains("data-figure=\"status\">investigating<"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Told (2)"), "{}", page.body);
    let update = post(
        &ann,
        "/console/incidents/db-1/update",
        &format!("csrf={csrf}&message=Found+it.&status=identified&notify=true"),
    );
    assert_eq!(update.status, 303, "{}", update.body);
    let empty = post(
        &ann,
        "/console/incidents/db-1/resolve",
        &format!("csrf={csrf}&message=+"),
    );
    assert_eq!(empty.status, 422, "{}", empty.body);
    let resolved = post(
        &ann,
        "/console/incidents/db-1/resolve",
        &format!("csrf={csrf}&message=Fixed."),
    );
    assert_eq!(resolved.status, 303, "{}", resolved.body);
    let listed = d.request("GET", "/console/incidents", &[("Cookie", &ann)], b"");
    assert!(
        listed.body.contains("data-figure=\"told-db-1\">2<"),
        "{}",
        listed.body
    );
    // What the command line sees, and the audit.
    let incidents = json(
        &p.tend(&["incident", "list", "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(incidents[0]["status"], "resolved");
    let audit = json(
        &p.tend(&["team", "audit", "--format", "json"])
            .expect_code(0),
    );
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["incident resolved", "incident updated", "incident opened"]
    );
    assert_eq!(audit[2]["detail"], "db-1: 2 affected, 2 notices");

    // A maintenance: when it starts and ends, in the team's zone (UTC).
    let at = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M").to_string();
    let starts = Utc::now() + Duration::days(3);
    let ends = starts + Duration::hours(2);
    let maintenance = |starts: &str, ends: &str| {
        format!(
            "csrf={csrf}&id=mx-1&title=Upgrade&affects=true&message=Brief+downtime.&starts={}&ends={}",
            starts.replace(':', "%3A"),
            ends.replace(':', "%3A")
        )
    };
    for (starts, ends, says) in [
        (at(starts), String::new(), "needs both"),
        (at(ends), at(starts), "must end after it starts"),
        (at(Utc::now() - Duration::hours(1)), at(ends), "has passed"),
        ("tomorrow".to_owned(), at(ends), "is not a date and time"),
    ] {
        let refused = post(
            &ann,
            "/console/incidents/preview",
            &maintenance(&starts, &ends),
        );
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.body.contains(says), "{says}: {}", refused.body);
        let refused = post(
            &ann,
            "/console/incidents/open",
            &maintenance(&starts, &ends),
        );
        assert_eq!(refused.status, 422, "{}", refused.body);
    }
    let form = maintenance(&at(starts), &at(ends));
    let preview = post(&ann, "/console/incidents/preview", &form);
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview.body.contains("A maintenance from"),
        "{}",
        preview.body
    );
    assert!(
        preview.body.contains("Schedule it and tell them"),
        "{}",
        preview.body
    );
    let scheduled = post(&ann, "/console/incidents/open", &form);
    assert_eq!(scheduled.status, 303, "{}", scheduled.body);
    let incidents = json(
        &p.tend(&["incident", "list", "--format", "json"])
            .expect_code(0),
    );
    let mx = incidents
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "mx-1")
        .expect("the maintenance");
    assert_eq!(mx["status"], "scheduled");
    let page = d.request("GET", "/console/incidents/mx-1", &[("Cookie", &ann)], b"");
    assert!(page.body.contains("maintenance ·"), "{}", page.body);
    assert!(
        page.body.contains(&format!(
            "data-figure=\"starts\" datetime=\"{}",
            starts.format("%Y-%m-%dT%H:%M:00+00:00")
        )),
        "{}",
        page.body
    );
    let called_off = post(
        &ann,
        "/console/incidents/mx-1/cancel",
        &format!("csrf={csrf}&message=Postponed."),
    );
    assert_eq!(called_off.status, 303, "{}", called_off.body);
    let audit = json(
        &p.tend(&["team", "audit", "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(audit[0]["action"], "maintenance cancelled");
    assert_eq!(audit[1]["action"], "maintenance scheduled");
}

#[test]
fn an_accounts_page_shows_its_owner_contacts_and_latest_answers() {
    let p = project(None);
    p.file(
        "accounts.csv",
        "id,name,plan,owner,renewal_at\nacme,Acme Corp,enterprise,ann,2027-03-01T00:00:00Z\n",
    );
    p.tend(&["import", "accounts", "accounts.csv"])
        .expect_code(0);
    p.file(
        "contacts.csv",
        format!(
            "id,email,name,timezone,plan,signup_at,account_id\na,a@example.com,Ada A,UTC,pro,{},acme\n",
            (Utc::now() - Duration::minutes(2)).to_rfc3339()
        ),
    );
    p.tend(&["import", "customers", "contacts.csv"])
        .expect_code(0);
    set_password(&p, "vic", PASSWORD).expect_code(0);
    let d = Daemon::start(&p, free_port(), &[]);
    let answered = d.request(
        "POST",
        &survey_path(&p, "a@example.com", "9"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"comment=",
    );
    assert_eq!(answered.status, 200);
    let signed = sign_in(&d, "vic", PASSWORD);
    let cookie = format!(
        "tend_session={}",
        cookie_value(set_cookie(&signed, "tend_session"))
    );
    let ada = d.request("GET", "/console/customers/a", &[("Cookie", &cookie)], b"");
    assert!(
        ada.body.contains("href=\"/console/accounts/acme\""),
        "{}",
        ada.body
    );
    let page = d.request("GET", "/console/accounts/acme", &[("Cookie", &cookie)], b"");
    assert_eq!(page.status, 200, "{}", page.body);
    for shown in [
        "Acme Corp (acme)",
        "owner Ann Manager (Ann@Acme.example)",
        "renews 2027-03-01",
        "href=\"/console/customers/a\"",
        "data-figure=\"latest-nps\">9<",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    let shown = json(
        &p.tend(&["account", "show", "acme", "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(shown["latest"]["nps"]["value"], "9");
    let nobody = d.request("GET", "/console/accounts/nope", &[("Cookie", &cookie)], b"");
    assert_eq!(nobody.status, 404);
}

/// The stored password hash is argon2id in the PHC form another
/// implementation reads: argon2-cffi (the reference C library's binding,
/// from PyPI) verifies the password `tend team set-password` was given
/// against the hash read straight from the SQLite file, and refuses
/// another.
#[test]
fn another_argon2_implementation_verifies_the_stored_password() {
    let p = project(None);
    set_password(&p, "ann", PASSWORD).expect_code(0);
    let python = common::python::venv("argon2", &["argon2-cffi==23.1.0"], "import argon2");
    let script = r#"
import sqlite3, sys, argon2
from argon2.exceptions import VerifyMismatchError
db, password = sys.argv[1], sys.argv[2]
(stored,) = sqlite3.connect(db).execute("SELECT hash FROM team_passwords WHERE member_id = 'ann'").fetchone()
assert argon2.extract_parameters(stored).type == argon2.Type.ID, stored
argon2.PasswordHasher().verify(stored, password)
try:
    argon2.PasswordHasher().verify(stored, password + "!")
    sys.exit("another password verified")
except VerifyMismatchError:
    pass
print("verified")
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(p.path().join("data/tend.db"))
        .arg(PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "verified");
}
