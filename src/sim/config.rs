//! The simulator's input, fully resolved: names are already indices and times nanoseconds.
//! Scenario files ([`crate::scenario`]) compile down to a [`SimConfig`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::control::ControlConfig;
use super::link::LinkConfig;
use super::tcp::CloseMode;
use crate::nat::GatewayConfig;

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The run seed; every component's stream derives from it and the component's name.
    pub seed: u64,
    /// Dataplane configuration shared by every node (networks, profile, table sizes).
    pub gateway: GatewayConfig,
    /// The control plane: IronCore API objects (networks, gateways, VirtualIPs, manifest
    /// NICs) and the reconciler's knobs. NICs without an object here are derived from their
    /// [`NicSpec`] ([`super::control::nic_object`]).
    pub control: ControlConfig,
    /// Dataplane nodes (1 = centralised; more = distributed, behaviour §4).
    pub nodes: u16,
    /// NICs, indexed by their dataplane id.
    pub nics: Vec<NicSpec>,
    /// Internet hosts.
    pub remotes: Vec<RemoteSpec>,
    /// The link from each dataplane node to the internet router.
    pub uplink: LinkConfig,
    /// Scripted applications.
    pub apps: Vec<AppSpec>,
    /// Workload generators.
    pub generators: Vec<GeneratorSpec>,
    /// Faults and control-plane changes.
    pub faults: Vec<(u64, Fault)>,
    /// Run bounds.
    pub limits: Limits,
    /// Names of links to capture.
    pub capture: Vec<String>,
    /// The router between the dataplane nodes and the internet's hosts.
    pub router: RouterConfig,
}

/// The router between the dataplane nodes and the internet's hosts: it answers a packet too big
/// for the next link and not to be fragmented (IPv4 with DF, any IPv6) with Fragmentation
/// Needed / Packet Too Big (RFC 1191, RFC 8201), and, when set to, TTL expiry and addresses no
/// host has; rate limited as RFC 1812 §4.3.2.8 asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// Its addresses (one per family): the source of the ICMP errors it sends.
    pub addresses: Vec<IpAddr>,
    /// ICMP errors it may send per second on average (a token bucket).
    pub icmp_errors_per_s: u32,
    /// ICMP errors it may send at once (the bucket's size).
    pub icmp_error_burst: u32,
    /// A router hop: TTL / hop limit minus one on what it forwards, Time Exceeded at 0.
    pub decrement_ttl: bool,
    /// Answer a packet from inside to an address no host has with Destination Unreachable
    /// (else it is dropped silently, as an unallocated address usually is).
    pub unreachable: bool,
}

/// The router's IPv4 address when a scenario gives none (RFC 2544 benchmarking range, so it
/// clashes with no documentation address a scenario uses).
pub const DEFAULT_ROUTER_V4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(198, 18, 0, 1);
/// The router's IPv6 address when a scenario gives none (RFC 5180 benchmarking range).
pub const DEFAULT_ROUTER_V6: std::net::Ipv6Addr =
    std::net::Ipv6Addr::new(0x2001, 0x2, 0, 0, 0, 0, 0, 1);

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            addresses: vec![IpAddr::V4(DEFAULT_ROUTER_V4), IpAddr::V6(DEFAULT_ROUTER_V6)],
            icmp_errors_per_s: 100,
            icmp_error_burst: 10,
            decrement_ttl: false,
            unreachable: false,
        }
    }
}

