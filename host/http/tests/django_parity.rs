//! Every path of Django's `SessionMiddleware.process_response`
//! (`django/contrib/sessions/middleware.py`), run through real Django 5.2 (cache backend, locmem)
//! and through our middleware (the `cache` engine plugin), with time frozen at the same second:
//! `Set-Cookie` must be byte-identical (and so its attribute set), `Vary` and the status the same.
//! Where we differ from Django on purpose, the test says so and checks both sides.

mod support;

use serde_json::json;
use support::{Action, Outcome, Scenario, attributes, django_outcomes, run_ours};

/// Every scenario, named after the test that checks it.
fn scenarios() -> Vec<Scenario> {
    use Action::*;
    let existing = "sessionid={existing}";
    vec![
        Scenario::new("untouched_session_without_cookie_sends_nothing"),
        Scenario::new("read_without_cookie_varies_on_cookie_only").action(Get("a")),
        Scenario::new("write_without_cookie_sets_a_new_cookie").action(Set("a", json!(1))),
        Scenario::new("read_of_existing_session_varies_only")
            .cookie(existing)
            .action(Get("seed")),
        Scenario::new("write_to_existing_session_refreshes_its_cookie")
            .cookie(existing)
            .action(Set("a", json!(1))),
        Scenario::new("flush_deletes_the_cookie")
            .cookie(existing)
            .action(Flush),
        Scenario::new("malformed_short_cookie_is_deleted_even_untouched").cookie("sessionid=abc"),
        Scenario::new("empty_cookie_is_deleted").cookie("sessionid="),
        Scenario::new("unknown_key_read_by_the_view_deletes_the_cookie")
            .cookie("sessionid={unknown}")
            .action(Get("a")),
        Scenario::new("unknown_key_untouched_sends_nothing").cookie("sessionid={unknown}"),
        Scenario::new("unknown_key_written_gets_a_new_key")
            .cookie("sessionid={unknown}")
            .action(Set("a", json!(1))),
        Scenario::new("save_every_request_refreshes_an_untouched_session_with_vary")
            .setting("SESSION_SAVE_EVERY_REQUEST", json!(true))
            .cookie(existing),
        Scenario::new("save_every_request_without_cookie_sends_nothing")
            .setting("SESSION_SAVE_EVERY_REQUEST", json!(true)),
        Scenario::new("server_error_never_saves_nor_sets_the_cookie")
            .cookie(existing)
            .action(Set("a", json!(1)))
            .status(500),
        Scenario::new("server_error_of_a_new_session_sets_nothing")
            .action(Set("a", json!(1)))
            .status(503),
        Scenario::new("server_error_still_deletes_the_cookie_of_a_flushed_session")
            .cookie(existing)
            .action(Flush)
            .status(500),
        Scenario::new("client_error_still_saves")
            .action(Set("a", json!(1)))
            .status(404),
        Scenario::new("expire_at_browser_close_setting_gives_a_browser_session_cookie")
            .setting("SESSION_EXPIRE_AT_BROWSER_CLOSE", json!(true))
            .action(Set("a", json!(1))),
        Scenario::new("set_expiry_zero_gives_a_browser_session_cookie")
            .action(Set("a", json!(1)))
            .action(SetExpiry(0)),
        Scenario::new("set_expiry_seconds_gives_max_age").action(SetExpiry(300)),
        Scenario::new("set_expiry_datetime_gives_max_age_to_that_date")
            .cookie(existing)
            .action(SetExpiryAt(86_400)),
        Scenario::new("cookie_age_setting_gives_max_age")
            .setting("SESSION_COOKIE_AGE", json!(3600))
            .action(Set("a", json!(1))),
        Scenario::new("samesite_none_is_written_without_secure_on_set")
            .setting("SESSION_COOKIE_SAMESITE", json!("None"))
            .action(Set("a", json!(1))),
        Scenario::new("samesite_none_deletion_adds_secure")
            .setting("SESSION_COOKIE_SAMESITE", json!("None"))
            .cookie(existing)
            .action(Flush),
        Scenario::new("samesite_strict_is_written")
            .setting("SESSION_COOKIE_SAMESITE", json!("Strict"))
            .action(Set("a", json!(1))),
        Scenario::new("samesite_false_omits_the_attribute_on_set")
            .setting("SESSION_COOKIE_SAMESITE", json!(false))
            .action(Set("a", json!(1))),
        Scenario::new("samesite_false_omits_the_attribute_on_delete")
            .setting("SESSION_COOKIE_SAMESITE", json!(false))
            .cookie(existing)
            .action(Flush),
        Scenario::new("domain_path_secure_and_no_httponly_are_written")
            .setting("SESSION_COOKIE_DOMAIN", json!(".example.com"))
            .setting("SESSION_COOKIE_PATH", json!("/app/"))
            .setting("SESSION_COOKIE_SECURE", json!(true))
            .setting("SESSION_COOKIE_HTTPONLY", json!(false))
            .action(Set("a", json!(1))),
        Scenario::new("deletion_has_domain_and_path_but_not_secure_from_the_setting")
            .setting("SESSION_COOKIE_DOMAIN", json!(".example.com"))
            .setting("SESSION_COOKIE_PATH", json!("/app/"))
            .setting("SESSION_COOKIE_SECURE", json!(true))
            .cookie(existing)
            .action(Flush),
        Scenario::new("secure_prefixed_name_deletion_adds_secure")
            .setting("SESSION_COOKIE_NAME", json!("__Secure-sid"))
            .setting("SESSION_COOKIE_SECURE", json!(true))
            .cookie("__Secure-sid={existing}")
            .action(Flush),
        Scenario::new("host_prefixed_name_deletion_adds_secure")
            .setting("SESSION_COOKIE_NAME", json!("__Host-sid"))
            .setting("SESSION_COOKIE_SECURE", json!(true))
            .cookie("__Host-sid={existing}")
            .action(Flush),
        Scenario::new("custom_cookie_name_is_read_and_written")
            .setting("SESSION_COOKIE_NAME", json!("sid"))
            .cookie("sessionid={existing2}; sid={existing}")
            .action(Get("seed"))
            .action(Set("a", json!(1))),
        Scenario::new("vary_cookie_is_appended_to_the_views_vary")
            .action(Get("a"))
            .vary("Accept-Encoding"),
        Scenario::new("vary_cookie_is_not_duplicated")
            .action(Get("a"))
            .vary("cookie"),
        Scenario::new("vary_star_stays_star")
            .action(Set("a", json!(1)))
            .vary("*"),
        Scenario::new("emptied_session_with_a_key_is_saved_and_its_cookie_resent")
            .cookie(existing)
            .action(Clear),
        Scenario::new("cycle_key_sets_the_new_key")
            .cookie(existing)
            .action(CycleKey),
        Scenario::new("quoted_cookie_value_is_unquoted")
            .cookie("sessionid=\"{existing}\"")
            .action(Get("seed")),
        Scenario::new("modified_but_never_accessed_session_is_saved_with_vary")
            .cookie(existing)
            .action(MarkModified),
        Scenario::new("malformed_neighbour_cookies_do_not_hide_the_session")
            .cookie("=x; junk; a=b]; sessionid={existing}")
            .action(Get("seed")),
        // The scenarios below differ from Django on purpose; see the tests at the end.
        Scenario::new("duplicate_cookies_first_wins_where_django_takes_the_last")
            .cookie("sessionid={existing}; sessionid={existing2}")
            .action(Get("seed"))
            .action(Set("a", json!(1))),
        Scenario::new("save_every_request_with_unknown_key_creates_nothing")
            .setting("SESSION_SAVE_EVERY_REQUEST", json!(true))
            .cookie("sessionid={unknown}"),
        Scenario::new("session_deleted_meanwhile_is_a_400_without_cookie")
            .cookie(existing)
            .action(Get("seed"))
            .action(DeleteRecord)
            .action(Set("a", json!(1))),
    ]
}

