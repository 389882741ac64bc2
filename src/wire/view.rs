//! Typed views of header fields over borrowed bytes, in smoltcp's view/repr split: a view reads
//! and writes fields of a buffer in place (no copy, no allocation), a repr
//! ([`crate::wire::repr`]) is an owned, parsed value.
//!
//! Every field sits at a fixed offset of the header the view starts at. `new_checked` makes sure
//! the whole fixed header is there; `new_unchecked` is for a header that parsing already sized
//! (or a quoted, cut one whose callers read only the fields present): reading a field past the
//! end of the buffer panics. Setters do not touch checksums; [`crate::wire::rewrite`] keeps them
//! right incrementally and [`crate::wire::checksum`] recomputes them.

/// Reads a big-endian u16 at `at`.
#[inline]
fn get16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads a big-endian u32 at `at`.
#[inline]
fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn set16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

macro_rules! view {
    ($(#[$doc:meta])* $name:ident, $min:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name<T>(T);

        impl<T: AsRef<[u8]>> $name<T> {
            /// Length of the fixed header.
            pub const HEADER_LEN: usize = $min;

            /// A view of `buf`, or `None` when it is shorter than the fixed header.
            #[inline]
            pub fn new_checked(buf: T) -> Option<Self> {
                (buf.as_ref().len() >= $min).then_some($name(buf))
            }

            /// A view of `buf` without a length check (see the module documentation).
            #[inline]
            pub fn new_unchecked(buf: T) -> Self {
                $name(buf)
            }

            /// The underlying bytes.
            #[inline]
            pub fn into_inner(self) -> T {
                self.0
            }
        }
    };
}

view!(
    /// A TCP header (RFC 9293) at the start of the buffer.
    TcpView,
    20
);
view!(
    /// A UDP header (RFC 768) at the start of the buffer.
    UdpView,
    8
);
view!(
    /// An ICMP or ICMPv6 message at the start of the buffer (type, code, checksum, then the four
    /// bytes that are identifier and sequence number for echo messages).
    IcmpView,
    8
);
view!(
    /// An IPv4 header (RFC 791) at the start of the buffer.
    Ipv4View,
    20
);
view!(
    /// An IPv6 fixed header (RFC 8200) at the start of the buffer.
    Ipv6View,
    40
);

impl<T: AsRef<[u8]>> TcpView<T> {
    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get16(self.0.as_ref(), 0)
    }
    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get16(self.0.as_ref(), 2)
    }
    /// Sequence number.
    #[inline]
    pub fn seq(&self) -> u32 {
        get32(self.0.as_ref(), 4)
    }
    /// Acknowledgement number.
    #[inline]
    pub fn ack(&self) -> u32 {
        get32(self.0.as_ref(), 8)
    }
    /// Header length in bytes (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.0.as_ref()[12] >> 4) * 4
    }
    /// Flags ([`crate::wire::tcp_flags`]).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.0.as_ref()[13]
    }
    /// Window.
    #[inline]
    pub fn window(&self) -> u16 {
        get16(self.0.as_ref(), 14)
    }
    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.0.as_ref(), 16)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpView<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        set16(self.0.as_mut(), 0, v);
    }
    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        set16(self.0.as_mut(), 2, v);
    }
}

impl<T: AsRef<[u8]>> UdpView<T> {
    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get16(self.0.as_ref(), 0)
    }
    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get16(self.0.as_ref(), 2)
    }
    /// Length field (header and payload).
    #[inline]
    pub fn len(&self) -> u16 {
        get16(self.0.as_ref(), 4)
    }
    /// True when the length field says zero bytes (never valid: the header alone is 8).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Checksum field (0 over IPv4: no checksum).
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.0.as_ref(), 6)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpView<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        set16(self.0.as_mut(), 0, v);
    }
    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        set16(self.0.as_mut(), 2, v);
    }
}

