//! Secrets of the console's sign-in: team members' passwords, hashed with
//! argon2id (RFC 9106) in the PHC string form the store keeps, and the
//! random tokens of sessions and their forms. No I/O: the store keeps the
//! results, `http::console` and `tend team` use them.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The shortest password accepted: NIST SP 800-63B asks for at least 8;
/// a console that can send mail to every customer asks for more.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Why a password cannot be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error(
        "the password has {0} characters; use at least {MIN_PASSWORD_CHARS} (a passphrase of a few words is easiest to remember)"
    )]
    TooShort(usize),
    #[error("the password is longer than 1024 bytes")]
    TooLong,
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

/// The argon2id hash of `password` with a fresh random salt, in PHC form
/// (`$argon2id$v=19$m=19456,t=2,p=1$…`): the parameters travel with the
/// hash, so stronger ones later still verify the old.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort(chars));
    }
    if password.len() > 1024 {
        return Err(PasswordError::TooLong);
    }
    let salt = SaltString::encode_b64(&random_bytes::<16>())
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches `hash`; with no hash (an unknown member, or
/// one without a password), a dummy hash is checked so the answer takes as
/// long either way and does not tell which members exist.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let checked = hash.unwrap_or(&DUMMY_HASH);
    let Ok(parsed) = PasswordHash::new(checked) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matches && hash.is_some()
}

/// The hash of a password nobody has (made once, of a random token),
/// checked in place of a missing one.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    hash_password(&new_token()).expect("a random token is a valid password")
});

/// A new random token (32 bytes, URL-safe base64): a session's cookie, a
/// form's CSRF token.
pub fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// How the store knows a token: its SHA-256, in hex.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether two tokens are equal, in time that does not depend on where
/// they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The operating system's generator failing is not something to go on
    // from: a predictable token would sign anyone in.
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(verify_password("correct horse battery", Some(&hash)));
        assert!(!verify_password("correct horse batterY", Some(&hash)));
        assert_ne!(
            hash,
            hash_password("correct horse battery").unwrap(),
            "salted"
        );
    }

    #[test]
    fn no_hash_never_verifies() {
        assert!(!verify_password("", None));
        assert!(!verify_password("anything at all", None));
        assert!(
            PasswordHash::new(&DUMMY_HASH).is_ok(),
            "the dummy is a real hash"
        );
    }

    #[test]
    fn short_passwords_are_refused_with_what_to_do() {
        let e = hash_password("short").unwrap_err();
        assert_eq!(e, PasswordError::TooShort(5));
        assert!(e.to_string().contains("at least 12"), "{e}");
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token(&a, &a[..42]));
        assert_eq!(token_hash("abc").len(), 64);
    }
}
