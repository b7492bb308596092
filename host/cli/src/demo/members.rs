//! The demo's member table: one member, `alice`, whose password is stored hashed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The demo member's username.
pub(crate) const ALICE: &str = "alice";

/// The demo member's account id (what `_auth_user_id` holds after login, as a string).
pub(crate) const ALICE_ID: i64 = 1;

/// alice's password `wonderland`, hashed in Django's `PBKDF2PasswordHasher` format
/// (`pbkdf2_sha256$<iterations>$<salt>$<base64 of PBKDF2-HMAC-SHA256>`), so Django's
/// `check_password("wonderland", ALICE_PASSWORD_HASH)` accepts it too. 100,000 iterations keep a
/// debug build's login under a second; a real site should use Django's 1,000,000 or Argon2.
pub(crate) const ALICE_PASSWORD_HASH: &str =
    "pbkdf2_sha256$100000$Wx0vQfJ3mC8kT2nRzL5pYa$5Q6UH1Yq7N47ZZfFEkbVjP4OJyrDRSwEUw4K1jSHGiQ=";

/// Django's `get_session_auth_hash()` for alice: `salted_hmac(key_salt, password_hash,
/// secret=SECRET_KEY, algorithm="sha256").hexdigest()`. Stored in `_auth_user_hash` at login, so
/// a Django site sharing the sessions keeps alice logged in (and drops her sessions when her
/// password changes).
pub(crate) fn session_auth_hash(secret_key: &str) -> String {
    use hmac::{Mac, digest::KeyInit};
    use sha2::Digest;

    const KEY_SALT: &str = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash";
    let key = Sha256::new()
        .chain_update(KEY_SALT)
        .chain_update(secret_key)
        .finalize();
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&key)
        .expect("HMAC takes a key of any length");
    mac.update(ALICE_PASSWORD_HASH.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// How a session's `_auth_user_hash` compares with alice's current session auth hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashCheck {
    /// It equals the hash under `SECRET_KEY`: the login stands.
    Current,
    /// It equals the hash under one of `SECRET_KEY_FALLBACKS`: the login stands, and the session
    /// must be moved to the current hash (Django cycles the key and stores the new hash).
    Fallback,
    /// Missing, malformed or made with another password or secret: the login is void and
    /// the session must be flushed.
    Mismatch,
}

/// Django's `get_user` check of `_auth_user_hash` for alice: a constant-time comparison with
/// her current session auth hash under `secret_key`, then under each fallback key.
pub(crate) fn check_session_auth_hash(
    stored: Option<&str>,
    secret_key: &str,
    fallbacks: &[String],
) -> HashCheck {
    let Some(stored) = stored else {
        return HashCheck::Mismatch;
    };
    let matches = |secret: &str| -> bool {
        bool::from(
            stored
                .as_bytes()
                .ct_eq(session_auth_hash(secret).as_bytes()),
        )
    };
    if matches(secret_key) {
        HashCheck::Current
    } else if fallbacks.iter().any(|secret| matches(secret)) {
        HashCheck::Fallback
    } else {
        HashCheck::Mismatch
    }
}

/// A member found by [`authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// The account id stored in the session at login.
    pub id: i64,
    /// The username.
    pub username: String,
}

/// The member with this username and password, if both match.
///
/// An unknown username still costs one hash, so response times do not tell which usernames
/// exist. The comparison of the derived keys is constant-time.
pub(crate) fn authenticate(username: &str, password: &str) -> Option<Member> {
    let known = username == ALICE;
    let matches = check_password(password, ALICE_PASSWORD_HASH);
    (known && matches).then(|| Member {
        id: ALICE_ID,
        username: ALICE.to_owned(),
    })
}

/// Django's `check_password` for `pbkdf2_sha256` hashes; any other or malformed hash fails.
pub(crate) fn check_password(password: &str, encoded: &str) -> bool {
    let mut parts = encoded.split('$');
    let (Some("pbkdf2_sha256"), Some(iterations), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let Ok(iterations) = iterations.parse::<u32>() else {
        return false;
    };
    let Ok(expected) = STANDARD.decode(hash) else {
        return false;
    };
    if iterations == 0 || expected.len() != 32 {
        return false;
    }
    let mut derived = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(
        password.as_bytes(),
        salt.as_bytes(),
        iterations,
        &mut derived,
    );
    derived.ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_auth_hash_is_djangos() {
        // Django 5.2: salted_hmac("django.contrib.auth.models.AbstractBaseUser.
        // get_session_auth_hash", ALICE_PASSWORD_HASH, secret=…, algorithm="sha256").hexdigest()
        assert_eq!(
            session_auth_hash("demo-test-secret-key-not-for-production"),
            "8b7c8a8438f4620591af14de1ff4032cdd27834533aa9b1f8a3f14c9f242e803"
        );
    }

    #[test]
    fn only_alices_current_hash_keeps_her_logged_in() {
        let secret = "demo-test-secret-key-not-for-production";
        let current = session_auth_hash(secret);
        let old = session_auth_hash("an-old-secret");
        let fallbacks = vec!["an-old-secret".to_owned()];
        assert_eq!(
            check_session_auth_hash(Some(&current), secret, &[]),
            HashCheck::Current
        );
        assert_eq!(
            check_session_auth_hash(Some(&old), secret, &fallbacks),
            HashCheck::Fallback
        );
        assert_eq!(
            check_session_auth_hash(Some(&old), secret, &[]),
            HashCheck::Mismatch
        );
        let mut tampered = current.clone();
        tampered.replace_range(..1, if current.starts_with('0') { "1" } else { "0" });
        for stored in [
            None,
            Some(""),
            Some(&current[..32]),
            Some(tampered.as_str()),
        ] {
            assert_eq!(
                check_session_auth_hash(stored, secret, &fallbacks),
                HashCheck::Mismatch,
                "{stored:?}"
            );
        }
    }

    #[test]
    fn alice_logs_in_with_wonderland_only() {
        assert_eq!(
            authenticate("alice", "wonderland"),
            Some(Member {
                id: ALICE_ID,
                username: "alice".into()
            })
        );
        assert_eq!(authenticate("alice", "Wonderland"), None);
        assert_eq!(authenticate("bob", "wonderland"), None);
        assert_eq!(authenticate("", ""), None);
    }

    /// The stored hash is a real Django `pbkdf2_sha256` hash: Django's own `check_password`
    /// accepts `wonderland` and refuses anything else.
    #[test]
    fn django_checks_alices_hash_the_same_way() {
        let script = format!(
            "from django.contrib.auth.hashers import check_password\n\
             h = {ALICE_PASSWORD_HASH:?}\n\
             emit([check_password('wonderland', h), check_password('Wonderland', h)])\n"
        );
        let out = sessionkit_testkit::run_django(&script, &[]);
        assert_eq!(out.trim(), "[true, false]");
    }

    #[test]
    fn malformed_hashes_never_match() {
        for encoded in [
            "",
            "pbkdf2_sha256$100000$salt",
            "pbkdf2_sha1$100000$salt$AAAA",
            "pbkdf2_sha256$0$salt$5Q6UH1Yq7N47ZZfFEkbVjP4OJyrDRSwEUw4K1jSHGiQ=",
            "pbkdf2_sha256$x$salt$5Q6UH1Yq7N47ZZfFEkbVjP4OJyrDRSwEUw4K1jSHGiQ=",
            "pbkdf2_sha256$1$salt$not base64",
            "pbkdf2_sha256$1$salt$AAAA",
        ] {
            assert!(!check_password("wonderland", encoded), "{encoded}");
        }
    }
}
