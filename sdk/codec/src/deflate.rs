//! A deflate (RFC 1951) compressor in a zlib (RFC 1950) wrapper, sized for session JSON.
//!
//! General-purpose compressors pay a fixed cost per stream that dwarfs a session of a few hundred
//! bytes: zlib resets a 64 KiB hash table, libdeflate a 128 KiB one and builds its Huffman codes
//! over full-size tables (BENCHMARKS.md, "Issue 11"). This one keeps its state sized to the
//! payload: a hash table of about the payload's length, one hash chain per byte, one block. It
//! finds matches with a short hash chain and one-step lazy matching (as zlib's middle levels do),
//! then writes the block with whichever of deflate's fixed and dynamic Huffman codes is shorter.
//! Any inflater decodes the stream (Python's `zlib.decompress`, libdeflate, zlib).
//!
//! Only inputs of at most [`MAX_INPUT`] bytes are compressed here; the caller uses a
//! general-purpose compressor for larger ones, where its fixed cost no longer matters.

/// The largest input compressed here: positions fit in `u16` and the whole input lies inside
/// deflate's 32 KiB window, so every match is reachable and one block holds it all.
pub(crate) const MAX_INPUT: usize = 16 * 1024;

const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;
/// Candidates looked at per position (zlib's level 6 looks at up to 128, level 1 at 4).
const MAX_CHAIN: u32 = 8;
/// A match this long is taken without looking further or lazily.
const NICE_MATCH: usize = 32;

/// 286 used symbols, plus the two that only complete the fixed code.
const LITLEN_SYMBOLS: usize = 288;
const DIST_SYMBOLS: usize = 30;
const PRECODE_SYMBOLS: usize = 19;
const END_OF_BLOCK: usize = 256;
/// The order in which the precode's code lengths are written (RFC 1951, 3.2.7).
const PRECODE_ORDER: [usize; PRECODE_SYMBOLS] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// A symbol of the parse: a literal byte (`< 256`) or a match, `MATCH | len << 16 | dist`.
const MATCH: u32 = 1 << 31;

/// Scratch space reused between calls (kept per thread by the caller).
#[derive(Default)]
pub(crate) struct Deflate {
    /// Newest position + 1 per hash (0: none).
    head: Vec<u16>,
    /// Previous position + 1 with the same hash, per position (0: none).
    prev: Vec<u16>,
    symbols: Vec<u32>,
    litlen_freq: Vec<u32>,
    dist_freq: Vec<u32>,
}

/// A Huffman code: the length and the bit-reversed code of each symbol.
struct Code<const N: usize> {
    lens: [u8; N],
    codes: [u16; N],
}

impl Deflate {
    /// Appends a zlib stream of `input` to `out` when it is at most `room` bytes long and returns
    /// its length; else returns `None` (and `out` may hold a partial stream past its old end,
    /// which the caller truncates).
    ///
    /// `input` must be at most [`MAX_INPUT`] bytes.
    pub(crate) fn zlib(&mut self, input: &[u8], out: &mut Vec<u8>, room: usize) -> Option<usize> {
        debug_assert!(input.len() <= MAX_INPUT);
        if input.len() > MAX_INPUT {
            return None;
        }
        self.parse(input);
        let start = out.len();
        out.extend_from_slice(&[0x78, 0x01]);
        self.write_block(out);
        out.extend_from_slice(&adler32(input).to_be_bytes());
        let len = out.len() - start;
        (len <= room).then_some(len)
    }

