//! The sockets and wire of [`RedisBackend`](crate::RedisBackend)'s calls that do not block
//! (contract 0.4's readiness calls, see [`CacheBackend::start`](crate::CacheBackend::start)):
//! a pool of non-blocking connections to one Redis server (TCP or Unix socket), opened and
//! authenticated on the blocking path, and a sans-IO reader of RESP replies (the `redis`
//! crate's own parser, told apart "incomplete" from "garbage").
//!
//! The breaker, the error mapping and what each reply means stay in
//! [`crate::redis_backend`], shared with the blocking path.

use std::{
    io::{self, Read, Write},
    net::{TcpStream, ToSocketAddrs},
    os::{
        fd::{AsRawFd, RawFd},
        unix::net::UnixStream,
    },
    path::PathBuf,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use redis::{Client, ConnectionAddr, ProtocolVersion, RedisResult, Value};
use redis_protocol::resp2::types::OwnedFrame;

/// How much one non-blocking read takes at most (below glibc's 2 KiB threshold for
/// `rep stosb`, so zeroing it stays a few vector stores).
const READ_CHUNK: usize = 1024;

/// Where the non-blocking connections go.
#[derive(Debug, Clone)]
enum Address {
    Tcp(String, u16),
    Unix(PathBuf),
}

/// One non-blocking connection to the server, authenticated and on the URL's database.
#[derive(Debug)]
pub(crate) enum Socket {
    /// `redis://`.
    Tcp(TcpStream),
    /// `unix://`.
    Unix(UnixStream),
}

/// What [`Socket::read_available`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadState {
    /// Everything the socket had is read; more may come.
    Open,
    /// The server closed the connection.
    Closed,
}

impl Socket {
    /// The descriptor the host waits on.
    pub(crate) fn fd(&self) -> RawFd {
        match self {
            Self::Tcp(stream) => stream.as_raw_fd(),
            Self::Unix(stream) => stream.as_raw_fd(),
        }
    }

    /// Writes what the socket takes now of `bytes` (0 when its buffer is full).
    pub(crate) fn write_some(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = match self {
            Self::Tcp(stream) => stream.write(bytes),
            Self::Unix(stream) => stream.write(bytes),
        };
        match written {
            Ok(0) if !bytes.is_empty() => Err(io::Error::from(io::ErrorKind::WriteZero)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(0),
            other => other,
        }
    }

    /// Appends to `into` what the socket has now: reads until one read comes back short (the
    /// socket is drained then; if the reply is still incomplete the caller waits for more,
    /// and a new wait reports data that arrived meanwhile).
    pub(crate) fn read_available(&mut self, into: &mut Vec<u8>) -> io::Result<ReadState> {
        // Small: the buffer is zeroed on every call, and session replies are mostly shorter.
        let mut chunk = [0_u8; READ_CHUNK];
        loop {
            let read = match self {
                Self::Tcp(stream) => stream.read(&mut chunk),
                Self::Unix(stream) => stream.read(&mut chunk),
            };
            match read {
                Ok(0) => return Ok(ReadState::Closed),
                Ok(n) if n < READ_CHUNK => {
                    into.extend_from_slice(&chunk[..n]);
                    return Ok(ReadState::Open);
                }
                Ok(n) => into.extend_from_slice(&chunk[..n]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadState::Open);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match self {
            Self::Tcp(stream) => stream.set_nonblocking(nonblocking),
            Self::Unix(stream) => stream.set_nonblocking(nonblocking),
        }
    }

    fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Self::Tcp(stream) => {
                stream.set_read_timeout(Some(timeout))?;
                stream.set_write_timeout(Some(timeout))
            }
            Self::Unix(stream) => {
                stream.set_read_timeout(Some(timeout))?;
                stream.set_write_timeout(Some(timeout))
            }
        }
    }

    fn write_all_blocking(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Tcp(stream) => stream.write_all(bytes),
            Self::Unix(stream) => stream.write_all(bytes),
        }
    }

    fn read_blocking(&mut self, into: &mut Vec<u8>) -> io::Result<ReadState> {
        let mut chunk = [0_u8; 4096];
        let read = match self {
            Self::Tcp(stream) => stream.read(&mut chunk),
            Self::Unix(stream) => stream.read(&mut chunk),
        }?;
        if read == 0 {
            return Ok(ReadState::Closed);
        }
        into.extend_from_slice(&chunk[..read]);
        Ok(ReadState::Open)
    }
}

/// The first complete RESP reply in `input`, or `None` while it is incomplete.
///
/// # Errors
///
/// The parser's error for input that is not RESP (a server out of step, or not Redis).
pub(crate) fn parse_reply(input: &[u8]) -> RedisResult<Option<Value>> {
    // Every whole reply ends with CRLF: a big value arriving in many reads is not parsed
    // again from its start after each of them.
    if !input.ends_with(b"\r\n") {
        return Ok(None);
    }
    match redis_protocol::resp2::decode::decode(input) {
        Ok(None) => Ok(None),
        Ok(Some((frame, _))) => match value_of(frame) {
            Some(value) => Ok(Some(value)),
            None => parse_replies(input, 1).map(|replies| replies.and_then(|mut v| v.pop())),
        },
        // Not RESP: the redis crate's parser says how, as the blocking path would.
        Err(_) => parse_replies(input, 1).map(|replies| replies.and_then(|mut v| v.pop())),
    }
}

