//! The scenario file format (`apiVersion: natsim.dev/v1`, `kind: Scenario`). Every struct
//! rejects unknown fields; durations carry their unit in the name (`_ms`, `_us`). The JSON
//! Schema for editors is generated from these types ([`json_schema`]).
//!
//! One file (about 1,050 lines, nearly all field declarations and their doc comments): the
//! schema is one document type, and keeping its structs in file order keeps them in the order
//! of `docs/scenarios.md` and of the generated JSON Schema.

use std::collections::BTreeMap;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::sim::link::LinkConfig;
use crate::sim::tcp::CloseMode;

/// The only accepted `apiVersion`.
pub const API_VERSION: &str = "natsim.dev/v1";

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn default_profile() -> String {
    "rfc".into()
}
fn default_p() -> u32 {
    2048
}
/// Default of `gateway.block_quarantine_ms`.
pub const DEFAULT_BLOCK_QUARANTINE_MS: u64 = 120_000;
/// Default of `tcp.rto_ms`.
pub const DEFAULT_TCP_RTO_MS: u64 = 200;
/// Default of `tcp.max_retries`.
pub const DEFAULT_TCP_MAX_RETRIES: u32 = 6;

fn default_quarantine() -> u64 {
    DEFAULT_BLOCK_QUARANTINE_MS
}
fn default_families() -> Vec<String> {
    vec!["IPv4".into()]
}
fn default_namespace() -> String {
    "default".into()
}

/// A scenario file.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Must be `natsim.dev/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Must be `Scenario`.
    pub kind: String,
    /// Name and description.
    pub metadata: Metadata,
    /// Run seed (`--seed` overrides it).
    #[serde(default)]
    pub seed: u64,
    /// Run bounds.
    #[serde(default)]
    pub limits: LimitsDoc,
    /// Networks, NICs, remote hosts, dataplane nodes, links.
    pub topology: Topology,
    /// The NAT gateway (absent: none).
    #[serde(default)]
    pub gateway: Option<GatewayDoc>,
    /// IronCore manifests (inline multi-document YAML, or file paths relative to the scenario),
    /// loaded through the API loader and merged with the topology (the manifests win).
    #[serde(default)]
    pub manifests: Option<Manifests>,
    /// Scripted applications.
    #[serde(default)]
    #[schemars(with = "Vec<TrafficItem>")]
    pub traffic: Vec<Spanned<TrafficItem>>,
    /// Workload generators.
    #[serde(default)]
    #[schemars(with = "Vec<GeneratorDoc>")]
    pub generators: Vec<Spanned<GeneratorDoc>>,
    /// Outside adversaries.
    #[serde(default)]
    #[schemars(with = "Vec<AttackItem>")]
    pub attacks: Vec<Spanned<AttackItem>>,
    /// Faults and control-plane changes.
    #[serde(default)]
    #[schemars(with = "Vec<FaultItem>")]
    pub faults: Vec<Spanned<FaultItem>>,
    /// Crafted packets: every field chosen, each sent once by a host at a time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<super::packets::PacketItem>")]
    pub packets: Vec<Spanned<super::packets::PacketItem>>,
    /// What must hold at the end.
    #[serde(default)]
    pub expect: Expectations,
    /// Links to write to pcapng with `--pcap-dir` (e.g. `nic/vm-a`, `uplink/0`, `remote/web`).
    #[serde(default)]
    pub capture: Vec<Name>,
}

/// `metadata`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Scenario name.
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// SPEC rules it covers (e.g. `§3 quarantine`), for the coverage index.
    #[serde(default)]
    pub covers: Vec<String>,
}

/// `limits`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsDoc {
    /// Stop (exit 5) after this many events.
    #[schemars(range(min = 1))]
    pub max_events: u64,
    /// Stop (exit 5) when work remains past this virtual time.
    #[schemars(range(min = 1, max = super::ranges::MAX_MS))]
    pub max_time_ms: u64,
    /// Planned end; reaching it is a normal end.
    #[schemars(range(min = 1, max = super::ranges::MAX_MS))]
    pub duration_ms: Option<u64>,
    /// Run twice and compare trace digests (invariant 9).
    pub rerun_for_determinism: bool,
}

