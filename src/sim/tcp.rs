//! A small TCP endpoint for simulated hosts: three-way handshake, data in MSS-sized segments with
//! a fixed window, cumulative ACKs, go-back-N retransmission on a doubling RTO, FIN close from
//! both sides, RST abort, and keepalive probes. It is deliberately simple (no congestion control,
//! no out-of-order buffering, no TIME_WAIT timer): enough to exercise a NAT's TCP tracking under
//! loss, reordering and faults.

use std::net::SocketAddr;

use super::packet::{Tuple, build_tcp};
use crate::wire::tcp_flags::{ACK, FIN, PSH, RST, SYN};

/// The receive window every segment advertises (the builder writes 0xFFFF, no scaling).
const RECEIVE_WINDOW_BYTES: u32 = 0xFFFF;

/// Segment payload size.
pub const MSS_BYTES: u64 = 1200;
/// Segments in flight.
const WINDOW_SEGMENTS: u64 = 8;

/// Connection state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpState {
    /// Client sent SYN.
    SynSent,
    /// Server answered SYN-ACK.
    SynReceived,
    /// Open.
    Established,
    /// Our FIN sent, theirs not yet received.
    FinWait,
    /// Their FIN received, ours not yet sent or acknowledged.
    CloseWait,
    /// Closed after both FINs were acknowledged.
    Closed,
    /// Ended by RST (sent or received).
    Reset,
    /// Gave up after too many retransmissions.
    TimedOut,
}

/// How a client ends its connection.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CloseMode {
    /// FIN handshake.
    Fin,
    /// Abort with RST.
    Rst,
    /// Leave it open (the NAT's idle timer ends it).
    None,
}

/// One TCP endpoint (client or server side).
#[derive(Clone, Debug)]
pub struct TcpEndpoint {
    /// Local endpoint.
    pub local: SocketAddr,
    /// Remote endpoint (the NAT address as a server sees it).
    pub remote: SocketAddr,
    /// State.
    pub state: TcpState,
    iss: u32,
    snd_una: u64,
    snd_nxt: u64,
    /// Bytes (relative to ISS + 1) the application queued, including a final FIN when set.
    snd_end: u64,
    /// A PSH marks the last byte queued so far (end of a request/response).
    psh_at: u64,
    fin_queued: bool,
    irs: u32,
    rcv_nxt: u64,
    their_fin: bool,
    /// Payload bytes received in order.
    pub bytes_received: u64,
    /// True once a PSH-marked segment arrived (a complete request/response).
    pub got_push: bool,
    rto_ns: u64,
    rto_initial_ns: u64,
    /// Retransmission timeouts in a row.
    pub retries: u32,
    max_retries: u32,
    /// Deadline of the armed retransmission timer.
    pub timer_at_ns: Option<u64>,
    /// Segments retransmitted.
    pub retransmits: u64,
    /// Largest segment payload; path-MTU discovery lowers it.
    pub mss_bytes: u64,
    /// Segments go out with Don't Fragment set (IPv4).
    pub dont_fragment: bool,
}

/// Segment options of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentOptions {
    /// Largest segment payload to start with.
    pub mss_bytes: u64,
    /// Set Don't Fragment on IPv4 segments (path-MTU discovery, RFC 1191).
    pub dont_fragment: bool,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            mss_bytes: MSS_BYTES,
            dont_fragment: false,
        }
    }
}

/// What the endpoint asks the host to do after an input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOutput {
    /// Segments to send were written into the caller's list.
    pub sent: u32,
    /// The state changed to a terminal one on this input.
    pub finished: bool,
}