/// The redis crate's value of a decoded frame, as its own parser reads the same bytes; `None`
/// for what only that parser reads exactly (an error reply, whose kind it classifies; a
/// simple string that is not UTF-8), which is then parsed by it.
fn value_of(frame: OwnedFrame) -> Option<Value> {
    Some(match frame {
        OwnedFrame::SimpleString(text) if text == b"OK" => Value::Okay,
        OwnedFrame::SimpleString(text) => Value::SimpleString(String::from_utf8(text).ok()?),
        OwnedFrame::Error(_) => return None,
        OwnedFrame::Integer(number) => Value::Int(number),
        OwnedFrame::BulkString(bytes) => Value::BulkString(bytes),
        OwnedFrame::Array(frames) => {
            Value::Array(frames.into_iter().map(value_of).collect::<Option<_>>()?)
        }
        OwnedFrame::Null => Value::Nil,
    })
}

/// The first `count` complete RESP replies in `input`, or `None` while they are incomplete.
fn parse_replies(input: &[u8], count: usize) -> RedisResult<Option<Vec<Value>>> {
    let mut feed = Feed {
        input,
        exhausted: false,
    };
    let mut parser = redis::Parser::new();
    let mut replies = Vec::with_capacity(count);
    while replies.len() < count {
        match parser.parse_value(&mut feed) {
            Ok(value) => replies.push(value),
            // The feed ran dry before the reply ended: wait for more.
            Err(error) if feed.exhausted && error.is_io_error() => return Ok(None),
            Err(error) => return Err(error),
        }
    }
    Ok(Some(replies))
}

/// The bytes read so far, as the parser reads them: `WouldBlock` at their end (not end of
/// file), so an incomplete reply is told apart from a malformed one.
struct Feed<'a> {
    input: &'a [u8],
    exhausted: bool,
}

impl Read for Feed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() || buf.is_empty() {
            self.exhausted = true;
            return Err(io::Error::from(io::ErrorKind::WouldBlock));
        }
        let n = self.input.len().min(buf.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

/// The non-blocking connections of one server: idle ones, how many are open, and how many
/// calls found none idle since the blocking path last opened one.
#[derive(Debug)]
pub(crate) struct ReadyPool {
    address: Address,
    /// `AUTH` and `SELECT` as the URL says, pipelined.
    handshake: Vec<u8>,
    handshake_replies: usize,
    max_connections: usize,
    connect_timeout: Duration,
    idle: Mutex<Vec<Socket>>,
    /// Sockets open: idle or held by a call.
    open: AtomicUsize,
    /// Calls answered `Blocking` for want of an idle socket, not yet made up for.
    wanted: AtomicUsize,
}

impl ReadyPool {
    /// The pool for the server `client` names, `SELECT`ing `db`; `None` where calls cannot
    /// be run this way (TLS, RESP3).
    pub(crate) fn for_client(
        client: &Client,
        db: i64,
        max_connections: usize,
        connect_timeout: Duration,
    ) -> Option<Self> {
        let info = client.get_connection_info();
        let address = match info.addr() {
            ConnectionAddr::Tcp(host, port) => Address::Tcp(host.clone(), *port),
            ConnectionAddr::Unix(path) => Address::Unix(path.clone()),
            _ => return None,
        };
        let settings = info.redis_settings();
        if settings.protocol() != ProtocolVersion::RESP2 {
            return None;
        }
        let mut handshake = Vec::new();
        let mut handshake_replies = 0;
        if let Some(password) = settings.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(username) = settings.username() {
                auth.arg(username);
            }
            auth.arg(password);
            handshake.extend_from_slice(&auth.get_packed_command());
            handshake_replies += 1;
        }
        if db != 0 {
            handshake.extend_from_slice(&redis::cmd("SELECT").arg(db).get_packed_command());
            handshake_replies += 1;
        }
        Some(Self {
            address,
            handshake,
            handshake_replies,
            max_connections,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
            wanted: AtomicUsize::new(0),
        })
    }

    /// An idle socket, or `None` (counted as wanted, for [`top_up`](Self::top_up)).
    pub(crate) fn take(&self) -> Option<Socket> {
        let socket = self.idle.lock().pop();
        if socket.is_none() {
            self.wanted.fetch_add(1, Ordering::Relaxed);
        }
        socket
    }

    /// Gives back a socket in step with the server (its reply read whole).
    pub(crate) fn give_back(&self, socket: Socket) {
        self.idle.lock().push(socket);
    }

    /// Closes a socket that cannot be reused.
    pub(crate) fn discard(&self, socket: Socket) {
        drop(socket);
        self.forget(1);
    }

    /// Closes the idle sockets (after a connection failed: they most likely point at the same
    /// dead server, as the blocking pool assumes).
    pub(crate) fn discard_idle(&self) {
        let dropped = std::mem::take(&mut *self.idle.lock());
        self.forget(dropped.len());
    }

    fn forget(&self, closed: usize) {
        let _ = self
            .open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |open| {
                Some(open.saturating_sub(closed))
            });
    }

    /// How many sockets are idle (tests).
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.lock().len()
    }

    /// On the blocking path, after the server answered: opens one socket if a call lately
    /// found none idle and fewer than `max_connections` are open. A failure only means no
    /// socket is added (the next miss asks again).
    pub(crate) fn top_up(&self) {
        let claimed = self
            .wanted
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |wanted| {
                wanted.checked_sub(1)
            })
            .is_ok();
        if !claimed {
            return;
        }
        let reserved = self
            .open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |open| {
                (open < self.max_connections).then_some(open + 1)
            })
            .is_ok();
        if !reserved {
            // The pool is full: misses are calls beyond it, which the blocking path serves.
            self.wanted.store(0, Ordering::Relaxed);
            return;
        }
        match self.connect() {
            Ok(socket) => self.give_back(socket),
            Err(error) => {
                self.forget(1);
                tracing::debug!(
                    target: crate::LOG_TARGET,
                    %error,
                    "could not open a non-blocking Redis connection; calls keep running the \
                     blocking way"
                );
            }
        }
    }

    /// Opens, authenticates and `SELECT`s one socket within the connect timeout, then makes it
    /// non-blocking.
    fn connect(&self) -> RedisResult<Socket> {
        let started = Instant::now();
        let mut socket = match &self.address {
            Address::Tcp(host, port) => {
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for the host");
                let mut connected = None;
                for address in (host.as_str(), *port).to_socket_addrs()? {
                    match TcpStream::connect_timeout(&address, self.connect_timeout) {
                        Ok(stream) => {
                            connected = Some(stream);
                            break;
                        }
                        Err(error) => last = error,
                    }
                }
                let stream = connected.ok_or(last)?;
                stream.set_nodelay(true)?;
                Socket::Tcp(stream)
            }
            Address::Unix(path) => Socket::Unix(UnixStream::connect(path)?),
        };
        if self.handshake_replies > 0 {
            let left = self
                .connect_timeout
                .checked_sub(started.elapsed())
                .filter(|left| !left.is_zero())
                .ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))?;
            socket.set_timeouts(left)?;
            socket.write_all_blocking(&self.handshake)?;
            let mut input = Vec::new();
            let replies = loop {
                if started.elapsed() >= self.connect_timeout {
                    return Err(io::Error::from(io::ErrorKind::TimedOut).into());
                }
                if socket.read_blocking(&mut input)? == ReadState::Closed {
                    return Err(io::Error::from(io::ErrorKind::ConnectionAborted).into());
                }
                if let Some(replies) = parse_replies(&input, self.handshake_replies)? {
                    break replies;
                }
            };
            for reply in replies {
                reply.extract_error()?;
            }
        }
        socket.set_nonblocking(true)?;
        Ok(socket)
    }
}