    /// LZ77: fills `symbols` and the two frequency tables.
    fn parse(&mut self, input: &[u8]) {
        let n = input.len();
        let bits = (usize::BITS - n.leading_zeros()).clamp(8, 15);
        self.head.clear();
        self.head.resize(1 << bits, 0);
        self.prev.clear();
        self.prev.resize(n, 0);
        self.symbols.clear();
        self.litlen_freq.clear();
        self.litlen_freq.resize(LITLEN_SYMBOLS, 0);
        self.dist_freq.clear();
        self.dist_freq.resize(DIST_SYMBOLS, 0);
        let shift = 32 - bits;
        // Positions at which 3 bytes start; only they are hashed.
        let hashed = n.saturating_sub(MIN_MATCH - 1);
        // Puts position `at` in its chain and returns the newest earlier position + 1 with
        // the same hash (0: none).
        let insert = |head: &mut [u16], prev: &mut [u16], at: usize| -> u16 {
            let bytes = &input[at..at + 3];
            let v = u32::from(bytes[0]) | u32::from(bytes[1]) << 8 | u32::from(bytes[2]) << 16;
            let h = (v.wrapping_mul(0x9E37_79B1) >> shift) as usize;
            let candidate = head[h];
            prev[at] = candidate;
            // n <= MAX_INPUT < u16::MAX, so position + 1 fits.
            head[h] = (at + 1) as u16;
            candidate
        };
        let mut i = 0;
        while i < hashed {
            let candidate = insert(&mut self.head, &mut self.prev, i);
            if candidate == 0 {
                self.literal(input[i]);
                i += 1;
                continue;
            }
            let (mut len, mut dist) = longest_match(input, i, candidate, &self.prev);
            if len < MIN_MATCH {
                self.literal(input[i]);
                i += 1;
                continue;
            }
            // Lazy matching: a longer match one byte later wins.
            while len < NICE_MATCH && i + 1 < hashed {
                let candidate = insert(&mut self.head, &mut self.prev, i + 1);
                let (next_len, next_dist) = if candidate == 0 {
                    (0, 0)
                } else {
                    longest_match(input, i + 1, candidate, &self.prev)
                };
                if next_len <= len {
                    // i + 1 is in its chain already.
                    self.matched(len, dist);
                    for at in i + 2..(i + len).min(hashed) {
                        insert(&mut self.head, &mut self.prev, at);
                    }
                    i += len;
                    len = 0;
                    break;
                }
                self.literal(input[i]);
                i += 1;
                len = next_len;
                dist = next_dist;
            }
            if len > 0 {
                self.matched(len, dist);
                for at in i + 1..(i + len).min(hashed) {
                    insert(&mut self.head, &mut self.prev, at);
                }
                i += len;
            }
        }
        while i < n {
            self.literal(input[i]);
            i += 1;
        }
        self.litlen_freq[END_OF_BLOCK] += 1;
    }

    fn literal(&mut self, byte: u8) {
        self.symbols.push(u32::from(byte));
        self.litlen_freq[usize::from(byte)] += 1;
    }

    fn matched(&mut self, len: usize, dist: usize) {
        // len <= 258 and dist <= MAX_INPUT: both fit their fields.
        self.symbols.push(MATCH | (len as u32) << 16 | dist as u32);
        self.litlen_freq[LENGTHS[len - MIN_MATCH].symbol as usize] += 1;
        self.dist_freq[dist_code(dist).0] += 1;
    }

    /// One final block, with the fixed or the dynamic Huffman codes, whichever is shorter.
    fn write_block(&self, out: &mut Vec<u8>) {
        let litlen = Code::<LITLEN_SYMBOLS>::build(&self.litlen_freq, 15);
        let dist = Code::<DIST_SYMBOLS>::build(&self.dist_freq, 15);
        let header = DynamicHeader::new(&litlen.lens, &dist.lens);

        let cost = |lit: &[u8], dist_lens: &[u8]| -> u64 {
            let l: u64 = self
                .litlen_freq
                .iter()
                .zip(lit)
                .map(|(&f, &len)| u64::from(f) * u64::from(len))
                .sum();
            let d: u64 = self
                .dist_freq
                .iter()
                .zip(dist_lens)
                .map(|(&f, &len)| u64::from(f) * u64::from(len))
                .sum();
            l + d
        };
        let dynamic_bits = header.bits + cost(&litlen.lens, &dist.lens);
        let fixed = fixed_codes();
        let fixed_bits = cost(&fixed.0.lens, &fixed.1.lens);

        let mut w = BitWriter::new(out);
        // Both write the same extra bits, so only the codes' bits decide.
        if fixed_bits <= dynamic_bits {
            w.put(0b011, 3); // final, fixed
            self.write_symbols(&mut w, &fixed.0, &fixed.1);
        } else {
            w.put(0b101, 3); // final, dynamic
            header.write(&mut w);
            self.write_symbols(&mut w, &litlen, &dist);
        }
        w.finish();
    }

