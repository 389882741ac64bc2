//! A total byte cursor: every read succeeds, reading zeros once the input is exhausted, so any
//! byte string decodes to some input and libFuzzer never wastes executions on rejected inputs.
//! Here (not in `natsim::fuzzing`) because [`super::fuzz_input`] decodes fuzz inputs with it in
//! every build; the fuzz harnesses use it too.

/// Reads fixed-size fields from the front of a fuzz input.
#[derive(Clone, Debug)]
pub struct ByteReader<'a> {
    data: &'a [u8],
}

impl<'a> ByteReader<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        ByteReader { data }
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, or 0 at the end.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A big-endian u16 (missing bytes read as 0).
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// A big-endian u32 (missing bytes read as 0).
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// A big-endian u64 (missing bytes read as 0).
    pub fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }

    /// Bit 0 of the next byte.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }

    /// The next byte modulo `n` (`n` in 1..=256; 0 is treated as 1).
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.u8()) % n.max(1)
    }

    /// Up to `len` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, len: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(len.min(self.data.len()));
        self.data = tail;
        head
    }

    /// A length-prefixed byte string: `len: u8`, then up to `len` bytes.
    pub fn short_bytes(&mut self) -> &'a [u8] {
        let len = usize::from(self.u8());
        self.bytes(len)
    }
}

/// Appends a length-prefixed byte string as [`ByteReader::short_bytes`] reads it (cut to 255).
pub fn put_short_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let b = &b[..b.len().min(255)];
    out.push(b.len() as u8);
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhausted_input_reads_zeros() {
        let mut r = ByteReader::new(&[1, 2, 3]);
        assert_eq!(r.u16(), 0x0102);
        assert_eq!(r.u16(), 0x0300);
        assert!(r.is_empty());
        assert_eq!(r.u32(), 0);
        assert_eq!(r.bytes(5), &[] as &[u8]);
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn short_bytes_round_trip() {
        let mut out = Vec::new();
        put_short_bytes(&mut out, b"abc");
        out.push(9);
        let mut r = ByteReader::new(&out);
        assert_eq!(r.short_bytes(), b"abc");
        assert_eq!(r.u8(), 9);
    }
}
