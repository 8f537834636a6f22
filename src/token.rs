//! Signed tokens for links and reply addresses: what a customer's click,
//! survey answer, unsubscribe or reply proves. Each token binds the message,
//! the purpose and a value (the survey kind, the tracked URL, the category)
//! with an HMAC-SHA256 under tend's signing key, so a forged or altered token
//! is refused and nothing is recorded. Delivery makes them; the response
//! routes and the inbound classifier check them.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::domain::message::MessageId;

use crate::config::Secret;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Bytes of the MAC kept in a link token: 128 bits, well beyond guessing.
const LINK_MAC: usize = 16;
/// Bytes of the MAC kept in a reply address, whose local part is short and
/// case-insensitive (hex): 64 bits.
const REPLY_MAC: usize = 8;
/// The file the generated key lives in, under `paths.state`.
const KEY_FILE: &str = "signing.key";

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Answer the message's survey (`/r/`); the value is the survey kind.
    Survey,
    /// Follow a tracked link (`/c/`); the value is the URL.
    Click,
    /// Unsubscribe or set preferences (`/u/`); the value is the category.
    Unsubscribe,
    /// View the message in a browser (`/v/`); the value is the instant it
    /// was rendered for sending (Unix seconds), so the page shows it as sent.
    View,
}

impl Purpose {
    /// The route a link for this purpose goes to: `/{route}/{token}`.
    pub fn route(self) -> &'static str {
        match self {
            Self::Survey => "r",
            Self::Click => "c",
            Self::Unsubscribe => "u",
            Self::View => "v",
        }
    }

    fn tag(self) -> u8 {
        match self {
            Self::Survey => b'r',
            Self::Click => b'c',
            Self::Unsubscribe => b'u',
            Self::View => b'v',
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            b'r' => Some(Self::Survey),
            b'c' => Some(Self::Click),
            b'u' => Some(Self::Unsubscribe),
            b'v' => Some(Self::View),
            _ => None,
        }
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub purpose: Purpose,
    /// tend's id of the message the link was sent in.
    pub message: MessageId,
    pub value: String,
    /// The day it was issued, so routes can refuse old links.
    pub issued: DateTime<Utc>,
}

impl Claims {
    /// Whether a link issued with these claims is older than `lifetime`.
    /// Issue days are whole UTC days, so a link lives at least `lifetime`.
    pub fn outlived(&self, lifetime: chrono::Duration, now: DateTime<Utc>) -> bool {
        self.issued + chrono::Duration::days(1) + lifetime <= now
    }
}

/// Why a token was refused. Deliberately vague towards the holder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the link is incomplete or was changed; open it again from the email")]
    Malformed,
    #[error("the link is not valid; open it again from the email")]
    BadSignature,
    #[error("the link is for something else")]
    WrongPurpose,
}

/// Why the signing key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "cannot create the signing key {}: {source}; make paths.state writable, or set security.secret_file",
        path.display()
    )]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot read the signing key {}: {source}; check its permissions, or set security.secret_file",
        path.display()
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the signing key {} is empty; delete it to have a new one generated (links already sent stop working)", .0.display())]
    Empty(PathBuf),
}

/// Signs and checks tokens with one key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer([redacted])")
    }
}