    fn write_symbols(
        &self,
        w: &mut BitWriter<'_>,
        litlen: &Code<LITLEN_SYMBOLS>,
        dist: &Code<DIST_SYMBOLS>,
    ) {
        for &symbol in &self.symbols {
            if symbol & MATCH == 0 {
                let s = symbol as usize;
                w.put(u64::from(litlen.codes[s]), u32::from(litlen.lens[s]));
            } else {
                let len = ((symbol >> 16) & 0x1ff) as usize;
                let d = (symbol & 0xffff) as usize;
                let l = LENGTHS[len - MIN_MATCH];
                let s = l.symbol as usize;
                w.put(u64::from(litlen.codes[s]), u32::from(litlen.lens[s]));
                w.put(u64::from(l.extra_value), u32::from(l.extra_bits));
                let (code, extra_bits, extra_value) = dist_code(d);
                w.put(u64::from(dist.codes[code]), u32::from(dist.lens[code]));
                w.put(extra_value as u64, extra_bits);
            }
        }
        w.put(
            u64::from(litlen.codes[END_OF_BLOCK]),
            u32::from(litlen.lens[END_OF_BLOCK]),
        );
    }
}

/// The longest match for position `at` among the earlier positions of its hash chain, starting
/// at `candidate` (position + 1): (len, dist), len 0 when there is none of at least
/// [`MIN_MATCH`] bytes.
fn longest_match(input: &[u8], at: usize, candidate: u16, prev: &[u16]) -> (usize, usize) {
    let max = (input.len() - at).min(MAX_MATCH);
    let here = &input[at..at + max];
    let mut best = (0, 0);
    let mut candidate = usize::from(candidate);
    let mut chain = MAX_CHAIN;
    while candidate != 0 && chain > 0 {
        let from = candidate - 1;
        chain -= 1;
        candidate = usize::from(prev[from]);
        let there = &input[from..from + max];
        // Cheap rejection: a longer match must agree at the current best length.
        if there[best.0] != here[best.0] {
            continue;
        }
        let len = common_prefix(here, there);
        if len > best.0 && len >= MIN_MATCH {
            best = (len, at - from);
            if len >= NICE_MATCH || len == max {
                break;
            }
        }
    }
    best
}

