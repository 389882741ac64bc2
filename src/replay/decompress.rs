//! Transparent decompression of captures, chosen by magic bytes (never by file name), as
//! Wireshark does: gzip (`1f 8b`, flate2; concatenated members too) and zstd (`28 b5 2f fd`,
//! ruzstd, pure Rust; every frame of a multi-frame file, skippable frames skipped). Other
//! containers are named in the error instead of being called "not a pcap file" (see
//! [`known_unsupported`]).
//!
//! The reader streams: at most one record is buffered whatever the file's size, so a
//! decompression bomb cannot exhaust memory. It could still make a replay run (and write
//! outputs) for a very long time, so decompressed input is refused past
//! [`MAX_DECOMPRESSED_BYTES`]: reading stops with an error naming the limit, and what was read
//! before it is kept, like any capture that ends early.

use std::io::{self, Read};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

/// Most bytes a compressed capture may decompress to: 16 GiB.
pub const MAX_DECOMPRESSED_BYTES: u64 = 16 << 30;

/// How a capture file was compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// gzip (RFC 1952).
    Gzip,
    /// Zstandard (RFC 8878).
    Zstd,
}

impl Compression {
    /// Stable name: `gzip`, `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The first bytes of a stream, put back in front of the rest.
pub type Prefixed<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// A capture stream, decompressed if it was compressed.
pub enum Decoded<R: Read> {
    /// Not compressed.
    Plain(Prefixed<R>),
    /// gzip (boxed: decoder state is large, and made once per file).
    Gzip(Box<Limited<flate2::read::MultiGzDecoder<Prefixed<R>>>>),
    /// zstd.
    Zstd(Box<Limited<ZstdFrames<Prefixed<R>>>>),
}

impl<R: Read> std::fmt::Debug for Decoded<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.compression().map_or("plain", Compression::name);
        write!(f, "Decoded::{name}")
    }
}

impl<R: Read> Decoded<R> {
    /// Looks at the first bytes of `inner` and decompresses if they are a gzip or zstd magic,
    /// allowing at most `limit` decompressed bytes.
    pub fn new(mut inner: R, limit: u64) -> io::Result<Decoded<R>> {
        let mut head = [0u8; 4];
        let mut got = 0;
        // A pipe may hand over fewer bytes per read than the magic has.
        while got < head.len() {
            match inner.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let head = &head[..got];
        let stream = io::Cursor::new(head.to_vec()).chain(inner);
        if head.starts_with(&GZIP_MAGIC) {
            let d = flate2::read::MultiGzDecoder::new(stream);
            return Ok(Decoded::Gzip(Box::new(Limited::new(
                d,
                Compression::Gzip,
                limit,
            ))));
        }
        if head.starts_with(&ZSTD_MAGIC) {
            let d = ZstdFrames::new(stream)?;
            return Ok(Decoded::Zstd(Box::new(Limited::new(
                d,
                Compression::Zstd,
                limit,
            ))));
        }
        Ok(Decoded::Plain(stream))
    }

    /// The compression, if any.
    pub fn compression(&self) -> Option<Compression> {
        match self {
            Decoded::Plain(_) => None,
            Decoded::Gzip(_) => Some(Compression::Gzip),
            Decoded::Zstd(_) => Some(Compression::Zstd),
        }
    }
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoded::Plain(r) => r.read(out),
            Decoded::Gzip(r) => r.read(out),
            Decoded::Zstd(r) => r.read(out),
        }
    }
}

/// Every frame of a zstd stream, one after the other (RFC 8878 §3: a file may hold several
/// frames, e.g. written by `zstd` in parallel mode or by concatenation; skippable frames carry
/// no content). ruzstd's `StreamingDecoder` stops after the first frame.
pub struct ZstdFrames<R: Read> {
    source: R,
    decoder: FrameDecoder,
    /// A frame is being decoded (else the next frame header is due).
    in_frame: bool,
    /// A byte read to see whether another frame follows, not yet handed to the decoder.
    peeked: Option<u8>,
}

