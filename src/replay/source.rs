//! A growable read buffer that hands out borrowed records and knows its file offset.
//!
//! pcap-file's own `ReadBuffer` is private and allocates 8 MB per reader up front; this one
//! starts small, grows one chunk at a time only while data keeps arriving, and tracks the
//! absolute file offset for error messages.

use std::io::{self, Read};

/// Most bytes requested from the reader per refill.
const CHUNK_BYTES: usize = 256 * 1024;

/// Size of the first read; later reads double up to [`CHUNK_BYTES`].
const FIRST_READ_BYTES: usize = 4 * 1024;

/// Buffered bytes of a capture stream.
#[derive(Debug)]
pub struct ByteSource<R> {
    inner: R,
    /// Always fully initialised; only `pos..end` holds unconsumed data. Grows, never shrinks,
    /// so refills do not re-zero memory.
    buf: Vec<u8>,
    /// Start of unconsumed data in `buf`.
    pos: usize,
    /// End of valid data in `buf`.
    end: usize,
    /// File offset of `buf[0]`.
    base_offset: u64,
    eof: bool,
}

impl<R: Read> ByteSource<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        ByteSource {
            inner,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            base_offset: 0,
            eof: false,
        }
    }

    /// File offset of the first unconsumed byte.
    pub fn offset(&self) -> u64 {
        self.base_offset + self.pos as u64
    }

    /// Unconsumed buffered bytes.
    pub fn available(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Reads until at least `n` unconsumed bytes are buffered or the stream ends. Returns
    /// whether `n` bytes are available.
    pub fn fill(&mut self, n: usize) -> io::Result<bool> {
        while self.end - self.pos < n && !self.eof {
            if self.pos > 0 {
                // Move the unconsumed tail (less than one record) to the front, so the buffer
                // never grows past the largest record plus one chunk.
                self.buf.copy_within(self.pos..self.end, 0);
                self.base_offset += self.pos as u64;
                self.end -= self.pos;
                self.pos = 0;
            }
            // Grow as data arrives, doubling from a small first read up to one chunk per step,
            // so a short file (or a bogus length field in one) costs little memory.
            let wanted = self.end + self.buf.len().clamp(FIRST_READ_BYTES, CHUNK_BYTES);
            if self.buf.len() < wanted {
                self.buf.resize(wanted, 0);
            }
            let read = loop {
                match self.inner.read(&mut self.buf[self.end..]) {
                    Ok(read) => break read,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            self.end += read;
            self.eof = read == 0;
        }
        Ok(self.end - self.pos >= n)
    }

    /// Marks `n` bytes as consumed (never past the buffered data).
    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }

    /// True if every byte has been consumed and the stream is at its end. Reads to find out.
    pub fn at_end(&mut self) -> io::Result<bool> {
        Ok(!self.fill(1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns one byte per call, to exercise refills at every boundary.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), out.first_mut()) {
                (Some((b, rest)), Some(o)) => {
                    *o = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn fill_consume_offsets() {
        let data: Vec<u8> = (0..=255).collect();
        let mut s = ByteSource::new(Trickle(&data));
        assert!(s.fill(10).unwrap());
        assert_eq!(&s.available()[..3], &[0, 1, 2]);
        s.consume(10);
        assert_eq!(s.offset(), 10);
        assert!(s.fill(200).unwrap());
        assert_eq!(s.available()[0], 10);
        s.consume(200);
        assert_eq!(s.offset(), 210);
        assert!(s.fill(46).unwrap());
        assert!(!s.fill(47).unwrap());
        s.consume(1000); // clamped to the data present
        assert!(s.at_end().unwrap());
        assert!(!s.fill(1).unwrap());
        assert_eq!(s.offset(), 256);
    }
}
