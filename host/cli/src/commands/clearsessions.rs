//! `sessionkit clearsessions`: Django's management command of the same name.
//!
//! On a terminal, stderr shows a progress bar while it runs: rows removed of the engine's count,
//! with rate and time left, when the engine reports its progress (contract 0.3; the SQL engines
//! do), else a spinner with the time spent. Without a terminal nothing is drawn. Either way,
//! stdout gets the count of removed sessions alone (as before, for scripts), and stderr a final
//! line saying what was removed and how long it took.

use std::{
    io::IsTerminal,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sessionkit::{Capabilities, Engine};

use crate::{commands::settings, failure::Failure};

/// Removes expired sessions and prints how many went. An engine that expires sessions by itself
/// has nothing to clear: it says so and succeeds.
pub(crate) fn run() -> Result<ExitCode, Failure> {
    let engine = Engine::from_settings(&settings()?)?;
    let name = engine.description().name.clone();
    if !engine.capabilities().contains(Capabilities::CLEAR_EXPIRED) {
        if engine
            .capabilities()
            .contains(Capabilities::EXPIRES_BY_ITSELF)
        {
            println!("engine '{name}' expires sessions by itself; nothing to clear");
            return Ok(ExitCode::SUCCESS);
        }
        return Err(Failure::Input(format!(
            "session engine '{name}' doesn't support clearing expired sessions"
        )));
    }
    let started = Instant::now();
    let removed = if std::io::stderr().is_terminal() {
        clear_with_bar(&engine, &name)?
    } else {
        engine.clear_expired()?
    };
    let took = started.elapsed();
    println!("{removed}");
    eprintln!("{}", summary(&name, removed, took));
    Ok(ExitCode::SUCCESS)
}

/// Clears with a bar on stderr: a spinner until the engine reports a count, then the bar.
fn clear_with_bar(engine: &Engine, name: &str) -> Result<u64, Failure> {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(spinner_style());
    bar.set_message(format!("clearing expired sessions from '{name}'"));
    bar.enable_steady_tick(Duration::from_millis(100));
    let shown = bar.clone();
    let removed = engine.clear_expired_with_progress(Arc::new(move |_operation, done, total| {
        if shown.length().is_none() {
            shown.set_style(bar_style());
        }
        // Sessions may expire during the run: the bar grows rather than overflows.
        shown.set_length(total.max(done));
        shown.set_position(done);
    }));
    bar.finish_and_clear();
    Ok(removed?)
}

/// What stderr shows until the engine reports a count (or throughout, for an engine that
/// reports none).
const SPINNER_TEMPLATE: &str = "{spinner} {msg}… {elapsed}";

/// What stderr shows once the engine reported its count.
const BAR_TEMPLATE: &str = "{msg} [{bar:30}] {human_pos}/{human_len} rows ({per_sec}, {eta} left)";

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template(SPINNER_TEMPLATE)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(BAR_TEMPLATE)
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// The closing line: how many sessions went, from which engine, in how long.
fn summary(name: &str, removed: u64, took: Duration) -> String {
    let seconds = took.as_secs_f64();
    let noun = if removed == 1 { "session" } else { "sessions" };
    let mut line = format!("removed {removed} expired {noun} from '{name}' in {seconds:.2} s");
    if removed > 0 && seconds >= 0.01 {
        line.push_str(&format!(" ({:.0} rows/s)", removed as f64 / seconds));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_the_count_the_engine_and_the_time() {
        assert_eq!(
            summary("db", 1, Duration::from_millis(5)),
            "removed 1 expired session from 'db' in 0.01 s"
        );
        assert_eq!(
            summary("db", 3000, Duration::from_secs(2)),
            "removed 3000 expired sessions from 'db' in 2.00 s (1500 rows/s)"
        );
        assert_eq!(
            summary("file", 0, Duration::from_secs(1)),
            "removed 0 expired sessions from 'file' in 1.00 s"
        );
    }

    #[test]
    fn the_bar_templates_parse() {
        assert!(ProgressStyle::with_template(SPINNER_TEMPLATE).is_ok());
        assert!(ProgressStyle::with_template(BAR_TEMPLATE).is_ok());
    }
}
