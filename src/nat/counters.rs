//! Counters with stable names, in total and per NIC, and the drop reasons they count.

use std::collections::BTreeMap;

use serde::Serialize;

/// Why the gateway dropped a packet. Names are stable: counters are `drop.<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
// A whole aligned word: a `Verdict::Drop` written as two bytes was copied with a load across
// both stores, which the CPU cannot forward (a stall on every refused packet).
#[repr(u32)]
pub enum DropReason {
    /// Did not parse as an IP packet natsim handles.
    Malformed,
    /// IPv4 header, transport or ICMP (or quoted IP header) checksum did not verify.
    BadChecksum,
    /// Inbound packet matching no live flow (or sent to an address that is not a NAT IP).
    Unsolicited,
    /// No free port in the NIC's block for this scope key.
    PortsExhausted,
    /// Connection-tracking table full.
    TableFull,
    /// The NIC has no port block for this family (not selected, exhausted, or has a VirtualIP).
    NoNatBlock,
    /// Not TCP, UDP, ICMP or ICMPv6.
    UnsupportedProtocol,
    /// ICMP type the gateway does not translate (or ICMP disabled by the profile).
    UnsupportedIcmp,
    /// ICMP error quoting no live flow, or not addressed to the quoted packet's source (the
    /// flow's NAT address inbound, its remote outbound; docs/behaviour.md §4 ICMP).
    IcmpErrorNoFlow,
    /// Source address is not one of the sending NIC's addresses.
    SpoofedSource,
    /// Packet from a NIC the gateway does not know.
    UnknownNic,
    /// TCP packet other than SYN for which no flow exists.
    TcpNoFlow,
    /// Fragment state limits reached.
    FragmentLimit,
    /// Fragment buffered for its first fragment, which never came in time.
    FragmentTimeout,
    /// Later fragment of a datagram whose first fragment was dropped (or, from inside, whose
    /// flow has ended since).
    FragmentOfDropped,
    /// The packet would have left with TTL / hop limit 0 (profiles that are a router hop).
    TtlExpired,
}

impl DropReason {
    /// All reasons, in counter order.
    pub const ALL: [DropReason; 16] = [
        DropReason::Malformed,
        DropReason::BadChecksum,
        DropReason::Unsolicited,
        DropReason::PortsExhausted,
        DropReason::TableFull,
        DropReason::NoNatBlock,
        DropReason::UnsupportedProtocol,
        DropReason::UnsupportedIcmp,
        DropReason::IcmpErrorNoFlow,
        DropReason::SpoofedSource,
        DropReason::UnknownNic,
        DropReason::TcpNoFlow,
        DropReason::FragmentLimit,
        DropReason::FragmentTimeout,
        DropReason::FragmentOfDropped,
        DropReason::TtlExpired,
    ];

    /// Stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::Unsolicited => "unsolicited",
            DropReason::PortsExhausted => "ports_exhausted",
            DropReason::TableFull => "table_full",
            DropReason::NoNatBlock => "no_nat_block",
            DropReason::UnsupportedProtocol => "unsupported_protocol",
            DropReason::UnsupportedIcmp => "unsupported_icmp",
            DropReason::IcmpErrorNoFlow => "icmp_error_no_flow",
            DropReason::SpoofedSource => "spoofed_source",
            DropReason::UnknownNic => "unknown_nic",
            DropReason::TcpNoFlow => "tcp_no_flow",
            DropReason::FragmentLimit => "fragment_limit",
            DropReason::FragmentTimeout => "fragment_timeout",
            DropReason::FragmentOfDropped => "fragment_of_dropped",
            DropReason::TtlExpired => "ttl_expired",
        }
    }
}

/// Transport class for per-protocol counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ProtoClass {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP and ICMPv6 (echo and errors).
    Icmp,
    /// Non-first fragments (protocol not visible).
    Fragment,
}

impl ProtoClass {
    fn name(self) -> &'static str {
        match self {
            ProtoClass::Tcp => "tcp",
            ProtoClass::Udp => "udp",
            ProtoClass::Icmp => "icmp",
            ProtoClass::Fragment => "fragment",
        }
    }
    const ALL: [ProtoClass; 4] = [
        ProtoClass::Tcp,
        ProtoClass::Udp,
        ProtoClass::Icmp,
        ProtoClass::Fragment,
    ];
}

