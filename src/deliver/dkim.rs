//! DKIM for `[mail.dkim]`: the private key in the forms OpenSSL and
//! opendkim write, the headers tend signs, and the DNS record that
//! publishes the public key. Signing itself is lettre's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};

use crate::config::settings::{Dkim, DkimAlgorithm};

/// The headers tend signs: those receivers check, the List-Unsubscribe
/// pair (Gmail honours one-click only when it is signed), and
/// Auto-Submitted.
///
/// Only headers lettre's signer hashes may be listed. It hashes the
/// message's own headers, but a multipart body writes its `Content-Type`
/// (with the boundary) together with the body: listed here, the signer
/// would hash it as absent and every verifier as present, and no signature
/// would verify. A header listed but absent (In-Reply-To, References,
/// List-Unsubscribe-Post on a plain-http test setup) is signed as empty,
/// which also keeps anyone from adding it later (RFC 6376 §5.4).
pub const SIGNED: &[&str] = &[
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Auto-Submitted",
    "MIME-Version",
];

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

fn name(algorithm: DkimAlgorithm) -> &'static str {
    match algorithm {
        DkimAlgorithm::Rsa => "rsa",
        DkimAlgorithm::Ed25519 => "ed25519",
    }
}

fn expected(algorithm: DkimAlgorithm) -> &'static str {
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

    /// The signer lettre uses, in the two forms its key reader knows
    /// (a PKCS#1 PEM, an Ed25519 seed in base64).
    pub fn signer(&self, settings: &Dkim) -> Result<DkimConfig, KeyError> {
        let invalid = |detail: String| KeyError::Invalid {
            path: settings.private_key_file.clone(),
            algorithm: name(self.algorithm()),
            detail,
            expected: expected(self.algorithm()),
        };
        let key = match self {
            Self::Rsa(key) => {
                let pem = key
                    .to_pkcs1_pem(LineEnding::LF)
                    .map_err(|e| invalid(e.to_string()))?;
                DkimSigningKey::new(&pem, DkimSigningAlgorithm::Rsa)
            }
            Self::Ed25519(key) => DkimSigningKey::new(
                &STANDARD.encode(key.to_bytes()),
                DkimSigningAlgorithm::Ed25519,
            ),
        }
        .map_err(|e| invalid(e.to_string()))?;
        Ok(DkimConfig::new(
            settings.selector.clone(),
            settings.domain.clone(),
            key,
            SIGNED
                .iter()
                .map(|h| HeaderName::new_from_ascii_str(h))
                .collect(),
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        ))
    }
}

/// Where the record is published: `SELECTOR._domainkey.DOMAIN`.
pub fn record_name(settings: &Dkim) -> String {
    format!("{}._domainkey.{}", settings.selector, settings.domain)
}

/// The signer for `[mail.dkim]`, or what is wrong with its key.
pub fn signer(settings: &Dkim) -> Result<DkimConfig, KeyError> {
    Key::load(settings)?.signer(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &std::path::Path, key: &str, algorithm: DkimAlgorithm) -> Dkim {
        let path = dir.join("dkim.key");
        std::fs::write(&path, key).unwrap();
        Dkim {
            selector: "tend".into(),
            domain: "acme.example".into(),
            private_key_file: path.to_string_lossy().into_owned(),
            algorithm,
        }
    }

    #[test]
    fn an_ed25519_seed_loads_and_publishes_its_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let seed = STANDARD.encode([7u8; 32]);
        let s = settings(dir.path(), &seed, DkimAlgorithm::Ed25519);
        let key = Key::load(&s).unwrap();
        let public = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]).verifying_key();
        assert_eq!(
            key.record(),
            format!(
                "v=DKIM1; k=ed25519; p={}",
                STANDARD.encode(public.to_bytes())
            )
        );
        assert_eq!(record_name(&s), "tend._domainkey.acme.example");
        signer(&s).unwrap();
    }

    #[test]
    fn a_key_of_the_other_algorithm_says_which_setting_to_change() {
        let dir = tempfile::tempdir().unwrap();
        let seed = STANDARD.encode([7u8; 32]);
        let s = settings(dir.path(), &seed, DkimAlgorithm::Rsa);
        let err = Key::load(&s).err().unwrap().to_string();
        assert!(
            err.contains("is an ed25519 key but mail.dkim.algorithm is \"rsa\""),
            "{err}"
        );
    }

    #[test]
    fn bad_keys_name_the_setting_and_what_is_expected() {
        let dir = tempfile::tempdir().unwrap();
        for (text, algorithm, says) in [
            ("not a key", DkimAlgorithm::Rsa, "neither PEM nor base64"),
            (
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
                DkimAlgorithm::Rsa,
                "BEGIN EC PRIVATE KEY",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
                DkimAlgorithm::Rsa,
                "PKCS#1 PEM that does not decode",
            ),
            ("AAAA", DkimAlgorithm::Ed25519, "base64 of 3 bytes, not 32"),
        ] {
            let s = settings(dir.path(), text, algorithm);
            let err = Key::load(&s).err().unwrap().to_string();
            assert!(
                err.starts_with("mail.dkim.private_key_file") && err.contains(says),
                "{err}"
            );
            assert!(err.contains(expected(algorithm)), "{err}");
        }
        let s = settings(
            dir.path(),
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            DkimAlgorithm::Rsa,
        );
        let err = Key::load(&s).err().unwrap().to_string();
        assert!(err.contains("is encrypted"), "{err}");
        let missing = Dkim {
            private_key_file: dir.path().join("missing").to_string_lossy().into_owned(),
            ..s
        };
        let err = Key::load(&missing).err().unwrap().to_string();
        assert!(
            err.contains("cannot read the DKIM key") && err.contains("mail.dkim.private_key_file"),
            "{err}"
        );
    }
}
