//! Host applications: state machines driven by packets and one timer each. Every application
//! writes the packets it sends into `Io::out` (buffers come from a shared pool) and reports its
//! next wake-up; the engine does the rest.
//!
//! One file (about 850 lines): six small state machines (50 to 110 lines each) and the one
//! `App` dispatch over them, which share `Io` and `Outcome`; the engine sees only `App`.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::config::{
    Attack, PingParams, ProbeParams, Proto, TcpParams, UdpParams, UnsolicitedKind,
};
use super::ids::HostId;
use super::ipfrag::fragment;
use super::packet::{Tuple, build_echo, build_tcp, build_udp, build_udp_len};
use super::tcp::{CloseMode, SegmentOptions, TcpEndpoint, TcpState};
use crate::wire::tcp_flags::SYN;

/// Scratch the engine lends an application.
pub struct Io<'a> {
    /// Now.
    pub now_ns: u64,
    /// Packets to send from the application's host.
    pub out: &'a mut Vec<Vec<u8>>,
    /// Buffer pool.
    pub pool: &'a mut Vec<Vec<u8>>,
}

impl Io<'_> {
    fn buf(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_default()
    }
}

/// How an application ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Still running when the run ended.
    Running,
    /// Did what it set out to do.
    Completed,
    /// Gave up.
    Failed(&'static str),
}

/// A TCP client's progress.
#[derive(Clone, Debug)]
pub struct TcpClient {
    /// The connection.
    pub ep: TcpEndpoint,
    params: TcpParams,
    requested: bool,
    hold_until_ns: Option<u64>,
    next_keepalive_ns: Option<u64>,
    closing: bool,
}

/// A server-side TCP connection.
#[derive(Clone, Debug)]
pub struct TcpServer {
    /// The connection.
    pub ep: TcpEndpoint,
    response_bytes: u64,
    /// Close right after the response, before the client does.
    pub close_first: bool,
}

/// A UDP client's progress.
#[derive(Clone, Debug)]
pub struct UdpClient {
    /// Local endpoint.
    pub local: SocketAddr,
    params: UdpParams,
    sent: u32,
    attempts: u32,
    awaiting: bool,
    next_ns: u64,
    /// Replies received.
    pub replies: u32,
    /// Datagrams that got no reply.
    pub missing: u32,
    /// ICMP errors received about this flow.
    pub icmp_errors: u32,
}

/// A ping's progress.
#[derive(Clone, Debug)]
pub struct PingClient {
    /// Local address.
    pub local: IpAddr,
    /// Identifier.
    pub ident: u16,
    params: PingParams,
    sent: u32,
    next_ns: u64,
    deadline_ns: u64,
    /// Replies received.
    pub replies: u32,
}

/// RFC 5780 classification results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// Not determined (no answer to the basic test).
    Unknown,
    /// Endpoint-independent.
    EndpointIndependent,
    /// Address-dependent.
    AddressDependent,
    /// Address-and-port-dependent.
    AddressAndPortDependent,
}

impl Behaviour {
    /// Kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Unknown => "unknown",
            Behaviour::EndpointIndependent => "endpoint-independent",
            Behaviour::AddressDependent => "address-dependent",
            Behaviour::AddressAndPortDependent => "address-and-port-dependent",
        }
    }
}

/// The probe's tests, in order: three mapping tests (A1:P1, A2:P1, A2:P2), then two filtering
/// tests (answer from A2:P2, answer from A1:P2).
#[derive(Clone, Debug)]
pub struct Probe {
    /// Local endpoint.
    pub local: SocketAddr,
    params: ProbeParams,
    step: usize,
    attempts: u32,
    deadline_ns: u64,
    mapped: [Option<SocketAddr>; 3],
    filter_ok: [bool; 2],
    /// Mapping behaviour found.
    pub mapping: Behaviour,
    /// Filtering behaviour found.
    pub filtering: Behaviour,
}

/// An adversary sending a series of packets.
#[derive(Clone, Debug)]
pub struct Flood {
    /// Source address.
    pub src: IpAddr,
    attack: Attack,
    sent: u32,
    next_ns: u64,
    /// Packets sent.
    pub packets: u32,
}

