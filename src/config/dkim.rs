//! `[mail.dkim]`'s private key, in the forms OpenSSL and opendkim write,
//! checked as the configuration is loaded, and the DNS record that
//! publishes its public key. Signing with it is delivery's (`deliver::dkim`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};

use super::settings::{Dkim, DkimAlgorithm};

/// Receivers ignore signatures made with shorter RSA keys (RFC 8301).
const MIN_RSA_BITS: usize = 1024;

/// Why `mail.dkim.private_key_file` cannot sign.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the DKIM key {path:?} ({source}); check mail.dkim.private_key_file")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the DKIM key {path:?} is encrypted; tend needs it unencrypted (openssl pkey -in {path} -out dkim.pem), readable only by tend's user; check mail.dkim.private_key_file"
    )]
    Encrypted { path: String },
    #[error(
        "the DKIM key {path:?} is an {found} key but mail.dkim.algorithm is {wanted:?}; set mail.dkim.algorithm = {found:?} or point mail.dkim.private_key_file at an {wanted} key"
    )]
    Mismatch {
        path: String,
        found: &'static str,
        wanted: &'static str,
    },
    #[error(
        "the DKIM key {path:?} is a {bits}-bit RSA key; receivers ignore signatures by keys under {MIN_RSA_BITS} bits (RFC 8301): generate a 2048-bit key (openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048) and point mail.dkim.private_key_file at it"
    )]
    TooShort { path: String, bits: usize },
    #[error(
        "mail.dkim.private_key_file {path:?} is not a usable {algorithm} key ({detail}); {expected}"
    )]
    Invalid {
        path: String,
        algorithm: &'static str,
        detail: String,
        expected: &'static str,
    },
}

/// A private key read from `mail.dkim.private_key_file`.
pub enum Key {
    Rsa(RsaPrivateKey),
    Ed25519(ed25519_dalek::SigningKey),
}

/// Why a key file holds no key tend can read.
enum Unreadable {
    Encrypted,
    Unknown(String),
}

pub fn name(algorithm: DkimAlgorithm) -> &'static str {
    match algorithm {
        DkimAlgorithm::Rsa => "rsa",
        DkimAlgorithm::Ed25519 => "ed25519",
    }
}

pub fn expected(algorithm: DkimAlgorithm) -> &'static str {
    match algorithm {
        DkimAlgorithm::Rsa => {
            "an rsa key is a PEM file: PKCS#8 (BEGIN PRIVATE KEY, as openssl genpkey and opendkim-genkey write) or PKCS#1 (BEGIN RSA PRIVATE KEY)"
        }
        DkimAlgorithm::Ed25519 => {
            "an ed25519 key is a PKCS#8 PEM file (BEGIN PRIVATE KEY, as openssl genpkey -algorithm ed25519 writes) or the base64 of its 32-byte seed"
        }
    }
}

/// Reads the file's key in whichever form it has.
fn parse(text: &str) -> Result<Key, Unreadable> {
    let text = text.trim();
    if text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(Unreadable::Encrypted);
    }
    if text.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        return match RsaPrivateKey::from_pkcs1_pem(text) {
            Ok(key) => Ok(Key::Rsa(key)),
            Err(e) => Err(Unreadable::Unknown(format!(
                "a PKCS#1 PEM that does not decode: {e}"
            ))),
        };
    }
    if text.starts_with("-----BEGIN PRIVATE KEY-----") {
        if let Ok(key) = RsaPrivateKey::from_pkcs8_pem(text) {
            return Ok(Key::Rsa(key));
        }
        return match ed25519_dalek::SigningKey::from_pkcs8_pem(text) {
            Ok(key) => Ok(Key::Ed25519(key)),
            Err(_) => Err(Unreadable::Unknown(
                "a PKCS#8 PEM holding neither an RSA nor an Ed25519 key".into(),
            )),
        };
    }
    if let Some(label) = text.lines().next().filter(|l| l.starts_with("-----BEGIN")) {
        return Err(Unreadable::Unknown(format!(
            "a PEM file of another kind: {label}"
        )));
    }
    match STANDARD.decode(text) {
        Ok(seed) => match <[u8; 32]>::try_from(seed.as_slice()) {
            Ok(seed) => Ok(Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))),
            Err(_) => Err(Unreadable::Unknown(format!(
                "base64 of {} bytes, not 32",
                seed.len()
            ))),
        },
        Err(_) => Err(Unreadable::Unknown("neither PEM nor base64".into())),
    }
}

impl Key {
    /// Reads and checks the key `[mail.dkim]` names.
    pub fn load(settings: &Dkim) -> Result<Self, KeyError> {
        let path = settings.private_key_file.clone();
        let text = std::fs::read_to_string(&path).map_err(|source| KeyError::Unreadable {
            path: path.clone(),
            source,
        })?;
        let wanted = settings.algorithm;
        let key = match parse(&text) {
            Ok(key) => key,
            Err(Unreadable::Encrypted) => return Err(KeyError::Encrypted { path }),
            Err(Unreadable::Unknown(detail)) => {
                return Err(KeyError::Invalid {
                    path,
                    algorithm: name(wanted),
                    detail,
                    expected: expected(wanted),
                });
            }
        };
        if key.algorithm() != wanted {
            return Err(KeyError::Mismatch {
                path,
                found: name(key.algorithm()),
                wanted: name(wanted),
            });
        }
        if let Self::Rsa(rsa) = &key
            && rsa.size() * 8 < MIN_RSA_BITS
        {
            return Err(KeyError::TooShort {
                path,
                bits: rsa.size() * 8,
            });
        }
        Ok(key)
    }

    pub fn algorithm(&self) -> DkimAlgorithm {
        match self {
            Self::Rsa(_) => DkimAlgorithm::Rsa,
            Self::Ed25519(_) => DkimAlgorithm::Ed25519,
        }
    }

    /// The TXT record's value that publishes the public key:
    /// `v=DKIM1; k=rsa; p=…` (the DER public key, RFC 6376) or
    /// `v=DKIM1; k=ed25519; p=…` (the raw 32 bytes, RFC 8463).
    pub fn record(&self) -> String {
        let public = match self {
            Self::Rsa(key) => RsaPublicKey::from(key)
                .to_public_key_der()
                .map(|der| STANDARD.encode(der.as_bytes()))
                // Encoding a public key that was just decoded cannot fail;
                // an empty p= (a revoked key) would say so at the receiver.
                .unwrap_or_default(),
            Self::Ed25519(key) => STANDARD.encode(key.verifying_key().to_bytes()),
        };
        format!("v=DKIM1; k={}; p={public}", name(self.algorithm()))
    }
}

/// Where the record is published: `SELECTOR._domainkey.DOMAIN`.
pub fn record_name(settings: &Dkim) -> String {
    format!("{}._domainkey.{}", settings.selector, settings.domain)
}