impl Default for LimitsDoc {
    fn default() -> Self {
        LimitsDoc {
            max_events: 50_000_000,
            max_time_ms: 7 * 86_400_000,
            duration_ms: None,
            rerun_for_determinism: true,
        }
    }
}

/// `manifests`: inline YAML or a list of paths.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Manifests {
    /// Inline multi-document YAML.
    Inline(String),
    /// Files relative to the scenario.
    Files(Vec<String>),
}

/// `topology`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Networks.
    pub networks: Vec<NetworkDoc>,
    /// Dataplane nodes (hypervisors); more than one is the distributed dataplane.
    #[serde(default = "one_u16")]
    #[schemars(range(min = 1, max = super::ranges::MAX_NODES))]
    pub nodes: u16,
    /// NICs.
    #[serde(default)]
    #[schemars(with = "Vec<NicDoc>")]
    pub nics: Vec<Spanned<NicDoc>>,
    /// Generated NICs.
    #[serde(default)]
    pub nic_groups: Vec<NicGroupDoc>,
    /// Internet hosts.
    #[serde(default)]
    #[schemars(with = "Vec<RemoteDoc>")]
    pub remotes: Vec<Spanned<RemoteDoc>>,
    /// Default link behaviour per link class.
    #[serde(default)]
    pub links: LinkDefaults,
    /// The router between the dataplane nodes and the internet's hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<RouterDoc>,
}

/// The router: its addresses (the source of the ICMP errors it sends) and how many it may send.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouterDoc {
    /// At most one address per family (default 198.18.0.1 and 2001:2::1, benchmarking ranges).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpAddr>,
    /// ICMP errors per second on average (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1_000_000))]
    pub icmp_errors_per_s: Option<u32>,
    /// ICMP errors at once (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1_000_000))]
    pub icmp_error_burst: Option<u32>,
    /// Act as a router hop: TTL / hop limit minus one, Time Exceeded when it would reach 0
    /// (default false: the internet leaves TTL alone).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decrement_ttl: bool,
    /// Answer packets from inside to addresses no host has with Destination Unreachable
    /// (default false: dropped silently).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unreachable: bool,
}

fn one_u16() -> u16 {
    1
}

/// A network.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkDoc {
    /// Name.
    pub name: String,
    /// Its own prefixes (reached untranslated).
    pub prefixes: Vec<String>,
    /// Extra routed prefixes (peerings), also untranslated.
    #[serde(default)]
    pub routes: Vec<String>,
}

/// A NIC.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NicDoc {
    /// Name (unique).
    pub name: String,
    /// Namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Network name.
    pub network: String,
    /// Private addresses (one per family).
    pub addresses: Vec<IpAddr>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Dataplane node.
    #[serde(default)]
    pub node: u16,
    /// A VirtualIP is attached (not NATed).
    #[serde(default)]
    pub virtual_ip: bool,
    /// Exists at start (else an `add_nic` fault creates it).
    #[serde(default = "yes")]
    pub present: bool,
    /// Access link (else `topology.links.access`).
    #[serde(default)]
    pub link: Option<LinkConfig>,
    /// Its stack stays silent for closed ports (no RST, no Port Unreachable), as behind a
    /// dropping host firewall: a SYN scanner that ignores the SYN-ACKs it gets.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub silent_closed_ports: bool,
}

/// Many NICs at once: `<prefix>0000`, `<prefix>0001`, ... with consecutive IPv4 addresses,
/// spread round-robin over the nodes.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NicGroupDoc {
    /// Name prefix.
    pub prefix: String,
    /// How many.
    pub count: u32,
    /// Network.
    pub network: String,
    /// First IPv4 address.
    pub first_address: std::net::Ipv4Addr,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// An internet host.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteDoc {
    /// Name.
    pub name: String,
    /// Addresses.
    pub addresses: Vec<IpAddr>,
    /// Listening services.
    #[serde(default)]
    pub services: Vec<ServiceDoc>,
    /// Link (else `topology.links.remote`).
    #[serde(default)]
    pub link: Option<LinkConfig>,
}

/// Transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProtoDoc {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// A service.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceDoc {
    /// Protocol.
    pub protocol: ProtoDoc,
    /// Port.
    pub port: u16,
    /// Bytes sent per request (TCP: per PSH-terminated request; UDP: per datagram; 0: none).
    #[serde(default)]
    #[schemars(range(max = super::ranges::MAX_STREAM_BYTES))]
    pub response_bytes: u64,
    /// RFC 5780 binding server (UDP) instead of a responder.
    #[serde(default)]
    pub stun: bool,
    /// TCP: close (FIN) right after each response, before the client does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub close_first: bool,
    /// TCP: the server's initial retransmission timeout (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = super::ranges::MAX_MS))]
    pub rto_ms: Option<u64>,
    /// TCP: the server's retransmissions before it gives up (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = super::ranges::MAX_RETRIES))]
    pub max_retries: Option<u32>,
}

/// Default links.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LinkDefaults {
    /// NIC ↔ dataplane node.
    pub access: LinkConfig,
    /// Dataplane node ↔ router.
    pub uplink: LinkConfig,
    /// Router ↔ remote host.
    pub remote: LinkConfig,
}

/// `gateway`: the NATGateway (IEP-4) and the dataplane behaviour.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayDoc {
    /// NATGateway name (namespace `default`); `nat` when absent. When the manifests declare
    /// a NATGateway of that name, the manifest object wins: `network`, `ips` and `selector`
    /// must then be omitted, and this section only sets the dataplane behaviour.
    #[serde(default)]
    pub name: Option<String>,
    /// `networkRef.name` (required unless the manifests declare the gateway).
    #[serde(default)]
    pub network: String,
    /// `ipFamilies`: `IPv4`, `IPv6`.
    #[serde(default = "default_families")]
    pub ip_families: Vec<String>,
    /// `ips`, in order (allocation order too).
    #[serde(default)]
    pub ips: Vec<IpDoc>,
    /// `portsPerNetworkInterface` (P): power of two, 1–64512.
    #[serde(default = "default_p")]
    pub ports_per_nic: u32,
    /// `networkInterfaceSelector`; absent selects nothing, `{}` everything.
    #[serde(default)]
    pub selector: Option<LabelSelector>,
    /// Profile name: rfc, dpservice, gcp, aws, azure, linux.
    #[serde(default = "default_profile")]
    pub profile: String,
    /// Per-field profile overrides (e.g. `timeout_udp_ms: 1000`).
    #[serde(default)]
    pub overrides: BTreeMap<String, serde_json::Value>,
    /// Quarantine of released blocks.
    #[serde(default = "default_quarantine")]
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub block_quarantine_ms: u64,
    /// Public address pools for addresses not pinned (gateway IPs, VirtualIPs), used in
    /// order; a family without a prefix uses its default (`203.0.113.0/24`,
    /// `2001:db8:ffff::/96`).
    #[serde(default)]
    pub pools: Vec<String>,
    /// Conntrack capacity per family.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_flows: Option<u32>,
    /// NAT64 mode.
    #[serde(default)]
    pub nat64: bool,
}

/// A named gateway IP.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpDoc {
    /// Name.
    pub name: String,
    /// Pinned addresses, at most one per family; families without one get the lowest free
    /// pool address.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
}

/// A Kubernetes LabelSelector as written in a scenario (`networkInterfaceSelector`). `{}`
/// selects every NIC of the network; an absent selector selects none. Matching is the API's
/// ([`crate::api::LabelSelector`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    /// Every listed label must be present with exactly this value.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Every expression must hold.
    #[serde(default)]
    pub match_expressions: Vec<LabelExpression>,
}

/// One `matchExpressions` item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelExpression {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: LabelOperator,
    /// Values (for `In` / `NotIn`).
    #[serde(default)]
    pub values: Vec<String>,
}

