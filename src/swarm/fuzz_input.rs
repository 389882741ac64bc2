//! The input format of the `sim_world` fuzz target: bytes → address families, feature mask,
//! generator seed and a few extra outside adversary items → the swarm generator's world.
//!
//! It lives in `swarm`, not in the fuzz harness, because `natsim swarm --from-fuzz FILE`
//! ([`super::from_fuzz`]) decodes crash files with it in every build, while the harness
//! (`natsim::fuzzing::world`, behind the `fuzzing` cargo feature) only runs what this decodes.
//! The extras' ports, protocols and targets are raw input bytes, so that coverage guidance (and
//! libFuzzer's comparison tracing) can steer packets at exact ports.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use super::bytes::ByteReader;
use super::generate::{ADVERSARY, attack_item};
use super::{Families, Features, Outcome, Target, generate, run_case};
use crate::scenario::load_doc;
use crate::scenario::schema::{
    PortScanDoc, ProtoDoc, ScenarioFile, UnsolicitedDoc, UnsolicitedKindDoc,
};

/// Upper bound on the extra adversary items one input adds.
pub const MAX_EXTRAS: usize = 4;

/// Bytes of the fixed header: families, feature mask, generator seed.
pub const HEADER_BYTES: usize = 13;

/// Bytes of one encoded [`Extra`].
pub const EXTRA_BYTES: usize = 6;

/// The scenario name candidates are loaded under (it appears in reports, not on disk).
const SCENARIO_PATH: &str = "sim_world.yaml";

/// What an extra adversary item sends from the outside remote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtraKind {
    /// Unsolicited TCP SYNs.
    TcpSyn,
    /// Unsolicited UDP datagrams.
    Udp,
    /// Unsolicited ICMP echo requests (the port is the identifier).
    IcmpEcho,
    /// A TCP port scan.
    TcpScan,
    /// A UDP port scan.
    UdpScan,
}

impl ExtraKind {
    /// Every kind, in encoding order.
    pub const ALL: [ExtraKind; 5] = [
        ExtraKind::TcpSyn,
        ExtraKind::Udp,
        ExtraKind::IcmpEcho,
        ExtraKind::TcpScan,
        ExtraKind::UdpScan,
    ];
}

/// One extra outside adversary item, added to the generated world's `attacks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extra {
    /// What it sends.
    pub kind: ExtraKind,
    /// Aim at an inside NIC's private address instead of a NAT address (unsolicited kinds
    /// only; scans always aim at a NAT address).
    pub private: bool,
    /// Which address: an index into the gateway's NAT addresses (or the NICs' addresses), taken
    /// modulo their number.
    pub target: u8,
    /// Destination port (first port of a scan; identifier of an echo); 0 reads as 1.
    pub port: u16,
    /// When, in 256ths of the world's planned duration.
    pub at: u8,
    /// Unsolicited: packets sent − 1 (modulo 8). Scan: ports after the first.
    pub count: u8,
}

impl Extra {
    /// Reads one item (6 bytes: `kind | private << 3`, target, port (u16 BE), at, count).
    pub fn decode(r: &mut ByteReader) -> Extra {
        let k = r.u8();
        Extra {
            kind: ExtraKind::ALL[usize::from(k & 7) % ExtraKind::ALL.len()],
            private: k & 8 != 0,
            target: r.u8(),
            port: r.u16(),
            at: r.u8(),
            count: r.u8(),
        }
    }

    /// Appends the bytes [`Extra::decode`] reads back.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let kind = ExtraKind::ALL
            .iter()
            .position(|k| *k == self.kind)
            .unwrap_or(0) as u8;
        out.push(kind | u8::from(self.private) << 3);
        out.push(self.target);
        out.extend_from_slice(&self.port.to_be_bytes());
        out.push(self.at);
        out.push(self.count);
    }

    /// Adds this item to `doc` as attack `x{index}`; nothing when the world has no address to
    /// aim at.
    fn add_to(&self, index: usize, doc: &mut ScenarioFile) {
        let nat: Vec<IpAddr> = doc
            .gateway
            .iter()
            .flat_map(|g| g.ips.iter().flat_map(|ip| ip.addresses.iter().copied()))
            .collect();
        let private: Vec<IpAddr> = doc
            .topology
            .nics
            .iter()
            .flat_map(|n| n.value.addresses.iter().copied())
            .collect();
        let scan = matches!(self.kind, ExtraKind::TcpScan | ExtraKind::UdpScan);
        let pool = if self.private && !scan {
            &private
        } else {
            &nat
        };
        if pool.is_empty() {
            return;
        }
        let addr = pool[usize::from(self.target) % pool.len()];
        let port = self.port.max(1);
        // Spread over the planned duration (the generator's items live in the same window).
        let planned_ms = doc.limits.duration_ms.unwrap_or(0);
        let at_ms = planned_ms * u64::from(self.at) / 256;
        let mut item = attack_item(format!("x{index}"), at_ms, ADVERSARY);
        let unsolicited = |kind| UnsolicitedDoc {
            target: SocketAddr::new(addr, port).to_string(),
            kind,
            count: 1 + u32::from(self.count % 8),
            interval_ms: 10,
        };
        let scan = |protocol| PortScanDoc {
            target: addr.to_string(),
            ports: [port, port.saturating_add(u16::from(self.count))],
            protocol,
            interval_us: 500,
        };
        match self.kind {
            ExtraKind::TcpSyn => {
                item.value.unsolicited = Some(unsolicited(UnsolicitedKindDoc::TcpSyn))
            }
            ExtraKind::Udp => item.value.unsolicited = Some(unsolicited(UnsolicitedKindDoc::Udp)),
            ExtraKind::IcmpEcho => {
                item.value.unsolicited = Some(unsolicited(UnsolicitedKindDoc::IcmpEcho))
            }
            ExtraKind::TcpScan => item.value.port_scan = Some(scan(ProtoDoc::Tcp)),
            ExtraKind::UdpScan => item.value.port_scan = Some(scan(ProtoDoc::Udp)),
        }
        doc.attacks.push(item);
    }
}

