//! Lengths of time as people write them in config and playbooks: `30s`,
//! `5m`, `1h`, `7d`, `2w` (also combined, `1d 12h`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A length of time parsed from text, kept with the text for messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Span {
    text: String,
    length: std::time::Duration,
}

impl Span {
    pub fn as_std(&self) -> std::time::Duration {
        self.length
    }

    pub fn as_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.length).unwrap_or(chrono::Duration::MAX)
    }
}

impl FromStr for Span {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        let length = humantime::parse_duration(text).map_err(|e| {
            format!("{raw:?} is not a length of time ({e}); write one such as 30s, 5m, 1h, 7d")
        })?;
        if length.is_zero() {
            return Err(format!("{raw:?} is zero; give a length such as 1m or 7d"));
        }
        Ok(Self {
            text: text.to_owned(),
            length,
        })
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A span written in code, for defaults.
pub fn span(text: &str) -> Span {
    match text.parse() {
        Ok(s) => s,
        Err(e) => unreachable!("built-in span {text:?} must parse: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(span("7d").as_std().as_secs(), 7 * 86_400);
        assert_eq!(span("1m").as_std().as_secs(), 60);
        assert_eq!(span("1d 12h").as_std().as_secs(), 36 * 3600);
        assert!("7 parsecs".parse::<Span>().is_err());
        assert!("0s".parse::<Span>().is_err());
        assert!("".parse::<Span>().is_err());
    }
}
