//! `database.url`: which backend, and where, with the password kept out of
//! every message.

use std::path::PathBuf;

/// A parsed `database.url`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://data/tend.db` (relative to the working directory) or
    /// `sqlite:///var/lib/tend/tend.db`.
    Sqlite { path: PathBuf, shown: String },
    /// `postgres://user@host:port/db`; `shown` has no password.
    Postgres { url: String, shown: String },
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.shown())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("database.url {shown:?} {problem}")]
pub struct UrlError {
    shown: String,
    problem: String,
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        let raw = raw.trim();
        let fail = |shown: &str, problem: &str| UrlError {
            shown: shown.to_owned(),
            problem: problem.to_owned(),
        };
        if let Some(rest) = raw.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or("");
            if path.is_empty() || path == ":memory:" {
                return Err(fail(
                    raw,
                    "names no file; write sqlite://data/tend.db (a path relative to the working directory) or sqlite:///var/lib/tend/tend.db",
                ));
            }
            return Ok(Self::Sqlite {
                path: PathBuf::from(path),
                shown: raw.to_owned(),
            });
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let parsed = ::url::Url::parse(raw).map_err(|e| {
                fail(
                    &redact(raw),
                    &format!("is not a valid URL ({e}); write postgres://USER@HOST:5432/DATABASE"),
                )
            })?;
            if parsed.host_str().unwrap_or("").is_empty() && !raw.contains("host=") {
                return Err(fail(
                    &redact(raw),
                    "names no host; write postgres://USER@HOST:5432/DATABASE",
                ));
            }
            if parsed.path().trim_start_matches('/').is_empty() {
                return Err(fail(
                    &redact(raw),
                    "names no database; write postgres://USER@HOST:5432/DATABASE",
                ));
            }
            return Ok(Self::Postgres {
                url: raw.to_owned(),
                shown: redact(raw),
            });
        }
        Err(fail(
            &redact(raw),
            "is not supported; use sqlite://PATH (the default is sqlite://data/tend.db) or postgres://USER@HOST:5432/DATABASE",
        ))
    }

    /// The URL as it may appear in logs and messages.
    pub fn shown(&self) -> &str {
        match self {
            Self::Sqlite { shown, .. } | Self::Postgres { shown, .. } => shown,
        }
    }
}

/// The URL without its password.
fn redact(raw: &str) -> String {
    match ::url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => match raw.split_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => raw.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_backends() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/tend.db").unwrap(),
            DatabaseUrl::Sqlite {
                path: "data/tend.db".into(),
                shown: "sqlite://data/tend.db".into()
            }
        );
        let DatabaseUrl::Sqlite { path, .. } =
            DatabaseUrl::parse("sqlite:///var/lib/tend/t.db").unwrap()
        else {
            panic!()
        };
        assert_eq!(path, PathBuf::from("/var/lib/tend/t.db"));
        let pg = DatabaseUrl::parse("postgres://tend:s3cret@db.example:5432/tend").unwrap();
        assert_eq!(pg.shown(), "postgres://tend:***@db.example:5432/tend");
    }

    #[test]
    fn rejects_with_the_fix() {
        let e = DatabaseUrl::parse("mysql://root:pw@h/db")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not supported") && !e.contains("pw"), "{e}");
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(DatabaseUrl::parse("postgres://h:5432/").is_err());
        assert!(DatabaseUrl::parse("").is_err());
    }
}