impl Signer {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// The configured secret, else the key generated once into `state_dir`
    /// (created on first use, readable by tend alone).
    pub fn load(configured: Option<&Secret>, state_dir: &Path) -> Result<Self, KeyError> {
        if let Some(secret) = configured {
            return Ok(Self::new(secret.expose().as_bytes()));
        }
        let path = state_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => Err(KeyError::Empty(path)),
            Ok(text) => Ok(Self::new(text.trim().as_bytes())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(&path),
            Err(source) => Err(KeyError::Read { path, source }),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts a key of any length.
        HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }

    /// A URL-safe token for `purpose` on `message` with `value`.
    pub fn sign(
        &self,
        purpose: Purpose,
        message: MessageId,
        value: &str,
        now: DateTime<Utc>,
    ) -> String {
        let day = u32::try_from(now.timestamp().div_euclid(86_400)).unwrap_or(0);
        let mut payload = Vec::with_capacity(21 + value.len() + LINK_MAC);
        payload.push(purpose.tag());
        payload.extend_from_slice(message.0.as_bytes());
        payload.extend_from_slice(&day.to_be_bytes());
        payload.extend_from_slice(value.as_bytes());
        let mut mac = self.mac();
        mac.update(&payload);
        payload.extend_from_slice(&mac.finalize().into_bytes()[..LINK_MAC]);
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// The claims of a token made by [`Signer::sign`] for `purpose`.
    pub fn verify(&self, token: &str, purpose: Purpose) -> Result<Claims, TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() < 21 + LINK_MAC {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - LINK_MAC);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_truncated_left(tag)
            .map_err(|_| TokenError::BadSignature)?;
        let found = Purpose::from_tag(payload[0]).ok_or(TokenError::Malformed)?;
        if found != purpose {
            return Err(TokenError::WrongPurpose);
        }
        let message =
            MessageId(Uuid::from_slice(&payload[1..17]).map_err(|_| TokenError::Malformed)?);
        let day = u32::from_be_bytes([payload[17], payload[18], payload[19], payload[20]]);
        let value = String::from_utf8(payload[21..].to_vec()).map_err(|_| TokenError::Malformed)?;
        Ok(Claims {
            purpose,
            message,
            value,
            issued: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(i64::from(day)),
        })
    }

    /// The reply address for `message`: `local+TOKEN@domain` from the
    /// configured reply-to address. The token is lower-case hex, because
    /// some mail systems change the case of a local part.
    pub fn reply_address(&self, reply_to: &str, message: MessageId) -> String {
        plus_address(reply_to, "", &self.address_token(Address::Reply, message))
    }

    /// The address mail unsubscribes at (the `mailto:` of
    /// `List-Unsubscribe`): `local+u-TOKEN@domain`. Its MAC is made for
    /// unsubscribing alone, so knowing a message's reply address (a
    /// colleague copied on a reply sees it) does not let anyone unsubscribe
    /// the customer, and mail to it needs no particular subject or body.
    pub fn unsubscribe_address(&self, reply_to: &str, message: MessageId) -> String {
        plus_address(
            reply_to,
            UNSUBSCRIBE_PLUS,
            &self.address_token(Address::Unsubscribe, message),
        )
    }

    fn address_token(&self, address: Address, message: MessageId) -> String {
        let mut mac = self.mac();
        mac.update(address.label());
        mac.update(message.0.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{}{}", message.0.simple(), hex(&tag[..REPLY_MAC]))
    }

    /// The message a reply address's token (the part after `+`) names, if
    /// the token is genuine.
    pub fn verify_reply_token(&self, token: &str) -> Option<MessageId> {
        self.verify_address_token(Address::Reply, token)
    }

    /// The message an unsubscribe address's token (the part after
    /// `+u-`) names, if the token is genuine.
    pub fn verify_unsubscribe_token(&self, token: &str) -> Option<MessageId> {
        self.verify_address_token(Address::Unsubscribe, token)
    }

    fn verify_address_token(&self, address: Address, token: &str) -> Option<MessageId> {
        let token = token.trim().to_ascii_lowercase();
        if token.len() != 32 + REPLY_MAC * 2 || !token.is_ascii() {
            return None;
        }
        let message = MessageId(Uuid::try_parse(&token[..32]).ok()?);
        let expected = self.address_token(address, message);
        // Constant time, so the comparison leaks nothing about the MAC.
        let same: bool = expected.as_bytes().ct_eq(token.as_bytes()).into();
        same.then_some(message)
    }
}

/// What a plus-address lets mail to it do. Each has its own MAC label, so
/// a token made for one is refused as the other.
#[derive(Debug, Clone, Copy)]
enum Address {
    Reply,
    Unsubscribe,
}

impl Address {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Reply => b"reply",
            Self::Unsubscribe => b"unsubscribe",
        }
    }
}

/// What starts the plus part of an unsubscribe address (`success+u-…`); a
/// reply token is hex, so it never starts so.
pub const UNSUBSCRIBE_PLUS: &str = "u-";