/// One set of counters (the gateway keeps one in total and one per NIC).
///
/// Accounting (total counters): every packet handed to `Gateway::process` adds exactly one to
/// `translated_out` + `translated_in` + `hairpinned` + `passed_through` + `drops`, except an echo
/// reply to a NAT IP (only `generated`) and a buffered fragment (counted once later: translated
/// when released, or dropped as `fragment_of_dropped` / `fragment_timeout`). An ICMP error sent
/// instead of a silent drop counts the drop and `generated`. A hairpinned packet counts as
/// `hairpinned` (total and sending NIC) and as `translated_in` of the receiving NIC only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Translated inside → outside, by protocol class.
    pub translated_out: [u64; 4],
    /// Translated outside → inside, by protocol class.
    pub translated_in: [u64; 4],
    /// Delivered NIC → NAT IP → NIC.
    pub hairpinned: u64,
    /// Passed untranslated (destination inside the network).
    pub passed_through: u64,
    /// Packets the gateway originated (echo replies, ICMP errors).
    pub generated: u64,
    /// Flows created.
    pub flows_created: u64,
    /// Flows that ended (timeout, close, block loss).
    pub flows_ended: u64,
    /// Drops by reason, indexed like [`DropReason::ALL`].
    pub drops: [u64; 16],
}

impl Counters {
    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    /// Drops for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// All drops.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Adds another set of counters to this one, field by field (the simulator sums its
    /// dataplane nodes this way). The destructuring names every field, so a counter added to
    /// the struct does not compile until it is summed here too.
    pub fn add(&mut self, other: &Counters) {
        let Counters {
            translated_out,
            translated_in,
            hairpinned,
            passed_through,
            generated,
            flows_created,
            flows_ended,
            drops,
        } = other;
        for (t, v) in self.translated_out.iter_mut().zip(translated_out) {
            *t += v;
        }
        for (t, v) in self.translated_in.iter_mut().zip(translated_in) {
            *t += v;
        }
        self.hairpinned += hairpinned;
        self.passed_through += passed_through;
        self.generated += generated;
        self.flows_created += flows_created;
        self.flows_ended += flows_ended;
        for (t, v) in self.drops.iter_mut().zip(drops) {
            *t += v;
        }
    }

    /// The counters as a name → value map (zero values omitted), e.g. `translated.out.tcp`,
    /// `drop.unsolicited`.
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        let mut m = self.to_map_all();
        m.retain(|_, v| *v != 0);
        m
    }

    /// Every counter name, in name order: the registry scenario expectations resolve against.
    /// Derived from [`Counters::to_map_all`], so a counter added there is known at once.
    pub fn names() -> Vec<String> {
        Counters::default().to_map_all().into_keys().collect()
    }

    /// The counters as a name → value map, zero values included (the one place that names
    /// counters; [`Counters::to_map`] and [`Counters::names`] derive from it).
    pub fn to_map_all(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        let mut put = |k: String, v: u64| {
            m.insert(k, v);
        };
        for c in ProtoClass::ALL {
            put(
                format!("translated.out.{}", c.name()),
                self.translated_out[c as usize],
            );
            put(
                format!("translated.in.{}", c.name()),
                self.translated_in[c as usize],
            );
        }
        put("translated.hairpin".into(), self.hairpinned);
        put("passed_through".into(), self.passed_through);
        put("generated".into(), self.generated);
        put("flows.created".into(), self.flows_created);
        put("flows.ended".into(), self.flows_ended);
        for r in DropReason::ALL {
            put(format!("drop.{}", r.name()), self.dropped(r));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counters whose every named counter has a distinct value, from `base` up.
    fn distinct(base: u64) -> Counters {
        let mut c = Counters::default();
        let mut n = base;
        let mut next = || {
            n += 1;
            n
        };
        for v in c
            .translated_out
            .iter_mut()
            .chain(c.translated_in.iter_mut())
        {
            *v = next();
        }
        c.hairpinned = next();
        c.passed_through = next();
        c.generated = next();
        c.flows_created = next();
        c.flows_ended = next();
        for v in c.drops.iter_mut() {
            *v = next();
        }
        c
    }

    #[test]
    fn add_sums_every_named_counter() {
        let (a, b) = (distinct(0), distinct(1000));
        let mut sum = a.clone();
        sum.add(&b);
        let (ma, mb) = (a.to_map_all(), b.to_map_all());
        let got = sum.to_map_all();
        assert_eq!(got.len(), ma.len());
        for (name, v) in &got {
            assert_eq!(*v, ma[name] + mb[name], "counter {name} not summed");
            assert!(ma[name] > 0, "counter {name} not set by the test");
        }
        // Adding zero changes nothing.
        let mut same = a.clone();
        same.add(&Counters::default());
        assert_eq!(same, a);
    }
}
