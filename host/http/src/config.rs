//! The cookie settings the middleware uses, checked once when the layer is built.

use sessionkit::{SameSite, Settings};

/// The `SESSION_COOKIE_*` and `SESSION_SAVE_EVERY_REQUEST` settings, validated so that no
/// `Set-Cookie` header can be split or extended by a configured value (CVE-2024-47764).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    /// `SESSION_COOKIE_NAME`: a cookie-name token.
    pub name: String,
    /// `SESSION_COOKIE_DOMAIN`.
    pub domain: Option<String>,
    /// `SESSION_COOKIE_PATH`.
    pub path: String,
    /// `SESSION_COOKIE_SECURE`.
    pub secure: bool,
    /// `SESSION_COOKIE_HTTPONLY`.
    pub http_only: bool,
    /// `SESSION_COOKIE_SAMESITE`; `None` when Django's setting is `False` (attribute omitted).
    pub same_site: Option<cookie::SameSite>,
    /// `SESSION_SAVE_EVERY_REQUEST`.
    pub save_every_request: bool,
}

/// A cookie setting that would make a malformed or injectable `Set-Cookie` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting {setting} = {value:?} is not allowed in a Set-Cookie header: {reason}")]
pub struct ConfigError {
    /// The Django name of the setting.
    pub setting: &'static str,
    /// The rejected value.
    pub value: String,
    /// Why it is rejected.
    pub reason: &'static str,
}

impl CookieSettings {
    /// Takes the cookie settings from the host settings and validates them.
    ///
    /// # Errors
    ///
    /// - `SESSION_COOKIE_NAME` empty or with a character Python's `http.cookies` would refuse
    ///   in a name (anything outside ``A-Za-z0-9!#$%&'*+-.^_`|~:``).
    /// - `SESSION_COOKIE_PATH` or `SESSION_COOKIE_DOMAIN` with `;`, `,`, a control character
    ///   (CR, LF, NUL, DEL, …) or a non-ASCII character; a domain with whitespace.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let name = settings.session_cookie_name.clone();
        if name.is_empty() {
            return Err(ConfigError {
                setting: "SESSION_COOKIE_NAME",
                value: name,
                reason: "the name is empty",
            });
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~:".contains(c))
        {
            return Err(ConfigError {
                setting: "SESSION_COOKIE_NAME",
                value: name,
                reason: "a cookie name may only hold letters, digits and !#$%&'*+-.^_`|~:",
            });
        }
        check_attribute("SESSION_COOKIE_PATH", &settings.session_cookie_path)?;
        if let Some(domain) = &settings.session_cookie_domain {
            check_attribute("SESSION_COOKIE_DOMAIN", domain)?;
            if domain.contains(' ') {
                return Err(ConfigError {
                    setting: "SESSION_COOKIE_DOMAIN",
                    value: domain.clone(),
                    reason: "a domain holds no whitespace",
                });
            }
        }
        let same_site = match settings.session_cookie_samesite {
            SameSite::Strict => Some(cookie::SameSite::Strict),
            SameSite::Lax => Some(cookie::SameSite::Lax),
            SameSite::None => Some(cookie::SameSite::None),
            SameSite::Disabled => None,
        };
        let checked = Self {
            name,
            domain: settings.session_cookie_domain.clone(),
            path: settings.session_cookie_path.clone(),
            secure: settings.session_cookie_secure,
            http_only: settings.session_cookie_httponly,
            same_site,
            save_every_request: settings.session_save_every_request,
        };
        checked.warn_about_browser_rejections();
        Ok(checked)
    }

    /// Logs the settings Django accepts but browsers then refuse, so the cookie silently never
    /// comes back.
    fn warn_about_browser_rejections(&self) {
        if self.same_site == Some(cookie::SameSite::None) && !self.secure {
            tracing::warn!(
                target: "sessionkit::http",
                "SESSION_COOKIE_SAMESITE = \"None\" without SESSION_COOKIE_SECURE: browsers drop \
                 such cookies"
            );
        }
        let prefixed = self.name.starts_with("__Secure-") || self.name.starts_with("__Host-");
        if prefixed && !self.secure {
            tracing::warn!(
                target: "sessionkit::http",
                name = %self.name,
                "a __Secure-/__Host- cookie name needs SESSION_COOKIE_SECURE: browsers drop it"
            );
        }
        if self.name.starts_with("__Host-") && (self.domain.is_some() || self.path != "/") {
            tracing::warn!(
                target: "sessionkit::http",
                name = %self.name,
                "a __Host- cookie needs SESSION_COOKIE_PATH = \"/\" and no SESSION_COOKIE_DOMAIN"
            );
        }
    }
}

/// Rejects what could end or extend a `Set-Cookie` attribute.
fn check_attribute(setting: &'static str, value: &str) -> Result<(), ConfigError> {
    let reason = if value.contains([';', ',']) {
        Some("`;` and `,` would end the attribute")
    } else if value.chars().any(|c| c.is_ascii_control()) {
        Some("control characters (CR, LF, NUL, …) would split the header")
    } else if !value.is_ascii() {
        Some("only ASCII is allowed in a header")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ConfigError {
            setting,
            value: value.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::new("test-secret")
    }

    #[test]
    fn django_defaults_are_accepted() {
        let cookie = CookieSettings::from_settings(&settings()).expect("defaults are valid");
        assert_eq!(cookie.name, "sessionid");
        assert_eq!(cookie.path, "/");
        assert_eq!(cookie.domain, None);
        assert!(cookie.http_only);
        assert!(!cookie.secure);
        assert_eq!(cookie.same_site, Some(cookie::SameSite::Lax));
        assert!(!cookie.save_every_request);
    }

    #[test]
    fn header_splitting_values_are_refused_at_startup() {
        for (setting, value) in [
            ("SESSION_COOKIE_NAME", "session id"),
            ("SESSION_COOKIE_NAME", "sid;x=1"),
            ("SESSION_COOKIE_NAME", ""),
            ("SESSION_COOKIE_NAME", "sid\r\nX-Evil: 1"),
            ("SESSION_COOKIE_PATH", "/;Domain=evil.example"),
            ("SESSION_COOKIE_PATH", "/a,b"),
            ("SESSION_COOKIE_PATH", "/\r\nX-Evil: 1"),
            ("SESSION_COOKIE_PATH", "/\u{0}"),
            ("SESSION_COOKIE_PATH", "/caf\u{e9}"),
            ("SESSION_COOKIE_DOMAIN", "example.com; Secure"),
            ("SESSION_COOKIE_DOMAIN", "example.com\n"),
            ("SESSION_COOKIE_DOMAIN", "exa mple.com"),
        ] {
            let mut settings = settings();
            match setting {
                "SESSION_COOKIE_NAME" => settings.session_cookie_name = value.into(),
                "SESSION_COOKIE_PATH" => settings.session_cookie_path = value.into(),
                _ => settings.session_cookie_domain = Some(value.into()),
            }
            let error = CookieSettings::from_settings(&settings).expect_err(value);
            assert_eq!(error.setting, setting, "{value:?}");
        }
    }
}