/// Selector operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LabelOperator {
    /// The label's value is one of `values`.
    In,
    /// The label is absent or its value is not one of `values`.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl LabelSelector {
    /// The API selector this scenario selector stands for.
    pub fn to_api(&self) -> crate::api::LabelSelector {
        use crate::api::{Operator, Requirement};
        crate::api::LabelSelector {
            match_labels: self.match_labels.clone(),
            match_expressions: self
                .match_expressions
                .iter()
                .map(|e| Requirement {
                    key: e.key.clone(),
                    operator: match e.operator {
                        LabelOperator::In => Operator::In,
                        LabelOperator::NotIn => Operator::NotIn,
                        LabelOperator::Exists => Operator::Exists,
                        LabelOperator::DoesNotExist => Operator::DoesNotExist,
                    },
                    values: e.values.iter().cloned().collect(),
                })
                .collect(),
        }
    }
}

/// A scripted application: exactly one of `tcp`, `udp`, `ping`, `probe`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrafficItem {
    /// Name (expectations refer to it).
    pub name: String,
    /// Start time.
    #[serde(default)]
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub at_ms: u64,
    /// NIC or remote host name it runs on.
    pub from: String,
    /// TCP client.
    #[serde(default)]
    pub tcp: Option<TcpDoc>,
    /// UDP client.
    #[serde(default)]
    pub udp: Option<UdpDoc>,
    /// ICMP echo.
    #[serde(default)]
    pub ping: Option<PingDoc>,
    /// RFC 5780 probe.
    #[serde(default)]
    pub probe: Option<ProbeDoc>,
}

fn d100() -> u64 {
    100
}
fn d200() -> u64 {
    DEFAULT_TCP_RTO_MS
}
fn d500() -> u64 {
    500
}
fn d1000() -> u64 {
    1000
}
fn d6() -> u32 {
    DEFAULT_TCP_MAX_RETRIES
}
fn d2() -> u32 {
    2
}
fn d64() -> u64 {
    64
}
fn close_fin() -> CloseMode {
    CloseMode::Fin
}

/// TCP client.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpDoc {
    /// `host:port` (remote or NIC name, or address).
    pub to: String,
    /// Request bytes.
    #[serde(default = "d100")]
    #[schemars(range(max = super::ranges::MAX_STREAM_BYTES))]
    pub request_bytes: u64,
    /// Wait for this many response bytes before holding/closing.
    #[serde(default)]
    #[schemars(range(max = super::ranges::MAX_STREAM_BYTES))]
    pub expect_bytes: u64,
    /// Stay open this long after the response.
    #[serde(default)]
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub hold_ms: u64,
    /// Keepalive spacing while holding (0: none).
    #[serde(default)]
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub keepalive_ms: u64,
    /// `fin`, `rst` or `none`.
    #[serde(default = "close_fin")]
    pub close: CloseMode,
    /// Fixed source port.
    #[serde(default)]
    pub src_port: Option<u16>,
    /// Initial RTO.
    #[serde(default = "d200")]
    #[schemars(range(min = 1, max = super::ranges::MAX_MS))]
    pub rto_ms: u64,
    /// Retransmissions before giving up.
    #[serde(default = "d6")]
    #[schemars(range(max = super::ranges::MAX_RETRIES))]
    pub max_retries: u32,
    /// Largest segment payload to start with (path-MTU discovery lowers it).
    #[serde(default = "default_mss", skip_serializing_if = "is_default_mss")]
    #[schemars(range(min = 8, max = super::ranges::MAX_MSS_BYTES))]
    pub mss_bytes: u64,
    /// Set Don't Fragment on the client's IPv4 segments: path-MTU discovery (RFC 1191).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub df: bool,
    /// Close as soon as the server closes its side (default); `false`: keep holding and
    /// sending keepalives on the half-closed connection until `hold_ms` ends.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub close_on_peer_fin: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

fn default_mss() -> u64 {
    crate::sim::tcp::MSS_BYTES
}

fn is_default_mss(n: &u64) -> bool {
    *n == default_mss()
}

