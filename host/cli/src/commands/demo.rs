//! `sessionkit demo`: serves the demo site on the configured engine.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use sessionkit::Engine;

use crate::commands::settings;
use crate::demo;
use crate::demo::serve::{Limits, serve};
use crate::failure::Failure;

/// Where the demo listens, and what one client may hold of it.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
    /// Seconds a client has to send a request's headers before the connection is closed.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body before the request fails and the
    /// connection is closed.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout: u64,
    /// Connections served at once; more wait until one closes.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub max_connections: u64,
}

impl Args {
    /// The serving limits these arguments ask for.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(self.header_timeout),
            body_timeout: Duration::from_secs(self.body_timeout),
            // At most 65,536 by the argument's range, so it fits any usize.
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        }
    }
}

/// Serves the demo until Ctrl-C. The first line on stdout is `listening on http://<addr>`, with
/// the real port when `--addr` asked for port 0.
pub(crate) fn run(args: &Args) -> Result<ExitCode, Failure> {
    let settings = settings()?;
    // Before the engine opens: the host registers its metric handles when it opens one.
    let metrics = demo::metrics::install()?;
    let engine = Engine::from_settings(&settings)?;
    let engine_name = engine.description().name.clone();
    let app = demo::router(engine, metrics).map_err(|error| Failure::Input(error.to_string()))?;
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
        serve(listener, app, args.limits(), async {
            // If the signal cannot be listened for, serve until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await;
        Ok::<(), Failure>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
