//! `natsim replay CAPTURE --profiles all|LIST`: the same capture replayed under several behaviour
//! profiles (behaviour §5), and where their verdicts part.
//!
//! Each profile gets an ordinary replay ([`super::run::replay_with`]) into `<out>/<profile>/`
//! with verdict lines on; this module reads those lines back, groups the capture records into
//! flows (from the packets as captured, so the key does not depend on a profile's port choice),
//! and reports per flow the first record whose verdict differs between profiles, with the
//! likely cause read off the verdicts and the profiles' parameters: a timer, the filtering of
//! inbound packets, the port-limit scope, ICMP support, TCP handling or the TTL hop.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::ReplayConfig;
use super::reader::for_each_packet;
use super::run::{ReplayError, VERDICTS_FILE, default_out_dir, replay_with};
use crate::check::Target;
use crate::nat::profile::Profile;
use crate::wire::IcmpKind;
use crate::wire::proto;
use crate::wire::tuple::{Tuple, quoted_offset};

/// Name of the comparison's JSON file in the output folder.
pub const PROFILES_FILE: &str = "profiles.json";

/// `all` or a comma-separated list of profile names → the names, in the order given (`all`:
/// behaviour §5 order), without repeats. Unknown names are an error naming them and the
/// known ones.
pub fn parse_profiles(spec: &str) -> Result<Vec<String>, String> {
    if spec.trim() == "all" {
        return Ok(Profile::NAMES.iter().map(|s| s.to_string()).collect());
    }
    let mut out: Vec<String> = Vec::new();
    for name in spec.split(',').map(str::trim) {
        if Profile::named(name).is_none() {
            return Err(format!(
                "--profiles: unknown profile `{name}` (known: all, {})",
                Profile::NAMES.join(", ")
            ));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    if out.len() < 2 {
        return Err("--profiles: name at least two profiles (or `all`) to compare".into());
    }
    Ok(out)
}

/// One profile's replay, in short.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProfileRun {
    /// Profile name.
    pub profile: String,
    /// Verdict → packets (the verdict classes of `diff::VerdictClass`).
    pub verdicts: BTreeMap<String, u64>,
    /// Invariant violations found (0 for the real gateway).
    pub violations: u64,
    /// The replay's output folder.
    pub out_dir: PathBuf,
}

/// The first record of a flow whose verdict differs between profiles.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Divergence {
    /// The flow: protocol, inside end ↔ remote end, as captured.
    pub flow: String,
    /// Capture record index of the first diverging packet.
    pub index: u64,
    /// Which side it entered from (`inside`, `outside`).
    pub side: String,
    /// Verdict per profile, in the order the profiles were given.
    pub verdicts: Vec<(String, String)>,
    /// Likely cause: `timer`, `filtering`, `scope`, `icmp`, `tcp`, `ttl` or `other`.
    pub cause: &'static str,
    /// The cause in words, with the profiles' parameters.
    pub why: String,
    /// Packets of this flow whose verdicts differ (the first one included).
    pub packets: u64,
}

/// The whole comparison (also written as `profiles.json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CrossProfile {
    /// Capture file name.
    pub capture: String,
    /// Profiles compared, in order.
    pub profiles: Vec<String>,
    /// One replay per profile.
    pub runs: Vec<ProfileRun>,
    /// Records that got a verdict in every run.
    pub packets_compared: u64,
    /// Records whose verdicts differ.
    pub packets_diverging: u64,
    /// Per flow, its first diverging record, in record order.
    pub divergences: Vec<Divergence>,
}

/// One verdict line of `verdicts.jsonl` (the fields the comparison needs).
#[derive(Deserialize)]
struct Line {
    index: u64,
    side: Option<String>,
    verdict: String,
    egress: Option<String>,
    reason: Option<String>,
}

/// The verdict of a record as compared: `forward outside`, `forward inside`, `respond`,
/// `pass_through`, `buffered`, `drop: <reason>`, `skipped: <reason>`, or a classification.
struct VerdictClass;

