//! Debian's `systemd-analyze` (from the `systemd` package), installed from
//! Debian's packages when missing, to read the shipped unit the way the
//! service manager will. It works without systemd running as PID 1.

use std::path::Path;
use std::process::Command;
use std::sync::Once;

const ANALYZE: &str = "/usr/bin/systemd-analyze";

static INSTALL: Once = Once::new();

/// The path of `systemd-analyze`, installed once if it is missing.
pub fn analyze() -> &'static Path {
    INSTALL.call_once(|| {
        if Path::new(ANALYZE).exists() {
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
        let installed = quiet(&["install", "-y", "-qq", "systemd"])
            || (quiet(&["update", "-qq"]) && quiet(&["install", "-y", "-qq", "systemd"]));
        assert!(
            installed && Path::new(ANALYZE).exists(),
            "the systemd unit's tests need Debian's systemd package for systemd-analyze and could not install it (apt-get install systemd)"
        );
    });
    Path::new(ANALYZE)
}