/// Application state.
#[derive(Clone, Debug)]
pub enum AppState {
    /// TCP client.
    TcpClient(Box<TcpClient>),
    /// Server-side connection.
    TcpServer(Box<TcpServer>),
    /// UDP client.
    Udp(UdpClient),
    /// Ping.
    Ping(PingClient),
    /// RFC 5780 probe.
    Probe(Box<Probe>),
    /// Scan / unsolicited flood.
    Flood(Box<Flood>),
    /// A one-shot action that already happened.
    Done,
}

/// A running application.
#[derive(Clone, Debug)]
pub struct App {
    /// Its host.
    pub host: HostId,
    /// Index into the engine's named results, for scripted applications.
    pub named: Option<u32>,
    /// Generator index, for generated flows.
    pub generator: Option<u32>,
    /// Bumped on slot reuse so stale timers are ignored.
    pub generation: u32,
    /// State.
    pub state: AppState,
    /// Outcome so far.
    pub outcome: Outcome,
    /// The wake-up currently scheduled.
    pub scheduled_ns: Option<u64>,
    /// A finished application lingers until then (a closed TCP endpoint re-ACKs retransmitted
    /// FINs, like TIME_WAIT; a datagram client absorbs late replies), so late packets of a
    /// finished exchange are not mistaken for unsolicited traffic.
    pub linger_until_ns: Option<u64>,
}

/// How long a closed TCP endpoint lingers.
pub const LINGER_NS: u64 = 2_000_000_000;

const TCP_STUN_REQ: usize = 1;

impl TcpClient {
    /// Starts a connection.
    pub fn start(local: SocketAddr, params: TcpParams, iss: u32, io: &mut Io) -> Self {
        let options = SegmentOptions {
            mss_bytes: params.mss_bytes,
            dont_fragment: params.dont_fragment,
        };
        let ep = TcpEndpoint::connect(
            local,
            params.to,
            iss,
            params.rto_ms,
            params.max_retries,
            options,
            io.now_ns,
            io.out,
            io.pool,
        );
        TcpClient {
            ep,
            params,
            requested: false,
            hold_until_ns: None,
            next_keepalive_ns: None,
            closing: false,
        }
    }

    fn drive(&mut self, io: &mut Io) -> Outcome {
        let now = io.now_ns;
        match self.ep.state {
            TcpState::Reset if self.closing => return Outcome::Completed,
            TcpState::Reset => return Outcome::Failed("reset"),
            TcpState::TimedOut => return Outcome::Failed("timeout"),
            TcpState::Closed => return Outcome::Completed,
            _ => {}
        }
        if !self.ep.is_open() && self.ep.state != TcpState::FinWait {
            return Outcome::Running;
        }
        if !self.requested {
            self.requested = true;
            self.ep
                .write(self.params.request_bytes, now, io.out, io.pool);
        }
        let answered = self.ep.bytes_received >= self.params.expect_bytes;
        if answered && self.hold_until_ns.is_none() {
            self.hold_until_ns = Some(now + self.params.hold_ms * 1_000_000);
            if self.params.keepalive_ms > 0 {
                self.next_keepalive_ns = Some(now + self.params.keepalive_ms * 1_000_000);
            }
        }
        if let Some(k) = self.next_keepalive_ns
            && k <= now
            && !self.closing
        {
            self.ep.keepalive(now, io.out, io.pool);
            self.next_keepalive_ns = Some(now + self.params.keepalive_ms * 1_000_000);
        }
        let hold_over = self.hold_until_ns.is_some_and(|h| h <= now);
        let peer_closed = self.ep.state == TcpState::CloseWait && self.params.close_on_peer_fin;
        if (hold_over || peer_closed) && !self.closing {
            self.closing = true;
            self.next_keepalive_ns = None;
            match self.params.close {
                CloseMode::Fin => self.ep.close(now, io.out, io.pool),
                CloseMode::Rst => {
                    self.ep.abort(io.out, io.pool);
                    return Outcome::Completed;
                }
                CloseMode::None => return Outcome::Completed,
            }
        }
        if self.ep.state == TcpState::Closed {
            return Outcome::Completed;
        }
        Outcome::Running
    }

    fn wakeup(&self) -> Option<u64> {
        let hold = self.hold_until_ns.filter(|_| !self.closing);
        [self.ep.timer_at_ns, hold, self.next_keepalive_ns]
            .into_iter()
            .flatten()
            .min()
    }
}