impl TcpEndpoint {
    fn new(local: SocketAddr, remote: SocketAddr, iss: u32, rto_ms: u64, max_retries: u32) -> Self {
        TcpEndpoint {
            local,
            remote,
            state: TcpState::SynSent,
            iss,
            snd_una: 0,
            snd_nxt: 0,
            snd_end: 0,
            psh_at: 0,
            fin_queued: false,
            irs: 0,
            rcv_nxt: 0,
            their_fin: false,
            bytes_received: 0,
            got_push: false,
            rto_ns: rto_ms * 1_000_000,
            rto_initial_ns: rto_ms * 1_000_000,
            retries: 0,
            max_retries,
            timer_at_ns: None,
            retransmits: 0,
            mss_bytes: MSS_BYTES,
            dont_fragment: false,
        }
    }

    fn with_options(mut self, o: SegmentOptions) -> Self {
        self.mss_bytes = o.mss_bytes.max(1);
        self.dont_fragment = o.dont_fragment;
        self
    }

    /// Sets DF on a segment just built when the endpoint asks for it.
    fn finish(&self, b: &mut Vec<u8>, out: &mut Vec<Vec<u8>>) {
        if self.dont_fragment {
            crate::wire::build::set_dont_fragment(b);
        }
        out.push(std::mem::take(b));
    }

    /// A router found a segment too big for the path (Fragmentation Needed or Packet Too Big
    /// with `mtu`): segments shrink to fit it, and what is not yet acknowledged goes again at
    /// once in the new size (RFC 1191 §6.3, RFC 8201 §5.4). An `mtu` that would not shrink them
    /// changes nothing.
    pub fn on_packet_too_big(
        &mut self,
        mtu: u64,
        now_ns: u64,
        out: &mut Vec<Vec<u8>>,
        pool: &mut Vec<Vec<u8>>,
    ) -> TcpOutput {
        let headers = if self.local.is_ipv4() { 40 } else { 60 };
        let mss = mtu.saturating_sub(headers).max(8);
        if mss >= self.mss_bytes || self.is_done() {
            return TcpOutput::default();
        }
        self.mss_bytes = mss;
        let before = out.len();
        if self.snd_nxt > self.snd_una.max(1) {
            self.snd_nxt = self.snd_una.max(1);
            self.pump(now_ns, out, pool);
            self.retransmits += (out.len() - before) as u64;
        }
        TcpOutput {
            sent: (out.len() - before) as u32,
            finished: false,
        }
    }

    /// A client that sends SYN now (the caller sends what `out` receives).
    // The arguments are the connection's identity and timer settings plus the I/O scratch;
    // bundling them would only move the list into a struct literal at the two call sites.
    #[allow(clippy::too_many_arguments)]
    pub fn connect(
        local: SocketAddr,
        remote: SocketAddr,
        iss: u32,
        rto_ms: u64,
        max_retries: u32,
        options: SegmentOptions,
        now_ns: u64,
        out: &mut Vec<Vec<u8>>,
        pool: &mut Vec<Vec<u8>>,
    ) -> Self {
        let mut t = Self::new(local, remote, iss, rto_ms, max_retries).with_options(options);
        t.snd_nxt = 1;
        t.snd_una = 0;
        t.send_syn(out, pool, false);
        t.timer_at_ns = Some(now_ns + t.rto_ns);
        t
    }

    /// A server answering the SYN `syn` with SYN-ACK.
    #[allow(clippy::too_many_arguments)]
    pub fn accept(
        local: SocketAddr,
        syn: &Tuple,
        iss: u32,
        rto_ms: u64,
        max_retries: u32,
        options: SegmentOptions,
        now_ns: u64,
        out: &mut Vec<Vec<u8>>,
        pool: &mut Vec<Vec<u8>>,
    ) -> Self {
        let mut t =
            Self::new(local, syn.src_addr(), iss, rto_ms, max_retries).with_options(options);
        t.state = TcpState::SynReceived;
        t.irs = syn.seq;
        t.rcv_nxt = 1;
        t.snd_nxt = 1;
        t.send_syn(out, pool, true);
        t.timer_at_ns = Some(now_ns + t.rto_ns);
        t
    }

    /// True in a terminal state.
    pub fn is_done(&self) -> bool {
        matches!(
            self.state,
            TcpState::Closed | TcpState::Reset | TcpState::TimedOut
        )
    }

