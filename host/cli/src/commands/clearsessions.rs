//! `sessionkit clearsessions`: Django's management command of the same name.

use std::{
    io::IsTerminal,
    process::ExitCode,
    sync::mpsc,
    time::{Duration, Instant},
};

use sessionkit::{Capabilities, Engine};

use crate::{commands::settings, failure::Failure};

/// Removes expired sessions and prints how many went. An engine that expires sessions by itself
/// has nothing to clear: it says so and succeeds. Long runs report their progress on stderr.
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
    let (done_tx, done_rx) = mpsc::channel();
    let worker = engine.clone();
    std::thread::spawn(move || {
        // The receiver outlives the worker unless main returned early; nothing to do then.
        let _ = done_tx.send(worker.clear_expired());
    });
    let started = Instant::now();
    let show_progress = std::io::stderr().is_terminal();
    let removed = loop {
        match done_rx.recv_timeout(Duration::from_secs(1)) {
            Ok(result) => break result?,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let seconds = started.elapsed().as_secs();
                if show_progress {
                    eprint!("\rclearing expired sessions from '{name}'… {seconds}s");
                } else if seconds.is_multiple_of(10) {
                    eprintln!("clearing expired sessions from '{name}'… {seconds}s");
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Failure::Input(
                    "clear_expired worker stopped unexpectedly".to_owned(),
                ));
            }
        }
    };
    if show_progress && started.elapsed() >= Duration::from_secs(1) {
        eprintln!();
    }
    println!("{removed}");
    Ok(ExitCode::SUCCESS)
}