/// A parse of a reply split at every byte gives nothing until the last byte, then the reply.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incomplete_reply_is_none_until_its_last_byte() {
        let reply = b"*2\r\n$5\r\nhello\r\n:-1\r\n";
        for cut in 0..reply.len() {
            assert_eq!(parse_reply(&reply[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(
            parse_reply(reply).unwrap(),
            Some(Value::Array(vec![
                Value::BulkString(b"hello".to_vec()),
                Value::Int(-1)
            ]))
        );
    }

    #[test]
    fn replies_read_as_the_redis_crates_own_parser_reads_them() {
        let replies: [&[u8]; 14] = [
            b"+OK\r\n",
            b"+QUEUED\r\n",
            b"-NOSCRIPT No matching script. Please use EVAL.\r\n",
            b"-ERR unknown command\r\n",
            b":0\r\n",
            b":-42\r\n",
            b"$0\r\n\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"$5\r\n\x80\x04\x95\r\n\r\n",
            b"*2\r\n$3\r\nabc\r\n:86399000\r\n",
            b"*2\r\n$-1\r\n:-2\r\n",
            b"*2\r\n*1\r\n+OK\r\n-WRONGTYPE no\r\n",
        ];
        for reply in replies {
            let expected = parse_replies(reply, 1).unwrap().and_then(|mut v| v.pop());
            assert_eq!(parse_reply(reply).unwrap(), expected, "{reply:?}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_an_incomplete_reply() {
        assert!(parse_reply(b"?what\r\n").is_err());
        assert!(parse_reply(b"$abc\r\n").is_err());
    }

    #[test]
    fn an_error_reply_parses_as_a_server_error() {
        let value = parse_reply(b"-NOSCRIPT No matching script\r\n")
            .unwrap()
            .unwrap();
        let error = value.extract_error().unwrap_err();
        assert_eq!(error.code(), Some("NOSCRIPT"));
    }

    #[test]
    fn several_replies_parse_in_order() {
        let replies = parse_replies(b"+OK\r\n+OK\r\n", 2).unwrap().unwrap();
        assert_eq!(replies, vec![Value::Okay, Value::Okay]);
        assert_eq!(parse_replies(b"+OK\r\n+O", 2).unwrap(), None);
    }
}
