//! Session keys: Django's `get_random_string(32, VALID_KEY_CHARS)` and the key format check.

/// The 36 characters of a session key (Django's `VALID_KEY_CHARS`); lowercase only, so keys are
/// safe on case-insensitive file systems.
pub const VALID_KEY_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

/// The length of every key this crate mints (Django always generates 32 characters).
pub const KEY_LEN: usize = 32;

/// The shortest key accepted (Django's `_validate_session_key`: `len >= 8`).
pub const MIN_KEY_LEN: usize = 8;

/// The longest key accepted (the `varchar(40)` of Django's `session_key` column).
pub const MAX_KEY_LEN: usize = 40;

/// Bytes at or above this are rejected so that `byte % 36` is uniform (252 = 7 × 36).
const REJECT_FROM: u8 = 252;

/// Mints a new session key: 32 characters of [`VALID_KEY_CHARS`] drawn uniformly from the
/// operating system's CSPRNG (about 165 bits).
///
/// Each character comes from one random byte by rejection sampling (bytes 252–255 are drawn
/// again), so there is no modulo bias.
///
/// # Panics
///
/// If the operating system's random source fails (`getrandom` errors), which on supported
/// platforms means the system is unusable; a session key must never come from a weaker source.
pub fn new_session_key() -> String {
    let alphabet = VALID_KEY_CHARS.as_bytes();
    let mut key = String::with_capacity(KEY_LEN);
    // 32 accepted bytes need 32 / (252/256) ≈ 32.5 draws on average; 48 almost always suffice.
    let mut pool = [0u8; 48];
    while key.len() < KEY_LEN {
        if let Err(err) = getrandom::fill(&mut pool) {
            panic!("the operating system's random number generator failed: {err}");
        }
        for &b in &pool {
            if b < REJECT_FROM {
                key.push(char::from(alphabet[usize::from(b % 36)]));
                if key.len() == KEY_LEN {
                    break;
                }
            }
        }
    }
    key
}

/// Whether `key` has the form of a session key: 8 to 40 characters, all in [`VALID_KEY_CHARS`].
///
/// This is stricter than Django's base check (length only) and equal to the file backend's;
/// anything that fails it must be treated as "no key", never used in a path or query.
pub fn is_valid_session_key(key: &str) -> bool {
    // Every byte is checked without stopping at the first bad one, so the compiler turns the
    // loop into a few vector instructions (keys are at most 40 bytes; an early exit would
    // keep it one byte at a time, ~200 instructions per key on every request).
    (MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len())
        && key.bytes().fold(true, |valid, b| {
            valid & (b.is_ascii_lowercase() | b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn new_keys_are_32_chars_of_the_valid_alphabet() {
        for _ in 0..1000 {
            let key = new_session_key();
            assert_eq!(key.len(), KEY_LEN);
            assert!(key.chars().all(|c| VALID_KEY_CHARS.contains(c)), "{key}");
            assert!(is_valid_session_key(&key));
        }
    }

    #[test]
    fn new_keys_do_not_repeat() {
        let keys: HashSet<String> = (0..20_000).map(|_| new_session_key()).collect();
        assert_eq!(keys.len(), 20_000);
    }

    #[test]
    fn every_position_uses_every_character_without_bias() {
        // Chi-square per position over 36 symbols (35 degrees of freedom). The critical value
        // for p = 1e-6 is about 85.4, so a correct generator fails this less than once in a
        // million runs per position, while a modulo-biased or stuck generator fails it surely.
        const N: usize = 36 * 400;
        let mut counts = [[0u32; 36]; KEY_LEN];
        for _ in 0..N {
            for (pos, b) in new_session_key().bytes().enumerate() {
                let idx = VALID_KEY_CHARS.bytes().position(|c| c == b).unwrap();
                counts[pos][idx] += 1;
            }
        }
        let expected = (N / 36) as f64;
        for (pos, row) in counts.iter().enumerate() {
            let chi2: f64 = row
                .iter()
                .map(|&c| (f64::from(c) - expected).powi(2) / expected)
                .sum();
            assert!(
                chi2 < 85.4,
                "position {pos}: chi-square {chi2:.1} over 35 dof"
            );
        }
    }

    #[test]
    fn keys_of_8_to_40_lowercase_alphanumerics_are_valid() {
        assert!(is_valid_session_key("abcdefgh"));
        assert!(is_valid_session_key(&"a".repeat(40)));
        assert!(is_valid_session_key("0123456789abcdefghijklmnopqrstuv"));
    }

    #[test]
    fn keys_of_the_wrong_length_are_invalid() {
        assert!(!is_valid_session_key(""));
        assert!(!is_valid_session_key("abcdefg"));
        assert!(!is_valid_session_key(&"a".repeat(41)));
        assert!(!is_valid_session_key(&"a".repeat(4096)));
    }

    #[test]
    fn keys_with_other_characters_are_invalid() {
        for bad in [
            "ABCDEFGHIJKL",
            "abcdefgh/../x",
            "../../etc/passwd",
            "..%2F..%2Fetcpasswd",
            "abcdefgh\\ijk",
            "abcdefgh\0ijk",
            "abcdefgh ijk",
            "abcdefgh;ijk",
            "\"abcdefghijk\"",
            "abcdefghïjk",
            "abcdefgh-ijk",
        ] {
            assert!(!is_valid_session_key(bad), "{bad:?}");
        }
    }
}
