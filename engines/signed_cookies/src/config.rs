//! The settings the signed-cookie engine reads.

use serde::Deserialize;
use sessionkit_sdk::StoreError;

/// Browsers keep at most this many bytes of one cookie's name and value (RFC 6265 §6.1).
pub const BROWSER_COOKIE_LIMIT: usize = 4096;

/// The engine's settings, read from the host's settings JSON.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SignedCookiesConfig {
    /// How long a signature stays valid, in seconds (Django's `max_age` for signed cookies).
    #[serde(rename = "SESSION_COOKIE_AGE", default = "default_cookie_age")]
    pub cookie_age: i64,
    /// The cookie's name; it counts towards the browser's size limit.
    #[serde(rename = "SESSION_COOKIE_NAME", default = "default_cookie_name")]
    pub cookie_name: String,
}

fn default_cookie_age() -> i64 {
    1_209_600
}

fn default_cookie_name() -> String {
    "sessionid".to_owned()
}

impl SignedCookiesConfig {
    /// Reads the settings this engine uses from the host's settings JSON.
    ///
    /// # Errors
    ///
    /// A `Config` error naming the setting that is malformed.
    pub fn from_settings_json(settings_json: &str) -> Result<Self, StoreError> {
        serde_json::from_str(settings_json)
            .map_err(|error| StoreError::config(format!("signed_cookies settings: {error}")))
    }

    /// The longest session key (cookie value) a browser will keep under this cookie name.
    pub fn max_value_len(&self) -> usize {
        BROWSER_COOKIE_LIMIT.saturating_sub(self.cookie_name.len() + 1)
    }
}