/// The length of the common prefix of two slices of equal length.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut len = 0;
    let mut ac = a.chunks_exact(8);
    let mut bc = b.chunks_exact(8);
    for (x, y) in (&mut ac).zip(&mut bc) {
        let x = u64::from_le_bytes(x.try_into().unwrap_or_default());
        let y = u64::from_le_bytes(y.try_into().unwrap_or_default());
        let diff = x ^ y;
        if diff != 0 {
            return len + (diff.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    len + ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .take_while(|(x, y)| x == y)
        .count()
}

/// How a match length is written: its symbol and extra bits.
#[derive(Clone, Copy)]
struct Length {
    symbol: u16,
    extra_bits: u8,
    extra_value: u8,
}

/// [`Length`] of each match length 3..=258 (index `len - 3`).
const LENGTHS: [Length; 256] = {
    let mut table = [Length {
        symbol: 0,
        extra_bits: 0,
        extra_value: 0,
    }; 256];
    let mut l0 = 0;
    while l0 < 256 {
        table[l0] = if l0 < 8 {
            Length {
                symbol: 257 + l0 as u16,
                extra_bits: 0,
                extra_value: 0,
            }
        } else if l0 == 255 {
            Length {
                symbol: 285,
                extra_bits: 0,
                extra_value: 0,
            }
        } else {
            let nb = (usize::BITS - 1 - l0.leading_zeros()) as usize; // 3..=7
            Length {
                symbol: (257 + (nb - 1) * 4 + ((l0 >> (nb - 2)) & 3)) as u16,
                extra_bits: (nb - 2) as u8,
                extra_value: (l0 & ((1 << (nb - 2)) - 1)) as u8,
            }
        };
        l0 += 1;
    }
    table
};

/// Distance `dist` (1..=32768) as (code, extra bit count, extra value).
fn dist_code(dist: usize) -> (usize, u32, usize) {
    let d0 = dist - 1;
    if d0 < 4 {
        return (d0, 0, 0);
    }
    let nb = (usize::BITS - 1 - d0.leading_zeros()) as usize; // 2..=14
    (
        nb * 2 + ((d0 >> (nb - 1)) & 1),
        (nb - 1) as u32,
        d0 & ((1 << (nb - 1)) - 1),
    )
}

/// Deflate's fixed codes (RFC 1951, 3.2.6).
fn fixed_codes() -> &'static (Code<LITLEN_SYMBOLS>, Code<DIST_SYMBOLS>) {
    static FIXED: std::sync::OnceLock<(Code<LITLEN_SYMBOLS>, Code<DIST_SYMBOLS>)> =
        std::sync::OnceLock::new();
    FIXED.get_or_init(|| {
        let mut lit = [0u8; LITLEN_SYMBOLS];
        for (symbol, len) in lit.iter_mut().enumerate() {
            *len = match symbol {
                0..=143 => 8,
                144..=255 => 9,
                256..=279 => 7,
                _ => 8,
            };
        }
        let mut lit_count = [0u16; 16];
        lit_count[7] = 24;
        lit_count[8] = 152;
        lit_count[9] = 112;
        let mut dist_count = [0u16; 16];
        dist_count[5] = DIST_SYMBOLS as u16;
        (
            Code::from_lens(lit, &lit_count),
            Code::from_lens([5; DIST_SYMBOLS], &dist_count),
        )
    })
}

impl<const N: usize> Code<N> {
    /// A length-limited Huffman code for `freq` (at most `N` symbols). Fewer than two used
    /// symbols still give a complete code of two 1-bit codes, which every inflater accepts.
    fn build(freq: &[u32], max_bits: usize) -> Self {
        let mut lens = [0u8; N];
        // The used symbols as `frequency << 9 | symbol` (N <= 512; frequencies stay below
        // 2^23 for inputs of at most MAX_INPUT bytes), so sorting them sorts by frequency.
        let mut used = [0u32; N];
        let mut n = 0;
        for (symbol, &f) in freq.iter().enumerate() {
            if f > 0 {
                used[n] = f << 9 | symbol as u32;
                n += 1;
            }
        }
        let used = &mut used[..n];
        if n < 2 {
            let first = used.first().map_or(0, |&u| (u & 0x1ff) as usize);
            lens[first] = 1;
            lens[usize::from(first == 0)] = 1;
            let mut count = [0u16; 16];
            count[1] = 2;
            return Self::from_lens(lens, &count);
        }
        used.sort_unstable();
        let mut depth = [0u32; N];
        for (d, &u) in depth.iter_mut().zip(used.iter()) {
            *d = u >> 9;
        }
        let depth = &mut depth[..n];
        minimum_redundancy(depth);
        // Count codes per length, then make the code fit `max_bits` (miniz's adjustment).
        let mut count = [0u32; 33];
        for &d in depth.iter() {
            count[(d as usize).min(32)] += 1;
        }
        for l in max_bits + 1..=32 {
            count[max_bits] += count[l];
            count[l] = 0;
        }
        let mut total: u32 = (1..=max_bits).map(|l| count[l] << (max_bits - l)).sum();
        while total != 1 << max_bits {
            count[max_bits] -= 1;
            for l in (1..max_bits).rev() {
                if count[l] != 0 {
                    count[l] -= 1;
                    count[l + 1] += 2;
                    break;
                }
            }
            total -= 1;
        }
        // The most frequent symbols (at the end of `used`) get the shortest codes.
        let mut next = n;
        let mut bl_count = [0u16; 16];
        for (l, &c) in count.iter().enumerate().take(max_bits + 1).skip(1) {
            bl_count[l] = c as u16;
            for _ in 0..c {
                next -= 1;
                lens[(used[next] & 0x1ff) as usize] = l as u8;
            }
        }
        Self::from_lens(lens, &bl_count)
    }

    /// The canonical code of the given lengths, bit-reversed for LSB-first output;
    /// `count[l]` is the number of codes of length `l`.
    fn from_lens(lens: [u8; N], count: &[u16; 16]) -> Self {
        let mut next = [0u16; 16];
        let mut code = 0u16;
        for bits in 1..16 {
            code = (code + count[bits - 1]) << 1;
            next[bits] = code;
        }
        let mut codes = [0u16; N];
        for (symbol, &l) in lens.iter().enumerate() {
            if l != 0 {
                let c = next[usize::from(l)];
                next[usize::from(l)] += 1;
                codes[symbol] = c.reverse_bits() >> (16 - l);
            }
        }
        Self { lens, codes }
    }
}

/// Huffman code lengths for frequencies sorted ascending, in place (Moffat and Katajainen's
/// in-place algorithm, as in miniz). `a` holds at least two frequencies.
fn minimum_redundancy(a: &mut [u32]) {
    let n = a.len();
    a[0] += a[1];
    let mut root = 0usize;
    let mut leaf = 2usize;
    for next in 1..n - 1 {
        if leaf >= n || a[root] < a[leaf] {
            a[next] = a[root];
            a[root] = next as u32;
            root += 1;
        } else {
            a[next] = a[leaf];
            leaf += 1;
        }
        if leaf >= n || (root < next && a[root] < a[leaf]) {
            a[next] += a[root];
            a[root] = next as u32;
            root += 1;
        } else {
            a[next] += a[leaf];
            leaf += 1;
        }
    }
    a[n - 2] = 0;
    for next in (0..n.saturating_sub(2)).rev() {
        a[next] = a[a[next] as usize] + 1;
    }
    let mut avbl = 1usize;
    let mut used = 0usize;
    let mut depth = 0u32;
    let mut root = n as isize - 2;
    let mut next = n as isize - 1;
    while avbl > 0 {
        while root >= 0 && a[root as usize] == depth {
            used += 1;
            root -= 1;
        }
        while avbl > used {
            a[next as usize] = depth;
            next -= 1;
            avbl -= 1;
        }
        avbl = 2 * used;
        depth += 1;
        used = 0;
    }
}

/// The header of a dynamic block: code-length counts, the precode and the run-length encoded
/// code lengths of both codes.
struct DynamicHeader {
    hlit: usize,
    hdist: usize,
    hclen: usize,
    precode: Code<PRECODE_SYMBOLS>,
    /// (precode symbol, extra bits value) per item of the code-length sequence.
    items: Vec<(u8, u8)>,
    /// The header's length in bits (after the 3 block-type bits).
    bits: u64,
}

impl DynamicHeader {
    fn new(litlen: &[u8; LITLEN_SYMBOLS], dist: &[u8; DIST_SYMBOLS]) -> Self {
        let hlit = LITLEN_SYMBOLS - litlen.iter().rev().take_while(|&&l| l == 0).count();
        let hlit = hlit.max(257);
        let hdist = (DIST_SYMBOLS - dist.iter().rev().take_while(|&&l| l == 0).count()).max(1);
        let mut lens = [0u8; LITLEN_SYMBOLS + DIST_SYMBOLS];
        lens[..hlit].copy_from_slice(&litlen[..hlit]);
        lens[hlit..hlit + hdist].copy_from_slice(&dist[..hdist]);
        let lens = &lens[..hlit + hdist];

        // Run-length encode (RFC 1951, 3.2.7): 16 repeats the previous length 3-6 times, 17
        // and 18 write 3-10 and 11-138 zeros.
        let mut items = Vec::with_capacity(lens.len());
        let mut freq = [0u32; PRECODE_SYMBOLS];
        let mut i = 0;
        while i < lens.len() {
            let l = lens[i];
            let run = lens[i..].iter().take_while(|&&x| x == l).count();
            if l == 0 && run >= 3 {
                let mut left = run;
                while left >= 3 {
                    let take = left.min(138);
                    if take >= 11 {
                        items.push((18, (take - 11) as u8));
                        freq[18] += 1;
                    } else {
                        items.push((17, (take - 3) as u8));
                        freq[17] += 1;
                    }
                    left -= take;
                }
                for _ in 0..left {
                    items.push((0, 0));
                    freq[0] += 1;
                }
            } else if l != 0 && run >= 4 {
                items.push((l, 0));
                freq[usize::from(l)] += 1;
                let mut left = run - 1;
                while left >= 3 {
                    let take = left.min(6);
                    items.push((16, (take - 3) as u8));
                    freq[16] += 1;
                    left -= take;
                }
                for _ in 0..left {
                    items.push((l, 0));
                    freq[usize::from(l)] += 1;
                }
            } else {
                for _ in 0..run {
                    items.push((l, 0));
                }
                freq[usize::from(l)] += run as u32;
            }
            i += run;
        }
        let precode = Code::<PRECODE_SYMBOLS>::build(&freq, 7);
        let hclen = (PRECODE_SYMBOLS
            - PRECODE_ORDER
                .iter()
                .rev()
                .take_while(|&&s| precode.lens[s] == 0)
                .count())
        .max(4);
        let mut bits = 5 + 5 + 4 + 3 * hclen as u64;
        for (symbol, f) in freq.iter().enumerate() {
            let extra = match symbol {
                16 => 2,
                17 => 3,
                18 => 7,
                _ => 0,
            };
            bits += u64::from(*f) * (u64::from(precode.lens[symbol]) + extra);
        }
        Self {
            hlit,
            hdist,
            hclen,
            precode,
            items,
            bits,
        }
    }

    fn write(&self, w: &mut BitWriter<'_>) {
        w.put((self.hlit - 257) as u64, 5);
        w.put((self.hdist - 1) as u64, 5);
        w.put((self.hclen - 4) as u64, 4);
        for &s in &PRECODE_ORDER[..self.hclen] {
            w.put(u64::from(self.precode.lens[s]), 3);
        }
        for &(symbol, extra) in &self.items {
            let s = usize::from(symbol);
            w.put(
                u64::from(self.precode.codes[s]),
                u32::from(self.precode.lens[s]),
            );
            match symbol {
                16 => w.put(u64::from(extra), 2),
                17 => w.put(u64::from(extra), 3),
                18 => w.put(u64::from(extra), 7),
                _ => {}
            }
        }
    }
}

/// Writes bits least significant first, as deflate packs them.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    buffer: u64,
    count: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            buffer: 0,
            count: 0,
        }
    }

    /// Appends the low `bits` bits of `value` (at most 32).
    fn put(&mut self, value: u64, bits: u32) {
        self.buffer |= value << self.count;
        self.count += bits;
        if self.count >= 32 {
            self.out
                .extend_from_slice(&(self.buffer as u32).to_le_bytes());
            self.buffer >>= 32;
            self.count -= 32;
        }
    }

    /// Writes the remaining bits, padded with zeros to a byte.
    fn finish(self) {
        let bytes = self.count.div_ceil(8) as usize;
        self.out
            .extend_from_slice(&self.buffer.to_le_bytes()[..bytes]);
    }
}