/// UDP client.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UdpDoc {
    /// `host:port`.
    pub to: String,
    /// Datagram size.
    #[serde(default = "d64")]
    #[schemars(range(max = super::ranges::MAX_DATAGRAM_BYTES))]
    pub request_bytes: u64,
    /// Datagrams.
    #[serde(default = "one")]
    #[schemars(range(max = super::ranges::MAX_COUNT))]
    pub count: u32,
    /// Spacing.
    #[serde(default = "d100")]
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub interval_ms: u64,
    /// Reply deadline (0: expect no replies).
    #[serde(default = "d500")]
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub timeout_ms: u64,
    /// Resends without reply.
    #[serde(default = "d2")]
    #[schemars(range(max = super::ranges::MAX_RETRIES))]
    pub retries: u32,
    /// Fixed source port.
    #[serde(default)]
    pub src_port: Option<u16>,
}

/// ICMP echo.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PingDoc {
    /// Host name or address.
    pub to: String,
    /// Requests.
    #[serde(default = "one")]
    #[schemars(range(max = super::ranges::MAX_COUNT))]
    pub count: u32,
    /// Spacing.
    #[serde(default = "d100")]
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub interval_ms: u64,
    /// Deadline after the last request.
    #[serde(default = "d1000")]
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub timeout_ms: u64,
    /// Fixed identifier.
    #[serde(default)]
    pub ident: Option<u16>,
}

/// RFC 5780 probe against a remote with two addresses and two `stun` services.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeDoc {
    /// Remote host name.
    pub server: String,
    /// Per-test deadline.
    #[serde(default = "d500")]
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub timeout_ms: u64,
    /// Fixed source port.
    #[serde(default)]
    pub src_port: Option<u16>,
}

/// An adversary action from a remote host: exactly one kind.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttackItem {
    /// Name.
    pub name: String,
    /// When.
    #[serde(default)]
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub at_ms: u64,
    /// Remote host it comes from.
    pub from: String,
    /// Port scan.
    #[serde(default)]
    pub port_scan: Option<PortScanDoc>,
    /// Unsolicited packets.
    #[serde(default)]
    pub unsolicited: Option<UnsolicitedDoc>,
    /// Packets aimed at a live flow's mapping with one field changed.
    #[serde(default)]
    pub spoof_reply: Option<SpoofDoc>,
    /// Forged ICMP error about a live flow.
    #[serde(default)]
    pub forged_icmp: Option<ForgedIcmpDoc>,
    /// RST injection.
    #[serde(default)]
    pub rst_inject: Option<RstDoc>,
}

/// Port scan.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortScanDoc {
    /// Address, or `ip:<gateway ip name>`.
    pub target: String,
    /// `[first, last]`.
    pub ports: [u16; 2],
    /// Protocol.
    #[serde(default = "tcp_proto")]
    pub protocol: ProtoDoc,
    /// Spacing in microseconds.
    #[serde(default = "d1000")]
    #[schemars(range(max = super::ranges::MAX_US))]
    pub interval_us: u64,
}

fn tcp_proto() -> ProtoDoc {
    ProtoDoc::Tcp
}

/// Unsolicited packet kinds.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnsolicitedKindDoc {
    /// TCP SYN.
    TcpSyn,
    /// UDP.
    Udp,
    /// ICMP echo request (port = identifier).
    IcmpEcho,
    /// A middle fragment of a UDP datagram to the port that never completes (a fragment flood).
    Fragment,
}

/// Unsolicited packets.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnsolicitedDoc {
    /// `address:port` or `ip:<gateway ip name>:port`.
    pub target: String,
    /// Kind.
    pub kind: UnsolicitedKindDoc,
    /// Packets.
    #[serde(default = "one")]
    #[schemars(range(max = super::ranges::MAX_COUNT))]
    pub count: u32,
    /// Spacing.
    #[serde(default = "d10")]
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub interval_ms: u64,
}

fn d10() -> u64 {
    10
}

/// What a spoofed reply changes.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VaryDoc {
    /// Source port.
    SrcPort,
    /// Source address.
    SrcAddr,
    /// NAT port.
    DstPort,
    /// Nothing (a valid reply).
    Nothing,
}

