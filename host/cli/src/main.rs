//! `sessionkit`: the command line of the sessionkit host.
//!
//! Every command reads Django-named settings from `sessionkit.toml` (or the file in
//! `SESSIONKIT_SETTINGS`) and the environment, as the host library does.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod demo;
mod failure;

/// Django's session framework as a Rust pluggable storage-engine SDK.
#[derive(Debug, Parser)]
#[command(name = "sessionkit", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List every engine library found: name, version, salt, capabilities, file.
    Engines,
    /// Run the conformance suite against an engine (a name or a library path).
    Conformance(commands::conformance::Args),
    /// Sign a JSON object from stdin into Django's `session_data` form.
    Encode(commands::codec::EncodeArgs),
    /// Verify and decode `session_data` from stdin into its JSON object.
    Decode(commands::codec::DecodeArgs),
    /// Create, show or delete one session in the configured engine.
    #[command(subcommand)]
    Session(commands::session::Command),
    /// Remove expired sessions from the configured engine (Django's `clearsessions`).
    Clearsessions,
    /// Serve the demo site (comments, login, logout) on the configured engine.
    Demo(commands::demo::Args),
    /// Create a new engine crate from the plugin template, outside this repository.
    NewEngine(commands::new_engine::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The conformance suite provokes warnings on purpose (tampered data, bad keys): show only
    // errors there unless SESSIONKIT_LOG asks for more.
    let default_level = match cli.command {
        Command::Conformance(_) => "error",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SESSIONKIT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let outcome = match cli.command {
        Command::Engines => commands::engines::run(),
        Command::Conformance(args) => commands::conformance::run(&args),
        Command::Encode(args) => commands::codec::encode(&args),
        Command::Decode(args) => commands::codec::decode(&args),
        Command::Session(command) => commands::session::run(&command),
        Command::Clearsessions => commands::clearsessions::run(),
        Command::Demo(args) => commands::demo::run(&args),
        Command::NewEngine(args) => commands::new_engine::run(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("sessionkit: {failure}");
            failure.exit_code()
        }
    }
}