    /// True while data can be queued.
    pub fn is_open(&self) -> bool {
        matches!(self.state, TcpState::Established | TcpState::CloseWait)
    }

    /// All queued data (and FIN) acknowledged.
    pub fn all_acked(&self) -> bool {
        self.snd_una >= self.snd_end.max(1)
    }

    fn seq(&self, rel: u64) -> u32 {
        self.iss.wrapping_add(rel as u32)
    }

    fn ack_no(&self) -> u32 {
        self.irs.wrapping_add(self.rcv_nxt as u32)
    }

    /// RFC 793 §3.4 "Reset Processing": in SYN-SENT an RST counts only if it acknowledges our
    /// SYN; in every other state only if its sequence number is in the receive window (the
    /// 65,535 bytes every segment advertises). Others are dropped, so a blind RST from outside
    /// the window does not end the connection (RFC 5961 §3).
    fn rst_acceptable(&self, seg: &Tuple) -> bool {
        if self.state == TcpState::SynSent {
            return seg.tcp_flags & ACK != 0 && seg.ack == self.seq(1);
        }
        seg.seq.wrapping_sub(self.ack_no()) < RECEIVE_WINDOW_BYTES
    }

    /// A SYN-ACK acknowledged our SYN: established, the retransmission timer reset, and ACKed.
    fn our_syn_acked(&mut self, out: &mut Vec<Vec<u8>>, pool: &mut Vec<Vec<u8>>) {
        self.snd_una = 1;
        self.state = TcpState::Established;
        self.timer_at_ns = None;
        self.retries = 0;
        self.rto_ns = self.rto_initial_ns;
        self.send_ack(out, pool);
    }

    /// Our SYN crossed the peer's: answer with SYN-ACK (our SYN again, acknowledging theirs)
    /// and wait in SYN-RECEIVED for their acknowledgement of ours.
    fn simultaneous_open(&mut self, seg: &Tuple, out: &mut Vec<Vec<u8>>, pool: &mut Vec<Vec<u8>>) {
        self.irs = seg.seq;
        self.rcv_nxt = 1;
        self.state = TcpState::SynReceived;
        self.send_syn(out, pool, true);
    }

    fn buf(pool: &mut Vec<Vec<u8>>) -> Vec<u8> {
        pool.pop().unwrap_or_default()
    }

    fn send_syn(&mut self, out: &mut Vec<Vec<u8>>, pool: &mut Vec<Vec<u8>>, synack: bool) {
        let mut b = Self::buf(pool);
        let (flags, ack) = if synack {
            (SYN | ACK, self.ack_no())
        } else {
            (SYN, 0)
        };
        build_tcp(&mut b, self.local, self.remote, flags, self.seq(0), ack, 0);
        self.finish(&mut b, out);
    }

    fn send_ack(&self, out: &mut Vec<Vec<u8>>, pool: &mut Vec<Vec<u8>>) {
        let mut b = Self::buf(pool);
        let seq = self.seq(self.snd_nxt);
        build_tcp(&mut b, self.local, self.remote, ACK, seq, self.ack_no(), 0);
        self.finish(&mut b, out);
    }

    /// Sends an RST and ends the connection.
    pub fn abort(&mut self, out: &mut Vec<Vec<u8>>, pool: &mut Vec<Vec<u8>>) {
        let mut b = Self::buf(pool);
        let seq = self.seq(self.snd_nxt);
        build_tcp(
            &mut b,
            self.local,
            self.remote,
            RST | ACK,
            seq,
            self.ack_no(),
            0,
        );
        self.finish(&mut b, out);
        self.state = TcpState::Reset;
        self.timer_at_ns = None;
    }

