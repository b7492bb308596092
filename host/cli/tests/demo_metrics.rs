//! `sessionkit demo` serves `/metrics`: the host's per-operation engine counters and latency
//! histograms in Prometheus text, without a session of its own.

mod demo_support;

use demo_support::{Demo, Visitor, missing_engine};

/// The value of the sample line that starts with `series` (name and labels), if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[test]
fn metrics_count_and_time_the_engine_calls_of_requests() {
    let engine = "db";
    if let Some(reason) = missing_engine(engine) {
        println!("skipped {engine}: {reason}");
        return;
    }
    let demo = Demo::start(engine);
    let mut visitor = Visitor::new(&demo);
    // The comment page answers 200 and stores the new session.
    assert_eq!(
        visitor.post("/comment", &[("comment", "hello")]).status,
        200
    );
    for _ in 0..3 {
        assert_eq!(visitor.get("/").status, 200);
    }

    let scrape = Visitor::new(&demo).get("/metrics");
    assert_eq!(scrape.status, 200);
    assert!(
        scrape
            .header("content-type")
            .is_some_and(|value| value.starts_with("text/plain")),
        "{:?}",
        scrape.header("content-type")
    );
    assert!(
        scrape.header_all("set-cookie").is_empty(),
        "a scrape made a session"
    );
    let text = &scrape.body;
    let created = sample(
        text,
        r#"sessionkit_engine_operations_total{engine="db",operation="create",outcome="ok"}"#,
    );
    assert_eq!(created, Some(1.0), "{text}");
    let loads = sample(
        text,
        r#"sessionkit_engine_operations_total{engine="db",operation="load",outcome="ok"}"#,
    )
    .unwrap_or_default();
    assert!(
        loads >= 3.0,
        "three page views loaded {loads} times:\n{text}"
    );
    let timed = sample(
        text,
        r#"sessionkit_engine_operation_seconds_count{engine="db",operation="load"}"#,
    );
    assert_eq!(timed, Some(loads), "{text}");
    assert!(
        text.contains(
            r#"sessionkit_engine_operation_seconds_bucket{engine="db",operation="load",le="0.005"}"#
        ),
        "{text}"
    );
}
