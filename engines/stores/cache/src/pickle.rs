//! Pickled session dicts, as Django's cache backends store them (`pickle.dumps(session,
//! pickle.HIGHEST_PROTOCOL)`), read safely and written so Python reads them back.
//!
//! The reader is a small pickle machine for the plain types a session holds — dict, list,
//! tuple (read as a list), str, int (at most 64 bits), float (finite), bool and None — in the
//! opcodes Python 3 writes for them with protocols 2 to 5. Everything else is refused before
//! anything happens: globals (`GLOBAL`, `STACK_GLOBAL`), calls (`REDUCE`, `BUILD`, `INST`,
//! `OBJ`, `NEWOBJ`), persistent ids, extension codes, bytes, sets and the text opcodes of
//! protocols 0 and 1. Nothing is executed or imported: an opcode is data or an error.
//!
//! Memory stays proportional to the input: a length field is checked against the bytes that
//! remain before anything is allocated, each opcode adds at most one value, and turning the
//! result into JSON (where a value the pickle references twice is written twice) stops once it
//! has produced [`OUTPUT_BUDGET_FACTOR`] times the input (plus a small constant) or nested
//! deeper than [`MAX_DEPTH`] (a pickle that contains itself is refused the same way).
//!
//! The writer produces what Python 3.11's `pickle.dumps(dict, 5)` produces for a dict read
//! from JSON (byte for byte while the body is under 64 KiB, one frame beyond), so Django's
//! `RedisCache` and `PyMemcacheCache` read our sessions as their own.

use serde_json::{Map, Number, Value};

/// The deepest nesting of dicts and lists read or written: the session codec's limit, the most
/// a session can hold and still be saved and loaded as JSON.
pub const MAX_DEPTH: usize = sessionkit_codec::json::MAX_DEPTH;

/// The JSON a pickle turns into may be at most this many times the pickle's size (plus
/// [`OUTPUT_BUDGET_BASE`] bytes): a value referenced many times through the memo is copied
/// each time, and this bound keeps a small hostile pickle from expanding without limit.
pub const OUTPUT_BUDGET_FACTOR: usize = 16;

/// The constant part of the output budget (see [`OUTPUT_BUDGET_FACTOR`]).
pub const OUTPUT_BUDGET_BASE: usize = 64 * 1024;

/// Why a pickle was refused. Messages name the opcode and offset, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickleError {
    /// The input ended inside an opcode or before `STOP`.
    #[error("pickle truncated at byte {offset}")]
    Truncated {
        /// Where the missing bytes should have been.
        offset: usize,
    },
    /// A length field asks for more bytes than the input has left (checked before any
    /// allocation).
    #[error("pickle length field at byte {offset} asks for {length} bytes, {remaining} remain")]
    LengthTooLarge {
        /// The opcode's offset.
        offset: usize,
        /// The length it declares.
        length: u64,
        /// The bytes left after the length field.
        remaining: usize,
    },
    /// An opcode outside the plain-data subset (a global, a call, bytes, a set...).
    #[error("pickle opcode {name} (0x{opcode:02x}) at byte {offset} is not allowed in a session")]
    Refused {
        /// The opcode byte.
        opcode: u8,
        /// Its name in Python's `pickletools`.
        name: &'static str,
        /// Where it is.
        offset: usize,
    },
    /// The opcodes do not form a valid pickle of the allowed types (an empty stack, a memo
    /// index never stored, an append to a dict, a non-str dict key...).
    #[error("malformed pickle at byte {offset}: {reason}")]
    Malformed {
        /// Where it went wrong.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// An int that needs more than 64 bits.
    #[error("pickle int at byte {offset} needs more than 64 bits")]
    IntTooLarge {
        /// The opcode's offset.
        offset: usize,
    },
    /// A float that is NaN or infinite (JSON and the session codec cannot hold it).
    #[error("pickle float at byte {offset} is not finite")]
    NonFiniteFloat {
        /// The opcode's offset.
        offset: usize,
    },
    /// A `str` whose bytes are not UTF-8 (Python writes lone surrogates this way).
    #[error("pickle str at byte {offset} is not valid UTF-8")]
    BadUtf8 {
        /// The opcode's offset.
        offset: usize,
    },
    /// Dicts and lists nested deeper than [`MAX_DEPTH`] (or a value that contains itself).
    #[error("pickle nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The value would expand past the output budget (see [`OUTPUT_BUDGET_FACTOR`]).
    #[error("pickle expands past {budget} bytes of JSON")]
    TooLarge {
        /// The budget it went past.
        budget: usize,
    },
    /// The pickle holds a valid value that is not a dict.
    #[error("pickle holds a {kind}, not a session dict")]
    NotADict {
        /// What it holds instead.
        kind: &'static str,
    },
}

