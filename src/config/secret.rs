//! Secrets: values that never appear in `Debug`, logs or errors, read from
//! the config, a file, or systemd's `$CREDENTIALS_DIRECTORY`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string. `Debug` and `Serialize` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it (an SMTP login, an
    /// HMAC key). Never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// Fewest bytes a link-signing key may have: HMAC-SHA256 keys shorter than
/// its 32-byte output weaken it, and an empty one lets anyone forge links.
pub const MIN_KEY_BYTES: usize = 32;

/// What a secret must be before tend uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    /// Anything, even empty: a password is the mail server's to judge.
    Any,
    /// Not empty (nor only whitespace): a bearer token.
    Token,
    /// At least [`MIN_KEY_BYTES`] bytes: an HMAC key.
    Key,
}

/// Where one secret may come from, in order of precedence.
pub struct SecretSource<'a> {
    /// The dotted config key of the inline value (`mail.smtp.password`).
    pub key: &'a str,
    pub inline: Option<&'a Secret>,
    /// The `*_file` key's value; empty when unset.
    pub file: &'a str,
    /// The credential's name under `$CREDENTIALS_DIRECTORY` (`smtp_password`).
    pub credential: &'a str,
    pub strength: Strength,
}

/// Why a secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SecretError {
    pub at: SecretAt,
    pub message: String,
}

/// What a [`SecretError`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretAt {
    /// A dotted config key (`security.secret_file`).
    Key(String),
    /// A systemd credential's file, which no config key names.
    Credential(PathBuf),
}

/// Where a resolved secret was found, to name it in a problem.
enum Origin<'a> {
    Inline,
    File(&'a Path),
    Credential(PathBuf),
}

/// Resolves a secret: the inline value, else the named file, else the systemd
/// credential of that name; `Ok(None)` when none is set. A secret that falls
/// short of its [`Strength`] is an error naming where it came from.
///
/// An empty password credential ([`Strength::Any`]) is no password: the
/// shipped unit passes one (its `SetCredential=` stand-in) when the file
/// its `LoadCredential=` names is missing, so that a transport without a
/// login still starts. A token or key credential that is empty is refused.
pub fn resolve(
    source: &SecretSource<'_>,
    credentials_dir: Option<&Path>,
) -> Result<Option<Secret>, SecretError> {
    let key = source.key;
    let file_key = format!("{key}_file");
    let (secret, origin) = match (source.inline, source.file.trim()) {
        (Some(_), file) if !file.is_empty() => {
            return Err(SecretError {
                at: SecretAt::Key(file_key),
                message: format!("both {key} and {key}_file are set; keep one of them"),
            });
        }
        (Some(secret), _) => (secret.clone(), Origin::Inline),
        (None, "") => match credentials_dir.map(|dir| dir.join(source.credential)) {
            Some(path) if path.is_file() => {
                let what = format!("credential {}", source.credential);
                let secret = read(&path, &what).map_err(|message| SecretError {
                    at: SecretAt::Credential(path.clone()),
                    message,
                })?;
                if source.strength == Strength::Any && secret.expose().is_empty() {
                    return Ok(None);
                }
                (secret, Origin::Credential(path))
            }
            _ => return Ok(None),
        },
        (None, file) => {
            let secret = read(Path::new(file), &file_key).map_err(|message| SecretError {
                at: SecretAt::Key(file_key.clone()),
                message,
            })?;
            (secret, Origin::File(Path::new(file)))
        }
    };
    match weakness(&secret, source.strength) {
        None => Ok(Some(secret)),
        Some(weakness) => Err(weak(source, &origin, &weakness)),
    }
}

/// What is wrong with `secret` for its use, if anything.
fn weakness(secret: &Secret, strength: Strength) -> Option<String> {
    // Surrounding whitespace is what an editor or `echo` adds, not key
    // material: a secret of only whitespace is empty.
    let bytes = secret.expose().trim().len();
    match strength {
        Strength::Any => None,
        _ if bytes == 0 => Some("is empty".into()),
        Strength::Key if bytes < MIN_KEY_BYTES => Some(format!(
            "holds only {bytes} byte{}; a link-signing key needs at least {MIN_KEY_BYTES}",
            if bytes == 1 { "" } else { "s" }
        )),
        Strength::Token | Strength::Key => None,
    }
}

/// The problem for a weak secret: where it is, what is wrong, what to do.
fn weak(source: &SecretSource<'_>, origin: &Origin<'_>, weakness: &str) -> SecretError {
    let key = source.key;
    // base64 of 48 random bytes is 64 bytes long, well over the minimum.
    let (what, bytes) = match source.strength {
        Strength::Key => (format!("at least {MIN_KEY_BYTES} random bytes"), 48),
        Strength::Token | Strength::Any => ("a long random token".to_owned(), 32),
    };
    let make = |file: &str| format!("head -c {bytes} /dev/urandom | base64 > {file}");
    match origin {
        Origin::Inline => SecretError {
            at: SecretAt::Key(key.to_owned()),
            message: format!(
                "{key} {weakness}; put {what} in a file readable by tend alone (`{}`) and name it in {key}_file instead",
                make("/etc/tend/credentials/FILE")
            ),
        },
        Origin::File(path) => SecretError {
            at: SecretAt::Key(format!("{key}_file")),
            message: format!(
                "{key}_file {} {weakness}; write {what} into it, for example with `{}`",
                path.display(),
                make(&path.display().to_string())
            ),
        },
        Origin::Credential(path) => SecretError {
            at: SecretAt::Credential(path.clone()),
            message: format!(
                "the systemd credential {} (for {key}) {weakness}; write {what} into the file its LoadCredential= line names, for example with `{}`, and restart tend",
                source.credential,
                make("FILE")
            ),
        },
    }
}