impl VerdictClass {
    fn of(l: &Line) -> String {
        match (l.verdict.as_str(), l.egress.as_deref(), l.reason.as_deref()) {
            ("forward", Some("outside"), _) => "forward outside".into(),
            ("forward", Some(_), _) => "forward inside".into(),
            ("respond", _, _) => "respond".into(),
            ("drop" | "skipped", _, Some(r)) => format!("{}: {r}", l.verdict),
            (v, _, _) => v.to_string(),
        }
    }
}

/// Replays `capture` under each of `profiles` (each into `<out>/<profile>/`), compares the
/// verdicts and writes `<out>/profiles.json`. `config` is used for everything but the profile;
/// its overrides apply to every profile.
pub fn replay_profiles(
    capture: &Path,
    config: &ReplayConfig,
    profiles: &[String],
) -> Result<(CrossProfile, PathBuf), ReplayError> {
    let out_dir = config
        .out_dir
        .clone()
        .unwrap_or_else(|| default_out_dir(capture));
    let mut runs = Vec::new();
    // Per profile: record index → (side, verdict class).
    let mut verdicts: Vec<BTreeMap<u64, (Option<String>, String)>> = Vec::new();
    for p in profiles {
        let dir = out_dir.join(p);
        let cfg = ReplayConfig {
            profile: p.clone(),
            verdicts: true,
            out_dir: Some(dir.clone()),
            ..config.clone()
        };
        let outcome = replay_with(capture, &cfg, Target::Real)?;
        let path = dir.join(VERDICTS_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ReplayError::Io {
            path: path.clone(),
            source,
        })?;
        let mut by_index = BTreeMap::new();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for (n, raw) in text.lines().enumerate() {
            let l: Line = serde_json::from_str(raw).map_err(|e| ReplayError::Invalid {
                field: format!("{}:{}", path.display(), n + 1),
                message: e.to_string(),
            })?;
            let class = VerdictClass::of(&l);
            *counts.entry(class.clone()).or_insert(0) += 1;
            by_index.insert(l.index, (l.side, class));
        }
        runs.push(ProfileRun {
            profile: p.clone(),
            verdicts: counts,
            violations: outcome.summary.violation_total(),
            out_dir: dir,
        });
        verdicts.push(by_index);
    }
    let keys = flow_keys(capture, verdicts.first())?;
    let cmp = compare(profiles, &verdicts, &keys);
    let name = capture
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| capture.display().to_string());
    let result = CrossProfile {
        capture: name,
        profiles: profiles.to_vec(),
        runs,
        packets_compared: cmp.compared,
        packets_diverging: cmp.diverging,
        divergences: cmp.divergences,
    };
    let json_path = out_dir.join(PROFILES_FILE);
    let json = serde_json::to_string_pretty(&result).unwrap_or_default() + "\n";
    crate::output::write_atomic(&json_path, json).map_err(|source| ReplayError::Io {
        path: json_path.clone(),
        source,
    })?;
    Ok((result, json_path))
}

/// A flow as captured: protocol, inside end, remote end (ICMP: the identifier as port; an
/// ICMP error belongs to the flow it quotes).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct FlowKey {
    protocol: u8,
    inside: (std::net::IpAddr, u16),
    remote: (std::net::IpAddr, u16),
}

impl FlowKey {
    fn describe(&self) -> String {
        let proto = match self.protocol {
            proto::TCP => "tcp".to_string(),
            proto::UDP => "udp".to_string(),
            proto::ICMP => "icmp".to_string(),
            proto::ICMPV6 => "icmpv6".to_string(),
            p => format!("proto {p}"),
        };
        let end = |(a, p): (std::net::IpAddr, u16)| {
            let a = match a {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            };
            if matches!(self.protocol, proto::ICMP | proto::ICMPV6) {
                format!("{a} id {p}")
            } else {
                format!("{a}:{p}")
            }
        };
        format!("{proto} {} ↔ {}", end(self.inside), end(self.remote))
    }

