//! Independent implementations from PyPI for tests: a virtualenv under the
//! target directory per set of packages, made once and reused, and Debian
//! packages installed when missing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

static MADE: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);

pub fn run(cmd: &mut Command) -> bool {
    cmd.status().is_ok_and(|s| s.success())
}

fn imports(python: &Path, probe: &str) -> bool {
    Command::new(python)
        .args(["-c", probe])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The python of the virtualenv `name` holding `packages`, where `probe`
/// (a line of Python such as `import dkim`) runs.
pub fn venv(name: &str, packages: &[&str], probe: &str) -> PathBuf {
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(python) = made.get_or_insert_with(HashMap::new).get(name) {
        return python.clone();
    }
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = root.join(name);
    let python = venv.join("bin/python");
    if !imports(&python, probe) {
        // Built aside and renamed into place, so that test binaries
        // installing at once never see half a virtualenv.
        let partial = root.join(format!("{name}.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&partial);
        // Debian's python3 keeps venv's pip in a package of its own.
        apt_install("python3-venv", || {
            run(Command::new("python3")
                .args(["-c", "import ensurepip"])
                .stderr(Stdio::null()))
        });
        let created = run(Command::new("python3").arg("-m").arg("venv").arg(&partial));
        assert!(
            created,
            "this test needs python3 with venv (Debian: apt-get install python3-venv)"
        );
        let installed = run(Command::new(partial.join("bin/python"))
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(packages));
        assert!(
            installed,
            "this test needs {packages:?} from PyPI and could not install them"
        );
        if std::fs::rename(&partial, &venv).is_err() {
            // Another test binary finished first.
            let _ = std::fs::remove_dir_all(&partial);
        }
        assert!(
            imports(&python, probe),
            "{probe:?} fails in {}",
            venv.display()
        );
    }
    made.get_or_insert_with(HashMap::new)
        .insert(name.to_owned(), python.clone());
    python
}

/// Installs Debian's `package` once if `ready` says it is missing.
pub fn apt_install(package: &str, ready: impl Fn() -> bool) {
    if ready() {
        return;
    }
    let apt = |args: &[&str]| {
        run(Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    let install = ["install", "-y", "-qq", package];
    let _ = apt(&install) || (apt(&["update", "-qq"]) && apt(&install));
}

/// Python 3 from Debian's packages, installed when missing.
pub fn python3() -> &'static str {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let present = || {
            run(Command::new("python3")
                .arg("--version")
                .stdout(Stdio::null()))
        };
        apt_install("python3", present);
        assert!(
            present(),
            "this test needs Debian's python3 and could not install it"
        );
    });
    "python3"
}

/// `tests/mime_strict.py` run on the message in `eml`: Python's strict
/// `email` parser over both parts, and the HTML part's elements balanced.
/// On success its stdout is the text part as Python decoded it.
pub fn strict_mime(eml: &Path) -> std::process::Output {
    Command::new(python3())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mime_strict.py"))
        .arg(eml)
        .output()
        .unwrap()
}