/// A decoding error; [`Limited`] names the compression in front of it.
fn zstd_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl<R: Read> ZstdFrames<R> {
    /// Starts decoding; fails if the stream does not begin with a valid frame header.
    pub fn new(source: R) -> io::Result<Self> {
        let mut z = ZstdFrames {
            source,
            decoder: FrameDecoder::new(),
            in_frame: false,
            peeked: None,
        };
        // Not yet behind `Limited`: say which decoder failed.
        match z.next_frame() {
            Ok(true) => Ok(z),
            Ok(false) => Err(zstd_error("zstd: no frame")),
            Err(e) => Err(zstd_error(format!("zstd: {e}"))),
        }
    }

    /// Reads the next frame header, skipping skippable frames; false at the end of the stream.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            if self.peeked.is_none() {
                let mut b = [0u8; 1];
                loop {
                    match self.source.read(&mut b) {
                        Ok(0) => return Ok(false),
                        Ok(_) => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                self.peeked = Some(b[0]);
            }
            let head = self.peeked.take().map(|b| [b]).unwrap_or_default();
            let mut source = io::Cursor::new(head).chain(&mut self.source);
            match self.decoder.reset(&mut source) {
                Ok(()) => {
                    self.in_frame = true;
                    return Ok(true);
                }
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped = io::copy(&mut source.take(u64::from(length)), &mut io::sink())?;
                    if skipped < u64::from(length) {
                        return Err(zstd_error("skippable frame cut short"));
                    }
                }
                Err(e) => return Err(zstd_error(e)),
            }
        }
    }
}

impl<R: Read> Read for ZstdFrames<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame && !self.next_frame()? {
                return Ok(0);
            }
            while self.decoder.can_collect() == 0 && !self.decoder.is_finished() {
                self.decoder
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                    .map_err(zstd_error)?;
            }
            let n = self.decoder.read(out)?;
            if n > 0 {
                return Ok(n);
            }
            // This frame is done (finished and drained): on to the next one.
            self.in_frame = false;
        }
    }
}

/// A decompressor that fails once more than `limit` bytes came out of it.
pub struct Limited<D> {
    inner: D,
    compression: Compression,
    limit: u64,
    produced: u64,
}

impl<D: Read> Limited<D> {
    fn new(inner: D, compression: Compression, limit: u64) -> Self {
        Limited {
            inner,
            compression,
            limit,
            produced: 0,
        }
    }
}

impl<D: Read> Read for Limited<D> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self
            .inner
            .read(out)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.compression.name())))?;
        self.produced += n as u64;
        if self.produced > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} capture decompresses to more than {} bytes, the limit (a compression \
                     bomb, or decompress it yourself)",
                    self.compression.name(),
                    self.limit
                ),
            ));
        }
        Ok(n)
    }
}

/// Names well-known capture or archive formats natsim does not read, from the first bytes.
pub fn known_unsupported(head: &[u8]) -> Option<&'static str> {
    const KNOWN: [(&[u8], &str); 8] = [
        (b"snoop\0\0\0", "Solaris snoop"),
        (b"GMBU", "Microsoft Network Monitor 2.x"),
        (b"RTSS", "Microsoft Network Monitor 1.x"),
        (b"XCP\0", "NetXRay / Windows Sniffer"),
        (
            b"\xfd7zXZ\0",
            "xz-compressed file (decompress it, or use gzip or zstd)",
        ),
        (
            b"BZh",
            "bzip2-compressed file (decompress it, or use gzip or zstd)",
        ),
        (
            b"\x04\x22\x4d\x18",
            "LZ4-compressed file (decompress it, or use gzip or zstd)",
        ),
        (b"PK\x03\x04", "zip archive (extract the capture first)"),
    ];
    KNOWN
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, name)| *name)
}
