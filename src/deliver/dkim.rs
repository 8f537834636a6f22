//! DKIM signing for `[mail.dkim]`: the headers tend signs, and lettre's
//! signer made from the key the configuration loaded (`config::dkim`).
//! Signing itself is lettre's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::LineEnding;

use crate::config::dkim::{Key, KeyError, expected, name};
use crate::config::settings::Dkim;

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

/// The signer lettre uses for `key`, in the two forms its key reader
/// knows (a PKCS#1 PEM, an Ed25519 seed in base64).
pub fn signer_for(key: &Key, settings: &Dkim) -> Result<DkimConfig, KeyError> {
    let this = key;
    let invalid = |detail: String| KeyError::Invalid {
        path: settings.private_key_file.clone(),
        algorithm: name(this.algorithm()),
        detail,
        expected: expected(this.algorithm()),
    };
    let key = match this {
        Key::Rsa(key) => {
            let pem = key
                .to_pkcs1_pem(LineEnding::LF)
                .map_err(|e| invalid(e.to_string()))?;
            DkimSigningKey::new(&pem, DkimSigningAlgorithm::Rsa)
        }
        Key::Ed25519(key) => DkimSigningKey::new(
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

/// The signer for `[mail.dkim]`, or what is wrong with its key.
pub fn signer(settings: &Dkim) -> Result<DkimConfig, KeyError> {
    signer_for(&Key::load(settings)?, settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::dkim::record_name;
    use crate::config::settings::DkimAlgorithm;

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
