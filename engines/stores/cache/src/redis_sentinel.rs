//! Sentinel-managed Redis for [`RedisBackend`](crate::RedisBackend): writes and reads go to the
//! master the Sentinels name, asked again for every new connection, so the backend follows a
//! failover without a restart.
//!
//! The master is found as the Sentinel client specification says: each Sentinel in turn is
//! asked `SENTINEL GET-MASTER-ADDR-BY-NAME <service>` until one names it; the backend connects
//! there and checks with `ROLE` that the node is a master (a Sentinel may name an old master for
//! a moment during a failover). The redis crate's own synchronous Sentinel client is not used
//! because it opens its connections to Sentinels and to the master without any timeout (a hung
//! Sentinel would block a request forever); here every connection has the backend's connect
//! timeout and every reply its socket timeout.
//!
//! After a failover the old master's connections fail (closed, or `READONLY` once it comes back
//! as a replica): the backend drops them with the idle ones and retries the call once on a new
//! connection, which asks the Sentinels again.

use redis::{Client, Connection, Value};

use crate::{
    redis_backend::{RedisOptions, server_client},
    redis_topology::SentinelLocation,
};

/// The Sentinels of one service, and how to reach the master they name.
pub(crate) struct SentinelTarget {
    location: SentinelLocation,
    /// One client per Sentinel, in the order they are asked.
    sentinels: Vec<Client>,
}

/// The master a Sentinel named: a client for it and the database to select.
pub(crate) struct Master {
    pub(crate) client: Client,
    pub(crate) db: i64,
}

impl SentinelTarget {
    /// Clients for the Sentinels of `location`. Does not connect.
    pub(crate) fn open(location: &SentinelLocation) -> Result<Self, String> {
        let sentinels = location
            .sentinels()
            .iter()
            .map(|(host, port)| server_client(&location.sentinel_url(host, *port)).map(|(c, _)| c))
            .collect::<Result<Vec<_>, _>>()?;
        // The master's URL must parse too (its credentials and query); checked on a stand-in
        // address so a bad one is a configuration error, not a failure of every call.
        server_client(&location.master_url("127.0.0.1", 6379))?;
        Ok(Self {
            location: location.clone(),
            sentinels,
        })
    }

    /// Asks each Sentinel in turn for the master's address and returns a client for the first
    /// one named.
    ///
    /// # Errors
    ///
    /// What each Sentinel answered or why it could not be asked (no password, no key).
    pub(crate) fn resolve_master(&self, options: &RedisOptions) -> Result<Master, String> {
        let mut reasons = Vec::new();
        for (client, (host, port)) in self.sentinels.iter().zip(self.location.sentinels()) {
            match ask(client, self.location.service(), options) {
                Ok(Some((master_host, master_port))) => {
                    let url = self.location.master_url(&master_host, master_port);
                    let (client, db) = server_client(&url)?;
                    return Ok(Master { client, db });
                }
                Ok(None) => reasons.push(format!(
                    "{host}:{port} does not know '{}'",
                    self.location.service()
                )),
                Err(error) => reasons.push(format!("{host}:{port}: {error}")),
            }
        }
        Err(reasons.join("; "))
    }
}

/// `SENTINEL GET-MASTER-ADDR-BY-NAME service` on one Sentinel, within the timeouts.
fn ask(
    client: &Client,
    service: &str,
    options: &RedisOptions,
) -> redis::RedisResult<Option<(String, u16)>> {
    let mut connection = client.get_connection_with_timeout(options.connect_timeout)?;
    connection.set_read_timeout(Some(options.socket_timeout))?;
    connection.set_write_timeout(Some(options.socket_timeout))?;
    let address: Option<(String, u16)> = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(service)
        .query(&mut connection)?;
    Ok(address)
}

/// Whether the server on `connection` says it is a master (`ROLE`).
pub(crate) fn is_master(connection: &mut Connection) -> redis::RedisResult<bool> {
    let role: Value = redis::cmd("ROLE").query(connection)?;
    Ok(match role {
        Value::Array(parts) => {
            matches!(
                parts.first(),
                Some(Value::BulkString(name)) if name.as_slice() == b"master"
            ) || matches!(
                parts.first(),
                Some(Value::SimpleString(name)) if name == "master"
            )
        }
        _ => false,
    })
}
