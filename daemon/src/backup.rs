//! Backup codes: a set made at once, shown once, stored only as argon2id
//! hashes, each spent once.
//!
//! A code is 16 characters from the unambiguous alphabet, shown as
//! `ABCD-EFGH-JKMN-PQRS`. The first four are the code's public id, stored
//! in clear so a login checks one hash instead of every hash of the set;
//! the other twelve are the secret. An attacker knows neither part: 31^16,
//! about 2^79 guesses, above the 64 bits NIST SP 800-63B-4 (4.2.1.1) asks of
//! saved recovery codes. Sets made before that had 12 characters (about
//! 2^59); they keep working at login until they are spent or replaced.
//!
//! The argon2 work itself runs only through [`crate::hashing`], which
//! bounds how much of it runs at once.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::{rngs::OsRng, Rng, TryRngCore};
use zeroize::Zeroizing;

const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
pub const CODE_CHARS: usize = 16;
/// Codes of earlier sets, still accepted at login.
const LEGACY_CODE_CHARS: usize = 12;
const ID_CHARS: usize = 4;

/// OWASP's argon2id minimum (19 MiB, 2 passes): tens of milliseconds per
/// check, which is nothing for a login and a wall for offline guessing.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A new code in display form, and its (id, PHC hash) for the store.
pub struct NewCode {
    pub display: Zeroizing<String>,
    pub id: String,
    pub hash: String,
}

/// Makes one code whose id is not among `taken`. Slow (one argon2 hash):
/// only [`crate::hashing`] calls it, on the blocking pool.
pub fn generate_one(taken: &[String]) -> Result<NewCode, argon2::password_hash::Error> {
    let mut rng = OsRng.unwrap_err();
    let raw: Zeroizing<String> = loop {
        let raw: Zeroizing<String> = Zeroizing::new(
            (0..CODE_CHARS)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect(),
        );
        if !taken.iter().any(|id| *id == raw[..ID_CHARS]) {
            break raw;
        }
    };
    let (id, secret) = raw.split_at(ID_CHARS);
    let mut salt = [0u8; 16];
    rng.fill(&mut salt);
    let salt = SaltString::encode_b64(&salt)?;
    let hash = hasher()
        .hash_password(secret.as_bytes(), &salt)?
        .to_string();
    let groups: Vec<&str> = (0..CODE_CHARS / 4)
        .map(|i| &raw[i * 4..i * 4 + 4])
        .collect();
    Ok(NewCode {
        display: Zeroizing::new(groups.join("-")),
        id: id.to_string(),
        hash,
    })
}

/// What a user typed, if it has the shape of a backup code: (id, secret).
/// Dashes and spaces are ignored and letters upper-cased.
pub fn parse(input: &str) -> Option<(String, Zeroizing<String>)> {
    if input.len() > 64 {
        return None;
    }
    let clean: Zeroizing<String> = Zeroizing::new(
        input
            .chars()
            .filter(|c| *c != '-' && !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    if !matches!(clean.len(), CODE_CHARS | LEGACY_CODE_CHARS)
        || !clean.bytes().all(|b| ALPHABET.contains(&b))
    {
        return None;
    }
    let (id, secret) = clean.split_at(ID_CHARS);
    Some((id.to_string(), Zeroizing::new(secret.to_string())))
}

/// Constant-time (argon2's verifier) check of a secret against a stored
/// hash. Slow: only [`crate::hashing`] calls it, on the blocking pool.
pub fn matches(secret: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => hasher().verify_password(secret.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_16_characters_parse_and_verify() {
        let mut codes: Vec<NewCode> = Vec::new();
        for _ in 0..3 {
            let taken: Vec<String> = codes.iter().map(|c| c.id.clone()).collect();
            codes.push(generate_one(&taken).unwrap());
        }
        for c in &codes {
            assert_eq!(c.display.len(), 19, "ABCD-EFGH-JKMN-PQRS");
            assert_eq!(c.display.matches('-').count(), 3);
            assert!(c.hash.starts_with("$argon2id$"), "{}", c.hash);
            assert!(!c.hash.contains(&c.display[5..9]), "hash holds the secret");
            let (id, secret) = parse(&c.display.to_lowercase()).unwrap();
            assert_eq!((id.as_str(), secret.len()), (c.id.as_str(), 12));
            assert!(matches(&secret, &c.hash));
            assert!(!matches("AAAAAAAAAAAA", &c.hash));
        }
        let ids: std::collections::HashSet<_> = codes.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn legacy_12_character_codes_still_parse() {
        let (id, secret) = parse("abcd-efgh-jkmn").unwrap();
        assert_eq!((id.as_str(), secret.as_str()), ("ABCD", "EFGHJKMN"));
        assert!(parse("ABCD-EFGH-JKMN-PQRS").is_some());
        assert!(parse("ABCD-EFGH-JKMN-PQ").is_none(), "14 is neither length");
    }

    #[test]
    fn only_backup_shaped_input_parses() {
        assert!(
            parse("123456").is_none(),
            "an SMS code is not a backup code"
        );
        assert!(parse("ABCD-EFGH-JKM").is_none());
        assert!(
            parse("ABCD-EFGH-JKM0").is_none(),
            "0 is not in the alphabet"
        );
        assert!(parse(" abcd efgh jkmn pqrs ").is_some());
        assert!(parse(&"A".repeat(100)).is_none());
        assert!(!matches("x", "not a hash"));
    }
}
