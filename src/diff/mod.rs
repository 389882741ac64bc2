//! `natsim diff`: the same input through natsim's model (profile `linux` unless told otherwise)
//! and through the Linux kernel's NAT ([`crate::kernel`]), compared packet by packet.
//!
//! Both runs give one [`Record`] per packet a dataplane was handed, in order. Port numbers
//! differ by design (the kernel picks ports at random in a block), so what is compared is the
//! verdict class ([`VerdictClass`]): sent outside, delivered inside, answered, passed through,
//! buffered, dropped. Drop reasons are shown but not compared: the kernel gives none, and the
//! kernel dataplane infers its reasons from natsim's ruleset.
//!
//! - [`scenario`]: a scenario run twice in the simulator, once per dataplane. The simulator is
//!   closed-loop (hosts answer what they receive), so the two packet streams stay the same only
//!   while the verdicts agree; records are compared in order while their shape (side, protocol,
//!   length, TCP flags) matches, and the first record where the streams part ends the aligned
//!   comparison.
//! - [`capture`]: a capture replayed through both (the same records by construction), or a
//!   capture recorded from a natsim run against the kernel replayed through the model and
//!   compared with the verdicts recorded in its packet comments.
//! - [`cli`]: the command, its table, its JSON report and its exit code.

pub mod capture;
pub mod cli;
pub mod scenario;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::nat::{Egress, Verdict};
use crate::wire::tuple::Tuple;

/// The verdict classes compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictClass {
    /// Translated and sent outside.
    ForwardOutside,
    /// Translated and delivered to a NIC.
    ForwardInside,
    /// Answered by the gateway (ICMP error, echo reply).
    Respond,
    /// Passed untranslated (inside to inside).
    PassThrough,
    /// Held (a fragment).
    Buffered,
    /// Dropped.
    Drop,
}

impl VerdictClass {
    /// All classes, in table order.
    pub const ALL: [VerdictClass; 6] = [
        VerdictClass::ForwardOutside,
        VerdictClass::ForwardInside,
        VerdictClass::Respond,
        VerdictClass::PassThrough,
        VerdictClass::Buffered,
        VerdictClass::Drop,
    ];

    /// The class of a dataplane verdict.
    pub fn of(v: Verdict) -> VerdictClass {
        match v {
            Verdict::Forward(Egress::Outside) => VerdictClass::ForwardOutside,
            Verdict::Forward(Egress::Nic(_)) => VerdictClass::ForwardInside,
            Verdict::Respond(_) => VerdictClass::Respond,
            Verdict::PassThrough => VerdictClass::PassThrough,
            Verdict::Buffered => VerdictClass::Buffered,
            Verdict::Drop(_) => VerdictClass::Drop,
        }
    }

    /// Its name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            VerdictClass::ForwardOutside => "forward_outside",
            VerdictClass::ForwardInside => "forward_inside",
            VerdictClass::Respond => "respond",
            VerdictClass::PassThrough => "pass_through",
            VerdictClass::Buffered => "buffered",
            VerdictClass::Drop => "drop",
        }
    }
}

/// One packet handed to a dataplane, and what the dataplane did with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Position in the run (simulator: the n-th packet processed; capture: the record index).
    pub index: u64,
    /// Virtual time, ns.
    pub time_ns: u64,
    /// Where it entered (`outside`, or the NIC).
    pub side: String,
    /// Side, protocol, length and TCP flags: what must match for two records to be the same
    /// input (ports may differ).
    pub shape: String,
    /// The verdict class.
    pub class: VerdictClass,
    /// The verdict in words (with the drop reason).
    pub verdict: String,
    /// The packet as it entered, summarised.
    pub packet: String,
    /// The packet as it entered, in hex (its first bytes; empty where the input does not
    /// keep the bytes, as a replay's verdict lines do not).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hex: String,
    /// What left, summarised (empty for a drop).
    pub output: String,
}