/// Both outcomes of one scenario.
fn outcomes(name: &str) -> (Outcome, Outcome) {
    let all = scenarios();
    let scenario = all
        .iter()
        .find(|s| s.name == name)
        .expect("scenario exists");
    let django = django_outcomes(&all)
        .get(name)
        .expect("Django ran the scenario")
        .clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ours = runtime.block_on(run_ours(scenario));
    (django, ours)
}

/// Ours must equal Django's: status, each `Set-Cookie` byte for byte (and as an attribute set,
/// for a readable failure), `Vary`, what the view read. Plus our own addition:
/// `Cache-Control: private` exactly when a session cookie is set or deleted.
fn assert_same_as_django(name: &str) {
    let (django, ours) = outcomes(name);
    assert_eq!(django.exception, None, "Django raised in {name}");
    assert_eq!(ours.status, django.status, "status of {name}");
    assert_eq!(
        ours.set_cookie.len(),
        django.set_cookie.len(),
        "{name}: {ours:#?} vs {django:#?}"
    );
    for (mine, theirs) in ours.set_cookie.iter().zip(&django.set_cookie) {
        assert_eq!(
            attributes(mine),
            attributes(theirs),
            "{name}: Set-Cookie attributes"
        );
        assert_eq!(mine, theirs, "{name}: Set-Cookie bytes");
    }
    assert_eq!(ours.vary, django.vary, "{name}: Vary");
    assert_eq!(ours.reads, django.reads, "{name}: what the view read");
    let expected_cache_control = (!ours.set_cookie.is_empty()).then(|| "private".to_owned());
    assert_eq!(
        ours.cache_control, expected_cache_control,
        "{name}: Cache-Control"
    );
}

macro_rules! same_as_django {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                assert_same_as_django(stringify!($name));
            }
        )*
    };
}

