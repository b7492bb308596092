//! `sessionkit session …`: one session of the configured engine, from the shell.

use std::process::ExitCode;

use sessionkit::{Engine, Expiry, KeyFormat, SessionRecord};
use sessionkit_codec::time::{isoformat, to_datetime};

use crate::{commands::settings, failure::Failure};

/// The `session` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create a session and print only its new key.
    Create {
        /// The session's contents, a JSON object.
        #[arg(long)]
        data: Option<String>,
        /// Expire after this many seconds of inactivity (Django's `set_expiry(seconds)`).
        #[arg(long, allow_negative_numbers = true)]
        expiry: Option<i64>,
    },
    /// Print a live session as one JSON object; exit 1 when there is none.
    Show {
        /// The session key.
        key: String,
    },
    /// List the live sessions of an account (engines with an account index).
    List {
        /// The account id (`_auth_user_id`).
        #[arg(long)]
        account: i64,
    },
    /// Delete one session by key, or every session of an account.
    Delete {
        /// The session key.
        #[arg(required_unless_present = "account", conflicts_with = "account")]
        key: Option<String>,
        /// Delete every session of this account id instead.
        #[arg(long)]
        account: Option<i64>,
        /// With --account: keep this session ("log out my other devices").
        #[arg(long, requires = "account")]
        except: Option<String>,
    },
}

/// Runs one `session` subcommand against the configured engine.
pub(crate) fn run(command: &Command) -> Result<ExitCode, Failure> {
    let engine = Engine::from_settings(&settings()?)?;
    match command {
        Command::Create { data, expiry } => create(&engine, data.as_deref(), *expiry),
        Command::Show { key } => show(&engine, key),
        Command::List { account } => list(&engine, *account),
        Command::Delete { key: Some(key), .. } => {
            engine.session(Some(key)).delete()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Delete {
            key: None,
            account: Some(account),
            except,
        } => {
            let removed = engine.delete_sessions_of_account(*account, except.as_deref())?;
            println!("{removed}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Delete {
            key: None,
            account: None,
            ..
        } => Err(Failure::Input(
            "session delete needs a KEY or --account ID".to_owned(),
        )),
    }
}

fn create(engine: &Engine, data: Option<&str>, expiry: Option<i64>) -> Result<ExitCode, Failure> {
    let entries = match data {
        None => sessionkit::SessionMap::new(),
        Some(text) => match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => return Err(Failure::Input("--data must be a JSON object".to_owned())),
            Err(error) => return Err(Failure::Input(format!("--data is not JSON: {error}"))),
        },
    };
    let mut session = engine.session(None);
    session.update(entries)?;
    if let Some(seconds) = expiry {
        session.set_expiry(Expiry::Seconds(seconds))?;
    }
    session.create()?;
    let key = session
        .session_key()
        .ok_or_else(|| Failure::Input("the engine returned no session key".to_owned()))?;
    println!("{key}");
    Ok(ExitCode::SUCCESS)
}

fn show(engine: &Engine, key: &str) -> Result<ExitCode, Failure> {
    match engine.store().load(key)? {
        Some(record) if verifies(engine, key)? => {
            println!("{}", describe(engine, &record));
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!("sessionkit: no live session with that key");
            Ok(ExitCode::from(1))
        }
    }
}

/// Whether `key` is a session a request would load. For a signed-payload engine the store only
/// reads the signing time; the signature (and max age) is the host's to check, and a cookie that
/// fails it is no session (Django's load starts a new, empty one). Server-side keys: always.
fn verifies(engine: &Engine, key: &str) -> Result<bool, Failure> {
    if engine.description().key_format != KeyFormat::SignedPayload {
        return Ok(true);
    }
    let mut session = engine.session(Some(key));
    session.load()?;
    // A rejected cookie leaves the session modified (Django's `create()` on a failed load).
    Ok(session.session_key().is_some() && !session.modified())
}

fn list(engine: &Engine, account: i64) -> Result<ExitCode, Failure> {
    for record in engine.sessions_of_account(account)? {
        println!("{}", describe(engine, &record));
    }
    Ok(ExitCode::SUCCESS)
}

/// `{"session_key": …, "expire_date": ISO-8601 UTC, "data": {…}}` for one record.
fn describe(engine: &Engine, record: &SessionRecord) -> serde_json::Value {
    serde_json::json!({
        "session_key": record.session_key.as_str(),
        "expire_date": isoformat(to_datetime(record.expire_date)),
        "data": engine.decode(record.session_data.as_str()),
    })
}