impl TcpServer {
    /// Accepts a SYN.
    pub fn accept(
        local: SocketAddr,
        syn: &Tuple,
        iss: u32,
        response_bytes: u64,
        (rto_ms, max_retries): (u64, u32),
        io: &mut Io,
    ) -> Self {
        let options = SegmentOptions::default();
        let ep = TcpEndpoint::accept(
            local,
            syn,
            iss,
            rto_ms,
            max_retries,
            options,
            io.now_ns,
            io.out,
            io.pool,
        );
        TcpServer {
            ep,
            response_bytes,
            close_first: false,
        }
    }

    fn drive(&mut self, io: &mut Io) -> Outcome {
        if self.ep.got_push {
            self.ep.got_push = false;
            self.ep
                .write(self.response_bytes, io.now_ns, io.out, io.pool);
            if self.close_first {
                self.ep.close(io.now_ns, io.out, io.pool);
            }
        }
        if self.ep.state == TcpState::CloseWait {
            self.ep.close(io.now_ns, io.out, io.pool);
        }
        match self.ep.state {
            TcpState::Closed => Outcome::Completed,
            TcpState::Reset => Outcome::Failed("reset"),
            TcpState::TimedOut => Outcome::Failed("timeout"),
            _ => Outcome::Running,
        }
    }
}

impl UdpClient {
    /// A client that sends its first datagram now.
    pub fn start(local: SocketAddr, params: UdpParams, io: &mut Io) -> (Self, Outcome) {
        let mut c = UdpClient {
            local,
            params,
            sent: 0,
            attempts: 0,
            awaiting: false,
            next_ns: io.now_ns,
            replies: 0,
            missing: 0,
            icmp_errors: 0,
        };
        let o = c.on_timer(io);
        (c, o)
    }

    /// The server endpoint.
    pub fn to(&self) -> SocketAddr {
        self.params.to
    }

    fn send(&mut self, io: &mut Io) {
        let mut b = io.buf();
        build_udp_len(
            &mut b,
            self.local,
            self.params.to,
            self.params.request_bytes as usize,
        );
        io.out.push(b);
    }

    fn on_timer(&mut self, io: &mut Io) -> Outcome {
        let now = io.now_ns;
        if now < self.next_ns {
            return Outcome::Running;
        }
        let p = self.params;
        if self.awaiting {
            // The reply deadline passed.
            if self.attempts <= p.retries {
                self.attempts += 1;
                self.send(io);
                self.next_ns = now + p.timeout_ms * 1_000_000;
                return Outcome::Running;
            }
            self.awaiting = false;
            self.missing += 1;
            self.next_ns = now + p.interval_ms * 1_000_000;
        } else if self.sent < p.count {
            self.sent += 1;
            self.attempts = 1;
            self.send(io);
            if p.timeout_ms > 0 {
                self.awaiting = true;
                self.next_ns = now + p.timeout_ms * 1_000_000;
            } else {
                self.next_ns = now + p.interval_ms * 1_000_000;
            }
            if self.awaiting || self.sent < p.count {
                return Outcome::Running;
            }
        }
        self.finish()
    }

    fn finish(&self) -> Outcome {
        if self.sent < self.params.count || self.awaiting {
            Outcome::Running
        } else if self.missing == 0 {
            Outcome::Completed
        } else {
            Outcome::Failed("no reply")
        }
    }

    fn on_reply(&mut self, io: &mut Io) -> Outcome {
        self.replies += 1;
        if self.awaiting {
            self.awaiting = false;
            self.next_ns = io.now_ns + self.params.interval_ms * 1_000_000;
            if self.sent >= self.params.count {
                return self.finish();
            }
        }
        Outcome::Running
    }

    fn wakeup(&self) -> Option<u64> {
        (self.awaiting || self.sent < self.params.count).then_some(self.next_ns)
    }
}

impl PingClient {
    /// The address it pings.
    pub fn to(&self) -> IpAddr {
        self.params.to
    }

    /// A ping that sends its first request now.
    pub fn start(local: IpAddr, ident: u16, params: PingParams, io: &mut Io) -> (Self, Outcome) {
        let mut c = PingClient {
            local,
            ident,
            params,
            sent: 0,
            next_ns: io.now_ns,
            deadline_ns: u64::MAX,
            replies: 0,
        };
        let o = c.on_timer(io);
        (c, o)
    }