/// A VM NIC.
#[derive(Clone, Debug)]
pub struct NicSpec {
    /// Name (unique).
    pub name: String,
    /// Namespace (allocation order is by namespace, then name).
    pub namespace: String,
    /// Network index into `gateway.networks`.
    pub network: u16,
    /// Private addresses.
    pub addresses: Vec<IpAddr>,
    /// Labels (of the derived NetworkInterface; ignored when `control.objects` declares it).
    pub labels: BTreeMap<String, String>,
    /// Dataplane node hosting it.
    pub node: u16,
    /// A VirtualIP is attached at start (of the derived NetworkInterface, as above).
    pub virtual_ip: bool,
    /// Its access link.
    pub link: LinkConfig,
    /// Exists when the run starts (otherwise an `AddNic` fault creates it).
    pub present: bool,
    /// Its stack stays silent for closed ports (no RST, no Port Unreachable), as a host
    /// firewall that drops: an inside SYN scanner ignores the SYN-ACKs it gets.
    pub silent_closed_ports: bool,
}

impl NicSpec {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Transport protocol of a service or application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

/// What a listening service does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// TCP: after each complete request (PSH), send this many bytes. UDP: answer each datagram
    /// with this many bytes (0 = swallow it).
    Respond {
        /// Response size.
        response_bytes: u64,
        /// TCP: close right after the response (the server closes first).
        close_first: bool,
        /// TCP: initial retransmission timeout.
        rto_ms: u64,
        /// TCP: retransmissions before giving up.
        max_retries: u32,
    },
    /// RFC 5780-style binding server: the first payload byte asks it to answer from the same
    /// address and port (0), another port (1), another address and port (2) or another address
    /// (3); the answer carries the source it saw.
    Stun,
}

/// A listening service on a remote host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Service {
    /// Protocol.
    pub proto: Proto,
    /// Port.
    pub port: u16,
    /// Behaviour.
    pub kind: ServiceKind,
}

/// An internet host.
#[derive(Clone, Debug)]
pub struct RemoteSpec {
    /// Name.
    pub name: String,
    /// Addresses (a STUN server has two).
    pub addresses: Vec<IpAddr>,
    /// Services, on every address.
    pub services: Vec<Service>,
    /// Its link to the router.
    pub link: LinkConfig,
}

/// Which host an application runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostRef {
    /// A NIC (index).
    Nic(u32),
    /// A remote host (index).
    Remote(u32),
}

/// A scripted application.
#[derive(Clone, Debug)]
pub struct AppSpec {
    /// Name (results are reported under it).
    pub name: String,
    /// Start time.
    pub at_ns: u64,
    /// Host.
    pub host: HostRef,
    /// What it does.
    pub kind: AppKind,
}

/// TCP client parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpParams {
    /// Server.
    pub to: SocketAddr,
    /// Request size.
    pub request_bytes: u64,
    /// Bytes to expect back before the exchange counts as answered (0: do not wait).
    pub expect_bytes: u64,
    /// Stay open this long after the response (or after the request when not waiting).
    pub hold_ms: u64,
    /// Send a one-byte keepalive this often while holding (0: never).
    pub keepalive_ms: u64,
    /// How to end.
    pub close: CloseMode,
    /// Fixed source port (else ephemeral).
    pub src_port: Option<u16>,
    /// Initial retransmission timeout.
    pub rto_ms: u64,
    /// Retransmissions before giving up.
    pub max_retries: u32,
    /// Largest segment payload (lowered by path-MTU discovery).
    pub mss_bytes: u64,
    /// Send IPv4 segments with Don't Fragment set (path-MTU discovery, RFC 1191).
    pub dont_fragment: bool,
    /// Close as soon as the server closes its side (else hold and keep sending until the hold
    /// ends: a half-closed connection).
    pub close_on_peer_fin: bool,
}

/// UDP client parameters (request/response or a stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpParams {
    /// Server.
    pub to: SocketAddr,
    /// Datagram size.
    pub request_bytes: u64,
    /// Datagrams to send.
    pub count: u32,
    /// Spacing.
    pub interval_ms: u64,
    /// Wait for a reply this long (0: expect none; the flow completes when all are sent).
    pub timeout_ms: u64,
    /// Resends per datagram without reply.
    pub retries: u32,
    /// Fixed source port.
    pub src_port: Option<u16>,
}

