//! Shared test support: real stores (a SQLite file, a fresh PostgreSQL
//! database per test) and the real `tend` binary in a scratch directory.
#![allow(dead_code)] // Each test binary uses part of this.

pub mod browser;
pub mod daemon;
pub mod dkim;
pub mod imap;
pub mod python;
pub mod receiver;
pub mod smtp;
pub mod systemd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tend::store::Upkeep;

use tend::store::{ConnectOptions, DatabaseUrl, Db};

/// The PostgreSQL server tests create their databases on. CI exports it; a
/// missing server fails the tests, it never skips them.
pub fn pg_admin_url() -> String {
    std::env::var("TEND_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn options() -> ConnectOptions {
    ConnectOptions {
        max_connections: 4,
        connect_timeout: std::time::Duration::from_secs(10),
        busy_timeout: std::time::Duration::from_secs(5),
    }
}

/// A fresh PostgreSQL database, dropped when this goes out of scope. It is
/// created in a language's collation (ICU's `en-US`, where `a` sorts before
/// `B`), as a server set up on a machine in English creates databases, so
/// the stores are held to the same answers whatever the server's default.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        use sqlx::Connection;
        let admin = pg_admin_url();
        let name = format!("tend_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL must be running at {admin} for the tests: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
        )))
        .execute(&mut conn)
        .await
        .expect("create test database");
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

/// Runs `test` with the URL of a fresh PostgreSQL database (dropped after),
/// off the async runtime: it drives the `tend` binary and waits for it.
pub async fn on_fresh_postgres<T: Send + 'static>(
    test: impl FnOnce(&str) -> T + Send + 'static,
) -> T {
    let pg = PgDatabase::create().await;
    let url = pg.url.clone();
    let outcome = tokio::task::spawn_blocking(move || test(&url))
        .await
        .unwrap();
    drop(pg);
    outcome
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: use a thread of our own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// A migrated store on one backend, with whatever keeps it alive.
pub struct TestStore {
    pub store: Db,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgDatabase>,
}

impl TestStore {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::parse(&format!(
            "sqlite://{}",
            dir.path().join("tend.db").display()
        ))
        .unwrap();
        let store = Db::connect(&url, &options()).await.expect("open SQLite");
        store.migrate().await.expect("migrate SQLite");
        Self {
            store,
            _dir: Some(dir),
            _pg: None,
        }
    }

    pub async fn postgres() -> Self {
        let pg = PgDatabase::create().await;
        let url = DatabaseUrl::parse(&pg.url).unwrap();
        let store = Db::connect(&url, &options())
            .await
            .expect("connect PostgreSQL");
        store.migrate().await.expect("migrate PostgreSQL");
        Self {
            store,
            _dir: None,
            _pg: Some(pg),
        }
    }
}

/// A scratch directory with a config file, in which the `tend` binary runs.
pub struct Project {
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Project {
    /// A project whose config file holds `config` (the defaults put the SQLite
    /// store at data/tend.db inside the project). An empty `config` writes
    /// no file, so the built-in defaults apply (an empty file is an error).
    pub fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        if !config.is_empty() {
            std::fs::write(dir.path().join("config/tend.toml"), config).unwrap();
        }
        Self {
            dir,
            env: Vec::new(),
        }
    }

    /// A project holding the shipped `config/` and `templates/`, as a fresh
    /// clone of the repository has them.
    pub fn shipped() -> Self {
        let p = Self::new("");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_tree(&root.join("config"), &p.path().join("config"));
        copy_tree(&root.join("templates"), &p.path().join("templates"));
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    /// The environment every `tend` run in this project gets.
    pub fn env_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs `tend ARGS` in the project with a clean environment.
    pub fn tend(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tend"));
        cmd.args(args).current_dir(self.dir.path()).env_clear();
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        Run(cmd.output().expect("run tend"))
    }

    /// The project's SQLite store, for assertions.
    pub async fn store(&self) -> Db {
        let url = DatabaseUrl::parse(&format!(
            "sqlite://{}",
            self.dir.path().join("data/tend.db").display()
        ))
        .unwrap();
        Db::connect(&url, &options()).await.unwrap()
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A port nothing listens on (reserved, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The JSON a command printed on stdout.
pub fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", run.stdout()))
}

/// `tend tick --now NOW --format json`, which must succeed.
pub fn tick(p: &Project, now: &str) -> serde_json::Value {
    json(
        &p.tend(&["tick", "--now", now, "--format", "json"])
            .expect_code(0),
    )
}

pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Fails the test with both streams when the exit code differs.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code(),
            code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// The raw `.eml` the `file` transport wrote for the message whose
/// Message-ID (without brackets) is `message_id`.
pub fn sent_eml(p: &Project, message_id: &str) -> Vec<u8> {
    std::fs::read_dir(p.path().join("outbox"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .find(|raw| String::from_utf8_lossy(raw).contains(message_id))
        .expect("the sent .eml")
}