/// A decoded `sim_world` input: which world to generate and what to add to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorldInput {
    /// Address families.
    pub families: Families,
    /// Feature switches ([`Features::from_mask`]; bits past the last switch are ignored).
    pub mask: u32,
    /// The generator seed (also the run's seed).
    pub seed: u64,
    /// Extra outside adversary items, at most [`MAX_EXTRAS`].
    pub extras: Vec<Extra>,
}

impl WorldInput {
    /// Decodes any byte string (missing bytes read as zeros): `families: u8` (modulo 3: v4, v6,
    /// dual), `mask: u32` (BE), `seed: u64` (BE), then up to [`MAX_EXTRAS`] [`Extra`]s of
    /// [`EXTRA_BYTES`] each while input is left.
    pub fn decode(data: &[u8]) -> WorldInput {
        let mut r = ByteReader::new(data);
        let families = match r.u8() % 3 {
            0 => Families::V4,
            1 => Families::V6,
            _ => Families::Dual,
        };
        let mask = r.u32();
        let seed = r.u64();
        let mut extras = Vec::new();
        while !r.is_empty() && extras.len() < MAX_EXTRAS {
            extras.push(Extra::decode(&mut r));
        }
        WorldInput {
            families,
            mask,
            seed,
            extras,
        }
    }

    /// The bytes [`WorldInput::decode`] reads back (for seeds and tests).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + EXTRA_BYTES * self.extras.len());
        out.push(match self.families {
            Families::V4 => 0,
            Families::V6 => 1,
            Families::Dual => 2,
        });
        out.extend_from_slice(&self.mask.to_be_bytes());
        out.extend_from_slice(&self.seed.to_be_bytes());
        for x in &self.extras {
            x.encode(&mut out);
        }
        out
    }

    /// The features the world is generated with.
    pub fn features(&self) -> Features {
        Features::from_mask(self.families, self.mask)
    }

    /// The scenario document: the swarm generator's world for the seed and features, plus the
    /// extra items.
    pub fn document(&self) -> ScenarioFile {
        let mut doc = generate(self.seed, &self.features());
        for (i, x) in self.extras.iter().enumerate() {
            x.add_to(i, &mut doc);
        }
        doc
    }

    /// Runs the document against `target` as `natsim swarm` runs a seed ([`run_case`]: the
    /// invariant checker on every event, a second run for the determinism digest), except that
    /// the document is resolved directly ([`load_doc`]) instead of being written as YAML and
    /// parsed back: that round trip is about 40% of an execution, and it does not change a
    /// generated document (`tests/fuzz_corpus.rs` checks it for the corpus, extras included).
    pub fn run(&self, target: Target) -> Outcome {
        match load_doc(Path::new(SCENARIO_PATH), self.document()) {
            Ok(sc) => run_case(&sc, target),
            Err(e) => Outcome::bad_input(e.to_string()),
        }
    }
}

impl fmt::Display for WorldInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} | seed {} | {} extra item(s)",
            self.features(),
            self.seed,
            self.extras.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_round_trip_through_bytes() {
        let input = WorldInput {
            families: Families::Dual,
            mask: 0x0abc_def1,
            seed: u64::MAX - 7,
            extras: vec![
                Extra {
                    kind: ExtraKind::UdpScan,
                    private: false,
                    target: 3,
                    port: 1040,
                    at: 200,
                    count: 9,
                },
                Extra {
                    kind: ExtraKind::IcmpEcho,
                    private: true,
                    target: 0,
                    port: 0,
                    at: 0,
                    count: 255,
                },
            ],
        };
        assert_eq!(WorldInput::decode(&input.encode()), input);
    }

    #[test]
    fn short_input_is_a_v4_world_with_seed_zero_and_no_extras() {
        let input = WorldInput::decode(&[]);
        assert_eq!(input.families, Families::V4);
        assert_eq!((input.mask, input.seed), (0, 0));
        assert!(input.extras.is_empty());
        let many = vec![1u8; HEADER_BYTES + EXTRA_BYTES * (MAX_EXTRAS + 3)];
        assert_eq!(WorldInput::decode(&many).extras.len(), MAX_EXTRAS);
    }

    #[test]
    fn extras_become_attacks_on_addresses_of_the_world() {
        let mut input = WorldInput::decode(&[0, 0, 0, 0, 2]);
        let base = input.document().attacks.len();
        input.extras = vec![
            Extra {
                kind: ExtraKind::TcpSyn,
                private: false,
                target: 0,
                port: 1040,
                at: 128,
                count: 2,
            },
            Extra {
                kind: ExtraKind::TcpScan,
                private: true,
                target: 1,
                port: 65_530,
                at: 0,
                count: 200,
            },
        ];
        let doc = input.document();
        assert_eq!(doc.attacks.len(), base + 2);
        let syn = &doc.attacks[base].value;
        assert_eq!(syn.name, "x0");
        let u = syn.unsolicited.as_ref().expect("unsolicited");
        assert_eq!((u.target.as_str(), u.count), ("203.0.113.1:1040", 3));
        let scan = doc.attacks[base + 1]
            .value
            .port_scan
            .as_ref()
            .expect("scan");
        assert_eq!(scan.ports, [65_530, 65_535]);
        assert!(scan.target.starts_with("203.0.113."), "{}", scan.target);
        // The document loads and runs on the real gateway.
        assert_eq!(input.run(Target::Real).failure, None);
    }
}
