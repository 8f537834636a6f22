//! Configuration: layering (defaults → file → environment), unknown keys
//! named with their line, secrets that never reach a log, and the shipped
//! `config/tend.toml` that documents every key.

mod common;

use std::path::Path;

use common::Project;
use tend::config::{self, ConfigError, ConfigPath, Env, Settings};

fn load(text: Option<&str>, env: &[(&str, &str)]) -> Result<config::Loaded, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tend.toml");
    if let Some(text) = text {
        std::fs::write(&path, text).unwrap();
    }
    let env = Env::from_pairs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    config::load(&ConfigPath::Default(path), &env)
}

fn problems(result: Result<config::Loaded, ConfigError>) -> Vec<String> {
    match result {
        Err(ConfigError::Invalid(p)) => p
            .iter()
            .map(|p| {
                format!(
                    "{}:{}: {}",
                    p.file.file_name().unwrap().to_string_lossy(),
                    p.line.unwrap_or(0),
                    p.message
                )
            })
            .collect(),
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn each_layer_overrides_the_one_before() {
    let defaults = load(None, &[]).unwrap();
    assert_eq!(defaults.settings, Settings::default());
    assert_eq!(defaults.file, None);

    let file = "[database]\nurl = \"sqlite://file.db\"\n[delivery]\nconcurrency = 3\ncap = { max = 5, per = \"1d\" }\n";
    let from_file = load(Some(file), &[]).unwrap().settings;
    assert_eq!(from_file.database.url, "sqlite://file.db");
    assert_eq!(from_file.delivery.concurrency, 3);
    assert_eq!(from_file.delivery.cap.max, 5);
    assert_eq!(
        from_file.mail.from,
        Settings::default().mail.from,
        "untouched keys keep their defaults"
    );

    let from_env = load(
        Some(file),
        &[
            ("TEND__DATABASE__URL", "postgres://u@db.example/tend"),
            ("TEND__DELIVERY__CONCURRENCY", "12"),
            ("TEND__MAIL__TRANSPORT", "smtp"),
            ("TEND__MAIL__SMTP__PASSWORD", "007"),
            ("TEND__DELIVERY__PRIORITY", "tips,incidents"),
            ("TEND_CONFIG", "ignored-here"),
        ],
    )
    .unwrap();
    let s = &from_env.settings;
    assert_eq!(s.database.url, "postgres://u@db.example/tend");
    assert_eq!(s.delivery.concurrency, 12);
    assert_eq!(
        s.delivery.cap.max, 5,
        "the file still applies where the environment is silent"
    );
    assert_eq!(s.delivery.priority, ["tips", "incidents"]);
    // A numeric-looking secret stays a string.
    assert_eq!(
        from_env.secrets.smtp_password.as_ref().unwrap().expose(),
        "007"
    );
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let text = "[company]\nname = \"Acme\"\n\n[mail.smtp]\nhots = \"mail.example\"\n";
    let found = problems(load(Some(text), &[]));
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0], "tend.toml:5: unknown field `hots`; did you mean `host`?",
        "{found:?}"
    );

    let found = problems(load(
        Some(
            "[delivery]\nwindow = { days = \"mon-fri\", start = \"09:00\", end = \"17:00\", tz = \"x\" }\n",
        ),
        &[],
    ));
    assert!(
        found[0].starts_with("tend.toml:2: unknown field `tz`"),
        "{found:?}"
    );

    let found = problems(load(Some("[mail]\ntransport = \"carrier-pigeon\"\n"), &[]));
    assert!(
        found[0].starts_with("tend.toml:2: unknown variant `carrier-pigeon`"),
        "{found:?}"
    );
}