    /// Queues `bytes` of data, the last segment marked PSH.
    pub fn write(
        &mut self,
        bytes: u64,
        now_ns: u64,
        out: &mut Vec<Vec<u8>>,
        pool: &mut Vec<Vec<u8>>,
    ) {
        if bytes == 0 || self.fin_queued {
            return;
        }
        self.snd_end = self.snd_end.max(1) + bytes;
        self.psh_at = self.snd_end;
        self.pump(now_ns, out, pool);
    }

    /// Queues a FIN after the data.
    pub fn close(&mut self, now_ns: u64, out: &mut Vec<Vec<u8>>, pool: &mut Vec<Vec<u8>>) {
        if self.fin_queued || self.is_done() {
            return;
        }
        self.fin_queued = true;
        self.snd_end = self.snd_end.max(1) + 1;
        if self.state == TcpState::Established {
            self.state = TcpState::FinWait;
        }
        self.pump(now_ns, out, pool);
    }

    /// Sends new segments allowed by the window.
    fn pump(&mut self, now_ns: u64, out: &mut Vec<Vec<u8>>, pool: &mut Vec<Vec<u8>>) {
        if !matches!(
            self.state,
            TcpState::Established | TcpState::FinWait | TcpState::CloseWait
        ) {
            return;
        }
        let limit = self.snd_una.max(1) + WINDOW_SEGMENTS * MSS_BYTES;
        let data_end = if self.fin_queued {
            self.snd_end - 1
        } else {
            self.snd_end
        };
        while self.snd_nxt < data_end.min(limit) {
            let len = (data_end - self.snd_nxt).min(self.mss_bytes);
            let mut flags = ACK;
            if self.snd_nxt + len == self.psh_at {
                flags |= PSH;
            }
            let mut b = Self::buf(pool);
            let (seq, ack) = (self.seq(self.snd_nxt), self.ack_no());
            build_tcp(
                &mut b,
                self.local,
                self.remote,
                flags,
                seq,
                ack,
                len as usize,
            );
            self.finish(&mut b, out);
            self.snd_nxt += len;
        }
        if self.fin_queued && self.snd_nxt == data_end && self.snd_nxt < self.snd_end {
            let mut b = Self::buf(pool);
            let (seq, ack) = (self.seq(self.snd_nxt), self.ack_no());
            build_tcp(&mut b, self.local, self.remote, FIN | ACK, seq, ack, 0);
            self.finish(&mut b, out);
            self.snd_nxt += 1;
        }
        if self.snd_nxt > self.snd_una && self.timer_at_ns.is_none() {
            self.timer_at_ns = Some(now_ns + self.rto_ns);
        }
    }

    /// Handles a segment addressed to this endpoint.
    pub fn input(
        &mut self,
        seg: &Tuple,
        now_ns: u64,
        out: &mut Vec<Vec<u8>>,
        pool: &mut Vec<Vec<u8>>,
    ) -> TcpOutput {
        let before = out.len();
        if self.state == TcpState::Closed && seg.tcp_flags & FIN != 0 {
            // TIME_WAIT duty: our last ACK was lost and the peer retransmitted its FIN.
            self.send_ack(out, pool);
            return TcpOutput {
                sent: 1,
                finished: false,
            };
        }
        if self.is_done() {
            return TcpOutput::default();
        }
        if seg.tcp_flags & RST != 0 {
            if !self.rst_acceptable(seg) {
                return TcpOutput::default();
            }
            self.state = TcpState::Reset;
            self.timer_at_ns = None;
            return TcpOutput {
                sent: 0,
                finished: true,
            };
        }
        match self.state {
            TcpState::SynSent if seg.tcp_flags & (SYN | ACK) == SYN => {
                // Simultaneous open (RFC 793 §3.4, figure 8): the peer's SYN crossed ours.
                self.simultaneous_open(seg, out, pool);
            }
            TcpState::SynSent => {
                if seg.tcp_flags & (SYN | ACK) == SYN | ACK && seg.ack == self.seq(1) {
                    self.irs = seg.seq;
                    self.rcv_nxt = 1;
                    self.our_syn_acked(out, pool);
                }
            }
            TcpState::SynReceived
                if seg.tcp_flags & (SYN | ACK) == SYN | ACK && seg.ack == self.seq(1) =>
            {
                // Simultaneous open: the peer's SYN-ACK acknowledges our SYN.
                self.our_syn_acked(out, pool);
            }
            TcpState::SynReceived if seg.tcp_flags & SYN != 0 => {
                // Our SYN-ACK was lost: the client retransmitted its SYN.
                self.send_syn(out, pool, true);
            }
            _ => {
                if seg.tcp_flags & SYN != 0 {
                    // A retransmitted SYN-ACK: our ACK was lost.
                    self.send_ack(out, pool);
                } else {
                    self.on_segment(seg, now_ns, out, pool);
                }
            }
        }
        TcpOutput {
            sent: (out.len() - before) as u32,
            finished: self.is_done(),
        }
    }

