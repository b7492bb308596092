//! `sessionkit encode` / `decode`: Django's `signing.dumps` / `loads` for session data.

use std::process::ExitCode;

use sessionkit_codec::{SESSION_STORE_SALT, SessionCodec};

use crate::{
    commands::{read_stdin, settings},
    failure::Failure,
};

/// Arguments of `sessionkit encode`.
#[derive(Debug, clap::Args)]
pub(crate) struct EncodeArgs {
    /// The signing salt (Django's server-side engines use the default).
    #[arg(long, default_value = SESSION_STORE_SALT)]
    pub salt: String,
    /// Sign as of this Unix time instead of now (for reproducible output).
    #[arg(long)]
    pub timestamp: Option<i64>,
}

/// Arguments of `sessionkit decode`.
#[derive(Debug, clap::Args)]
pub(crate) struct DecodeArgs {
    /// The signing salt (Django's server-side engines use the default).
    #[arg(long, default_value = SESSION_STORE_SALT)]
    pub salt: String,
    /// Refuse data signed more than this many seconds ago (signed cookies use
    /// SESSION_COOKIE_AGE).
    #[arg(long)]
    pub max_age: Option<i64>,
    /// Judge `--max-age` as of this Unix time instead of now.
    #[arg(long)]
    pub now: Option<i64>,
}

/// Reads a JSON object on stdin and prints its `session_data`.
pub(crate) fn encode(args: &EncodeArgs) -> Result<ExitCode, Failure> {
    let input = read_stdin()?;
    let value: serde_json::Value = serde_json::from_str(&input)
        .map_err(|error| Failure::Input(format!("standard input is not JSON: {error}")))?;
    let codec = codec_for(&args.salt)?;
    let now = args
        .timestamp
        .unwrap_or_else(|| chrono::Utc::now().timestamp());
    let encoded = codec
        .encode_value(&value, now)
        .map_err(|error| Failure::Input(format!("cannot encode: {error}")))?;
    println!("{}", encoded.session_data);
    Ok(ExitCode::SUCCESS)
}

/// Reads `session_data` on stdin and prints the JSON it carries.
pub(crate) fn decode(args: &DecodeArgs) -> Result<ExitCode, Failure> {
    let input = read_stdin()?;
    let codec = codec_for(&args.salt)?;
    let now = args.now.unwrap_or_else(|| chrono::Utc::now().timestamp());
    let value = codec.decode_value(input.trim(), args.max_age, now)?;
    println!("{value}");
    Ok(ExitCode::SUCCESS)
}

/// The codec for `salt` with the configured `SECRET_KEY` and `SECRET_KEY_FALLBACKS`.
fn codec_for(salt: &str) -> Result<SessionCodec, Failure> {
    let settings = settings()?;
    let fallbacks: Vec<Vec<u8>> = settings
        .secret_key_fallbacks
        .iter()
        .map(|key| key.as_bytes().to_vec())
        .collect();
    Ok(SessionCodec::new(
        salt,
        settings.secret_key.as_bytes(),
        &fallbacks,
    ))
}