#[test]
fn every_structural_mistake_is_listed() {
    let text = "\
[company]
nmae = \"Acme\"

[delivery]
concurrency = \"lots\"
cap = { max = 2, per = \"7 fortnights\" }

[mail.smtp]
hots = \"mail.example\"
port = 2525
";
    let found = problems(load(Some(text), &[]));
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(
        found[0].starts_with("tend.toml:2: unknown field `nmae`"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("tend.toml:5: invalid type: string \"lots\""),
        "{found:?}"
    );
    assert!(
        found[2].starts_with("tend.toml:6: \"7 fortnights\" is not a length of time"),
        "{found:?}"
    );
    assert!(
        found[3].starts_with("tend.toml:9: unknown field `hots`"),
        "{found:?}"
    );

    let found = problems(load(Some("[company\nname = 1\n"), &[]));
    assert_eq!(found.len(), 1, "a syntax error is reported once: {found:?}");
    assert!(found[0].starts_with("tend.toml:1: "), "{found:?}");
}

#[test]
fn an_unknown_environment_key_is_named() {
    let found = problems(load(None, &[("TEND__DATABASE__URLL", "sqlite://x.db")]));
    assert!(
        found[0].contains("urll") && found[0].contains("TEND__DATABASE__URLL"),
        "{found:?}"
    );
}

#[test]
fn every_semantic_problem_is_listed_with_its_line() {
    let text = "\
[company]
postal_address = \"\"

[database]
url = \"mysql://root@localhost/tend\"

[customers]
default_timezone = \"Europe/Atlantis\"

[delivery]
window = { days = \"mon-fri\", start = \"17:00\", end = \"09:00\" }
schedule_typo_free = 1
";
    // The unknown key is structural and reported first on its own.
    let found = problems(load(Some(text), &[]));
    assert!(
        found[0].starts_with("tend.toml:12: unknown field `schedule_typo_free`"),
        "{found:?}"
    );

    let text = text.replace("schedule_typo_free = 1\n", "");
    let found = problems(load(Some(&text), &[]));
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(
        found[0].starts_with("tend.toml:2: company.postal_address is empty"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with(
            "tend.toml:5: database.url \"mysql://root@localhost/tend\" is not supported"
        ),
        "{found:?}"
    );
    assert!(
        found[2].starts_with("tend.toml:8: customers.default_timezone"),
        "{found:?}"
    );
    assert!(
        found[3].starts_with(
            "tend.toml:11: delivery.window: the window ends at 09:00 before it starts"
        ),
        "{found:?}"
    );
}

#[test]
fn team_and_roles_mistakes_are_listed_with_their_lines() {
    let text = "\
[accounts]
roles = [\"admin\", \"Billing\", \"admin\"]

[incidents]
roles = [\"technical\"]

[[team]]
id = \"maria\"
name = \"Maria Costa\"
email = \"maria@acme.example\"

[[team]]
id = \"maria\"
name = \"\"
email = \"tom at acme\"
";
    let found = problems(load(Some(text), &[]));
    let expected = [
        "tend.toml:2: accounts.roles: role \"Billing\" is not a role name",
        "tend.toml:2: accounts.roles names \"admin\" twice; keep one",
        "tend.toml:5: incidents.roles names \"technical\", which [accounts] roles does not declare",
        "tend.toml:13: team member \"maria\" is declared twice; keep one",
        "tend.toml:14: team member \"maria\": name is empty",
        "tend.toml:15: team member \"maria\": email \"tom at acme\" is not a valid address",
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for (found, expected) in found.iter().zip(expected) {
        assert!(
            found.starts_with(expected),
            "{found} does not start with {expected}"
        );
    }
}

#[test]
fn a_lease_too_short_to_renew_is_refused_with_its_line() {
    let found = problems(load(Some("[delivery]\nlease = \"2s\"\n"), &[]));
    assert!(
        found[0].starts_with("tend.toml:2: delivery.lease (2s) is too short"),
        "{found:?}"
    );
    // Renewed while held, a lease no longer has to outlast an SMTP
    // transaction: a minute is fine beside a 30 s timeout.
    let fine = load(
        Some("[mail.smtp]\ntimeout = \"30s\"\n[delivery]\nlease = \"1m\"\n[instance]\nname = \"web1\"\n"),
        &[],
    )
    .expect("a 1m lease with a 30s SMTP timeout is valid");
    assert_eq!(fine.settings.instance.name, "web1");
    let found = problems(load(Some("[instance]\nname = \"web\\n1\"\n"), &[]));
    assert!(
        found[0].starts_with("tend.toml:2: instance.name \"web\\n1\" is not a usable name"),
        "{found:?}"
    );
}

#[test]
fn a_bad_duration_names_its_line() {
    let found = problems(load(
        Some("[schedule]\nplan_every = \"every minute\"\n"),
        &[],
    ));
    assert!(
        found[0].starts_with("tend.toml:2: \"every minute\" is not a length of time"),
        "{found:?}"
    );
}

#[test]
fn secrets_come_from_files_and_credentials_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smtp_password"), "from-credentials\n").unwrap();
    std::fs::write(dir.path().join("token"), "tok-from-file").unwrap();
    // The SMTP password is read only for the transport that logs in.
    let text = format!(
        "[mail]\ntransport = \"smtp\"\n[http]\napi_token_file = \"{}\"\n",
        dir.path().join("token").display()
    );
    let loaded = load(
        Some(&text),
        &[("CREDENTIALS_DIRECTORY", dir.path().to_str().unwrap())],
    )
    .unwrap();
    assert_eq!(
        loaded.secrets.smtp_password.as_ref().unwrap().expose(),
        "from-credentials"
    );
    assert_eq!(
        loaded.secrets.api_token.as_ref().unwrap().expose(),
        "tok-from-file"
    );
    let shown = format!("{loaded:?}");
    assert!(
        !shown.contains("from-credentials") && !shown.contains("tok-from-file"),
        "{shown}"
    );

    let found = problems(load(
        Some("[security]\nsecret = \"a\"\nsecret_file = \"/x\"\n"),
        &[],
    ));
    assert!(
        found[0].contains("both security.secret and security.secret_file are set"),
        "{found:?}"
    );
    let found = problems(load(
        Some("[security]\nsecret_file = \"/nonexistent/key\"\n"),
        &[],
    ));
    assert!(
        found[0].starts_with("tend.toml:2: cannot read security.secret_file"),
        "{found:?}"
    );
}

#[test]
fn a_secret_never_appears_in_the_logs() {
    let p = Project::new("[mail.smtp]\npassword = \"file-secret-4411\"\n")
        .env("TEND__HTTP__API_TOKEN", "env-secret-9922")
        .env("RUST_LOG", "trace");
    let run = p.tend(&["migrate"]).expect_code(0);
    let logs = run.stderr();
    assert!(
        logs.contains("configuration loaded"),
        "the settings must be logged for this test to mean anything:\n{logs}"
    );
    assert!(logs.contains("[redacted]"), "{logs}");
    assert!(
        !logs.contains("file-secret-4411") && !logs.contains("env-secret-9922"),
        "{logs}"
    );
}

#[test]
fn the_shipped_config_spells_out_every_default() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tend.toml");
    let text = std::fs::read_to_string(&shipped).unwrap();
    let loaded = config::load(&ConfigPath::Explicit(shipped), &Env::default()).unwrap();
    // The one key the shipped file sets against its default: the quick start
    // loads demo customers; a config written from scratch never does.
    assert!(loaded.settings.demo.load, "the quick start needs demo.load");
    let mut expected = Settings::default();
    expected.demo.load = true;
    // And the demo's success team, who own the demo accounts: a config
    // written from scratch has none.
    assert_eq!(
        loaded.settings.team.len(),
        2,
        "the demo's two success managers"
    );
    expected.team = loaded.settings.team.clone();
    assert_eq!(
        loaded.settings, expected,
        "config/tend.toml and the built-in defaults differ"
    );

    // Every key (and every key of the optional IMAP and DKIM sections) has a
    // line with a comment.
    let mut defaults = serde_json::to_value(Settings::default()).unwrap();
    defaults["inbound"]["imap"] = serde_json::to_value(config::settings::Imap::default()).unwrap();
    defaults["mail"]["dkim"] = serde_json::to_value(config::settings::Dkim::default()).unwrap();
    let mut missing = Vec::new();
    walk(&defaults, String::new(), &mut |key| {
        let leaf = key.rsplit('.').next().unwrap();
        let documented = text.lines().any(|l| {
            let l = l.trim_start_matches(['#', ' ']);
            (l.starts_with(&format!("{leaf} ="))
                || l.starts_with(&format!("{leaf}="))
                || l.contains(&format!(" {leaf} = ")))
                && l.contains('#')
        });
        let is_table_item = key.starts_with("category.")
            || key.starts_with("team")
            // Empty lists, shown as commented [[alert]] and [[webhook]] examples.
            || key == "alert"
            || key == "webhook"
            || key.starts_with("lifecycle.")
            || leaf == "password"
            || leaf == "api_token"
            || leaf == "secret";
        if !documented && !is_table_item {
            missing.push(key);
        }
    });
    assert!(
        missing.is_empty(),
        "keys without a commented line in config/tend.toml: {missing:?}"
    );
}

fn walk(v: &serde_json::Value, prefix: String, found: &mut impl FnMut(String)) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match v {
                    serde_json::Value::Object(_) if !matches!(k.as_str(), "window" | "cap") => {
                        walk(v, key, found)
                    }
                    serde_json::Value::Array(items)
                        if items.iter().all(|i| i.is_object()) && !items.is_empty() =>
                    {
                        for (i, item) in items.iter().enumerate() {
                            walk(item, format!("{key}.{i}"), found);
                        }
                    }
                    _ => found(key),
                }
            }
        }
        _ => found(prefix),
    }
}

#[test]
fn check_and_usage_exit_codes() {
    let p = Project::new(
        "[company]\npostal_address = \"\"\n[delivery]\ncap = { max = 0, per = \"7d\" }\n",
    );
    let run = p.tend(&["check"]).expect_code(1);
    let err = run.stderr();
    assert!(
        err.contains("config/tend.toml:2: company.postal_address is empty"),
        "{err}"
    );
    assert!(
        err.contains("config/tend.toml:4: delivery.cap.max is 0"),
        "{err}"
    );
    assert!(err.contains("2 problems found"), "{err}");

    let ok = Project::new("");
    assert_eq!(
        ok.tend(&["check"]).expect_code(0).stdout(),
        "no config file named and none at config/tend.toml: using the built-in defaults\n\
         ok: built-in defaults, 0 playbooks, 0 templates (and 6 built-in notices)\n"
    );
    ok.tend(&["no-such-command"]).expect_code(2);
    ok.tend(&["import", "customers"]).expect_code(2);
    let run = ok
        .tend(&["--config", "missing.toml", "check"])
        .expect_code(1);
    assert!(
        run.stderr()
            .contains("missing.toml: the config file does not exist"),
        "{}",
        run.stderr()
    );
    let run = Project::new("")
        .env("TEND_CONFIG", "elsewhere.toml")
        .tend(&["migrate"])
        .expect_code(1);
    assert!(
        run.stderr()
            .contains("config file elsewhere.toml does not exist"),
        "{}",
        run.stderr()
    );
}

/// PostgreSQL on a Unix socket: `host=` names the socket's directory. The
/// socket here is the test's own, passing bytes to the server's TCP port,
/// so it does not depend on where the server keeps its socket.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_is_reached_on_a_unix_socket_and_a_dead_one_is_named() {
    use std::str::FromStr;
    let pg = common::PgDatabase::create().await;
    let server = sqlx::postgres::PgConnectOptions::from_str(&pg.url).unwrap();
    let (host, port) = (server.get_host().to_owned(), server.get_port());
    let sockets = tempfile::tempdir().unwrap();
    let listener = tokio::net::UnixListener::bind(sockets.path().join(".s.PGSQL.5432")).unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let mut upstream = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .unwrap();
            tokio::spawn(async move {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    let dir = sockets.path().display().to_string();
    let url = format!("postgres://postgres@localhost/{}?host={dir}", pg.name);
    let p = Project::new("").env("TEND__DATABASE__URL", &url);
    let run = tokio::task::spawn_blocking(move || p.tend(&["migrate"]))
        .await
        .unwrap();
    run.expect_code(0);

    // A socket file nobody listens on any more: refused, said as such
    // (the pool alone would retry until the timeout, then say "timed out").
    let dead = tempfile::tempdir().unwrap();
    drop(std::os::unix::net::UnixListener::bind(dead.path().join(".s.PGSQL.5432")).unwrap());
    let url = format!(
        "postgres://postgres@localhost/tend?host={}",
        dead.path().display()
    );
    let p =
        Project::new("[database]\nconnect_timeout = \"60s\"\n").env("TEND__DATABASE__URL", &url);
    let run = tokio::task::spawn_blocking(move || p.tend(&["migrate"]).expect_code(1))
        .await
        .unwrap();
    let err = run.stderr();
    assert!(
        err.starts_with(
            "error: cannot connect to PostgreSQL at postgres://postgres@localhost/tend"
        ) && err.contains("refused")
            && err.contains("start PostgreSQL or fix database.url"),
        "{err}"
    );
}

/// A store whose record of a migration differs from this build's is
/// refused in the migrator's words, on both stores: a start that finds
/// every migration in place reads the record and goes on, and that must
/// not hide a changed one.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_with_a_changed_migration_is_refused() {
    use sqlx::Connection;
    let pg = common::PgDatabase::create().await;
    let tamper = "UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = 1";
    for backend in ["sqlite", "postgres"] {
        let mut p = Project::new("");
        if backend == "postgres" {
            p = p.env("TEND__DATABASE__URL", &pg.url);
        }
        let p = tokio::task::spawn_blocking(move || {
            p.tend(&["migrate"]).expect_code(0);
            p.tend(&["migrate"]).expect_code(0);
            p
        })
        .await
        .unwrap();
        if backend == "postgres" {
            let mut conn = sqlx::PgConnection::connect(&pg.url).await.unwrap();
            let pg_tamper = tamper.replace("X'00'", "'\\x00'::bytea");
            sqlx::raw_sql(sqlx::AssertSqlSafe(pg_tamper))
                .execute(&mut conn)
                .await
                .unwrap();
        } else {
            let file = p.path().join("data/tend.db");
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
                .await
                .unwrap();
            sqlx::raw_sql(tamper).execute(&mut conn).await.unwrap();
        }
        let run = tokio::task::spawn_blocking(move || p.tend(&["migrate"]).expect_code(1))
            .await
            .unwrap();
        let err = run.stderr();
        assert!(
            err.contains("cannot apply the database migrations")
                && err.contains("migration 1 was previously applied but has been modified"),
            "{backend}: {err}"
        );
    }
}

#[test]
fn unreachable_and_locked_databases_say_what_to_do() {
    let p = Project::new("").env(
        "TEND__DATABASE__URL",
        "postgres://postgres@127.0.0.1:1/tend",
    );
    let run = p.tend(&["migrate"]).expect_code(1);
    let err = run.stderr();
    assert!(
        err.starts_with(
            "error: cannot connect to PostgreSQL at postgres://postgres@127.0.0.1:1/tend"
        ),
        "{err}"
    );
    assert!(
        err.contains("start PostgreSQL or fix database.url") && !err.contains("panicked"),
        "{err}"
    );

    let p = Project::new("[database]\nbusy_timeout = \"200ms\"\n");
    p.tend(&["migrate"]).expect_code(0);
    p.file("c.csv", "id,email\nc1,c1@example.com\n");
    // Another process holds the write lock for the whole import.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!(
            "sqlite://{}",
            p.path().join("data/tend.db").display()
        ))
        .await
        .unwrap();
        sqlx::raw_sql("BEGIN EXCLUSIVE")
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    });
    let run = p.tend(&["import", "customers", "c.csv"]).expect_code(1);
    assert!(
        run.stderr()
            .contains("the SQLite database data/tend.db is locked by another process"),
        "{}",
        run.stderr()
    );
}