    /// Sequence number relative to the initial one: simulated connections never carry 4 GiB,
    /// so the wrapping offset is unambiguous.
    fn rel(base: u32, v: u32) -> u64 {
        u64::from(v.wrapping_sub(base))
    }

    fn on_segment(
        &mut self,
        seg: &Tuple,
        now_ns: u64,
        out: &mut Vec<Vec<u8>>,
        pool: &mut Vec<Vec<u8>>,
    ) {
        if self.state == TcpState::SynReceived && seg.tcp_flags & ACK != 0 {
            self.state = TcpState::Established;
            self.snd_una = 1;
            self.timer_at_ns = None;
            self.retries = 0;
        }
        if seg.tcp_flags & ACK != 0 {
            let ack = Self::rel(self.iss, seg.ack);
            if ack > self.snd_una && ack <= self.snd_nxt {
                self.snd_una = ack;
                self.retries = 0;
                self.rto_ns = self.rto_initial_ns;
                self.timer_at_ns = (self.snd_una < self.snd_nxt).then_some(now_ns + self.rto_ns);
            }
        }
        let seq = Self::rel(self.irs, seg.seq);
        let len = seg.payload_len as u64;
        let fin = seg.tcp_flags & FIN != 0;
        let mut must_ack = false;
        if len > 0 || fin {
            must_ack = true;
            if seq == self.rcv_nxt && !self.their_fin {
                self.rcv_nxt += len;
                self.bytes_received += len;
                if seg.tcp_flags & PSH != 0 {
                    self.got_push = true;
                }
                if fin {
                    self.rcv_nxt += 1;
                    self.their_fin = true;
                    if self.state == TcpState::Established {
                        self.state = TcpState::CloseWait;
                    }
                }
            }
        }
        self.pump(now_ns, out, pool);
        if self.fin_queued && self.their_fin && self.all_acked() {
            self.state = TcpState::Closed;
            self.timer_at_ns = None;
        }
        if must_ack {
            self.send_ack(out, pool);
        }
    }

    /// The retransmission timer fired at `now_ns` (the caller checks `timer_at_ns`).
    pub fn on_timer(
        &mut self,
        now_ns: u64,
        out: &mut Vec<Vec<u8>>,
        pool: &mut Vec<Vec<u8>>,
    ) -> TcpOutput {
        let before = out.len();
        if self.is_done() || self.timer_at_ns.is_none_or(|t| t > now_ns) {
            return TcpOutput::default();
        }
        self.timer_at_ns = None;
        self.retries += 1;
        if self.retries > self.max_retries {
            self.state = TcpState::TimedOut;
            return TcpOutput {
                sent: 0,
                finished: true,
            };
        }
        self.rto_ns = self.rto_ns.saturating_mul(2).min(60_000_000_000);
        match self.state {
            TcpState::SynSent => self.send_syn(out, pool, false),
            TcpState::SynReceived => self.send_syn(out, pool, true),
            _ => {
                // Go-back-N from the oldest unacknowledged byte.
                self.retransmits += 1;
                self.snd_nxt = self.snd_una.max(1);
                self.pump(now_ns, out, pool);
            }
        }
        if self.timer_at_ns.is_none() {
            self.timer_at_ns = Some(now_ns + self.rto_ns);
        }
        TcpOutput {
            sent: (out.len() - before) as u32,
            finished: false,
        }
    }