/// `local+{prefix}{token}@domain` from the configured `local@domain` (or
/// `local+anything@domain`).
fn plus_address(reply_to: &str, prefix: &str, token: &str) -> String {
    let Some((local, domain)) = reply_to.rsplit_once('@') else {
        return reply_to.to_owned();
    };
    let base = local.split_once('+').map_or(local, |(base, _)| base);
    format!("{base}+{prefix}{token}@{domain}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Generates a 256-bit key into `path`, readable by its owner alone. When
/// another process created it first, that one is used.
///
/// The key is written and synced under a private temporary name, then
/// hard-linked into place: the link either appears with the whole key or
/// fails because another process linked its own first, so a concurrent start
/// never reads a half-written (or empty) key file.
fn create_key(path: &Path) -> Result<Signer, KeyError> {
    let create = |source| KeyError::Create {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(create)?;
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| create(std::io::Error::other(e.to_string())))?;
    let text = hex(&raw);
    let temporary = dir.join(format!(".{KEY_FILE}.{}", Uuid::now_v7().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    // The temporary name is only scaffolding; the key lives on under `path`.
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated a new signing key for links");
            Ok(Signer::new(text.as_bytes()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Signer::load(None, dir),
        Err(e) => Err(create(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-23T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_token_round_trips_and_binds_everything() {
        let signer = Signer::new(b"key");
        let id = MessageId::new();
        let token = signer.sign(Purpose::Click, id, "https://acme.example/docs", now());
        let claims = signer.verify(&token, Purpose::Click).unwrap();
        assert_eq!(claims.message, id);
        assert_eq!(claims.value, "https://acme.example/docs");
        assert_eq!(claims.issued.date_naive(), now().date_naive());
        assert_eq!(
            signer.verify(&token, Purpose::Survey),
            Err(TokenError::WrongPurpose)
        );
        assert_eq!(
            Signer::new(b"other").verify(&token, Purpose::Click),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn links_live_at_least_their_lifetime() {
        let signer = Signer::new(b"key");
        let token = signer.sign(Purpose::Survey, MessageId::new(), "nps", now());
        let claims = signer.verify(&token, Purpose::Survey).unwrap();
        let lifetime = chrono::Duration::days(30);
        assert!(!claims.outlived(lifetime, now() + lifetime));
        assert!(!claims.outlived(lifetime, now() + lifetime + chrono::Duration::hours(13)));
        assert!(claims.outlived(lifetime, now() + lifetime + chrono::Duration::days(1)));
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let signer = Signer::new(b"key");
        let token = signer.sign(Purpose::Unsubscribe, MessageId::new(), "tips", now());
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 1;
            let forged = URL_SAFE_NO_PAD.encode(changed);
            assert!(
                signer.verify(&forged, Purpose::Unsubscribe).is_err(),
                "byte {i}"
            );
        }
        assert_eq!(
            signer.verify("", Purpose::Click),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            signer.verify("%%%", Purpose::Click),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn reply_addresses_survive_case_changes() {
        let signer = Signer::new(b"key");
        let id = MessageId::new();
        let address = signer.reply_address("success@acme.example", id);
        let (local, domain) = address.split_once('@').unwrap();
        assert_eq!(domain, "acme.example");
        assert!(local.len() <= 64, "{local}");
        let token = local.strip_prefix("success+").unwrap();
        assert_eq!(signer.verify_reply_token(token), Some(id));
        assert_eq!(signer.verify_reply_token(&token.to_uppercase()), Some(id));
        let mut forged = token.to_owned();
        forged.replace_range(40..41, if &token[40..41] == "0" { "1" } else { "0" });
        assert_eq!(signer.verify_reply_token(&forged), None);
        assert_eq!(signer.verify_reply_token("abc"), None);
    }

    #[test]
    fn unsubscribe_addresses_are_their_own_and_refuse_reply_tokens() {
        let signer = Signer::new(b"key");
        let id = MessageId::new();
        let address = signer.unsubscribe_address("success+old@acme.example", id);
        let (local, domain) = address.split_once('@').unwrap();
        assert_eq!(domain, "acme.example");
        assert!(local.len() <= 64, "{local}");
        let token = local.strip_prefix("success+u-").unwrap();
        assert_eq!(signer.verify_unsubscribe_token(token), Some(id));
        assert_eq!(
            signer.verify_unsubscribe_token(&token.to_uppercase()),
            Some(id)
        );
        // Neither token is the other: a reply address cannot unsubscribe.
        assert_eq!(signer.verify_reply_token(token), None);
        let reply = signer.reply_address("success@acme.example", id);
        let reply_token = reply
            .split_once('@')
            .unwrap()
            .0
            .strip_prefix("success+")
            .unwrap();
        assert_eq!(signer.verify_unsubscribe_token(reply_token), None);
        assert_eq!(Signer::new(b"other").verify_unsubscribe_token(token), None);
    }

    #[test]
    fn concurrent_first_starts_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| s.spawn(|| Signer::load(None, &state).unwrap().key))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| k == &keys[0] && k.len() == 64));
        let left: Vec<_> = std::fs::read_dir(&state).unwrap().collect();
        assert_eq!(left.len(), 1, "only the key file remains");
    }

    #[test]
    fn a_generated_key_is_kept_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = Signer::load(None, &dir.path().join("state")).unwrap();
        let again = Signer::load(None, &dir.path().join("state")).unwrap();
        assert_eq!(first.key, again.key);
        assert_eq!(first.key.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("state").join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let configured = Signer::load(Some(&Secret::new("set")), dir.path()).unwrap();
        assert_eq!(configured.key, b"set");
    }
}