    fn on_timer(&mut self, io: &mut Io) -> Outcome {
        let now = io.now_ns;
        if self.sent < self.params.count && now >= self.next_ns {
            let mut b = io.buf();
            build_echo(
                &mut b,
                self.local,
                self.params.to,
                true,
                self.ident,
                self.sent as u16,
                32,
            );
            io.out.push(b);
            self.sent += 1;
            self.next_ns = now + self.params.interval_ms * 1_000_000;
            if self.sent == self.params.count {
                self.deadline_ns = now + self.params.timeout_ms * 1_000_000;
            }
        }
        if self.replies >= self.params.count {
            Outcome::Completed
        } else if now >= self.deadline_ns {
            Outcome::Failed("no reply")
        } else {
            Outcome::Running
        }
    }

    fn wakeup(&self) -> Option<u64> {
        if self.sent < self.params.count {
            Some(self.next_ns)
        } else {
            Some(self.deadline_ns)
        }
    }
}

impl Probe {
    /// A probe that starts with the first mapping test.
    pub fn start(local: SocketAddr, params: ProbeParams, io: &mut Io) -> Self {
        let mut p = Probe {
            local,
            params,
            step: 0,
            attempts: 0,
            deadline_ns: 0,
            mapped: [None; 3],
            filter_ok: [false; 2],
            mapping: Behaviour::Unknown,
            filtering: Behaviour::Unknown,
        };
        p.send(io);
        p
    }

    /// (server endpoint, request byte) of the current step.
    fn target(&self) -> (SocketAddr, u8) {
        let (a1, a2) = (self.params.primary, self.params.alternate);
        let a2p1 = SocketAddr::new(a2.ip(), a1.port());
        match self.step {
            0 => (a1, 0),
            1 => (a2p1, 0),
            2 => (a2, 0),
            3 => (a1, 2),
            _ => (a1, 1),
        }
    }

    fn send(&mut self, io: &mut Io) {
        let (to, cmd) = self.target();
        let mut b = io.buf();
        build_udp(&mut b, self.local, to, &[cmd; TCP_STUN_REQ]);
        io.out.push(b);
        self.attempts += 1;
        self.deadline_ns = io.now_ns + self.params.timeout_ms * 1_000_000;
    }

    fn advance(&mut self, io: &mut Io) -> Outcome {
        self.step += 1;
        self.attempts = 0;
        if self.step == 3 {
            self.mapping = match self.mapped {
                // RFC 5780 §4.3: test II equal to test I is endpoint-independent; otherwise test
                // III decides between address- and address-and-port-dependent.
                [Some(a), Some(b), _] if a == b => Behaviour::EndpointIndependent,
                [Some(_), Some(b), Some(c)] if b == c => Behaviour::AddressDependent,
                [Some(_), Some(_), Some(_)] => Behaviour::AddressAndPortDependent,
                _ => Behaviour::Unknown,
            };
            if self.mapped[0].is_none() {
                return Outcome::Failed("no answer from primary server");
            }
        }
        if self.step == 5 {
            self.filtering = match self.filter_ok {
                [true, _] => Behaviour::EndpointIndependent,
                [false, true] => Behaviour::AddressDependent,
                [false, false] => Behaviour::AddressAndPortDependent,
            };
            return Outcome::Completed;
        }
        self.send(io);
        Outcome::Running
    }

    fn on_reply(&mut self, t: &Tuple, pkt: &[u8], io: &mut Io) -> Outcome {
        // A finished probe lingers like every datagram client; a late or duplicated reply
        // then finds every test done (found by `natsim swarm`: it indexed past `filter_ok`).
        if self.step >= 5 {
            return Outcome::Completed;
        }
        if self.step < 3 {
            let (to, _) = self.target();
            if t.src_addr() != to {
                return Outcome::Running;
            }
            self.mapped[self.step] = decode_endpoint(&pkt[t.payload_offset..]);
        } else {
            self.filter_ok[self.step - 3] = true;
        }
        self.advance(io)
    }

    fn on_timer(&mut self, io: &mut Io) -> Outcome {
        if io.now_ns < self.deadline_ns {
            return Outcome::Running;
        }
        if self.step < 3 && self.attempts < 3 {
            self.send(io);
            return Outcome::Running;
        }
        // Filtering tests expect silence from a filtering NAT: one attempt decides.
        self.advance(io)
    }
}