same_as_django!(
    untouched_session_without_cookie_sends_nothing,
    read_without_cookie_varies_on_cookie_only,
    write_without_cookie_sets_a_new_cookie,
    read_of_existing_session_varies_only,
    write_to_existing_session_refreshes_its_cookie,
    flush_deletes_the_cookie,
    malformed_short_cookie_is_deleted_even_untouched,
    empty_cookie_is_deleted,
    unknown_key_read_by_the_view_deletes_the_cookie,
    unknown_key_untouched_sends_nothing,
    unknown_key_written_gets_a_new_key,
    save_every_request_refreshes_an_untouched_session_with_vary,
    save_every_request_without_cookie_sends_nothing,
    server_error_never_saves_nor_sets_the_cookie,
    server_error_of_a_new_session_sets_nothing,
    server_error_still_deletes_the_cookie_of_a_flushed_session,
    client_error_still_saves,
    expire_at_browser_close_setting_gives_a_browser_session_cookie,
    set_expiry_zero_gives_a_browser_session_cookie,
    set_expiry_seconds_gives_max_age,
    set_expiry_datetime_gives_max_age_to_that_date,
    cookie_age_setting_gives_max_age,
    samesite_none_is_written_without_secure_on_set,
    samesite_none_deletion_adds_secure,
    samesite_strict_is_written,
    samesite_false_omits_the_attribute_on_set,
    samesite_false_omits_the_attribute_on_delete,
    domain_path_secure_and_no_httponly_are_written,
    deletion_has_domain_and_path_but_not_secure_from_the_setting,
    secure_prefixed_name_deletion_adds_secure,
    host_prefixed_name_deletion_adds_secure,
    custom_cookie_name_is_read_and_written,
    vary_cookie_is_appended_to_the_views_vary,
    vary_cookie_is_not_duplicated,
    vary_star_stays_star,
    emptied_session_with_a_key_is_saved_and_its_cookie_resent,
    cycle_key_sets_the_new_key,
    quoted_cookie_value_is_unquoted,
    modified_but_never_accessed_session_is_saved_with_vary,
    malformed_neighbour_cookies_do_not_hide_the_session,
);

/// The deletion cookie has exactly the form the spec gives.
#[test]
fn deletion_cookie_has_djangos_exact_form() {
    let (django, ours) = outcomes("flush_deletes_the_cookie");
    let expected =
        "sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax";
    assert_eq!(django.set_cookie, [expected]);
    assert_eq!(ours.set_cookie, [expected]);
}

/// Changed on purpose: with `sessionid=A; sessionid=B`, Django's `parse_cookie` keeps the last
/// (B); we keep the first (A), the one browsers list first (longer path, then older).
#[test]
fn duplicate_cookies_first_wins_where_django_takes_the_last() {
    let (django, ours) = outcomes("duplicate_cookies_first_wins_where_django_takes_the_last");
    assert_eq!(
        django.reads,
        [json!("two")],
        "Django reads the last cookie's session"
    );
    assert_eq!(
        ours.reads,
        [json!("one")],
        "we read the first cookie's session"
    );
    assert!(
        django.set_cookie[0].starts_with("sessionid={existing2};"),
        "{django:?}"
    );
    assert!(
        ours.set_cookie[0].starts_with("sessionid={existing};"),
        "{ours:?}"
    );
    // Apart from which key, the headers are the same.
    assert_eq!(
        ours.set_cookie[0].replace("{existing}", "{key}"),
        django.set_cookie[0].replace("{existing2}", "{key}")
    );
    assert_eq!(ours.vary, django.vary);
}

/// Changed on purpose (a `process_response` quirk): with `SESSION_SAVE_EVERY_REQUEST`, an unknown
/// key and a view that never touches the session, Django creates a new empty record and sends its
/// cookie; we re-check emptiness after the lazy load, save nothing and delete the stale cookie.
#[test]
fn save_every_request_with_unknown_key_creates_nothing() {
    let (django, ours) = outcomes("save_every_request_with_unknown_key_creates_nothing");
    assert_eq!(django.set_cookie.len(), 1);
    assert!(
        django.set_cookie[0].starts_with("sessionid={new};"),
        "Django mints a key: {django:?}"
    );
    assert_eq!(
        ours.set_cookie,
        ["sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax"]
    );
    assert_eq!(ours.vary.as_deref(), Some("Cookie"));
    assert_eq!(django.vary.as_deref(), Some("Cookie"));
}

/// Django raises `SessionInterrupted` (a 400 once the handler converts it); we answer 400
/// without a `Set-Cookie`.
#[test]
fn session_deleted_meanwhile_is_a_400_without_cookie() {
    let (django, ours) = outcomes("session_deleted_meanwhile_is_a_400_without_cookie");
    assert_eq!(django.exception.as_deref(), Some("SessionInterrupted"));
    assert_eq!(ours.status, Some(400));
    assert!(ours.set_cookie.is_empty(), "{ours:?}");
    assert_eq!(ours.reads, django.reads);
}