/// Spoofed replies.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpoofDoc {
    /// Scripted flow name.
    pub flow: String,
    /// What to change.
    pub vary: VaryDoc,
    /// Packets.
    #[serde(default = "one")]
    #[schemars(range(max = super::ranges::MAX_COUNT))]
    pub count: u32,
}

/// Forged ICMP error.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgedIcmpDoc {
    /// Scripted flow name.
    pub flow: String,
    /// Corrupt the ICMP checksum.
    #[serde(default)]
    pub bad_checksum: bool,
    /// Quote a NAT port no flow uses.
    #[serde(default)]
    pub wrong_port: bool,
    /// Address the error to this IP (e.g. another of the gateway's NAT addresses) instead of
    /// the flow's own NAT address; the gateway must drop it (docs/behaviour.md §4 ICMP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_destination: Option<String>,
    /// ICMP type of the error (default: IPv4 3, IPv6 1), which must be an error type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    /// ICMP code (default: IPv4 1 host unreachable, IPv6 3 address unreachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
}

/// RST injection.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RstDoc {
    /// Scripted TCP flow name.
    pub flow: String,
    /// From the flow's real remote endpoint (else a wrong port).
    #[serde(default = "yes")]
    pub from_remote: bool,
    /// Added to the server's next sequence number, modulo 2^32 (e.g. 1000000: far outside
    /// the receive window, so the inside host must ignore it).
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub seq_offset: i64,
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// A workload generator.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeneratorDoc {
    /// Name.
    pub name: String,
    /// NIC names; `prefix*` matches by prefix, `*` all.
    pub nics: Vec<String>,
    /// Start.
    #[serde(default)]
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub start_ms: u64,
    /// No new flows after.
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub stop_ms: u64,
    /// Arrivals: exactly one of `fixed_ms`, `poisson_per_s`.
    pub arrivals: ArrivalsDoc,
    /// Durations: exactly one of `fixed_ms`, `exponential_mean_ms`, `pareto`.
    pub duration: DurationDoc,
    /// Remote host names.
    pub destinations: Vec<String>,
    /// Zipf exponent over `destinations` (absent: uniform).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = super::ranges::MAX_SHAPE))]
    pub zipf_s: Option<f64>,
    /// Protocol weights.
    #[serde(default)]
    pub mix: MixDoc,
    /// Bytes per request.
    #[serde(default = "d100")]
    #[schemars(range(max = super::ranges::MAX_DATAGRAM_BYTES))]
    pub request_bytes: u64,
    /// Packet spacing in UDP/ICMP flows; TCP keepalive spacing.
    #[serde(default = "d1000")]
    #[schemars(range(min = 1, max = super::ranges::MAX_MS))]
    pub interval_ms: u64,
}

/// Arrivals.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArrivalsDoc {
    /// Fixed spacing.
    #[serde(default)]
    #[schemars(range(min = 1, max = super::ranges::MAX_MS))]
    pub fixed_ms: Option<u64>,
    /// Poisson rate per NIC.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = super::ranges::MAX_RATE_PER_S))]
    pub poisson_per_s: Option<f64>,
}

/// Durations.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DurationDoc {
    /// Fixed.
    #[serde(default)]
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub fixed_ms: Option<u64>,
    /// Exponential mean.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = super::ranges::MAX_MS as f64))]
    pub exponential_mean_ms: Option<f64>,
    /// Pareto.
    #[serde(default)]
    pub pareto: Option<ParetoDoc>,
}

/// Pareto parameters.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParetoDoc {
    /// Scale (minimum).
    #[schemars(range(min = 0.0, max = super::ranges::MAX_MS as f64))]
    pub scale_ms: f64,
    /// Shape (tail index).
    #[schemars(range(min = 0.0, max = super::ranges::MAX_SHAPE))]
    pub shape: f64,
}

/// Protocol weights.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MixDoc {
    /// TCP weight.
    pub tcp: u32,
    /// UDP weight.
    pub udp: u32,
    /// ICMP weight.
    pub icmp: u32,
}

