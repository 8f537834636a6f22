//! Secrets: values that never appear in `Debug`, logs or errors, read from
//! the config, a file, or systemd's `$CREDENTIALS_DIRECTORY`.

use std::fmt;
use std::path::Path;

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

/// Where one secret may come from, in order of precedence.
pub struct SecretSource<'a> {
    /// The dotted config key of the inline value (`mail.smtp.password`).
    pub key: &'a str,
    pub inline: Option<&'a Secret>,
    /// The `*_file` key's value; empty when unset.
    pub file: &'a str,
    /// The credential's name under `$CREDENTIALS_DIRECTORY` (`smtp_password`).
    pub credential: &'a str,
}

/// Resolves a secret: the inline value, else the named file, else the systemd
/// credential of that name; `Ok(None)` when none is set.
pub fn resolve(
    source: &SecretSource<'_>,
    credentials_dir: Option<&Path>,
) -> Result<Option<Secret>, String> {
    let key = source.key;
    match (source.inline, source.file.trim()) {
        (Some(_), file) if !file.is_empty() => Err(format!(
            "both {key} and {key}_file are set; keep one of them"
        )),
        (Some(secret), _) => Ok(Some(secret.clone())),
        (None, "") => match credentials_dir.map(|dir| dir.join(source.credential)) {
            Some(path) if path.is_file() => {
                read(&path, &format!("credential {}", source.credential))
            }
            _ => Ok(None),
        },
        (None, file) => read(Path::new(file), &format!("{key}_file")),
    }
}

fn read(path: &Path, what: &str) -> Result<Option<Secret>, String> {
    match std::fs::read_to_string(path) {
        // A trailing newline from `echo secret > file` is not part of the secret.
        Ok(text) => Ok(Some(Secret(text.trim_end_matches(['\r', '\n']).to_owned()))),
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
        assert!(missing.contains("mail.smtp.password_file"), "{missing}");
    }
}
