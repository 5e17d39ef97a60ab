//! The Jute primitives: the [`Jute`] trait, the bounded [`Reader`], and the
//! primitive encodings every record is built from.

use thiserror::Error;

/// Why a record could not be decoded. Never a panic: every decoder returns one
/// of these on bad input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("truncated input: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("invalid length {len} at offset {offset}")]
    BadLength { offset: usize, len: i32 },
    #[error("invalid {what} at offset {offset}")]
    Invalid { offset: usize, what: &'static str },
}

/// A cursor over one frame's bytes. Every read checks the remaining length
/// first, so decoding is bounded by the input.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated { offset: self.pos, needed: n - self.remaining() });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        // Java's readBoolean treats any non-zero byte as true.
        Ok(self.take(1)?[0] != 0)
    }

    /// A length-prefixed byte run; `None` for the null length -1.
    pub fn read_buffer(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let offset = self.pos;
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(DecodeError::BadLength { offset, len });
        }
        self.take(len as usize).map(Some)
    }

    /// A length-prefixed string; `None` for null. Invalid UTF-8 (Java may
    /// send CESU-8 for supplementary characters) is decoded lossily rather
    /// than refused, so such a path still gets a ZooKeeper answer.
    pub fn read_ustring(&mut self) -> Result<Option<String>, DecodeError> {
        Ok(self.read_buffer()?.map(|b| match std::str::from_utf8(b) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        }))
    }

    /// A vector count; -1 (null) reads as 0. The count is bounded by the
    /// bytes left (every element takes at least one byte), so a hostile
    /// count cannot make the caller pre-allocate.
    pub fn read_count(&mut self) -> Result<usize, DecodeError> {
        let offset = self.pos;
        let n = self.read_i32()?;
        if n == -1 {
            return Ok(0);
        }
        if n < 0 || n as usize > self.remaining() {
            return Err(DecodeError::BadLength { offset, len: n });
        }
        Ok(n as usize)
    }
}

pub fn write_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn write_buffer(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => write_i32(out, -1),
        Some(b) => {
            write_i32(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

/// A value with a Jute encoding. Implemented for the primitives here and for
/// every record by [`crate::jute_records!`].
pub trait Jute: Sized {
    fn write_to(&self, out: &mut Vec<u8>);
    fn read_from(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// Decodes one value from the start of `bytes`; trailing bytes are
    /// ignored, as ZooKeeper ignores them.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::read_from(&mut Reader::new(bytes))
    }
}

impl Jute for i32 {
    fn write_to(&self, out: &mut Vec<u8>) {
        write_i32(out, *self)
    }
    fn read_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}

impl Jute for i64 {
    fn write_to(&self, out: &mut Vec<u8>) {
        write_i64(out, *self)
    }
    fn read_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
}

impl Jute for bool {
    fn write_to(&self, out: &mut Vec<u8>) {
        out.push(*self as u8)
    }
    fn read_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
}

/// `ustring`, null read as empty.
impl Jute for String {
    fn write_to(&self, out: &mut Vec<u8>) {
        write_buffer(out, Some(self.as_bytes()))
    }
    fn read_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.read_ustring()?.unwrap_or_default())
    }
}

/// `ustring`, null preserved.
impl Jute for Option<String> {
    fn write_to(&self, out: &mut Vec<u8>) {
        write_buffer(out, self.as_ref().map(|s| s.as_bytes()))
    }
    fn read_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_ustring()
    }
}

/// `buffer`, null read as empty.
impl Jute for Vec<u8> {
    fn write_to(&self, out: &mut Vec<u8>) {
        write_buffer(out, Some(self))
    }
    fn read_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.read_buffer()?.map(|b| b.to_vec()).unwrap_or_default())
    }
}

/// `buffer`, null preserved (znode data: Kafka creates znodes with null data).
impl Jute for Option<Vec<u8>> {
    fn write_to(&self, out: &mut Vec<u8>) {
        write_buffer(out, self.as_deref())
    }
    fn read_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.read_buffer()?.map(|b| b.to_vec()))
    }
}

/// Marker for element types of a Jute `vector` (everything but bytes, which
/// are a `buffer`).
pub trait VectorElement: Jute {}
impl VectorElement for i32 {}
impl VectorElement for i64 {}
impl VectorElement for String {}

/// `vector<T>`; null reads as empty.
impl<T: VectorElement> Jute for Vec<T> {
    fn write_to(&self, out: &mut Vec<u8>) {
        write_i32(out, self.len() as i32);
        for e in self {
            e.write_to(out);
        }
    }
    fn read_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.read_count()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(T::read_from(r)?);
        }
        Ok(v)
    }
}

/// A small deterministic generator for property tests: records are sampled
/// from a seed that proptest chooses, so a failing case is reproducible.
pub struct SampleRng(u64);

impl SampleRng {
    pub fn new(seed: u64) -> Self {
        SampleRng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0 | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A value that property tests can generate.
pub trait Sample {
    fn sample(rng: &mut SampleRng) -> Self;
}

impl Sample for i32 {
    fn sample(rng: &mut SampleRng) -> Self {
        match rng.below(4) {
            0 => 0,
            1 => -1,
            _ => rng.next_u64() as i32,
        }
    }
}
impl Sample for i64 {
    fn sample(rng: &mut SampleRng) -> Self {
        match rng.below(4) {
            0 => 0,
            1 => -1,
            _ => rng.next_u64() as i64,
        }
    }
}
impl Sample for bool {
    fn sample(rng: &mut SampleRng) -> Self {
        rng.below(2) == 1
    }
}
impl Sample for String {
    fn sample(rng: &mut SampleRng) -> Self {
        const ALPHABET: &[&str] = &["/", "a", "z", "0", "-", "_", ".", "é", "ü", "中", "🦀", ":"];
        let n = rng.below(12);
        (0..n).map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize]).collect()
    }
}
impl Sample for Option<String> {
    fn sample(rng: &mut SampleRng) -> Self {
        (rng.below(5) != 0).then(|| String::sample(rng))
    }
}
impl Sample for Vec<u8> {
    fn sample(rng: &mut SampleRng) -> Self {
        let n = rng.below(40);
        (0..n).map(|_| rng.next_u64() as u8).collect()
    }
}
impl Sample for Option<Vec<u8>> {
    fn sample(rng: &mut SampleRng) -> Self {
        (rng.below(5) != 0).then(|| Vec::<u8>::sample(rng))
    }
}
impl<T: VectorElement + Sample> Sample for Vec<T> {
    fn sample(rng: &mut SampleRng) -> Self {
        let n = rng.below(5);
        (0..n).map(|_| T::sample(rng)).collect()
    }
}