/// A value under construction; containers refer to other nodes by index, so the memo can
/// share one node between places as Python shares one object.
enum Node {
    None,
    Bool(bool),
    Int(Number),
    Float(f64),
    Str(String),
    List(Vec<usize>),
    Tuple(Vec<usize>),
    Dict(Vec<(usize, usize)>),
}

/// One item of the pickle machine's stack: a value, or a `MARK`.
#[derive(Clone, Copy)]
enum Item {
    Mark,
    Node(usize),
}

/// The pickle machine: reads opcodes from `input` into `nodes`.
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    /// Where the current opcode began, for errors.
    at: usize,
    nodes: Vec<Node>,
    stack: Vec<Item>,
    memo: Vec<Option<usize>>,
    /// How many memo indices are set (Python's `len(memo)`, where `MEMOIZE` stores).
    memo_count: usize,
}

/// Reads a pickled session dict, refusing anything but plain data (see the module docs).
///
/// # Errors
///
/// [`PickleError`] for anything not a pickle of a dict of the allowed types, or past the depth
/// and size bounds.
pub fn loads_dict(input: &[u8]) -> Result<Map<String, Value>, PickleError> {
    let mut reader = Reader {
        input,
        pos: 0,
        at: 0,
        nodes: Vec::new(),
        stack: Vec::new(),
        memo: Vec::new(),
        memo_count: 0,
    };
    let root = reader.run()?;
    let budget = input
        .len()
        .saturating_mul(OUTPUT_BUDGET_FACTOR)
        .saturating_add(OUTPUT_BUDGET_BASE);
    let mut out = Output {
        nodes: &reader.nodes,
        left: budget,
        budget,
    };
    match out.value(root, 0)? {
        Value::Object(map) => Ok(map),
        other => Err(PickleError::NotADict {
            kind: json_kind(&other),
        }),
    }
}

