//! The demo's HTML: plain pages and forms, every echoed value escaped.

use std::fmt::Write as _;

/// Django's `escape()`: the five characters that matter in HTML text and attribute values.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body` (already HTML), with the navigation.
pub(crate) fn layout(title: &str, body: &str) -> String {
    let mut page = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title} · sessionkit demo</title>\n</head>\n<body>\n\
         <nav><a href=\"/\">Home</a> · <a href=\"/login\">Log in</a> · \
         <form method=\"post\" action=\"/logout\" style=\"display:inline\">\
         <button type=\"submit\" id=\"logout\">Log out</button></form></nav>\n\
         <h1>{title}</h1>\n{body}\n</body>\n</html>\n",
        title = escape_html(title),
    );
    page
}

/// A page whose whole point is one message (the answers of the form posts).
pub(crate) fn message(title: &str, text: &str) -> String {
    layout(
        title,
        &format!(
            "<p id=\"message\">{}</p>\n<p><a href=\"/\" id=\"home\">Back to the start page</a></p>",
            escape_html(text)
        ),
    )
}

/// What the start page shows about the session.
#[derive(Debug, Clone)]
pub(crate) struct SessionView {
    /// The engine's name.
    pub engine: String,
    /// The session key, if any.
    pub key: Option<String>,
    /// "when the browser closes" or the date and age.
    pub expiry: String,
    /// The decoded contents, pretty JSON.
    pub contents: String,
    /// The logged-in member, if any.
    pub member: Option<String>,
}

/// The start page: the session, the comment form.
pub(crate) fn index(view: &SessionView) -> String {
    let key = view.key.as_deref().map_or_else(
        || "<em id=\"session-key\">none</em>".to_owned(),
        |key| format!("<code id=\"session-key\">{}</code>", escape_html(key)),
    );
    let member = view.member.as_deref().map_or_else(
        || "<p id=\"who\">Nobody is logged in.</p>".to_owned(),
        |member| format!("<p id=\"who\">Logged in as {}.</p>", escape_html(member)),
    );
    let body = format!(
        "{member}\n<dl>\n<dt>Session key</dt><dd>{key}</dd>\n\
         <dt>Engine</dt><dd id=\"engine\">{engine}</dd>\n\
         <dt>Expires</dt><dd id=\"expiry\">{expiry}</dd>\n\
         <dt>Contents</dt><dd><pre id=\"contents\">{contents}</pre></dd>\n</dl>\n\
         <h2>Leave a comment</h2>\n\
         <form method=\"post\" action=\"/comment\">\n\
         <label>Comment <input name=\"comment\" id=\"comment\" maxlength=\"500\"></label>\n\
         <button type=\"submit\" id=\"post-comment\">Post</button>\n</form>",
        engine = escape_html(&view.engine),
        expiry = escape_html(&view.expiry),
        contents = escape_html(&view.contents),
    );
    layout("Session demo", &body)
}

/// The login form.
pub(crate) fn login_form() -> String {
    layout(
        "Log in",
        "<p>The demo member is <code>alice</code> with the password <code>wonderland</code>.</p>\n\
         <form method=\"post\" action=\"/login\">\n\
         <label>Username <input name=\"username\" id=\"username\" autocomplete=\"username\"></label>\n\
         <label>Password <input name=\"password\" id=\"password\" type=\"password\" \
         autocomplete=\"current-password\"></label>\n\
         <button type=\"submit\" id=\"login\">Log in</button>\n</form>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_echoed_is_escaped() {
        assert_eq!(
            escape_html("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#x27;x&#x27;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        let page = index(&SessionView {
            engine: "<db>".into(),
            key: Some("k\"ey".into()),
            expiry: "&".into(),
            contents: "{\"comment\": \"<img src=x onerror=alert(1)>\"}".into(),
            member: Some("<b>".into()),
        });
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<db>") && !page.contains("<b>"), "{page}");
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    }
}