/// The shape of a packet entering from `side`: what must match for two runs' records to be
/// the same input (ports may differ).
pub fn shape(side: &str, buf: &[u8]) -> String {
    match Tuple::parse(buf) {
        Some(t) => format!(
            "{side} p{} {}B f{:#04x}",
            t.protocol,
            buf.len(),
            t.tcp_flags
        ),
        None => format!("{side} {}B", buf.len()),
    }
}

/// The first record where the model and the kernel part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// What parted: `verdict` (same input, different verdict) or `stream` (the inputs
    /// themselves differ from here on, or one run has more packets).
    pub kind: &'static str,
    /// The model's record (absent when its run had no more packets).
    pub model: Option<Record>,
    /// The kernel's record.
    pub kernel: Option<Record>,
}

/// The comparison of two runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// Packets the model was handed.
    pub model_packets: u64,
    /// Packets the kernel was handed.
    pub kernel_packets: u64,
    /// Records compared (the same input in both runs).
    pub aligned: u64,
    /// Aligned records with the same verdict class.
    pub agreeing: u64,
    /// `model class → kernel class → packets` over the aligned records.
    pub confusion: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// Aligned records whose verdicts differ, by `model → kernel` pair.
    pub differing: BTreeMap<String, u64>,
    /// The first divergence, if any.
    pub first_divergence: Option<Divergence>,
    /// The first [`MAX_EXAMPLES`] aligned records whose verdicts differ (model, kernel).
    pub examples: Vec<(Record, Record)>,
}

/// Differing records kept as examples.
pub const MAX_EXAMPLES: usize = 20;

impl Comparison {
    /// Agreement over the aligned records, in percent (0 when nothing was compared).
    pub fn agreement_percent(&self) -> f64 {
        if self.aligned == 0 {
            0.0
        } else {
            self.agreeing as f64 * 100.0 / self.aligned as f64
        }
    }

    /// True only when every packet of both runs was compared and agreed (and there was at
    /// least one).
    pub fn full_agreement(&self) -> bool {
        self.aligned > 0
            && self.agreeing == self.aligned
            && self.model_packets == self.aligned
            && self.kernel_packets == self.aligned
    }
}

/// Compares two runs' records in order: while the shapes match, verdict classes are compared;
/// the first shape mismatch (or the end of the shorter run) ends the comparison.
pub fn compare(model: &[Record], kernel: &[Record]) -> Comparison {
    let mut confusion: BTreeMap<&'static str, BTreeMap<&'static str, u64>> = BTreeMap::new();
    let mut differing = BTreeMap::new();
    let (mut aligned, mut agreeing) = (0u64, 0u64);
    let mut first: Option<Divergence> = None;
    let mut examples = Vec::new();
    let mut i = 0;
    while i < model.len() && i < kernel.len() {
        let (m, k) = (&model[i], &kernel[i]);
        if m.shape != k.shape {
            break;
        }
        aligned += 1;
        *confusion
            .entry(m.class.name())
            .or_default()
            .entry(k.class.name())
            .or_default() += 1;
        if m.class == k.class {
            agreeing += 1;
        } else {
            *differing
                .entry(format!("{} → {}", m.class.name(), k.class.name()))
                .or_insert(0) += 1;
            if examples.len() < MAX_EXAMPLES {
                let strip = |r: &Record| Record {
                    hex: String::new(),
                    ..r.clone()
                };
                examples.push((strip(m), strip(k)));
            }
            if first.is_none() {
                first = Some(Divergence {
                    kind: "verdict",
                    model: Some(m.clone()),
                    kernel: Some(k.clone()),
                });
            }
        }
        i += 1;
    }
    if first.is_none() && (i < model.len() || i < kernel.len()) {
        first = Some(Divergence {
            kind: "stream",
            model: model.get(i).cloned(),
            kernel: kernel.get(i).cloned(),
        });
    }
    Comparison {
        model_packets: model.len() as u64,
        kernel_packets: kernel.len() as u64,
        aligned,
        agreeing,
        confusion,
        differing,
        first_divergence: first,
        examples,
    }
}

