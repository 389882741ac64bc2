//! Valid ranges of every duration, size, count and rate in a scenario file, checked when it
//! loads (so nothing wraps or saturates later: a millisecond value is at most [`MAX_MS`], whose
//! nanoseconds fit in a `u64` many times over) and written into the JSON Schema (the schema's
//! `minimum`/`maximum` use these constants). An out-of-range value is bad input naming the
//! field, the value and the range.

use serde_saphyr::{Location, Spanned};

use super::schema::{ArrivalsDoc, GeneratorDoc, ProtoDoc, ScenarioFile};
use crate::sim::link::LinkConfig;

/// Longest duration in milliseconds (365 days): `at_ms`, `interval_ms`, `hold_ms`, timeouts,
/// `limits.max_time_ms`, ... (defined in [`crate::time`], which replay's ranges share).
pub const MAX_MS: u64 = crate::time::MAX_DURATION_MS;
/// Longest duration in microseconds (365 days): link delays, `port_scan.interval_us`.
pub const MAX_US: u64 = crate::time::MAX_DURATION_US;
/// Most bytes one TCP request or response may carry (100 MiB).
pub const MAX_STREAM_BYTES: u64 = 100 * 1024 * 1024;
/// Most payload bytes of one UDP datagram (65535 − 20 IPv4 − 8 UDP).
pub const MAX_DATAGRAM_BYTES: u64 = 65_507;
/// Most packets or requests one item may send (`count`).
pub const MAX_COUNT: u64 = 10_000_000;
/// Largest TCP segment payload: an IPv4 datagram of 65,535 bytes less 40 bytes of headers.
pub const MAX_MSS_BYTES: u64 = 65_495;
/// Most retransmissions or resends of one application.
pub const MAX_RETRIES: u64 = 64;
/// Highest Poisson arrival rate per NIC (flows per second).
pub const MAX_RATE_PER_S: f64 = 10_000.0;
/// Most dataplane nodes.
pub const MAX_NODES: u64 = 1024;
/// Smallest and largest link MTU, defined with the link ([`crate::sim::link`]).
pub use crate::sim::link::{MAX_MTU_BYTES, MIN_MTU_BYTES};
/// Largest Zipf exponent, Pareto shape or mix weight sum worth sampling.
pub const MAX_SHAPE: f64 = 100.0;

/// Milliseconds to nanoseconds for a value already range-checked (≤ [`MAX_MS`]); never wraps.
pub fn ms_to_ns(ms: u64) -> u64 {
    ms.min(MAX_MS) * 1_000_000
}

/// An out-of-range value: where, which field, and the message.
#[derive(Debug)]
pub struct RangeError {
    /// Location of the item holding the field (unknown: 0).
    pub line: u64,
    /// Column.
    pub column: u64,
    /// Field path.
    pub field: String,
    /// `value V is out of range MIN..=MAX (unit)`.
    pub message: String,
}

struct Checker {
    at: Location,
}

impl Checker {
    fn int(&self, field: String, v: u64, min: u64, max: u64, unit: &str) -> Result<(), RangeError> {
        if (min..=max).contains(&v) {
            return Ok(());
        }
        Err(RangeError {
            line: self.at.line(),
            column: self.at.column(),
            field,
            message: format!("{v} is out of range {min}..={max}{unit}"),
        })
    }
    fn ms(&self, field: String, v: u64) -> Result<(), RangeError> {
        self.int(field, v, 0, MAX_MS, " ms (365 days)")
    }
    fn float(&self, field: String, v: f64, max: f64, unit: &str) -> Result<(), RangeError> {
        if v.is_finite() && v > 0.0 && v <= max {
            return Ok(());
        }
        Err(RangeError {
            line: self.at.line(),
            column: self.at.column(),
            field,
            message: format!("{v} is out of range (0, {max}]{unit}"),
        })
    }
    fn link(&self, field: &str, l: &LinkConfig) -> Result<(), RangeError> {
        self.int(format!("{field}.delay_us"), l.delay_us, 0, MAX_US, " µs")?;
        self.int(format!("{field}.jitter_us"), l.jitter_us, 0, MAX_US, " µs")?;
        let rd = l.reorder_delay_us;
        self.int(format!("{field}.reorder_delay_us"), rd, 0, MAX_US, " µs")?;
        self.int(
            format!("{field}.mtu_bytes"),
            u64::from(l.mtu_bytes),
            MIN_MTU_BYTES,
            MAX_MTU_BYTES,
            " bytes",
        )
    }
}

