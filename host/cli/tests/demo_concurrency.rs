//! `sessionkit demo` over loopback HTTP: 32 concurrent requests of one visitor, each adding its
//! own note, keep all 32; 32 concurrent visits counted with an atomic update end at 32 more. On
//! every engine that has a conditional save (signed cookies have no server record to merge in,
//! so they are left out).

mod demo_support;

use std::{sync::Barrier, thread};

use demo_support::{Demo, Visitor, form, http, missing_engine};

/// Concurrent requests per run.
const REQUESTS: usize = 32;

/// The engines that merge concurrent writes.
const MERGING_ENGINES: [&str; 5] = ["db", "account_db", "cache", "file", "cached_db"];

/// Runs `REQUESTS` concurrent requests with the visitor's cookie, all started together;
/// returns the bodies (each must be a 200).
fn concurrently(
    demo: &Demo,
    cookie: &str,
    request: impl Fn(usize) -> (String, Vec<u8>) + Sync,
) -> Vec<String> {
    let start = Barrier::new(REQUESTS);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..REQUESTS)
            .map(|n| {
                let (start, request) = (&start, &request);
                scope.spawn(move || {
                    let (path, body) = request(n);
                    start.wait();
                    let response = http(
                        demo.addr,
                        "POST",
                        &path,
                        &[("Cookie", cookie)],
                        Some(("application/x-www-form-urlencoded", &body)),
                    );
                    assert_eq!(response.status, 200, "{path}: {}", response.body);
                    response.body
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a request thread"))
            .collect()
    })
}

#[test]
fn concurrent_requests_to_the_demo_keep_every_note_and_every_visit() {
    for engine in MERGING_ENGINES {
        if let Some(reason) = missing_engine(engine) {
            println!("skipped {engine}: {reason}");
            continue;
        }
        let demo = Demo::start(engine);
        let mut visitor = Visitor::new(&demo);
        let first = visitor.post("/visits", &[]);
        assert_eq!(first.status, 200, "{engine}: {}", first.body);
        let key = visitor
            .session_key()
            .expect("the first visit sets the cookie");
        let cookie = format!("sessionid={key}");

        concurrently(&demo, &cookie, |n| {
            let name = format!("n{n}");
            let note = format!("note {n}");
            (
                "/notes".to_owned(),
                form(&[("name", &name), ("note", &note)]),
            )
        });
        let page = visitor.get("/");
        let kept = (0..REQUESTS)
            .filter(|n| page.body.contains(&format!("note_n{n}")))
            .count();
        println!("{engine}: {kept} of {REQUESTS} concurrent notes kept over HTTP");
        assert_eq!(kept, REQUESTS, "{engine}: notes were lost\n{}", page.body);

        let counts = concurrently(&demo, &cookie, |_| ("/visits".to_owned(), Vec::new()));
        let mut counts: Vec<u64> = counts
            .iter()
            .map(|body| body.trim().parse().expect("a count"))
            .collect();
        counts.sort_unstable();
        let last = visitor.post("/visits", &[]);
        println!(
            "{engine}: {REQUESTS} concurrent visits, then one more → {}",
            last.body.trim()
        );
        assert_eq!(
            last.body.trim(),
            (REQUESTS + 2).to_string(),
            "{engine}: visits were lost"
        );
        assert_eq!(
            counts,
            (2..=REQUESTS as u64 + 1).collect::<Vec<_>>(),
            "{engine}: each concurrent visit saw its own count"
        );
    }
}