impl Reader<'_> {
    fn run(&mut self) -> Result<usize, PickleError> {
        loop {
            self.at = self.pos;
            let opcode = self.byte()?;
            match opcode {
                0x80 => {
                    // PROTO: 2 to 5 are what Python 3 writes dicts with.
                    let version = self.byte()?;
                    if !(2..=5).contains(&version) {
                        return Err(self.malformed("unsupported protocol version"));
                    }
                }
                0x95 => {
                    // FRAME: a length hint; the frame's opcodes follow inline.
                    let length = self.uint(8)?;
                    self.check_length(length)?;
                }
                b'.' => {
                    // STOP: exactly one value left (trailing bytes are ignored, as Python does).
                    let value = self.pop_node()?;
                    if !self.stack.is_empty() {
                        return Err(self.malformed("values left on the stack at STOP"));
                    }
                    return Ok(value);
                }
                b'(' => self.stack.push(Item::Mark),
                b'}' => self.push(Node::Dict(Vec::new())),
                b']' => self.push(Node::List(Vec::new())),
                b')' => self.push(Node::Tuple(Vec::new())),
                b'N' => self.push(Node::None),
                0x88 => self.push(Node::Bool(true)),
                0x89 => self.push(Node::Bool(false)),
                b'K' => {
                    let n = self.uint(1)?;
                    self.push(Node::Int(n.into()));
                }
                b'M' => {
                    let n = self.uint(2)?;
                    self.push(Node::Int(n.into()));
                }
                b'J' => {
                    let bytes = self.take(4)?;
                    let n = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                    self.push(Node::Int(n.into()));
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes.
                    let length = self.uint(1)?;
                    let bytes = self.take_len(length)?;
                    let number = long_to_number(bytes)
                        .ok_or(PickleError::IntTooLarge { offset: self.at })?;
                    self.push(Node::Int(number));
                }
                b'G' => {
                    let bytes = self.take(8)?;
                    let mut array = [0u8; 8];
                    array.copy_from_slice(bytes);
                    let value = f64::from_be_bytes(array);
                    if !value.is_finite() {
                        return Err(PickleError::NonFiniteFloat { offset: self.at });
                    }
                    self.push(Node::Float(value));
                }
                0x8c => {
                    let length = self.uint(1)?;
                    self.string(length)?;
                }
                b'X' => {
                    let length = self.uint(4)?;
                    self.string(length)?;
                }
                0x8d => {
                    let length = self.uint(8)?;
                    self.string(length)?;
                }
                b't' => {
                    let items = self.pop_to_mark()?;
                    self.push(Node::Tuple(items));
                }
                0x85..=0x87 => {
                    let count = usize::from(opcode - 0x84);
                    if self.stack.len() < count {
                        return Err(self.malformed("stack underflow"));
                    }
                    let mut items = Vec::with_capacity(count);
                    for item in self.stack.split_off(self.stack.len() - count) {
                        match item {
                            Item::Node(node) => items.push(node),
                            Item::Mark => return Err(self.malformed("MARK inside a tuple")),
                        }
                    }
                    self.push(Node::Tuple(items));
                }
                b'l' => {
                    let items = self.pop_to_mark()?;
                    self.push(Node::List(items));
                }
                b'd' => {
                    let items = self.pop_to_mark()?;
                    let pairs = self.pairs(&items)?;
                    self.push(Node::Dict(pairs));
                }
                b'a' => {
                    let value = self.pop_node()?;
                    self.extend_list(&[value])?;
                }
                b'e' => {
                    let items = self.pop_to_mark()?;
                    self.extend_list(&items)?;
                }
                b's' => {
                    let value = self.pop_node()?;
                    let key = self.pop_node()?;
                    let pairs = self.pairs(&[key, value])?;
                    self.extend_dict(pairs)?;
                }
                b'u' => {
                    let items = self.pop_to_mark()?;
                    let pairs = self.pairs(&items)?;
                    self.extend_dict(pairs)?;
                }
                0x94 => {
                    // MEMOIZE: the top of the stack goes to the next memo index.
                    self.put(self.memo_count as u64)?;
                }
                b'q' => {
                    let index = self.uint(1)?;
                    self.put(index)?;
                }
                b'r' => {
                    let index = self.uint(4)?;
                    self.put(index)?;
                }
                b'h' => {
                    let index = self.uint(1)?;
                    self.get(index)?;
                }
                b'j' => {
                    let index = self.uint(4)?;
                    self.get(index)?;
                }
                b'0' => {
                    self.stack
                        .pop()
                        .ok_or_else(|| self.malformed("stack underflow"))?;
                }
                b'1' => {
                    self.pop_to_mark()?;
                }
                b'2' => {
                    let node = self.top_node()?;
                    self.stack.push(Item::Node(node));
                }
                other => {
                    return Err(PickleError::Refused {
                        opcode: other,
                        name: opcode_name(other),
                        offset: self.at,
                    });
                }
            }
        }
    }

    fn malformed(&self, reason: &'static str) -> PickleError {
        PickleError::Malformed {
            offset: self.at,
            reason,
        }
    }

    fn byte(&mut self) -> Result<u8, PickleError> {
        let byte = *self
            .input
            .get(self.pos)
            .ok_or(PickleError::Truncated { offset: self.pos })?;
        self.pos += 1;
        Ok(byte)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.input.len())
            .ok_or(PickleError::Truncated {
                offset: self.input.len(),
            })?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// An unsigned little-endian field of `width` bytes.
    fn uint(&mut self, width: usize) -> Result<u64, PickleError> {
        let bytes = self.take(width)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |n, byte| (n << 8) | u64::from(*byte)))
    }

    /// Refuses a length larger than what remains, before anything is read or allocated.
    fn check_length(&self, length: u64) -> Result<usize, PickleError> {
        let remaining = self.input.len() - self.pos;
        match usize::try_from(length) {
            Ok(n) if n <= remaining => Ok(n),
            _ => Err(PickleError::LengthTooLarge {
                offset: self.at,
                length,
                remaining,
            }),
        }
    }

    fn take_len(&mut self, length: u64) -> Result<&[u8], PickleError> {
        let n = self.check_length(length)?;
        self.take(n)
    }

    fn string(&mut self, length: u64) -> Result<(), PickleError> {
        let at = self.at;
        let bytes = self.take_len(length)?;
        let text = std::str::from_utf8(bytes).map_err(|_| PickleError::BadUtf8 { offset: at })?;
        let text = text.to_owned();
        self.push(Node::Str(text));
        Ok(())
    }

    fn push(&mut self, node: Node) {
        self.nodes.push(node);
        self.stack.push(Item::Node(self.nodes.len() - 1));
    }

    fn pop_node(&mut self) -> Result<usize, PickleError> {
        match self.stack.pop() {
            Some(Item::Node(node)) => Ok(node),
            Some(Item::Mark) => Err(self.malformed("MARK where a value was expected")),
            None => Err(self.malformed("stack underflow")),
        }
    }

    fn top_node(&self) -> Result<usize, PickleError> {
        match self.stack.last() {
            Some(Item::Node(node)) => Ok(*node),
            Some(Item::Mark) => Err(self.malformed("MARK where a value was expected")),
            None => Err(self.malformed("stack underflow")),
        }
    }

    /// The values above the topmost `MARK`, which is removed with them.
    fn pop_to_mark(&mut self) -> Result<Vec<usize>, PickleError> {
        let mark = self
            .stack
            .iter()
            .rposition(|item| matches!(item, Item::Mark))
            .ok_or_else(|| self.malformed("no MARK on the stack"))?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items
            .into_iter()
            .filter_map(|item| match item {
                Item::Node(node) => Some(node),
                Item::Mark => None,
            })
            .collect())
    }

    /// `items` as key/value pairs with str keys.
    fn pairs(&self, items: &[usize]) -> Result<Vec<(usize, usize)>, PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.malformed("a dict item without a value"));
        }
        items
            .chunks_exact(2)
            .map(|pair| match self.nodes[pair[0]] {
                Node::Str(_) => Ok((pair[0], pair[1])),
                _ => Err(self.malformed("a dict key that is not a str")),
            })
            .collect()
    }

    fn extend_list(&mut self, items: &[usize]) -> Result<(), PickleError> {
        let target = self.top_node()?;
        match &mut self.nodes[target] {
            Node::List(list) => {
                list.extend_from_slice(items);
                Ok(())
            }
            _ => Err(self.malformed("an append to something not a list")),
        }
    }

    fn extend_dict(&mut self, pairs: Vec<(usize, usize)>) -> Result<(), PickleError> {
        let target = self.top_node()?;
        match &mut self.nodes[target] {
            Node::Dict(dict) => {
                dict.extend(pairs);
                Ok(())
            }
            _ => Err(self.malformed("a setitem on something not a dict")),
        }
    }

    fn put(&mut self, index: u64) -> Result<(), PickleError> {
        let node = self.top_node()?;
        // A memo index is below the number of opcodes read in any pickle Python writes; a
        // larger one would make the memo table grow past the input.
        let index = usize::try_from(index)
            .ok()
            .filter(|index| *index <= self.input.len())
            .ok_or_else(|| self.malformed("memo index out of range"))?;
        if self.memo.len() <= index {
            self.memo.resize(index + 1, None);
        }
        if self.memo[index].replace(node).is_none() {
            self.memo_count += 1;
        }
        Ok(())
    }

    fn get(&mut self, index: u64) -> Result<(), PickleError> {
        let node = usize::try_from(index)
            .ok()
            .and_then(|index| self.memo.get(index).copied().flatten())
            .ok_or_else(|| self.malformed("memo index never stored"))?;
        self.stack.push(Item::Node(node));
        Ok(())
    }
}