    /// The key of a captured packet that entered from `side`; `None` if it does not parse.
    fn of(ip: &[u8], from_inside: bool) -> Option<FlowKey> {
        let t = Tuple::parse(ip)?;
        let inside_addr = if from_inside { t.src } else { t.dst };
        let (t, quoted) = match t.icmp {
            Some(IcmpKind::Error) => {
                let off = quoted_offset(ip)?;
                (Tuple::parse_quoted(ip.get(off..)?)?, true)
            }
            _ => (t, false),
        };
        let (src, dst) = ((t.src, t.src_port), (t.dst, t.dst_port));
        let (inside, remote) = match (quoted, from_inside) {
            (true, _) if t.dst == inside_addr && t.src != inside_addr => (dst, src),
            (true, _) => (src, dst),
            (false, true) => (src, dst),
            (false, false) => (dst, src),
        };
        // Echo requests carry the identifier as the source port, replies as the destination
        // port: one flow.
        let (inside, remote) = match t.icmp {
            Some(IcmpKind::EchoRequest | IcmpKind::EchoReply) => {
                let id = if t.icmp == Some(IcmpKind::EchoRequest) {
                    t.src_port
                } else {
                    t.dst_port
                };
                ((inside.0, id), (remote.0, id))
            }
            _ => (inside, remote),
        };
        Some(FlowKey {
            protocol: t.protocol,
            inside,
            remote,
        })
    }
}

/// The flow of every record that has a side in `sides` (the first profile's verdicts: side
/// mapping does not depend on the profile).
fn flow_keys(
    capture: &Path,
    sides: Option<&BTreeMap<u64, (Option<String>, String)>>,
) -> Result<BTreeMap<u64, FlowKey>, ReplayError> {
    let mut keys = BTreeMap::new();
    let Some(sides) = sides else {
        return Ok(keys);
    };
    // A capture that ends early was replayed up to the same point: its error is in the
    // summaries already.
    let _ = for_each_packet(capture, |p| {
        if let Some((Some(side), _)) = sides.get(&p.index)
            && let Some(k) = FlowKey::of(p.ip, side == "inside")
        {
            keys.insert(p.index, k);
        }
    });
    Ok(keys)
}

struct Comparison {
    compared: u64,
    diverging: u64,
    divergences: Vec<Divergence>,
}

fn compare(
    profiles: &[String],
    verdicts: &[BTreeMap<u64, (Option<String>, String)>],
    keys: &BTreeMap<u64, FlowKey>,
) -> Comparison {
    let mut c = Comparison {
        compared: 0,
        diverging: 0,
        divergences: Vec::new(),
    };
    let Some(first) = verdicts.first() else {
        return c;
    };
    // Flow → position of its divergence in `c.divergences`.
    let mut seen: BTreeMap<FlowKey, usize> = BTreeMap::new();
    // Per profile, flows with a packet forwarded out so far (for the cause).
    let mut forwarded: Vec<BTreeSet<FlowKey>> = vec![BTreeSet::new(); verdicts.len()];
    // Per profile, inside ends with a packet forwarded out so far.
    let mut inside_ends: Vec<BTreeSet<(u8, std::net::IpAddr, u16)>> =
        vec![BTreeSet::new(); verdicts.len()];
    for (index, (side, _)) in first {
        let row: Option<Vec<&String>> = verdicts
            .iter()
            .map(|v| v.get(index).map(|(_, class)| class))
            .collect();
        let Some(row) = row else { continue };
        c.compared += 1;
        let key = keys.get(index);
        let differs = row.iter().any(|v| *v != row[0]);
        if differs {
            c.diverging += 1;
            let flow = key.map_or_else(|| format!("record {index}"), FlowKey::describe);
            match key.and_then(|k| seen.get(k)) {
                Some(&i) => c.divergences[i].packets += 1,
                None => {
                    let (cause, why) = cause(
                        profiles,
                        &row,
                        side.as_deref(),
                        key,
                        &forwarded,
                        &inside_ends,
                    );
                    if let Some(k) = key {
                        seen.insert(k.clone(), c.divergences.len());
                    }
                    c.divergences.push(Divergence {
                        flow,
                        index: *index,
                        side: side.clone().unwrap_or_else(|| "-".into()),
                        verdicts: profiles
                            .iter()
                            .zip(&row)
                            .map(|(p, v)| (p.clone(), v.to_string()))
                            .collect(),
                        cause,
                        why,
                        packets: 1,
                    });
                }
            }
        }
        if let Some(k) = key {
            for (i, v) in row.iter().enumerate() {
                if *v == "forward outside" && side.as_deref() == Some("inside") {
                    forwarded[i].insert(k.clone());
                    inside_ends[i].insert((k.protocol, k.inside.0, k.inside.1));
                }
            }
        }
    }
    c
}