/// Encodes an endpoint as a STUN server's answer payload.
pub fn encode_endpoint(a: SocketAddr, out: &mut Vec<u8>) {
    out.clear();
    match a.ip() {
        IpAddr::V4(v) => {
            out.push(4);
            out.extend_from_slice(&v.octets());
        }
        IpAddr::V6(v) => {
            out.push(6);
            out.extend_from_slice(&v.octets());
        }
    }
    out.extend_from_slice(&a.port().to_be_bytes());
}

fn decode_endpoint(b: &[u8]) -> Option<SocketAddr> {
    match b.first()? {
        4 if b.len() >= 7 => {
            let ip: [u8; 4] = b[1..5].try_into().ok()?;
            Some(SocketAddr::new(ip.into(), u16::from_be_bytes([b[5], b[6]])))
        }
        6 if b.len() >= 19 => {
            let ip: [u8; 16] = b[1..17].try_into().ok()?;
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([b[17], b[18]]),
            ))
        }
        _ => None,
    }
}

impl Flood {
    /// A scan or unsolicited flood starting now.
    pub fn start(src: IpAddr, attack: Attack, io: &mut Io) -> (Self, Outcome) {
        let mut f = Flood {
            src,
            attack,
            sent: 0,
            next_ns: io.now_ns,
            packets: 0,
        };
        let o = f.on_timer(io);
        (f, o)
    }

    fn on_timer(&mut self, io: &mut Io) -> Outcome {
        if io.now_ns < self.next_ns {
            return Outcome::Running;
        }
        let src_port = 40_000;
        let mut b = io.buf();
        let done = match self.attack {
            Attack::PortScan {
                target,
                first_port,
                last_port,
                proto,
                interval_us,
            } => {
                let port = u32::from(first_port) + self.sent;
                let dst = SocketAddr::new(target, port as u16);
                let src = SocketAddr::new(self.src, src_port);
                match proto {
                    Proto::Tcp => build_tcp(&mut b, src, dst, SYN, 1, 0, 0),
                    Proto::Udp => build_udp_len(&mut b, src, dst, 8),
                }
                self.next_ns = io.now_ns + interval_us * 1000;
                port >= u32::from(last_port)
            }
            Attack::Unsolicited {
                target,
                kind,
                count,
                interval_ms,
            } => {
                let src = SocketAddr::new(self.src, src_port);
                match kind {
                    UnsolicitedKind::TcpSyn => build_tcp(&mut b, src, target, SYN, 1, 0, 0),
                    UnsolicitedKind::Udp => build_udp_len(&mut b, src, target, 8),
                    UnsolicitedKind::IcmpEcho => build_echo(
                        &mut b,
                        self.src,
                        target.ip(),
                        true,
                        target.port(),
                        self.sent as u16,
                        8,
                    ),
                    UnsolicitedKind::Fragment => {
                        build_udp_len(&mut b, src, target, 64);
                        let header = if target.is_ipv4() { 20 } else { 48 };
                        let mut pieces = Vec::new();
                        // Three pieces; the middle one has an offset and more to come.
                        if fragment(&b, header + 32, Some(self.sent + 1), &mut pieces).is_ok()
                            && let Some(middle) = pieces.get_mut(1)
                        {
                            std::mem::swap(&mut b, middle);
                        }
                    }
                }
                self.next_ns = io.now_ns + interval_ms * 1_000_000;
                self.sent + 1 >= count
            }
            _ => true,
        };
        io.out.push(b);
        self.sent += 1;
        self.packets += 1;
        if done {
            Outcome::Completed
        } else {
            Outcome::Running
        }
    }
}

impl App {
    /// Handles a packet for this application (`pkt` is the whole packet, `t` its tuple).
    pub fn on_packet(&mut self, t: &Tuple, pkt: &[u8], io: &mut Io) {
        let o = match &mut self.state {
            AppState::TcpClient(c) => {
                c.ep.input(t, io.now_ns, io.out, io.pool);
                c.drive(io)
            }
            AppState::TcpServer(s) => {
                s.ep.input(t, io.now_ns, io.out, io.pool);
                s.drive(io)
            }
            AppState::Udp(u) => u.on_reply(io),
            AppState::Ping(p) => {
                p.replies += 1;
                if p.replies >= p.params.count {
                    Outcome::Completed
                } else {
                    Outcome::Running
                }
            }
            AppState::Probe(p) => p.on_reply(t, pkt, io),
            AppState::Flood(_) | AppState::Done => return,
        };
        self.settle(o);
    }