/// zlib's checksum (RFC 1950) of `data`.
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    // 5552 bytes is the longest run whose sums cannot overflow u32 before the modulo.
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        let mut quads = chunk.chunks_exact(4);
        for q in &mut quads {
            // b gains 4a plus each byte weighted by how many sums it enters.
            b += 4 * a
                + 4 * u32::from(q[0])
                + 3 * u32::from(q[1])
                + 2 * u32::from(q[2])
                + u32::from(q[3]);
            a += u32::from(q[0]) + u32::from(q[1]) + u32::from(q[2]) + u32::from(q[3]);
        }
        for &byte in quads.remainder() {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    b << 16 | a
}

#[cfg(test)]
mod tests {
    use libdeflater::Decompressor;

    use super::*;

    /// Extra bits of length symbols 257..=285.
    const LENGTH_EXTRA: [u8; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    /// Extra bits of distance codes 0..=29.
    const DIST_EXTRA: [u8; 30] = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
        13, 13,
    ];

    fn inflate(stream: &[u8], len: usize) -> Vec<u8> {
        let mut out = vec![0; len + 16];
        let n = Decompressor::new()
            .zlib_decompress(stream, &mut out)
            .expect("a valid zlib stream");
        out.truncate(n);
        out
    }

    fn zlib_inflate(stream: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(stream)
            .read_to_end(&mut out)
            .expect("zlib accepts the stream");
        out
    }