/// A LONG1 payload (little-endian two's complement) as a JSON number, if it fits 64 bits
/// (signed, or unsigned for positive values up to `u64::MAX`).
fn long_to_number(bytes: &[u8]) -> Option<Number> {
    let Some(last) = bytes.last() else {
        return Some(0.into());
    };
    let negative = last & 0x80 != 0;
    if bytes.len() > 9 || (bytes.len() == 9 && (negative || *last != 0)) {
        // Python writes the fewest bytes; a 9th byte may only be the sign byte of a value
        // past i64::MAX.
        return None;
    }
    let fill = if negative { 0xff } else { 0 };
    let mut array = [fill; 8];
    let used = bytes.len().min(8);
    array[..used].copy_from_slice(&bytes[..used]);
    if negative {
        Some(i64::from_le_bytes(array).into())
    } else {
        let value = u64::from_le_bytes(array);
        Some(match i64::try_from(value) {
            Ok(signed) => signed.into(),
            Err(_) => value.into(),
        })
    }
}

/// Turns nodes into JSON, counting what it produces against the budget.
struct Output<'a> {
    nodes: &'a [Node],
    left: usize,
    budget: usize,
}

impl Output<'_> {
    fn spend(&mut self, cost: usize) -> Result<(), PickleError> {
        self.left = self.left.checked_sub(cost).ok_or(PickleError::TooLarge {
            budget: self.budget,
        })?;
        Ok(())
    }

    fn value(&mut self, node: usize, depth: usize) -> Result<Value, PickleError> {
        // Every value costs at least a few bytes of JSON (a separator, a short literal).
        self.spend(4)?;
        Ok(match &self.nodes[node] {
            Node::None => Value::Null,
            Node::Bool(value) => Value::Bool(*value),
            Node::Int(number) => {
                self.spend(16)?;
                Value::Number(number.clone())
            }
            Node::Float(value) => {
                self.spend(20)?;
                Number::from_f64(*value).map_or(Value::Null, Value::Number)
            }
            Node::Str(text) => {
                self.spend(text.len())?;
                Value::String(text.clone())
            }
            Node::List(items) | Node::Tuple(items) => {
                if depth >= MAX_DEPTH {
                    return Err(PickleError::TooDeep);
                }
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    list.push(self.value(*item, depth + 1)?);
                }
                Value::Array(list)
            }
            Node::Dict(pairs) => {
                if depth >= MAX_DEPTH {
                    return Err(PickleError::TooDeep);
                }
                let mut map = Map::with_capacity(pairs.len());
                for (key, value) in pairs {
                    let Node::Str(key) = &self.nodes[*key] else {
                        // `pairs` only ever holds str keys.
                        continue;
                    };
                    self.spend(key.len())?;
                    let value = self.value(*value, depth + 1)?;
                    map.insert(key.clone(), value);
                }
                Value::Object(map)
            }
        })
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "None",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// `pickletools`' name of a refused opcode, for the error message.
fn opcode_name(opcode: u8) -> &'static str {
    match opcode {
        b'c' => "GLOBAL",
        0x93 => "STACK_GLOBAL",
        b'R' => "REDUCE",
        b'b' => "BUILD",
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        0x82..=0x84 => "EXT",
        b'C' => "SHORT_BINBYTES",
        b'B' => "BINBYTES",
        0x8e => "BINBYTES8",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x8b => "LONG4",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'I' => "INT",
        b'L' => "LONG",
        b'F' => "FLOAT",
        b'p' => "PUT",
        b'g' => "GET",
        _ => "unknown",
    }
}