#[test]
fn logs_are_json_when_configured() {
    let p = Project::new("[log]\nformat = \"json\"\n").env("RUST_LOG", "debug");
    let run = p.tend(&["migrate"]).expect_code(0);
    let lines: Vec<String> = run.stderr().lines().map(str::to_owned).collect();
    assert!(!lines.is_empty(), "debug logging must produce lines");
    for line in &lines {
        let parsed: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            parsed.get("level").is_some() && parsed.get("fields").is_some(),
            "{line}"
        );
    }
}

#[test]
fn a_dkim_key_that_cannot_be_used_is_named_with_its_line() {
    let p = Project::new(
        "[mail.dkim]\nselector = \"tend\"\ndomain = \"acme.example\"\nprivate_key_file = \"dkim.key\"\n",
    );
    let run = p.tend(&["check"]).expect_code(1);
    assert!(
        run.stderr()
            .contains("config/tend.toml:4: cannot read the DKIM key \"dkim.key\""),
        "{}",
        run.stderr()
    );
    p.file("dkim.key", "not a key");
    let run = p.tend(&["check"]).expect_code(1);
    assert!(
        run.stderr().contains(
            "config/tend.toml:4: mail.dkim.private_key_file \"dkim.key\" is not a usable rsa key"
        ) && run.stderr().contains("PKCS#8 (BEGIN PRIVATE KEY"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_send_window_given_in_part_keeps_the_rest_of_the_default() {
    let s = load(Some("[delivery.window]\nend = \"18:30\"\n"), &[])
        .unwrap()
        .settings;
    assert_eq!(
        (
            s.delivery.window.days.as_str(),
            s.delivery.window.start.as_str()
        ),
        ("mon-fri", "09:00")
    );
    assert_eq!(s.delivery.window.end, "18:30");
    // The same from the environment alone.
    let s = load(None, &[("TEND__DELIVERY__WINDOW__DAYS", "mon-sat")])
        .unwrap()
        .settings;
    assert_eq!(s.delivery.window.days, "mon-sat");
    assert_eq!(
        (
            s.delivery.window.start.as_str(),
            s.delivery.window.end.as_str()
        ),
        ("09:00", "17:00")
    );
}

/// A config file that sets nothing is a mistake, never the defaults: not
/// named, not at the default path, not through TEND_CONFIG.
#[test]
fn a_config_file_that_sets_nothing_or_is_missing_is_an_error_for_every_command() {
    let p = Project::new("");
    let files = [
        ("empty.toml", ""),
        ("comments.toml", "# only a comment\n\n   \n# and another\n"),
    ];
    for (file, text) in files {
        p.file(file, text);
        for args in [&["check"][..], &["migrate"], &["messages"]] {
            let mut all = vec!["--config", file];
            all.extend_from_slice(args);
            let run = p.tend(&all).expect_code(1);
            assert!(
                run.stderr().contains(file) && run.stderr().contains("sets nothing"),
                "{args:?}: {}",
                run.stderr()
            );
            assert!(!run.stderr().contains("panicked"), "{}", run.stderr());
        }
        let named = Project::new("").env("TEND_CONFIG", file);
        named.file(file, text);
        let run = named.tend(&["check"]).expect_code(1);
        assert!(
            run.stderr()
                .starts_with(&format!("{file}: the config file sets nothing")),
            "{}",
            run.stderr()
        );
    }
    // The same file at the default path is no better.
    p.file("config/tend.toml", "\n# nothing here yet\n");
    let run = p.tend(&["check"]).expect_code(1);
    assert!(
        run.stderr()
            .starts_with("config/tend.toml: the config file sets nothing"),
        "{}",
        run.stderr()
    );
    assert!(!p.path().join("data").exists(), "nothing was created");

    let run = Project::new("")
        .env("TEND_CONFIG", "missing.toml")
        .tend(&["check"])
        .expect_code(1);
    assert!(
        run.stderr()
            .contains("missing.toml: the config file does not exist"),
        "{}",
        run.stderr()
    );
}

/// Output to a reader that has gone (`tend messages | head -1`) ends the
/// command quietly: no panic, no exit 101.
#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    use std::process::{Command, Stdio};
    let p = Project::new("");
    let csv: String = std::iter::once("id,email\n".to_owned())
        .chain((0..2000).map(|i| format!("c{i},c{i}@example.com\n")))
        .collect();
    p.file("customers.csv", csv);
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    p.tend(&["tick", "--now", "2026-03-02T10:00:00Z"]);
    for args in [
        &["messages"][..],
        &["messages", "--format", "json"],
        &["forecast", "--format", "json"],
        &["check"],
        &["config"],
        &["report"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tend"))
            .args(args)
            .current_dir(p.path())
            .env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before tend writes a byte.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {stderr}");
        assert!(
            out.status.code() == Some(0) || out.status.code().is_none(),
            "{args:?}: {:?} {stderr}",
            out.status
        );
    }
}

#[test]
fn concurrency_above_its_most_and_a_username_without_password_are_check_errors() {
    let p = Project::new("[delivery]\nconcurrency = 1000\n");
    let run = p.tend(&["check"]).expect_code(1);
    assert!(
        run.stderr().contains(
            "config/tend.toml:2: delivery.concurrency is 1000, above the most tend sends at once (128)"
        ),
        "{}",
        run.stderr()
    );
    p.file("config/tend.toml", "[delivery]\nconcurrency = 128\n");
    p.tend(&["check"]).expect_code(0);

    let smtp = "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nusername = \"relay\"\n";
    p.file("config/tend.toml", smtp);
    let run = p.tend(&["check"]).expect_code(1);
    assert!(
        run.stderr().contains(
            "config/tend.toml:4: mail.smtp.username is \"relay\" but no password is given"
        ),
        "{}",
        run.stderr()
    );
    p.file("secret.txt", "pw\n");
    p.file(
        "config/tend.toml",
        format!("{smtp}password_file = \"secret.txt\"\n"),
    );
    p.tend(&["check"]).expect_code(0);
    // With the file transport the SMTP login is unused: no error.
    p.file("config/tend.toml", "[mail.smtp]\nusername = \"relay\"\n");
    p.tend(&["check"]).expect_code(0);
}

/// `tend config` shows what applies: the file, then the environment, as
/// TOML that parses, with secrets masked.
#[test]
fn tend_config_prints_the_layered_settings_with_secrets_masked() {
    let p = Project::new(
        "[company]\nname = \"Acme\"\n[http]\napi_token = \"tok-from-file-123\"\n[security]\nsecret = \"0123456789abcdef0123456789abcdef-key\"\n",
    )
    .env("TEND__DELIVERY__CONCURRENCY", "3")
    .env(
        "TEND__DATABASE__URL",
        "postgres://tend:hunter2@127.0.0.1:5432/tend",
    );
    let run = p.tend(&["config"]).expect_code(0);
    let out = run.stdout();
    for secret in ["tok-from-file-123", "0123456789abcdef", "hunter2"] {
        assert!(!out.contains(secret), "{secret} shown:\n{out}");
    }
    assert!(
        out.starts_with("# The configuration in force, from config/tend.toml and the environment"),
        "{out}"
    );
    let shown: toml::Table = out
        .parse()
        .unwrap_or_else(|e| panic!("not TOML ({e}):\n{out}"));
    assert_eq!(shown["company"]["name"].as_str(), Some("Acme"));
    assert_eq!(shown["delivery"]["concurrency"].as_integer(), Some(3));
    assert_eq!(shown["http"]["api_token"].as_str(), Some("[redacted]"));
    assert_eq!(shown["security"]["secret"].as_str(), Some("[redacted]"));
    assert!(
        shown["database"]["url"]
            .as_str()
            .unwrap()
            .starts_with("postgres://tend:***@"),
        "{out}"
    );
}
