//! `sessionkit demo`: serves the demo site on the configured engine.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use sessionkit::Engine;

use crate::commands::settings;
use crate::demo;
use crate::failure::Failure;

/// Where the demo listens.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
}

/// Serves the demo until Ctrl-C. The first line on stdout is `listening on http://<addr>`, with
/// the real port when `--addr` asked for port 0.
pub fn run(args: &Args) -> Result<ExitCode, Failure> {
    let settings = settings()?;
    let engine = Engine::from_settings(&settings)?;
    let engine_name = engine.description().name.clone();
    let app = demo::router(engine).map_err(|error| Failure::Input(error.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Failure::Io {
            context: "starting the async runtime",
            source,
        })?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|source| Failure::Io {
                context: "binding the demo's address",
                source,
            })?;
        let local = listener.local_addr().map_err(|source| Failure::Io {
            context: "reading the bound address",
            source,
        })?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{local} (engine {engine_name})")
            .and_then(|()| stdout.flush())
            .map_err(|source| Failure::Io {
                context: "writing to standard output",
                source,
            })?;
        drop(stdout);
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                // If the signal cannot be listened for, serve until killed.
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            })
            .await
            .map_err(|source| Failure::Io {
                context: "serving the demo",
                source,
            })
    })?;
    Ok(ExitCode::SUCCESS)
}