fn at<T>(s: &Spanned<T>) -> Checker {
    Checker { at: s.referenced }
}

const NOWHERE: Checker = Checker {
    at: Location::UNKNOWN,
};

/// Checks every number of `doc` against its range.
pub fn check(doc: &ScenarioFile) -> Result<(), RangeError> {
    let c = &NOWHERE;
    let l = &doc.limits;
    c.int("limits.max_events".into(), l.max_events, 1, u64::MAX, "")?;
    c.int("limits.max_time_ms".into(), l.max_time_ms, 1, MAX_MS, " ms")?;
    if let Some(d) = l.duration_ms {
        c.int("limits.duration_ms".into(), d, 1, MAX_MS, " ms")?;
    }
    let t = &doc.topology;
    c.int(
        "topology.nodes".into(),
        u64::from(t.nodes),
        1,
        MAX_NODES,
        "",
    )?;
    c.link("topology.links.access", &t.links.access)?;
    c.link("topology.links.uplink", &t.links.uplink)?;
    c.link("topology.links.remote", &t.links.remote)?;
    for (i, n) in t.nics.iter().enumerate() {
        if let Some(link) = &n.value.link {
            at(n).link(&format!("topology.nics[{i}].link"), link)?;
        }
    }
    for (i, r) in t.remotes.iter().enumerate() {
        let c = at(r);
        if let Some(link) = &r.value.link {
            c.link(&format!("topology.remotes[{i}].link"), link)?;
        }
        for (j, sv) in r.value.services.iter().enumerate() {
            let max = match sv.protocol {
                ProtoDoc::Tcp => MAX_STREAM_BYTES,
                ProtoDoc::Udp => MAX_DATAGRAM_BYTES,
            };
            let f = format!("topology.remotes[{i}].services[{j}].response_bytes");
            c.int(f, sv.response_bytes, 0, max, " bytes")?;
            if let Some(ms) = sv.rto_ms {
                let f = format!("topology.remotes[{i}].services[{j}].rto_ms");
                c.int(f, ms, 1, MAX_MS, " ms")?;
            }
            if let Some(n) = sv.max_retries {
                let f = format!("topology.remotes[{i}].services[{j}].max_retries");
                c.int(f, u64::from(n), 0, MAX_RETRIES, "")?;
            }
        }
    }
    if let Some(g) = &doc.gateway {
        c.ms("gateway.block_quarantine_ms".into(), g.block_quarantine_ms)?;
        // Every duration of the profile is a `_ms` field; overriding one must not wrap either.
        for (k, v) in g.overrides.iter().filter(|(k, _)| k.ends_with("_ms")) {
            let field = format!("gateway.overrides.{k}");
            match v.as_u64() {
                Some(ms) => c.ms(field, ms)?,
                None if v.is_null() => {}
                None => {
                    return Err(RangeError {
                        line: 0,
                        column: 0,
                        field,
                        message: format!(
                            "{v} is not a whole number of milliseconds in 0..={MAX_MS} (365 days)"
                        ),
                    });
                }
            }
        }
        if let Some(m) = g.max_flows {
            let max = u64::from(u32::MAX);
            c.int("gateway.max_flows".into(), u64::from(m), 1, max, "")?;
        }
    }
    for (i, s) in doc.traffic.iter().enumerate() {
        let (c, t, f) = (at(s), &s.value, format!("traffic[{i}]"));
        c.ms(format!("{f}.at_ms"), t.at_ms)?;
        if let Some(d) = &t.tcp {
            let b = " bytes";
            c.int(
                format!("{f}.tcp.request_bytes"),
                d.request_bytes,
                0,
                MAX_STREAM_BYTES,
                b,
            )?;
            c.int(
                format!("{f}.tcp.expect_bytes"),
                d.expect_bytes,
                0,
                MAX_STREAM_BYTES,
                b,
            )?;
            c.ms(format!("{f}.tcp.hold_ms"), d.hold_ms)?;
            c.ms(format!("{f}.tcp.keepalive_ms"), d.keepalive_ms)?;
            c.int(format!("{f}.tcp.rto_ms"), d.rto_ms, 1, MAX_MS, " ms")?;
            let r = u64::from(d.max_retries);
            c.int(format!("{f}.tcp.max_retries"), r, 0, MAX_RETRIES, "")?;
            c.int(
                format!("{f}.tcp.mss_bytes"),
                d.mss_bytes,
                8,
                MAX_MSS_BYTES,
                " bytes",
            )?;
        }
        if let Some(d) = &t.udp {
            let rb = d.request_bytes;
            c.int(
                format!("{f}.udp.request_bytes"),
                rb,
                0,
                MAX_DATAGRAM_BYTES,
                " bytes",
            )?;
            c.int(
                format!("{f}.udp.count"),
                u64::from(d.count),
                0,
                MAX_COUNT,
                "",
            )?;
            c.ms(format!("{f}.udp.interval_ms"), d.interval_ms)?;
            c.ms(format!("{f}.udp.timeout_ms"), d.timeout_ms)?;
            c.int(
                format!("{f}.udp.retries"),
                u64::from(d.retries),
                0,
                MAX_RETRIES,
                "",
            )?;
        }
        if let Some(d) = &t.ping {
            c.int(
                format!("{f}.ping.count"),
                u64::from(d.count),
                0,
                MAX_COUNT,
                "",
            )?;
            c.ms(format!("{f}.ping.interval_ms"), d.interval_ms)?;
            c.ms(format!("{f}.ping.timeout_ms"), d.timeout_ms)?;
        }
        if let Some(d) = &t.probe {
            c.ms(format!("{f}.probe.timeout_ms"), d.timeout_ms)?;
        }
    }
    for (i, s) in doc.attacks.iter().enumerate() {
        let (c, a, f) = (at(s), &s.value, format!("attacks[{i}]"));
        c.ms(format!("{f}.at_ms"), a.at_ms)?;
        if let Some(d) = &a.port_scan {
            c.int(
                format!("{f}.port_scan.interval_us"),
                d.interval_us,
                0,
                MAX_US,
                " µs",
            )?;
        }
        if let Some(d) = &a.unsolicited {
            let n = u64::from(d.count);
            c.int(format!("{f}.unsolicited.count"), n, 0, MAX_COUNT, "")?;
            c.ms(format!("{f}.unsolicited.interval_ms"), d.interval_ms)?;
        }
        if let Some(d) = &a.spoof_reply {
            let n = u64::from(d.count);
            c.int(format!("{f}.spoof_reply.count"), n, 0, MAX_COUNT, "")?;
        }
    }
    for (i, s) in doc.faults.iter().enumerate() {
        at(s).ms(format!("faults[{i}].at_ms"), s.value.at_ms)?;
    }
    for (i, s) in doc.packets.iter().enumerate() {
        packet(&at(s), &format!("packets[{i}]"), &s.value)?;
    }
    for (i, s) in doc.expect.counters_at.iter().enumerate() {
        at(s).ms(format!("expect.counters_at[{i}].at_ms"), s.value.at_ms)?;
    }
    for (i, s) in doc.expect.packets.iter().enumerate() {
        if let Some([a, b]) = s.value.between_ms {
            let (c, f) = (at(s), format!("expect.packets[{i}].between_ms"));
            c.ms(f.clone(), a)?;
            c.ms(f, b)?;
        }
    }
    for (i, s) in doc.generators.iter().enumerate() {
        generator(&at(s), &format!("generators[{i}]"), &s.value)?;
    }
    Ok(())
}