    fn round_trip(input: &[u8]) -> usize {
        let mut d = Deflate::default();
        let mut out = vec![0xAA]; // appends after what is there
        let len = d.zlib(input, &mut out, usize::MAX).unwrap();
        assert_eq!(out.len(), len + 1);
        assert_eq!(inflate(&out[1..], input.len()), input, "libdeflate");
        assert_eq!(zlib_inflate(&out[1..]), input, "zlib");
        len
    }

    fn rng(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *seed >> 33
    }

    #[test]
    fn length_and_distance_tables_follow_rfc_1951() {
        assert_eq!(LENGTHS[0].symbol, 257);
        assert_eq!(LENGTHS[11 - 3].symbol, 265);
        assert_eq!(LENGTHS[13 - 3].symbol, 266);
        assert_eq!(LENGTHS[19 - 3].symbol, 269);
        assert_eq!(LENGTHS[227 - 3].symbol, 284);
        assert_eq!(LENGTHS[257 - 3].symbol, 284);
        assert_eq!(LENGTHS[257 - 3].extra_value, 30);
        assert_eq!(LENGTHS[258 - 3].symbol, 285);
        for l in LENGTHS {
            assert_eq!(l.extra_bits, LENGTH_EXTRA[usize::from(l.symbol) - 257]);
        }
        assert_eq!(dist_code(1), (0, 0, 0));
        assert_eq!(dist_code(5), (4, 1, 0));
        assert_eq!(dist_code(8), (5, 1, 1));
        assert_eq!(dist_code(24_577), (29, 13, 0));
        assert_eq!(dist_code(32_768), (29, 13, 8191));
        for d in 1..=32_768 {
            let (code, bits, _) = dist_code(d);
            assert_eq!(bits, u32::from(DIST_EXTRA[code]), "{d}");
        }
    }

