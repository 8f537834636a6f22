//! The shipped systemd unit as systemd 252 (Debian 12, RHEL 9) reads it:
//! `systemd-analyze verify` finds nothing to ignore, it asks for nothing a
//! newer systemd added, its `ExecReload=` waits for tend's reload and fails
//! on a refused edit, and a password file the transport does not need
//! never keeps tend from starting.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::{Project, free_port};

const UNIT: &str = include_str!("../config/systemd/tend.service");

/// A link-signing key long enough for tend to accept.
const KEY: &str = "a-link-signing-key-of-forty-bytes-or-so!";

/// Settings of systemd 253 and later that a unit like this one might reach
/// for; systemd 252 ignores each with a warning (from its NEWS).
const NEWER_THAN_252: &[(&str, u32)] = &[
    ("Type=notify-reload", 253),
    ("ReloadSignal=", 253),
    ("OpenFile=", 253),
    ("ImportCredential=", 254),
    ("RestartMode=", 254),
    ("RestartSteps=", 254),
    ("RestartMaxDelaySec=", 254),
    ("MemoryKSM=", 254),
    ("StartupMemoryMax=", 254),
    ("RootEphemeral=", 254),
    ("DelegateSubgroup=", 254),
    ("SetLoginEnvironment=", 255),
    ("SurviveFinalKillSignal=", 255),
];

/// The unit's settings as systemd reads them: comments and section headers
/// dropped, a line ending in a backslash joined to the next (the backslash
/// becomes a space).
fn settings(unit: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in unit.lines() {
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with(['#', ';', '['])) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let (key, value) = pending
                    .split_once('=')
                    .unwrap_or_else(|| panic!("not a setting: {pending:?}"));
                out.push((key.trim().to_owned(), value.trim().to_owned()));
                pending.clear();
            }
        }
    }
    out
}

fn values<'a>(settings: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    settings
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn systemd_analyze_verify_finds_nothing_to_ignore_in_the_shipped_unit() {
    let analyze = common::systemd::analyze();
    let version = Command::new(analyze).arg("--version").output().unwrap();
    // Debian 12 prints "systemd 252 (252.39-1~deb12u2)": the version the
    // unit must satisfy.
    eprintln!(
        "{}",
        String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or("")
    );

    // `verify` fails on an ExecStart= binary that does not exist, and a
    // build machine has no /usr/local/bin/tend: a copy of the unit names
    // the binary this build made, so every other line is checked as shipped.
    let dir = tempfile::tempdir().unwrap();
    let installed = "ExecStart=/usr/local/bin/tend ";
    assert!(UNIT.contains(installed), "ExecStart= names {installed}");
    let unit = UNIT.replace(
        installed,
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_tend")),
    );
    let path = dir.path().join("tend.service");
    std::fs::write(&path, unit).unwrap();
    // --man=no: the unit's Documentation= is no man page, and a build
    // machine need not have man installed.
    let verified = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    // A setting or value systemd does not know is a warning it ignores
    // (exit code 0): the line and the unit's name are in what it says.
    // Lines about other units (the host's targets) are not ours to judge.
    let complaints: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("tend.service"))
        .collect();
    assert!(
        verified.status.success() && complaints.is_empty(),
        "systemd-analyze verify ({}):\n{said}",
        verified.status
    );
}

#[test]
fn the_shipped_unit_asks_for_nothing_newer_than_systemd_252() {
    let settings = settings(UNIT);
    for (key, value) in &settings {
        let line = format!("{key}={value}");
        for (newer, version) in NEWER_THAN_252 {
            assert!(
                !line.starts_with(newer),
                "{line}: {newer} needs systemd {version}; Debian 12 and RHEL 9 ship 252"
            );
        }
    }
    assert_eq!(values(&settings, "Type"), ["notify"]);
}

#[test]
fn the_shipped_unit_is_hardened_limited_and_its_settings_are_real() {
    let settings = settings(UNIT);
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("StateDirectory", "tend"),
        ("RuntimeDirectory", "tend"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("LimitNOFILE", "8192"),
        ("MemoryMax", "512M"),
        ("WatchdogSec", "60s"),
    ] {
        assert_eq!(values(&settings, key), [value], "{key}=");
    }
    let exec = values(&settings, "ExecStart");
    assert!(exec.len() == 1 && exec[0].ends_with(" run"), "{exec:?}");

    // Every credential loaded from a file has a stand-in for a missing
    // file; otherwise a missing file stops the unit from starting.
    let loaded = values(&settings, "LoadCredential");
    assert!(
        loaded
            .iter()
            .any(|l| l.starts_with("smtp_password:/etc/tend/credentials/")),
        "{loaded:?}"
    );
    let standing_in = values(&settings, "SetCredential");
    for credential in loaded {
        let (id, _) = credential.split_once(':').unwrap();
        assert!(
            standing_in.contains(&format!("{id}:\\n").as_str()),
            "LoadCredential={credential} without SetCredential={id}:\\n"
        );
    }

    // Every TEND__ variable the unit sets is a setting tend accepts, and
    // with the shipped files installed as the unit's header says, tend finds
    // every playbook and template.
    let state = tempfile::tempdir().unwrap();
    let etc = Project::shipped();
    let mut p = Project::new("");
    for assignment in values(&settings, "Environment") {
        let (key, value) = assignment.split_once('=').unwrap();
        assert!(key.starts_with("TEND__"), "{key}");
        let value = value
            .replace("/var/lib/tend", state.path().to_str().unwrap())
            .replace("/etc/tend/", &format!("{}/", etc.path().display()));
        p = p.env(key, &value);
    }
    std::fs::rename(
        etc.path().join("config/playbooks"),
        etc.path().join("playbooks"),
    )
    .unwrap();
    let checked = p.tend(&["check"]).expect_code(0).stdout();
    assert!(checked.contains("5 playbooks, 15 templates"), "{checked}");
}