/// Python's batch size for `APPENDS` and `SETITEMS`.
const BATCH: usize = 1000;

/// Pickles a session dict as Python's `pickle.dumps(session, 5)` does, for Django's cache
/// backends to read.
///
/// Values nested deeper than [`MAX_DEPTH`] cannot come from the session codec (which refuses
/// them); they are written as `None` rather than recursing without bound. Non-finite floats
/// cannot be in a `serde_json` value.
pub fn dumps_dict(session: &Map<String, Value>) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    write_dict(&mut body, session, 0);
    body.push(b'.');
    let mut out = Vec::with_capacity(body.len() + 11);
    out.extend_from_slice(&[0x80, 5]);
    if body.len() >= 4 {
        // One frame around everything: byte for byte what Python writes below its 64 KiB frame
        // target; Python's unpickler reads a larger frame as well.
        out.push(0x95);
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    }
    out.extend_from_slice(&body);
    out
}

fn write_dict(out: &mut Vec<u8>, map: &Map<String, Value>, depth: usize) {
    out.extend_from_slice(&[b'}', 0x94]);
    let entries: Vec<(&String, &Value)> = map.iter().collect();
    for batch in entries.chunks(BATCH) {
        if let [(key, value)] = batch {
            write_str(out, key);
            write_value(out, value, depth + 1);
            out.push(b's');
        } else {
            out.push(b'(');
            for (key, value) in batch {
                write_str(out, key);
                write_value(out, value, depth + 1);
            }
            out.push(b'u');
        }
    }
}