    #[test]
    fn adler32_matches_zlib() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        let long = vec![0xFFu8; 100_000];
        let mut a = 1u64;
        let mut b = 0u64;
        for &x in &long {
            a = (a + u64::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(adler32(&long), (b << 16 | a) as u32);
    }

    #[test]
    fn streams_inflate_to_the_input() {
        let cases: Vec<Vec<u8>> = vec![
            b"{}".to_vec(),
            b"{\"a\":1}".to_vec(),
            br#"{"_auth_user_id":"1234567","_auth_user_backend":"django.contrib.auth.backends.ModelBackend","_auth_user_hash":"705d8f9675f5d141680c20ceb39e05ad026064c3af07dc302135783e64af102a","cart":[101,202,303],"theme":"dark"}"#.to_vec(),
            vec![b'x'; 1],
            vec![b'x'; 3],
            vec![b'x'; 259],
            vec![b'x'; 1000],
            vec![b'x'; MAX_INPUT],
            (0..=255u8).collect(),
            (0..MAX_INPUT).map(|i| (i % 251) as u8).collect(),
        ];
        for case in cases {
            round_trip(&case);
        }
    }

    #[test]
    fn random_and_structured_inputs_round_trip() {
        let mut seed = 7;
        for round in 0..400u32 {
            let len = (rng(&mut seed) as usize)
                % if round.is_multiple_of(10) {
                    MAX_INPUT
                } else {
                    600
                };
            // Alphabets from 1 symbol to all bytes; runs copied from earlier in the input.
            let alphabet = 1 + (rng(&mut seed) % 256) as u32;
            let mut input = Vec::with_capacity(len);
            while input.len() < len {
                if input.len() > 4 && rng(&mut seed).is_multiple_of(3) {
                    let from = (rng(&mut seed) as usize) % input.len();
                    let n = ((rng(&mut seed) as usize) % 300).min(len - input.len());
                    for k in 0..n {
                        input.push(input[from + k]);
                    }
                } else {
                    input.push((rng(&mut seed) % u64::from(alphabet)) as u8);
                }
            }
            round_trip(&input);
        }
    }

    #[test]
    fn skewed_frequencies_keep_codes_within_their_length_limits() {
        // Fibonacci frequencies make the deepest unlimited Huffman trees.
        let mut freq = [0u32; LITLEN_SYMBOLS];
        let (mut a, mut b) = (1u32, 1u32);
        for f in freq.iter_mut().take(30) {
            *f = a;
            (a, b) = (b, a.saturating_add(b));
        }
        let code = Code::<LITLEN_SYMBOLS>::build(&freq, 15);
        assert!(code.lens.iter().all(|&l| l <= 15));
        let kraft: u64 = code
            .lens
            .iter()
            .filter(|&&l| l > 0)
            .map(|&l| 1u64 << (15 - l))
            .sum();
        assert_eq!(kraft, 1 << 15, "a complete code");
        let mut small = [0u32; PRECODE_SYMBOLS];
        let (mut a, mut b) = (1u32, 1u32);
        for f in &mut small {
            *f = a;
            (a, b) = (b, a + b);
        }
        let code = Code::<PRECODE_SYMBOLS>::build(&small, 7);
        assert!(code.lens.iter().all(|&l| l <= 7 && l > 0));
    }

    #[test]
    fn an_input_with_a_fibonacci_byte_histogram_round_trips() {
        let mut input = Vec::new();
        let (mut a, mut b) = (1usize, 1usize);
        for byte in 0..20u8 {
            input.extend(std::iter::repeat_n(byte.wrapping_mul(37), a));
            (a, b) = (b, a + b);
            if input.len() > MAX_INPUT / 2 {
                break;
            }
        }
        // Shuffle so that runs do not turn it all into matches.
        let mut seed = 3;
        for i in (1..input.len()).rev() {
            let j = (rng(&mut seed) as usize) % (i + 1);
            input.swap(i, j);
        }
        round_trip(&input);
    }

    #[test]
    fn room_is_respected() {
        let input = vec![b'a'; 500];
        let mut d = Deflate::default();
        let mut out = Vec::new();
        let len = d.zlib(&input, &mut out, usize::MAX).unwrap();
        out.clear();
        assert_eq!(d.zlib(&input, &mut out, len), Some(len));
        out.clear();
        assert_eq!(d.zlib(&input, &mut out, len - 1), None);
    }
}