/// A crafted packet's sizes: each at most the IPv4 total length, so nothing is allocated
/// beyond what a packet can carry.
fn packet(c: &Checker, f: &str, p: &super::packets::PacketItem) -> Result<(), RangeError> {
    use super::packets::MAX_PACKET_BYTES as MAX;
    let max = u64::from(MAX);
    c.ms(format!("{f}.at_ms"), p.at_ms)?;
    let b = " bytes";
    c.int(
        format!("{f}.padding_bytes"),
        u64::from(p.padding_bytes),
        0,
        max,
        b,
    )?;
    if let Some(fr) = &p.fragments {
        let n = u64::from(fr.data_bytes);
        c.int(format!("{f}.fragments.data_bytes"), n, 8, max, b)?;
        if let Some(o) = &fr.order {
            let n = o.len() as u64;
            c.int(format!("{f}.fragments.order"), n, 0, 8192, " fragments")?;
        }
    }
    layers(c, f, p.tcp.as_ref(), p.udp.as_ref(), p.icmp.as_ref())
}

fn layers(
    c: &Checker,
    f: &str,
    tcp: Option<&super::packets::TcpFieldsDoc>,
    udp: Option<&super::packets::UdpFieldsDoc>,
    icmp: Option<&super::packets::IcmpFieldsDoc>,
) -> Result<(), RangeError> {
    let max = u64::from(super::packets::MAX_PACKET_BYTES);
    let b = " bytes";
    if let Some(t) = tcp {
        c.int(
            format!("{f}.tcp.payload_bytes"),
            u64::from(t.payload_bytes),
            0,
            max,
            b,
        )?;
    }
    if let Some(u) = udp {
        c.int(
            format!("{f}.udp.payload_bytes"),
            u64::from(u.payload_bytes),
            0,
            max,
            b,
        )?;
    }
    if let Some(m) = icmp {
        c.int(
            format!("{f}.icmp.payload_bytes"),
            u64::from(m.payload_bytes),
            0,
            max,
            b,
        )?;
        if let Some(q) = &m.quote {
            let qf = format!("{f}.icmp.quote");
            if let Some(n) = q.bytes {
                c.int(format!("{qf}.bytes"), u64::from(n), 1, max, b)?;
            }
            layers(c, &qf, q.tcp.as_ref(), q.udp.as_ref(), q.icmp.as_ref())?;
        }
    }
    Ok(())
}