fn write_list(out: &mut Vec<u8>, items: &[Value], depth: usize) {
    out.extend_from_slice(&[b']', 0x94]);
    for batch in items.chunks(BATCH) {
        if let [item] = batch {
            write_value(out, item, depth + 1);
            out.push(b'a');
        } else {
            out.push(b'(');
            for item in batch {
                write_value(out, item, depth + 1);
            }
            out.push(b'e');
        }
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value, depth: usize) {
    match value {
        Value::Null => out.push(b'N'),
        Value::Bool(true) => out.push(0x88),
        Value::Bool(false) => out.push(0x89),
        Value::Number(number) => write_number(out, number),
        Value::String(text) => write_str(out, text),
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => out.push(b'N'),
        Value::Array(items) => write_list(out, items, depth),
        Value::Object(map) => write_dict(out, map, depth),
    }
}

fn write_number(out: &mut Vec<u8>, number: &Number) {
    if let Some(n) = number.as_i64() {
        write_int(out, i128::from(n));
    } else if let Some(n) = number.as_u64() {
        write_int(out, i128::from(n));
    } else {
        out.push(b'G');
        out.extend_from_slice(&number.as_f64().unwrap_or(0.0).to_be_bytes());
    }
}

/// Python's `save_long` for protocol 2+.
fn write_int(out: &mut Vec<u8>, n: i128) {
    if (0..0x100).contains(&n) {
        out.push(b'K');
        out.push(n as u8);
    } else if (0..0x1_0000).contains(&n) {
        out.push(b'M');
        out.extend_from_slice(&(n as u16).to_le_bytes());
    } else if (i128::from(i32::MIN)..=i128::from(i32::MAX)).contains(&n) {
        out.push(b'J');
        out.extend_from_slice(&(n as i32).to_le_bytes());
    } else {
        // pickle.encode_long: the fewest little-endian two's-complement bytes.
        let bytes = n.to_le_bytes();
        let mut length = bytes.len();
        while length > 1 {
            let last = bytes[length - 1];
            let next_sign = bytes[length - 2] & 0x80;
            if (last == 0 && next_sign == 0) || (last == 0xff && next_sign != 0) {
                length -= 1;
            } else {
                break;
            }
        }
        out.push(0x8a);
        out.push(length as u8);
        out.extend_from_slice(&bytes[..length]);
    }
}

fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    if bytes.len() < 0x100 {
        out.push(0x8c);
        out.push(bytes.len() as u8);
    } else if let Ok(length) = u32::try_from(bytes.len()) {
        out.push(b'X');
        out.extend_from_slice(&length.to_le_bytes());
    } else {
        out.push(0x8d);
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    }
    out.extend_from_slice(bytes);
    out.push(0x94);
}