impl<T: AsRef<[u8]>> IcmpView<T> {
    /// Message type ([`crate::wire::icmp`] classifies it).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.0.as_ref()[0]
    }
    /// Code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.0.as_ref()[1]
    }
    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.0.as_ref(), 2)
    }
    /// Echo identifier (bytes 4..6).
    #[inline]
    pub fn ident(&self) -> u16 {
        get16(self.0.as_ref(), 4)
    }
    /// Echo sequence number (bytes 6..8).
    #[inline]
    pub fn seq_no(&self) -> u16 {
        get16(self.0.as_ref(), 6)
    }
    /// The bytes after the 8-byte header: echo data, or the packet an error quotes.
    #[inline]
    pub fn body(&self) -> &[u8] {
        &self.0.as_ref()[8..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpView<T> {
    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, v: u8) {
        self.0.as_mut()[0] = v;
    }
    /// Sets the echo identifier.
    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        set16(self.0.as_mut(), 4, v);
    }
}

impl<T: AsRef<[u8]>> Ipv4View<T> {
    /// DSCP and ECN.
    #[inline]
    pub fn tos(&self) -> u8 {
        self.0.as_ref()[1]
    }
    /// Total length field.
    #[inline]
    pub fn total_len(&self) -> u16 {
        get16(self.0.as_ref(), 2)
    }
    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        get16(self.0.as_ref(), 4)
    }
    /// Flags and fragment offset word (DF 0x4000, MF 0x2000, offset in 8-byte units).
    #[inline]
    pub fn flags_fragment(&self) -> u16 {
        get16(self.0.as_ref(), 6)
    }
    /// True when the packet is a fragment (MF set or a non-zero offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_fragment() & 0x3fff != 0
    }
    /// TTL.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.0.as_ref()[8]
    }
    /// Protocol.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.0.as_ref()[9]
    }
    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.0.as_ref(), 10)
    }
}

impl<T: AsRef<[u8]>> Ipv6View<T> {
    /// Traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        ((get16(self.0.as_ref(), 0) >> 4) & 0xFF) as u8
    }
    /// Payload length field.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        get16(self.0.as_ref(), 4)
    }
    /// Next header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.0.as_ref()[6]
    }
    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.0.as_ref()[7]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PacketRepr;

    #[test]
    fn views_read_what_the_repr_wrote() {
        let a = "10.0.0.1".parse().expect("address");
        let b = "8.8.8.8".parse().expect("address");
        let p = PacketRepr::tcp((a, 1000), (b, 80), 0x12, 7, 9, b"xy").emit();
        let ip = Ipv4View::new_checked(&p[..]).expect("ipv4");
        assert_eq!((ip.total_len(), ip.ttl(), ip.protocol()), (42, 64, 6));
        let mut t = TcpView::new_checked(p[20..].to_vec()).expect("tcp");
        assert_eq!(
            (t.src_port(), t.dst_port(), t.seq(), t.ack()),
            (1000, 80, 7, 9)
        );
        assert_eq!((t.flags(), t.header_len(), t.window()), (0x12, 20, 65535));
        t.set_dst_port(443);
        assert_eq!(t.dst_port(), 443);
        assert!(TcpView::new_checked(&p[..19]).is_none());

        let e = PacketRepr::echo_request(a, b, 77, 3, b"d").emit();
        let mut i = IcmpView::new_checked(e[20..].to_vec()).expect("icmp");
        assert_eq!(
            (i.msg_type(), i.code(), i.ident(), i.seq_no()),
            (8, 0, 77, 3)
        );
        assert_eq!(i.body(), b"d");
        i.set_ident(5);
        i.set_msg_type(0);
        assert_eq!((i.msg_type(), i.ident()), (0, 5));

        let u = PacketRepr::udp((a, 53), (b, 5353), b"abc").emit();
        let v = UdpView::new_checked(&u[20..]).expect("udp");
        assert_eq!((v.src_port(), v.dst_port(), v.len()), (53, 5353, 11));
        assert!(v.checksum() != 0 && !v.is_empty());
    }
}