/// ICMP echo parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingParams {
    /// Target.
    pub to: IpAddr,
    /// Requests.
    pub count: u32,
    /// Spacing.
    pub interval_ms: u64,
    /// Reply deadline after the last request.
    pub timeout_ms: u64,
    /// Fixed identifier.
    pub ident: Option<u16>,
}

/// RFC 5780 probe parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeParams {
    /// Primary server endpoint (address A1, port P1).
    pub primary: SocketAddr,
    /// Alternate endpoint (address A2, port P2).
    pub alternate: SocketAddr,
    /// Per-test reply deadline.
    pub timeout_ms: u64,
    /// Fixed source port.
    pub src_port: Option<u16>,
}

/// What an application does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppKind {
    /// TCP client.
    Tcp(TcpParams),
    /// UDP client.
    Udp(UdpParams),
    /// ICMP echo client.
    Ping(PingParams),
    /// RFC 5780 behaviour discovery.
    Probe(ProbeParams),
    /// Outside adversary.
    Attack(Attack),
    /// Crafted packets (scenario `packets:`): their bytes sent once, back to back and as given,
    /// from the host's link; the host stack does not track them. `Err`: not sent, the
    /// application fails with that reason (the harness could not build them).
    Crafted(Result<Vec<Vec<u8>>, &'static str>),
}

impl AppKind {
    /// The address the application sends to from its own host address, if it starts by
    /// sending (one-shot attacks forge their source and are not listed).
    pub fn destination(&self) -> Option<IpAddr> {
        match self {
            AppKind::Tcp(p) => Some(p.to.ip()),
            AppKind::Udp(p) => Some(p.to.ip()),
            AppKind::Ping(p) => Some(p.to),
            AppKind::Probe(p) => Some(p.primary.ip()),
            AppKind::Attack(Attack::PortScan { target, .. }) => Some(*target),
            AppKind::Attack(Attack::Unsolicited { target, .. }) => Some(target.ip()),
            AppKind::Attack(_) | AppKind::Crafted(_) => None,
        }
    }
}

/// What an adversary packet varies relative to a live flow's reply tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vary {
    /// Right address, wrong source port.
    SrcPort,
    /// Wrong source address, right port.
    SrcAddr,
    /// Right source, wrong NAT port (next port).
    DstPort,
    /// The exact reply tuple (a legitimate-looking reply; must be delivered).
    Nothing,
}

/// An outside adversary's action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attack {
    /// Probes a port range with TCP SYNs or UDP datagrams.
    PortScan {
        /// Target address (a NAT IP, a private address, ...).
        target: IpAddr,
        /// First port.
        first_port: u16,
        /// Last port.
        last_port: u16,
        /// Protocol.
        proto: Proto,
        /// Spacing between probes, in microseconds.
        interval_us: u64,
    },
    /// Unsolicited packets to one endpoint.
    Unsolicited {
        /// Target.
        target: SocketAddr,
        /// `tcp` (SYN), `udp` or `icmp` (echo request).
        kind: UnsolicitedKind,
        /// Packets.
        count: u32,
        /// Spacing.
        interval_ms: u64,
    },
    /// Packets aimed at a live flow's NAT endpoint, varying one field.
    SpoofReply {
        /// The scripted flow (application name) whose mapping is targeted.
        flow: String,
        /// What to vary.
        vary: Vary,
        /// Protocol-level detail: TCP segments carry ACK.
        count: u32,
    },
    /// A forged ICMP error quoting a live flow's translated packet.
    ForgedIcmp {
        /// The flow.
        flow: String,
        /// Corrupt the ICMP checksum.
        bad_checksum: bool,
        /// Quote a different NAT port (the error matches no flow).
        wrong_port: bool,
        /// The error's outer destination when not the flow's NAT address (an error of the
        /// other family than the flow's is not sent).
        outer_destination: Option<IpAddr>,
        /// ICMP type and code, when not the family's host / address unreachable.
        type_code: Option<(u8, u8)>,
    },
    /// An RST aimed at a live TCP flow's NAT endpoint.
    RstInject {
        /// The flow.
        flow: String,
        /// Send from the flow's real remote endpoint (else from another port).
        from_remote: bool,
        /// Added to the server's next sequence number (modulo 2^32).
        seq_offset: i64,
    },
}