/// The confusion table and the first divergence, for the terminal; with `show > 0`, also up
/// to that many differing records (at most [`MAX_EXAMPLES`]).
pub fn render(c: &Comparison, show: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  packets: model {}, kernel {}, compared {}",
        c.model_packets, c.kernel_packets, c.aligned
    );
    let _ = writeln!(
        s,
        "  agreement {}/{} ({:.2} %)",
        c.agreeing,
        c.aligned,
        c.agreement_percent()
    );
    let used: Vec<VerdictClass> = VerdictClass::ALL
        .into_iter()
        .filter(|v| {
            c.confusion.contains_key(v.name())
                || c.confusion.values().any(|row| row.contains_key(v.name()))
        })
        .collect();
    if !used.is_empty() {
        let _ = writeln!(s, "  model ↓ / kernel →");
        let _ = write!(s, "  {:<16}", "");
        for v in &used {
            let _ = write!(s, "{:>16}", v.name());
        }
        s.push('\n');
        for row in &used {
            let _ = write!(s, "  {:<16}", row.name());
            for col in &used {
                let n = c
                    .confusion
                    .get(row.name())
                    .and_then(|r| r.get(col.name()))
                    .copied()
                    .unwrap_or(0);
                let _ = write!(s, "{n:>16}");
            }
            s.push('\n');
        }
    }
    if let Some(d) = &c.first_divergence {
        let _ = writeln!(s, "  first divergence ({}):", d.kind);
        for (who, r) in [("model", &d.model), ("kernel", &d.kernel)] {
            match r {
                Some(r) => {
                    let _ = writeln!(
                        s,
                        "    {who:<6} #{} t={}ns from {}: {} => {}{}",
                        r.index,
                        r.time_ns,
                        r.side,
                        r.packet,
                        r.verdict,
                        if r.output.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", r.output)
                        }
                    );
                    if !r.hex.is_empty() {
                        let _ = writeln!(s, "           {}", r.hex);
                    }
                }
                None => {
                    let _ = writeln!(s, "    {who:<6} no more packets");
                }
            }
        }
    }
    for (m, k) in c.examples.iter().take(show) {
        let _ = writeln!(
            s,
            "  #{} t={}ns from {}: {}\n      model {} | kernel {}",
            m.index, m.time_ns, m.side, m.packet, m.verdict, k.verdict
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u64, shape: &str, class: VerdictClass) -> Record {
        Record {
            index: i,
            time_ns: 0,
            side: "outside".into(),
            shape: shape.into(),
            class,
            verdict: class.name().into(),
            packet: String::new(),
            hex: String::new(),
            output: String::new(),
        }
    }

    #[test]
    fn diff_counts_agreement_and_stops_where_the_streams_part() {
        let m = [
            rec(0, "a", VerdictClass::ForwardOutside),
            rec(1, "b", VerdictClass::Drop),
            rec(2, "c", VerdictClass::ForwardInside),
        ];
        let k = [
            rec(0, "a", VerdictClass::ForwardOutside),
            rec(1, "b", VerdictClass::ForwardOutside),
            rec(2, "x", VerdictClass::ForwardInside),
        ];
        let c = compare(&m, &k);
        assert_eq!((c.aligned, c.agreeing), (2, 1));
        assert_eq!(c.first_divergence.as_ref().map(|d| d.kind), Some("verdict"));
        assert!(!c.full_agreement());
        let same = compare(&m, &m);
        assert!(same.full_agreement());
        let shorter = compare(&m, &m[..2]);
        assert!(
            !shorter.full_agreement(),
            "a run with fewer packets is a divergence"
        );
        assert_eq!(shorter.first_divergence.map(|d| d.kind), Some("stream"));
        assert!(
            !compare(&[], &[]).full_agreement(),
            "nothing compared is no agreement"
        );
    }
}