impl Default for MixDoc {
    fn default() -> Self {
        MixDoc {
            tcp: 1,
            udp: 0,
            icmp: 0,
        }
    }
}

/// A fault or control-plane change: exactly one action.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultItem {
    /// When.
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub at_ms: u64,
    /// Link name down.
    #[serde(default)]
    pub link_down: Option<String>,
    /// Link name up.
    #[serde(default)]
    pub link_up: Option<String>,
    /// Dataplane node restarts, losing its state.
    #[serde(default)]
    pub restart_node: Option<u16>,
    /// Gateway IP (by name) removed.
    #[serde(default)]
    pub remove_nat_ip: Option<String>,
    /// Gateway IP added.
    #[serde(default)]
    pub add_nat_ip: Option<IpDoc>,
    /// NIC (declared `present: false`) created.
    #[serde(default)]
    pub add_nic: Option<String>,
    /// NIC deleted.
    #[serde(default)]
    pub delete_nic: Option<String>,
    /// NIC relabelled.
    #[serde(default)]
    pub relabel: Option<RelabelDoc>,
    /// VirtualIP attached to a NIC.
    #[serde(default)]
    pub attach_virtual_ip: Option<String>,
    /// VirtualIP removed from a NIC.
    #[serde(default)]
    pub detach_virtual_ip: Option<String>,
    /// P changed.
    #[serde(default)]
    pub set_ports_per_nic: Option<u32>,
    /// Gateway deleted (`true`).
    #[serde(default)]
    pub delete_gateway: Option<bool>,
    /// Targeted loss: from now on, lose chosen packets matching a pattern on a link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_packets: Option<DropPacketsDoc>,
}

fn one_u32() -> u32 {
    1
}

/// Targeted loss: of the packets on link `on` that match `match` (fields as in
/// `expect.packets`, without variables or `in_block_of`), the `nth` and the `count - 1`
/// matching ones after it are lost.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DropPacketsDoc {
    /// The link (`nic/<name>`, `remote/<name>`, `uplink/<node>`).
    pub on: String,
    /// Which packets count.
    #[serde(rename = "match", default)]
    pub pattern: super::packets::PatternDoc,
    /// The first matching packet to lose (1: the first).
    #[serde(default = "one_u32")]
    #[schemars(range(min = 1, max = super::ranges::MAX_COUNT))]
    pub nth: u32,
    /// How many matching packets to lose from there.
    #[serde(default = "one_u32")]
    #[schemars(range(min = 1, max = super::ranges::MAX_COUNT))]
    pub count: u32,
}

/// Relabel.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelabelDoc {
    /// NIC.
    pub nic: String,
    /// New labels (replacing all).
    pub labels: BTreeMap<String, String>,
}

/// A bound on a number: a plain number means equality.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum BoundDoc {
    /// Exactly.
    Exact(u64),
    /// Range.
    Range {
        /// Exactly.
        #[serde(default)]
        eq: Option<u64>,
        /// At least.
        #[serde(default)]
        min: Option<u64>,
        /// At most.
        #[serde(default)]
        max: Option<u64>,
    },
}

/// Counters at one virtual time: what has happened up to and including `at_ms` (a phase
/// boundary), with the same names and bounds as `counters` and `nic_counters`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountersAtDoc {
    /// When.
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub at_ms: u64,
    /// Gateway and simulator counters over all nodes.
    #[serde(default)]
    pub counters: BTreeMap<Name, BoundDoc>,
    /// Per NIC: gateway and host counters.
    #[serde(default)]
    pub nic_counters: BTreeMap<Name, BTreeMap<Name, BoundDoc>>,
}

/// Expected outcome of a scripted application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlowExpect {
    /// Completed.
    Completes,
    /// Failed.
    Fails,
    /// Still running at the end.
    Running,
}

/// Expected RFC 5780 classification.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeExpect {
    /// Mapping behaviour.
    pub mapping: String,
    /// Filtering behaviour.
    pub filtering: String,
}