/// Kinds of unsolicited packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsolicitedKind {
    /// TCP SYN.
    TcpSyn,
    /// UDP datagram.
    Udp,
    /// ICMP echo request.
    IcmpEcho,
    /// A middle fragment of a UDP datagram whose other fragments never come (each packet a new
    /// datagram): what a fragment flood sends.
    Fragment,
}

/// Flow inter-arrival process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arrivals {
    /// Every `interval_ms`.
    Fixed {
        /// Spacing.
        interval_ms: u64,
    },
    /// Poisson with `rate_per_s` flows per second per NIC.
    Poisson {
        /// Rate.
        rate_per_s: f64,
    },
}

/// A duration distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    /// Always `ms`.
    Fixed {
        /// Value.
        ms: u64,
    },
    /// Exponential with mean `mean_ms`.
    Exponential {
        /// Mean.
        mean_ms: f64,
    },
    /// Pareto (heavy-tailed) with scale `scale_ms` and shape `shape`.
    Pareto {
        /// Minimum.
        scale_ms: f64,
        /// Tail index.
        shape: f64,
    },
}

/// Workload generator: flows per NIC.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorSpec {
    /// Name.
    pub name: String,
    /// NIC indices it drives.
    pub nics: Vec<u32>,
    /// Start.
    pub start_ns: u64,
    /// Stop (no new flows after).
    pub stop_ns: u64,
    /// Inter-arrivals.
    pub arrivals: Arrivals,
    /// Flow durations.
    pub duration: Distribution,
    /// Destination remote indices.
    pub remotes: Vec<u32>,
    /// Zipf exponent for choosing among remotes (`None`: uniform).
    pub zipf_s: Option<f64>,
    /// Protocol weights: TCP, UDP, ICMP.
    pub mix: [u32; 3],
    /// Bytes per request.
    pub request_bytes: u64,
    /// Packet spacing inside UDP/ICMP flows and keepalive spacing for TCP (0: TCP sends none).
    pub interval_ms: u64,
}

/// A fault or control-plane change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Link down by name.
    LinkDown(String),
    /// Link up by name.
    LinkUp(String),
    /// Dataplane node restarts; all its state is lost, the control plane re-pushes its blocks.
    RestartNode(u16),
    /// A gateway IP (by `ips[].name`) is removed.
    RemoveNatIp(String),
    /// A gateway IP is added.
    AddNatIp {
        /// Name.
        name: String,
        /// Addresses.
        addresses: Vec<IpAddr>,
    },
    /// A NIC (declared absent at start) is created.
    AddNic(u32),
    /// A NIC is deleted.
    DeleteNic(u32),
    /// A NIC's labels change.
    Relabel {
        /// NIC.
        nic: u32,
        /// New labels.
        labels: BTreeMap<String, String>,
    },
    /// A VirtualIP is attached to a NIC.
    AttachVirtualIp(u32),
    /// A NIC's VirtualIP is removed.
    DetachVirtualIp(u32),
    /// P changes.
    SetPortsPerNic(u32),
    /// The NAT gateway is deleted.
    DeleteGateway,
    /// Targeted loss starts on a link (by name).
    DropPackets {
        /// The link.
        link: String,
        /// Which packets, from now on, to lose.
        drop: super::link::TargetedDrop,
    },
}

/// Run bounds. Reaching `duration_ns` ends a run normally; hitting `max_events` or
/// `max_time_ns` with work left is a bound hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum events processed.
    pub max_events: u64,
    /// Maximum virtual time.
    pub max_time_ns: u64,
    /// Planned end of the run.
    pub duration_ns: Option<u64>,
}