/// The likely cause of a divergence, and its explanation.
fn cause(
    profiles: &[String],
    row: &[&String],
    side: Option<&str>,
    key: Option<&FlowKey>,
    forwarded: &[BTreeSet<FlowKey>],
    inside_ends: &[BTreeSet<(u8, std::net::IpAddr, u16)>],
) -> (&'static str, String) {
    let named = |pred: &dyn Fn(&str) -> bool| -> Vec<&str> {
        profiles
            .iter()
            .zip(row)
            .filter(|(_, v)| pred(v))
            .map(|(p, _)| p.as_str())
            .collect()
    };
    let has = |reason: &str| row.iter().any(|v| v.ends_with(reason));
    let param = |f: &dyn Fn(&Profile) -> String| -> String {
        profiles
            .iter()
            .filter_map(|p| Profile::named(p).map(|pr| format!("{p} {}", f(&pr))))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let protocol = key.map_or(0, |k| k.protocol);
    let icmp = matches!(protocol, proto::ICMP | proto::ICMPV6);
    if has("ttl_expired") {
        let p = named(&|v| v.ends_with("ttl_expired"));
        return (
            "ttl",
            format!("TTL: {} decrement the TTL as a router hop", p.join(", ")),
        );
    }
    if has("unsupported_icmp") || (icmp && (has("unsupported_protocol") || has("respond"))) {
        let list = |f: &dyn Fn(&Profile) -> bool| -> String {
            let l: Vec<&str> = profiles
                .iter()
                .filter(|p| Profile::named(p).is_some_and(|pr| f(&pr)))
                .map(String::as_str)
                .collect();
            if l.is_empty() {
                "none".into()
            } else {
                l.join(", ")
            }
        };
        return (
            "icmp",
            format!(
                "ICMP support: no ICMP translation under {}; echo to the NAT IP answered under {}",
                list(&|p| !p.icmp_supported),
                list(&|p| p.echo_reply_to_nat_ip)
            ),
        );
    }
    if has("ports_exhausted") || has("table_full") {
        return (
            "scope",
            format!(
                "port-limit scope: {}",
                param(&|p| p.limit_scope.name().to_string())
            ),
        );
    }
    if has("tcp_no_flow") {
        return (
            "tcp",
            format!(
                "TCP handling: {}",
                param(&|p| format!(
                    "midstream pickup {}",
                    if p.tcp_midstream_pickup { "yes" } else { "no" }
                ))
            ),
        );
    }
    let no_flow = |v: &str| v.ends_with("unsolicited") || v.ends_with("icmp_error_no_flow");
    if side == Some("outside")
        && has("unsolicited") | has("icmp_error_no_flow")
        && let Some(k) = key
    {
        let dropping: Vec<usize> = row
            .iter()
            .enumerate()
            .filter(|(_, v)| no_flow(v))
            .map(|(i, _)| i)
            .collect();
        let names = |is: &[usize]| -> String {
            is.iter()
                .map(|&i| profiles[i].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let had_flow: Vec<usize> = dropping
            .iter()
            .copied()
            .filter(|&i| forwarded[i].contains(k))
            .collect();
        if !had_flow.is_empty() {
            let timeout = |p: &Profile| match protocol {
                proto::TCP => format!(
                    "tcp established {} ms, transitory {} ms",
                    p.timeout_tcp_established_ms, p.timeout_tcp_transitory_ms
                ),
                proto::UDP => format!("udp {} ms", p.timeout_udp_ms),
                _ => format!("icmp {} ms", p.timeout_icmp_ms),
            };
            return (
                "timer",
                format!(
                    "timer: the flow had expired under {} ({})",
                    names(&had_flow),
                    param(&timeout)
                ),
            );
        }
        let same_end: Vec<usize> = dropping
            .iter()
            .copied()
            .filter(|&i| inside_ends[i].contains(&(k.protocol, k.inside.0, k.inside.1)))
            .collect();
        if !same_end.is_empty() {
            return (
                "filtering",
                format!(
                    "filtering: {} let in only from remotes the inside end sent to",
                    names(&same_end)
                ),
            );
        }
        return (
            "filtering",
            format!("filtering: no flow under {}", names(&dropping)),
        );
    }
    let mut kinds: Vec<&str> = row.iter().map(|v| v.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    ("other", format!("profile behaviour: {}", kinds.join(" / ")))
}

impl CrossProfile {
    /// The printed report: verdict counts per profile, then one row per diverging flow.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} profiles, {} packets compared, {} with verdicts that differ, in {} flows",
            self.capture,
            self.profiles.len(),
            self.packets_compared,
            self.packets_diverging,
            self.divergences.len()
        );
        let classes: BTreeSet<&String> = self.runs.iter().flat_map(|r| r.verdicts.keys()).collect();
        let mut header = vec!["verdict".to_string()];
        header.extend(self.profiles.iter().cloned());
        let mut rows = vec![header];
        for class in classes {
            let mut row = vec![class.clone()];
            row.extend(
                self.runs
                    .iter()
                    .map(|r| r.verdicts.get(class).copied().unwrap_or(0).to_string()),
            );
            rows.push(row);
        }
        let mut violations = vec!["violations".to_string()];
        violations.extend(self.runs.iter().map(|r| r.violations.to_string()));
        rows.push(violations);
        render(&mut s, &rows);
        if self.divergences.is_empty() {
            s.push_str("no divergence: every packet got the same verdict under every profile\n");
            return s;
        }
        s.push('\n');
        let mut header = vec![
            "flow".to_string(),
            "first record".to_string(),
            "side".to_string(),
        ];
        header.extend(self.profiles.iter().cloned());
        header.push("packets".to_string());
        header.push("why".to_string());
        let mut rows = vec![header];
        for d in &self.divergences {
            let mut row = vec![d.flow.clone(), d.index.to_string(), d.side.clone()];
            row.extend(d.verdicts.iter().map(|(_, v)| v.clone()));
            row.push(d.packets.to_string());
            row.push(d.why.clone());
            rows.push(row);
        }
        render(&mut s, &rows);
        s
    }
}

/// A Markdown table with padded columns (widths in characters).
fn render(s: &mut String, rows: &[Vec<String>]) {
    let cols = rows.first().map_or(0, Vec::len);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |x| x.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, r) in rows.iter().enumerate() {
        s.push('|');
        for (c, w) in width.iter().enumerate() {
            let cell = r.get(c).map_or("", String::as_str);
            let pad = w - cell.chars().count();
            let _ = write!(s, " {cell}{} |", " ".repeat(pad));
        }
        s.push('\n');
        if i == 0 {
            s.push('|');
            for w in &width {
                let _ = write!(s, "{}|", "-".repeat(w + 2));
            }
            s.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_all_and_lists() {
        assert_eq!(parse_profiles("all").expect("all").len(), 6);
        assert_eq!(
            parse_profiles("rfc, aws,rfc").expect("list"),
            vec!["rfc".to_string(), "aws".to_string()]
        );
        let e = parse_profiles("rfc,awz").expect_err("unknown");
        assert!(e.contains("awz") && e.contains("dpservice"), "{e}");
        assert!(parse_profiles("rfc").is_err());
    }
}