fn generator(c: &Checker, f: &str, g: &GeneratorDoc) -> Result<(), RangeError> {
    c.ms(format!("{f}.start_ms"), g.start_ms)?;
    c.ms(format!("{f}.stop_ms"), g.stop_ms)?;
    let ArrivalsDoc {
        fixed_ms,
        poisson_per_s,
    } = &g.arrivals;
    if let Some(ms) = fixed_ms {
        c.int(format!("{f}.arrivals.fixed_ms"), *ms, 1, MAX_MS, " ms")?;
    }
    if let Some(r) = poisson_per_s {
        let unit = " flows/s per NIC";
        c.float(
            format!("{f}.arrivals.poisson_per_s"),
            *r,
            MAX_RATE_PER_S,
            unit,
        )?;
    }
    let d = &g.duration;
    if let Some(ms) = d.fixed_ms {
        c.ms(format!("{f}.duration.fixed_ms"), ms)?;
    }
    if let Some(m) = d.exponential_mean_ms {
        c.float(
            format!("{f}.duration.exponential_mean_ms"),
            m,
            MAX_MS as f64,
            " ms",
        )?;
    }
    if let Some(p) = &d.pareto {
        c.float(
            format!("{f}.duration.pareto.scale_ms"),
            p.scale_ms,
            MAX_MS as f64,
            " ms",
        )?;
        c.float(format!("{f}.duration.pareto.shape"), p.shape, MAX_SHAPE, "")?;
    }
    if let Some(z) = g.zipf_s {
        c.float(format!("{f}.zipf_s"), z, MAX_SHAPE, "")?;
    }
    let sum = u64::from(g.mix.tcp) + u64::from(g.mix.udp) + u64::from(g.mix.icmp);
    c.int(
        format!("{f}.mix"),
        sum,
        1,
        1_000_000,
        " (sum of the weights)",
    )?;
    let rb = g.request_bytes;
    c.int(
        format!("{f}.request_bytes"),
        rb,
        0,
        MAX_DATAGRAM_BYTES,
        " bytes",
    )?;
    c.int(format!("{f}.interval_ms"), g.interval_ms, 1, MAX_MS, " ms")
}