fn read(path: &Path, what: &str) -> Result<Secret, String> {
    match std::fs::read_to_string(path) {
        // A trailing newline from `echo secret > file` is not part of the secret.
        Ok(text) => Ok(Secret(text.trim_end_matches(['\r', '\n']).to_owned())),
        Err(e) => Err(format!(
            "cannot read {what} at {}: {e}; create the file or fix the path",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"[redacted]\"");
    }

    #[test]
    fn file_then_credential_then_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("smtp_password"), "from-credential\n").unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let file = file.to_str().unwrap();
        let src = |inline, file| SecretSource {
            key: "mail.smtp.password",
            inline,
            file,
            credential: "smtp_password",
            strength: Strength::Any,
        };
        let inline = Secret::new("inline");
        assert_eq!(
            resolve(&src(Some(&inline), ""), None)
                .unwrap()
                .unwrap()
                .expose(),
            "inline"
        );
        assert!(resolve(&src(Some(&inline), file), None).is_err());
        assert_eq!(
            resolve(&src(None, file), Some(dir.path()))
                .unwrap()
                .unwrap()
                .expose(),
            "from-file"
        );
        assert_eq!(
            resolve(&src(None, ""), Some(dir.path()))
                .unwrap()
                .unwrap()
                .expose(),
            "from-credential"
        );
        assert!(resolve(&src(None, ""), None).unwrap().is_none());
        let missing = resolve(&src(None, "/nonexistent/pw"), None).unwrap_err();
        assert_eq!(missing.at, SecretAt::Key("mail.smtp.password_file".into()));
        assert!(
            missing.message.contains("mail.smtp.password_file"),
            "{missing}"
        );
    }

    #[test]
    fn an_empty_password_credential_is_no_password_but_an_empty_token_is_refused() {
        // What systemd passes for `SetCredential=smtp_password:\n` when the
        // file of the unit's LoadCredential= line is missing.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("smtp_password"), "\n").unwrap();
        std::fs::write(dir.path().join("api_token"), "\n").unwrap();
        let password = SecretSource {
            key: "mail.smtp.password",
            inline: None,
            file: "",
            credential: "smtp_password",
            strength: Strength::Any,
        };
        assert!(resolve(&password, Some(dir.path())).unwrap().is_none());
        let token = SecretSource {
            key: "http.api_token",
            inline: None,
            file: "",
            credential: "api_token",
            strength: Strength::Token,
        };
        let e = resolve(&token, Some(dir.path())).unwrap_err();
        assert!(e.message.contains("is empty"), "{e}");
    }

    #[test]
    fn a_key_or_token_too_weak_to_use_is_refused_where_it_was_found() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.to_str().unwrap().to_owned()
        };
        fn key<'a>(inline: Option<&'a Secret>, file: &'a str) -> SecretSource<'a> {
            SecretSource {
                key: "security.secret",
                inline,
                file,
                credential: "secret",
                strength: Strength::Key,
            }
        }
        let empty = write("empty", "");
        let e = resolve(&key(None, &empty), None).unwrap_err();
        assert_eq!(e.at, SecretAt::Key("security.secret_file".into()));
        assert!(
            e.message.starts_with(&format!(
                "security.secret_file {empty} is empty; write at least 32 random bytes into it"
            )),
            "{e}"
        );
        assert!(
            e.message
                .contains(&format!("head -c 48 /dev/urandom | base64 > {empty}")),
            "{e}"
        );
        let blank = write("blank", " \t \n\n");
        let e = resolve(&key(None, &blank), None).unwrap_err();
        assert!(e.message.contains("is empty"), "{e}");
        let short = write("short", "0123456789\n");
        let e = resolve(&key(None, &short), None).unwrap_err();
        assert!(e.message.contains("holds only 10 bytes"), "{e}");
        let inline = Secret::new("x".repeat(31));
        let e = resolve(&key(Some(&inline), ""), None).unwrap_err();
        assert_eq!(e.at, SecretAt::Key("security.secret".into()));
        let just = Secret::new("x".repeat(32));
        assert!(resolve(&key(Some(&just), ""), None).unwrap().is_some());

        write("secret", "");
        let e = resolve(&key(None, ""), Some(dir.path())).unwrap_err();
        assert_eq!(e.at, SecretAt::Credential(dir.path().join("secret")));
        assert!(e.message.contains("credential secret"), "{e}");

        // A token need only be there; a password is the server's business.
        fn token(file: &str, strength: Strength) -> SecretSource<'_> {
            SecretSource {
                key: "http.api_token",
                inline: None,
                file,
                credential: "api_token",
                strength,
            }
        }
        assert!(resolve(&token(&blank, Strength::Token), None).is_err());
        let short = resolve(&token(&short, Strength::Token), None).unwrap();
        assert_eq!(short.unwrap().expose(), "0123456789");
        assert_eq!(
            resolve(&token(&empty, Strength::Any), None)
                .unwrap()
                .unwrap()
                .expose(),
            ""
        );
    }
}
