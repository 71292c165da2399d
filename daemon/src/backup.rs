//! Backup codes: a set made at once, shown once, stored only as argon2id
//! hashes, each spent once.
//!
//! A code is 12 characters from the unambiguous alphabet, shown as
//! `ABCD-EFGH-JKMN`. The first four are the code's public id, stored in
//! clear so a login checks one hash instead of every hash of the set; the
//! other eight are the secret (31^8, about 2^40, and the attacker knows
//! neither part: 2^59 guesses against a budget of a handful per window).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::{rngs::OsRng, Rng, TryRngCore};
use zeroize::Zeroizing;

const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
pub const CODE_CHARS: usize = 12;
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

/// Makes `count` codes with distinct ids. Slow (one argon2 hash each): run
/// it on the blocking pool.
pub fn generate(count: u32) -> Result<Vec<NewCode>, argon2::password_hash::Error> {
    let mut rng = OsRng.unwrap_err();
    let mut out: Vec<NewCode> = Vec::with_capacity(count as usize);
    while out.len() < count as usize {
        let raw: Zeroizing<String> = Zeroizing::new(
            (0..CODE_CHARS)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect(),
        );
        let (id, secret) = raw.split_at(ID_CHARS);
        if out.iter().any(|c| c.id == id) {
            continue;
        }
        let mut salt = [0u8; 16];
        rng.fill(&mut salt);
        let salt = SaltString::encode_b64(&salt)?;
        let hash = hasher()
            .hash_password(secret.as_bytes(), &salt)?
            .to_string();
        let display = Zeroizing::new(format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..]));
        out.push(NewCode {
            display,
            id: id.to_string(),
            hash,
        });
    }
    Ok(out)
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
    if clean.len() != CODE_CHARS || !clean.bytes().all(|b| ALPHABET.contains(&b)) {
        return None;
    }
    let (id, secret) = clean.split_at(ID_CHARS);
    Some((id.to_string(), Zeroizing::new(secret.to_string())))
}

/// Constant-time (argon2's verifier) check of a secret against a stored
/// hash. Slow: run it on the blocking pool.
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
    fn generated_codes_parse_and_verify() {
        let codes = generate(3).unwrap();
        assert_eq!(codes.len(), 3);
        for c in &codes {
            assert_eq!(c.display.len(), 14);
            assert!(c.hash.starts_with("$argon2id$"), "{}", c.hash);
            assert!(!c.hash.contains(&c.display[5..9]), "hash holds the secret");
            let (id, secret) = parse(&c.display.to_lowercase()).unwrap();
            assert_eq!(id, c.id);
            assert!(matches(&secret, &c.hash));
            assert!(!matches("AAAAAAAA", &c.hash));
        }
        let ids: std::collections::HashSet<_> = codes.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids.len(), 3);
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
        assert!(parse(" abcd efgh jkmn ").is_some());
        assert!(parse(&"A".repeat(100)).is_none());
        assert!(!matches("x", "not a hash"));
    }
}