/// The script of the unit's `ExecReload=`, exactly as `/bin/sh -c` gets it.
fn reload_script() -> String {
    let settings = settings(UNIT);
    let exec = values(&settings, "ExecReload");
    assert_eq!(exec.len(), 1, "one ExecReload= line: {exec:?}");
    let script = exec[0]
        .strip_prefix("/bin/sh -c '")
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or_else(|| panic!("ExecReload= is /bin/sh -c '…': {}", exec[0]));
    // systemd passes the quoted word on as it is, except that it replaces
    // ${NAME} and $$ itself: without them (and without a quote inside),
    // what the shell runs here is what it runs under systemd.
    for unsafe_here in ["'", "${", "$$"] {
        assert!(!script.contains(unsafe_here), "{unsafe_here} in {script}");
    }
    script.to_owned()
}

/// Runs the unit's reload command for the daemon `d` as systemd would
/// (MAINPID and RUNTIME_DIRECTORY set), failing the test after 30 s.
fn systemctl_reload(d: &Daemon, runtime: &Path) -> Output {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(reload_script())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("MAINPID", d.child.id().to_string())
        .env("RUNTIME_DIRECTORY", runtime)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the reload command still waits after 30 s:\n{}", d.log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn systemctl_reload_returns_once_the_reload_is_done_and_fails_on_a_refused_edit() {
    let p = Project::new(&format!(
        "[security]\nsecret = \"{KEY}\"\n\
         [http]\npublic_url = \"http://127.0.0.1:8080\"\n\
         [schedule]\nplan_every = \"1h\"\ndeliver_every = \"1h\"\n"
    ));
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        &p,
        free_port(),
        &[("RUNTIME_DIRECTORY", runtime.path().to_str().unwrap())],
    );

    for round in 1..=2 {
        let reloaded = systemctl_reload(&d, runtime.path());
        assert!(
            reloaded.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&reloaded.stderr),
            d.log()
        );
        // Returned only once tend had swapped the new version in.
        assert_eq!(
            d.log()
                .matches("reloaded config, playbooks and templates")
                .count(),
            round,
            "{}",
            d.log()
        );
    }

    p.file(
        "config/playbooks/broken.toml",
        "name = \"broken\"\n[[step]\n",
    );
    let refused = systemctl_reload(&d, runtime.path());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}\n{}", d.log());
    assert!(
        said.contains("tend refused the edit and serves the previous version"),
        "{said}"
    );
    assert!(d.log().contains("reload rejected"), "{}", d.log());
    assert_eq!(d.get("/readyz").status, 200, "still serving");
}

/// What systemd hands tend when /etc/tend/credentials holds no password
/// files: the unit's `SetCredential=` stand-ins (`\n` is a newline).
fn stand_ins() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for credential in values(&settings(UNIT), "SetCredential") {
        let (id, value) = credential.split_once(':').unwrap();
        assert_eq!(value, "\\n", "{credential}");
        std::fs::write(dir.path().join(id), "\n").unwrap();
    }
    dir
}

#[test]
fn a_password_the_transport_does_not_need_never_stops_tend() {
    let stand_ins = stand_ins();
    let credentials = stand_ins.path().to_str().unwrap();

    // The file transport logs in nowhere: neither the stand-ins nor a
    // password file that is not there keep it from serving.
    let p = Project::new(&format!(
        "[mail]\ntransport = \"file\"\n[mail.smtp]\npassword_file = \"/etc/tend/credentials/none-here\"\n\
         [security]\nsecret = \"{KEY}\"\n\
         [http]\npublic_url = \"http://127.0.0.1:8080\"\n"
    ))
    .env("CREDENTIALS_DIRECTORY", credentials);
    p.tend(&["check"]).expect_code(0);
    let mut d = Daemon::start(&p, free_port(), &[]);
    assert!(d.stop(Duration::from_secs(10)).success(), "{}", d.log());

    // A relay with a login: the stand-in is no password, which `tend check`
    // (and `tend run`) says at once rather than failing every send.
    let p = Project::new(&format!(
        "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\nusername = \"tend\"\n\
         [security]\nsecret = \"{KEY}\"\n\
         [http]\npublic_url = \"http://127.0.0.1:8080\"\n",
        free_port()
    ))
    .env("CREDENTIALS_DIRECTORY", credentials);
    let refused = p.tend(&["check"]);
    assert_ne!(refused.code(), 0, "{}", refused.stdout());
    assert!(
        refused.stderr().contains(
            "mail.smtp.username is \"tend\" but no password is given; set mail.smtp.password_file (or mail.smtp.password, or the smtp_password credential)"
        ),
        "{}",
        refused.stderr()
    );
}
