//! The replay never panics and keeps its books, whatever the packets: valid TCP/UDP/ICMP
//! exchanges in both directions, ICMP errors, fragments and odd protocols, mutated at random
//! bytes and cut at random lengths, replayed in memory. Emitted packets must still satisfy the
//! replay-side invariants: mutated input may be dropped, never forwarded broken.

use std::net::IpAddr;

use natsim::replay::{CaptureReader, PcapCaptureWriter, ReplayConfig, replay_streams};
use natsim::wire::PacketRepr;
use natsim::wire::tcp_flags::{ACK, SYN};
use proptest::prelude::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// Valid seeds: an outbound packet and its reply for each kind, v4 and v6, plus oddities.
fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (inside, remote) in [("10.0.0.1", "8.8.8.8"), ("fd00::1", "2001:db8::8")] {
        let (i, r) = (ip(inside), ip(remote));
        let syn = PacketRepr::tcp((i, 4000), (r, 80), SYN, 1, 0, b"").emit();
        out.push(syn.clone());
        out.push(PacketRepr::tcp((r, 80), (i, 4000), SYN | ACK, 9, 2, b"").emit());
        out.push(PacketRepr::udp((i, 5000), (r, 53), b"query").emit());
        out.push(PacketRepr::udp((r, 53), (i, 5000), b"answer").emit());
        out.push(PacketRepr::echo_request(i, r, 7, 1, b"ping").emit());
        out.push(PacketRepr::echo_reply(r, i, 7, 1, b"ping").emit());
        let (t, c) = if i.is_ipv4() { (3, 3) } else { (1, 4) };
        out.push(PacketRepr::icmp_error(ip(remote), i, t, c, &syn).emit());
        let big = PacketRepr::udp((r, 53), (i, 5000), &[7u8; 300]);
        out.extend(big.emit_fragments(96));
    }
    // Protocol 253 with no payload, towards the inside host.
    let mut odd = PacketRepr::udp((ip("8.8.8.8"), 1), (ip("10.0.0.1"), 2), b"").emit();
    odd[9] = 253;
    odd.truncate(20);
    odd[2..4].copy_from_slice(&20u16.to_be_bytes());
    out.push(odd);
    out
}

/// One packet: a seed, some bytes overwritten, maybe cut short. The version nibble is kept so
/// the reader yields it (it skips other versions before the replay sees them).
fn packet() -> impl Strategy<Value = Vec<u8>> {
    let n = seeds().len();
    (
        0..n,
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        prop::option::of(any::<usize>()),
    )
        .prop_map(|(seed, edits, cut)| {
            let mut p = seeds()[seed].clone();
            for (at, v) in edits {
                let at = at % p.len();
                p[at] = if at == 0 {
                    (p[0] & 0xf0) | (v & 0x0f)
                } else {
                    v
                };
            }
            if let Some(c) = cut {
                p.truncate(1 + c % p.len());
            }
            p
        })
}

fn capture(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut w = PcapCaptureWriter::new(Vec::new()).expect("vec");
    for (i, p) in packets.iter().enumerate() {
        w.write_packet(1_000_000_000 + i as u64 * 1_000_000, p)
            .expect("vec");
    }
    w.finish().expect("vec")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn replay_never_panics_and_keeps_its_books(
        packets in prop::collection::vec(packet(), 1..40),
        fix in any::<bool>(),
    ) {
        let bytes = capture(&packets);
        let config = ReplayConfig { fix_checksums: fix, verdicts: true, ..ReplayConfig::default() };
        let outcome = replay_streams(
            || CaptureReader::new(&bytes[..], "prop"),
            "prop",
            &config,
            Vec::new(),
            Vec::new(),
            Some(Vec::new()),
        )
        .expect("an in-memory capture always replays");
        let s = &outcome.summary;
        let skipped: u64 = s.skipped.values().sum();
        // Classified packets (multicast, link-local, ... ends) are accounted for too.
        let classified: u64 = s.classified.values().sum();
        prop_assert_eq!(s.replayed_packets + skipped + classified, packets.len() as u64);
        prop_assert_eq!(s.violation_total(), 0, "{:?}", s.violation_examples);
    }
}