    /// Sends a one-byte keepalive probe (data, so the peer ACKs and the NAT sees traffic both
    /// ways).
    pub fn keepalive(&mut self, now_ns: u64, out: &mut Vec<Vec<u8>>, pool: &mut Vec<Vec<u8>>) {
        if self.is_open() && !self.fin_queued {
            self.snd_end = self.snd_end.max(1) + 1;
            self.pump(now_ns, out, pool);
        }
    }

    /// The server's next sequence number (for in-window RST injection by an adversary).
    pub fn next_seq(&self) -> u32 {
        self.seq(self.snd_nxt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    /// A client with the default options, its SYN sent at time 0.
    fn client(
        local: SocketAddr,
        remote: SocketAddr,
        iss: u32,
        out: &mut Vec<Vec<u8>>,
        pool: &mut Vec<Vec<u8>>,
    ) -> TcpEndpoint {
        let o = SegmentOptions::default();
        TcpEndpoint::connect(local, remote, iss, 200, 6, o, 0, out, pool)
    }

    /// Shuttles segments between two endpoints, dropping the `drop`-th segment overall.
    fn exchange(drop: Option<usize>) -> (TcpEndpoint, TcpEndpoint) {
        let (mut out, mut pool) = (Vec::new(), Vec::new());
        let c_addr = sa("10.0.0.1:40000");
        let s_addr = sa("198.51.100.1:80");
        let mut c = client(c_addr, s_addr, 1000, &mut out, &mut pool);
        let mut s: Option<TcpEndpoint> = None;
        let mut now = 0u64;
        let mut n = 0usize;
        let mut wrote = false;
        let mut served = false;
        for _ in 0..10_000 {
            let batch: Vec<Vec<u8>> = std::mem::take(&mut out);
            if batch.is_empty() {
                now += 100_000_000;
                let mut o2 = Vec::new();
                c.on_timer(now, &mut o2, &mut pool);
                if let Some(s) = s.as_mut() {
                    s.on_timer(now, &mut o2, &mut pool);
                }
                out = o2;
                if out.is_empty() && c.is_done() {
                    break;
                }
                continue;
            }
            for p in batch {
                n += 1;
                if Some(n) == drop {
                    continue;
                }
                let t = Tuple::parse(&p).expect("segment");
                if t.dst_addr() == c_addr {
                    c.input(&t, now, &mut out, &mut pool);
                } else if let Some(s) = s.as_mut() {
                    s.input(&t, now, &mut out, &mut pool);
                } else {
                    s = Some(TcpEndpoint::accept(
                        s_addr,
                        &t,
                        5000,
                        200,
                        6,
                        SegmentOptions::default(),
                        now,
                        &mut out,
                        &mut pool,
                    ));
                }
            }
            if c.state == TcpState::Established && !wrote {
                wrote = true;
                c.write(3000, now, &mut out, &mut pool);
            }
            if let Some(s) = s.as_mut()
                && s.got_push
                && !served
            {
                served = true;
                s.write(5000, now, &mut out, &mut pool);
                s.close(now, &mut out, &mut pool);
            }
            if c.bytes_received == 5000 && c.state == TcpState::CloseWait {
                c.close(now, &mut out, &mut pool);
            }
        }
        (c, s.expect("server exists"))
    }

    /// A server endpoint that has seen the SYN with sequence 5000, and an RST to it.
    fn server_and_rst(
        seq: u32,
        out: &mut Vec<Vec<u8>>,
        pool: &mut Vec<Vec<u8>>,
    ) -> (TcpEndpoint, Tuple) {
        let (c_addr, s_addr) = (sa("10.0.0.1:40000"), sa("198.51.100.1:80"));
        let mut syn = Vec::new();
        crate::sim::packet::build_tcp(&mut syn, c_addr, s_addr, SYN, 5000, 0, 0);
        let syn = Tuple::parse(&syn).expect("syn");
        let s = TcpEndpoint::accept(
            s_addr,
            &syn,
            9000,
            200,
            6,
            SegmentOptions::default(),
            0,
            out,
            pool,
        );
        let mut rst = Vec::new();
        crate::sim::packet::build_tcp(&mut rst, c_addr, s_addr, RST, seq, 0, 0);
        (s, Tuple::parse(&rst).expect("rst"))
    }

    #[test]
    fn an_rst_outside_the_receive_window_is_ignored_and_one_inside_it_resets() {
        let (mut out, mut pool) = (Vec::new(), Vec::new());
        // The next expected sequence number is 5001; the window is 65,535 bytes from there.
        for (seq, resets) in [
            (5001, true),
            (5001 + 65_534, true),
            (5001 + 65_535, false),
            (5000, false),
            (5001u32.wrapping_add(1_000_000), false),
        ] {
            let (mut s, rst) = server_and_rst(seq, &mut out, &mut pool);
            let o = s.input(&rst, 1, &mut out, &mut pool);
            assert_eq!(o.finished, resets, "seq {seq}");
            assert_eq!(s.state == TcpState::Reset, resets, "seq {seq}");
        }
    }

    #[test]
    fn crossing_syns_open_the_connection_on_both_sides() {
        let (mut out, mut pool) = (Vec::new(), Vec::new());
        let (a_addr, b_addr) = (sa("10.0.0.1:40000"), sa("198.51.100.1:5000"));
        let mut a = client(a_addr, b_addr, 1000, &mut out, &mut pool);
        let mut b = client(b_addr, a_addr, 7000, &mut out, &mut pool);
        // Deliver every segment to the other side until nothing is left to send.
        for _ in 0..10 {
            let batch: Vec<Vec<u8>> = std::mem::take(&mut out);
            if batch.is_empty() {
                break;
            }
            for p in batch {
                let t = Tuple::parse(&p).expect("segment");
                let to = if t.dst_addr() == a_addr {
                    &mut a
                } else {
                    &mut b
                };
                to.input(&t, 1, &mut out, &mut pool);
            }
        }
        assert_eq!(a.state, TcpState::Established);
        assert_eq!(b.state, TcpState::Established);
    }

    #[test]
    fn in_syn_sent_only_an_rst_acknowledging_the_syn_resets() {
        let (mut out, mut pool) = (Vec::new(), Vec::new());
        let (c_addr, s_addr) = (sa("10.0.0.1:40000"), sa("198.51.100.1:80"));
        for (flags, ack, resets) in [
            (RST | ACK, 1001, true),
            (RST | ACK, 1002, false),
            (RST, 0, false),
        ] {
            let mut c = client(c_addr, s_addr, 1000, &mut out, &mut pool);
            let mut b = Vec::new();
            crate::sim::packet::build_tcp(&mut b, s_addr, c_addr, flags, 0, ack, 0);
            let t = Tuple::parse(&b).expect("rst");
            assert_eq!(
                c.input(&t, 1, &mut out, &mut pool).finished,
                resets,
                "{flags:#x} ack {ack}"
            );
        }
    }

    #[test]
    fn request_response_and_close_without_loss() {
        let (c, s) = exchange(None);
        assert_eq!((c.bytes_received, s.bytes_received), (5000, 3000));
        assert_eq!((c.state, s.state), (TcpState::Closed, TcpState::Closed));
    }

    #[test]
    fn recovers_from_lost_segments() {
        for drop in 1..12 {
            let (c, s) = exchange(Some(drop));
            assert_eq!(c.bytes_received, 5000, "drop {drop}");
            assert_eq!(s.bytes_received, 3000, "drop {drop}");
            assert_eq!(c.state, TcpState::Closed, "drop {drop}: {c:?}");
        }
    }
}