    /// Counts an ICMP error about this application's flow.
    pub fn on_icmp_error(&mut self) {
        if let AppState::Udp(u) = &mut self.state {
            u.icmp_errors += 1;
        }
    }

    /// A router said this application's packets are too big for the path (`mtu` bytes): a
    /// TCP connection shrinks its segments and sends again what is unacknowledged.
    pub fn on_packet_too_big(&mut self, mtu: u64, io: &mut Io) {
        let ep = match &mut self.state {
            AppState::TcpClient(c) => &mut c.ep,
            AppState::TcpServer(s) => &mut s.ep,
            _ => return,
        };
        ep.on_packet_too_big(mtu, io.now_ns, io.out, io.pool);
    }

    /// The wake-up fired.
    pub fn on_timer(&mut self, io: &mut Io) {
        let tcp = matches!(self.state, AppState::TcpClient(_) | AppState::TcpServer(_));
        if !tcp && self.outcome != Outcome::Running {
            // Lingering after completion: nothing more to send.
            return;
        }
        let o = match &mut self.state {
            AppState::TcpClient(c) => {
                c.ep.on_timer(io.now_ns, io.out, io.pool);
                c.drive(io)
            }
            AppState::TcpServer(s) => {
                s.ep.on_timer(io.now_ns, io.out, io.pool);
                s.drive(io)
            }
            AppState::Udp(u) => u.on_timer(io),
            AppState::Ping(p) => p.on_timer(io),
            AppState::Probe(p) => p.on_timer(io),
            AppState::Flood(f) => f.on_timer(io),
            AppState::Done => return,
        };
        self.settle(o);
    }

    /// Records an outcome (the first terminal outcome sticks, except that a client whose
    /// connection later fails after completing stays completed).
    pub fn settle(&mut self, o: Outcome) {
        if self.outcome == Outcome::Running {
            self.outcome = o;
        }
    }

    /// When the application next needs its timer.
    pub fn wakeup(&self) -> Option<u64> {
        if self.linger_until_ns.is_some() {
            return self.linger_until_ns;
        }
        match &self.state {
            AppState::TcpClient(c) if !c.ep.is_done() => c.wakeup(),
            AppState::TcpServer(s) if !s.ep.is_done() => s.ep.timer_at_ns,
            AppState::Udp(u) if self.outcome == Outcome::Running => u.wakeup(),
            AppState::Ping(p) if self.outcome == Outcome::Running => p.wakeup(),
            AppState::Probe(p) if self.outcome == Outcome::Running => Some(p.deadline_ns),
            AppState::Flood(f) if self.outcome == Outcome::Running => Some(f.next_ns),
            _ => None,
        }
    }

    /// True when the application can be freed at `now_ns` (nothing more will happen to it).
    /// A TCP endpoint that closed cleanly starts lingering first.
    pub fn finished(&mut self, now_ns: u64) -> bool {
        let closed = match &self.state {
            AppState::TcpClient(c) => Some(&c.ep),
            AppState::TcpServer(s) => Some(&s.ep),
            _ => None,
        };
        if let Some(ep) = closed
            && ep.state == TcpState::Closed
        {
            let until = *self.linger_until_ns.get_or_insert(now_ns + LINGER_NS);
            return now_ns >= until;
        }
        match &self.state {
            AppState::TcpClient(c) => c.ep.is_done(),
            AppState::TcpServer(s) => s.ep.is_done(),
            AppState::Done => true,
            // Datagram clients linger too: a reply to their last request may still be in flight.
            _ if self.outcome != Outcome::Running => {
                let until = *self.linger_until_ns.get_or_insert(now_ns + LINGER_NS);
                now_ns >= until
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_encoding_roundtrips() {
        let mut b = Vec::new();
        for a in ["203.0.113.1:1024", "[2001:db8::1]:65535"] {
            let a: SocketAddr = a.parse().expect("addr");
            encode_endpoint(a, &mut b);
            assert_eq!(decode_endpoint(&b), Some(a));
        }
        assert_eq!(decode_endpoint(&[4, 1]), None);
    }
}