/// Expected generator results.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeneratorExpect {
    /// Flows started.
    #[serde(default)]
    pub started: Option<BoundDoc>,
    /// Flows completed.
    #[serde(default)]
    pub completed: Option<BoundDoc>,
    /// Flows failed.
    #[serde(default)]
    pub failed: Option<BoundDoc>,
}

/// A name written as a map key or list item (a NIC, counter, flow, ...), with where it was
/// written so an unknown name is reported at its line and column. Compares by the name only.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Name(pub Spanned<String>);

impl Name {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0.value
    }
    /// 1-based line and column (0 when the document was not read from text).
    pub fn location(&self) -> (u64, u64) {
        (self.0.referenced.line(), self.0.referenced.column())
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name(Spanned::new(
            s.to_string(),
            serde_saphyr::Location::UNKNOWN,
            serde_saphyr::Location::UNKNOWN,
        ))
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.0.value == other.0.value
    }
}
impl Eq for Name {}
impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Name {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.value.cmp(&other.0.value)
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.value)
    }
}

impl JsonSchema for Name {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "String".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(g)
    }
}

/// `expect`. Every name in it (counters, NICs, remote hosts, flows, generators, families)
/// must resolve when the scenario loads.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// Gateway counters over all nodes (`drop.unsolicited`, `translated.out.tcp`, ...) and
    /// simulator counters (`sim.relayed`, `sim.no_route`, ...).
    #[serde(default)]
    pub counters: BTreeMap<Name, BoundDoc>,
    /// Per NIC: gateway counters and host counters (`host.received`, `host.from_outside`,
    /// `host.unsolicited_from_outside`, `host.icmp_errors`, `ports.peak`).
    #[serde(default)]
    pub nic_counters: BTreeMap<Name, BTreeMap<Name, BoundDoc>>,
    /// Per remote host: host counters (`host.received`, ...).
    #[serde(default)]
    pub remote_counters: BTreeMap<Name, BTreeMap<Name, BoundDoc>>,
    /// Scripted application outcomes.
    #[serde(default)]
    pub flows: BTreeMap<Name, FlowExpect>,
    /// Per scripted application: bytes/replies received.
    #[serde(default)]
    pub received: BTreeMap<Name, BoundDoc>,
    /// RFC 5780 results.
    #[serde(default)]
    pub probes: BTreeMap<Name, ProbeExpect>,
    /// NICs that must receive nothing from outside.
    #[serde(default)]
    pub no_inbound_from_outside: Vec<Name>,
    /// No NIC receives an unsolicited packet from outside.
    #[serde(default)]
    pub no_unsolicited_delivery: bool,
    /// Generator results.
    #[serde(default)]
    pub generators: BTreeMap<Name, GeneratorExpect>,
    /// `portsUsed` at the end.
    #[serde(default)]
    pub ports_used: Option<u64>,
    /// Routing table at the end: NIC → family → `ip:port-endPort` or `none`.
    #[serde(default)]
    pub routing: BTreeMap<Name, BTreeMap<Name, String>>,
    /// NICs requested / allocated per family at the end.
    #[serde(default)]
    pub allocated: BTreeMap<Name, u64>,
    /// Live flows at the end.
    #[serde(default)]
    pub live_flows: Option<BoundDoc>,
    /// Invariants that must have made at least one check (an invariant that made none is
    /// "not exercised"); unmet is exit 3 like any expectation.
    #[serde(default)]
    pub exercised: Vec<crate::check::Invariant>,
    /// Per dataplane node (0, 1, ...): that node's gateway counters at the end (the
    /// distributed dataplane; `counters` sums them over all nodes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_counters: BTreeMap<u16, BTreeMap<Name, BoundDoc>>,
    /// Counters at given virtual times, checked while the run is under way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<CountersAtDoc>")]
    pub counters_at: Vec<Spanned<CountersAtDoc>>,
    /// Packets that must (or must never) appear on a link, in file order; a field of a matched
    /// packet can be captured into a variable that later expectations compare with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<super::packets::PacketExpect>")]
    pub packets: Vec<Spanned<super::packets::PacketExpect>>,
}

/// The JSON Schema of scenario files.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(ScenarioFile);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}
