//! An independent DKIM verifier for tests: dkimpy (PyPI), installed once
//! into a virtualenv under the target directory when missing, driven by
//! `tests/dkim_verify.py`. Keys come from OpenSSL's command line and
//! opendkim-genkey (Debian's opendkim-tools, installed when missing), and
//! the record to publish is derived from them by OpenSSL too, so neither
//! the key reading nor the record is tend's word alone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::python::{apt_install, run};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The virtualenv's python, with dkimpy and PyNaCl (its Ed25519 support).
fn python() -> PathBuf {
    super::python::venv("dkimpy", &["dkimpy", "pynacl"], "import dkim, nacl")
}

/// What dkimpy made of a message's first signature.
#[derive(Debug)]
pub struct Verified {
    pub ok: bool,
    pub error: String,
    /// The signed header names, lower case.
    pub h: Vec<String>,
    /// `rsa-sha256` or `ed25519-sha256`.
    pub a: String,
    pub d: String,
    pub s: String,
}

/// Verifies `message` with the public key `record` published at `name`.
pub fn verify(message: &[u8], name: &str, record: &str) -> Verified {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dkim_verify.py");
    let mut child = Command::new(python())
        .arg(script)
        .args([name, record])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dkim_verify.py");
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dkim_verify.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Verified {
        ok: v["ok"].as_bool().unwrap(),
        error: text("error"),
        h: v["h"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_owned())
            .collect(),
        a: text("a"),
        d: text("d"),
        s: text("s"),
    }
}

/// The forms of key file tend reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// `openssl genpkey -algorithm rsa`: `BEGIN PRIVATE KEY`.
    RsaPkcs8,
    /// `opendkim-genkey` (Debian's opendkim-tools): PKCS#8 on OpenSSL 3.
    RsaOpendkim,
    /// `openssl genrsa -traditional`: `BEGIN RSA PRIVATE KEY`.
    RsaPkcs1,
    /// `openssl genpkey -algorithm ed25519`: `BEGIN PRIVATE KEY`.
    Ed25519Pkcs8,
    /// The base64 of the 32-byte seed, as dkimpy's dknewkey writes it.
    Ed25519Seed,
}

impl KeyForm {
    pub const ALL: [KeyForm; 5] = [
        KeyForm::RsaPkcs8,
        KeyForm::RsaOpendkim,
        KeyForm::RsaPkcs1,
        KeyForm::Ed25519Pkcs8,
        KeyForm::Ed25519Seed,
    ];

    /// `mail.dkim.algorithm` for this key.
    pub fn algorithm(self) -> &'static str {
        match self {
            KeyForm::RsaPkcs8 | KeyForm::RsaOpendkim | KeyForm::RsaPkcs1 => "rsa",
            KeyForm::Ed25519Pkcs8 | KeyForm::Ed25519Seed => "ed25519",
        }
    }
}

/// A fresh key written by OpenSSL, and its DNS record as OpenSSL derives
/// the public key.
pub struct TestKey {
    pub file: PathBuf,
    /// `v=DKIM1; k=...; p=...`
    pub record: String,
}

static OPENSSL: OnceLock<()> = OnceLock::new();

fn openssl(args: &[&str]) -> Vec<u8> {
    OPENSSL.get_or_init(|| {
        apt_install("openssl", || {
            run(Command::new("openssl").arg("version").stdout(Stdio::null()))
        })
    });
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn generate(form: KeyForm, dir: &Path) -> TestKey {
    let pem = dir.join(format!("{form:?}.pem"));
    let pem_s = pem.to_str().unwrap();
    match form {
        KeyForm::RsaPkcs8 => {
            openssl(&[
                "genpkey",
                "-algorithm",
                "rsa",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                pem_s,
            ]);
        }
        KeyForm::RsaOpendkim => {
            opendkim_genkey(dir, &pem);
        }
        KeyForm::RsaPkcs1 => {
            openssl(&["genrsa", "-traditional", "-out", pem_s, "2048"]);
        }
        KeyForm::Ed25519Pkcs8 | KeyForm::Ed25519Seed => {
            openssl(&["genpkey", "-algorithm", "ed25519", "-out", pem_s]);
        }
    }
    let text = std::fs::read_to_string(&pem).unwrap();
    let label = match form {
        KeyForm::RsaPkcs1 => "-----BEGIN RSA PRIVATE KEY-----",
        _ => "-----BEGIN PRIVATE KEY-----",
    };
    assert!(text.starts_with(label), "{text}");
    // The SubjectPublicKeyInfo: RFC 6376 publishes it whole for RSA,
    // RFC 8463 only the raw 32-byte Ed25519 key at its end.
    let spki = openssl(&["pkey", "-in", pem_s, "-pubout", "-outform", "DER"]);
    let (k, public) = match form.algorithm() {
        "rsa" => ("rsa", spki.as_slice()),
        _ => ("ed25519", &spki[spki.len() - 32..]),
    };
    let record = format!("v=DKIM1; k={k}; p={}", STANDARD.encode(public));
    if form == KeyForm::RsaOpendkim {
        // opendkim-genkey's own record publishes the same key.
        let theirs = std::fs::read_to_string(dir.join("opendkim/tend.txt")).unwrap();
        let joined: String = theirs
            .split('"')
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, s)| s)
            .collect();
        let p = |r: &str| r.split("p=").nth(1).map(str::to_owned);
        assert_eq!(p(&joined), p(&record), "{theirs}");
    }
    let file = match form {
        KeyForm::Ed25519Seed => {
            // A PKCS#8 Ed25519 key ends with its 32-byte seed.
            let der = openssl(&["pkey", "-in", pem_s, "-outform", "DER"]);
            let seed = dir.join("ed25519.seed");
            std::fs::write(&seed, STANDARD.encode(&der[der.len() - 32..]) + "\n").unwrap();
            seed
        }
        _ => pem,
    };
    TestKey { file, record }
}

const OPENDKIM_GENKEY: &str = "/usr/sbin/opendkim-genkey";
static OPENDKIM: OnceLock<()> = OnceLock::new();

/// Writes opendkim-genkey's key for selector `tend` to `pem`, and its
/// record beside it in `dir/opendkim/tend.txt`.
fn opendkim_genkey(dir: &Path, pem: &Path) {
    OPENDKIM.get_or_init(|| {
        apt_install("opendkim-tools", || Path::new(OPENDKIM_GENKEY).exists());
    });
    let out_dir = dir.join("opendkim");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = Command::new(OPENDKIM_GENKEY)
        .args(["-b", "2048", "-d", "acme.example", "-s", "tend", "-D"])
        .arg(&out_dir)
        .output()
        .expect("the DKIM tests need opendkim-genkey (apt-get install opendkim-tools)");
    assert!(
        out.status.success(),
        "opendkim-genkey: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::copy(out_dir.join("tend.private"), pem).unwrap();
}

/// The record `tend check` printed (`dkim: publish NAME. IN TXT "…" "…"`),
/// as `(name, value)` with the strings joined.
pub fn published(stdout: &str) -> (String, String) {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("dkim: publish "))
        .unwrap_or_else(|| panic!("no DKIM record in:\n{stdout}"));
    let (name, strings) = line.split_once(" IN TXT ").unwrap();
    let value: String = strings
        .split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect();
    (name.trim_end_matches('.').to_owned(), value)
}
