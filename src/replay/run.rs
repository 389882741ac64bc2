//! [`replay`]: run a real capture through the gateway and write what each side saw.
//!
//! Per packet: map it to a side ([`super::mapping`]), create the inside host's NIC on first
//! sight ([`super::hosts`]), check or fix its checksums, readdress a reply half to the NAT
//! ([`super::packet::readdress_inbound`]), advance the virtual clock, `process` it, write it to
//! the inside and outside views, and check the replay-side invariants ([`super::verify`]).
//! The loop reuses one packet buffer and allocates nothing per packet unless verdict lines are
//! on or a new host appears.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::config::{EntrySide, ReplayConfig};
use super::error::{CaptureError, CaptureWriteError};
use super::hosts::{HostLookup, Hosts};
use super::link::CaptureDirection;
use super::mapping::{Mapper, Mapping, PrefixSet, Rule, addresses, to_ip};
use super::packet::{Readdress, Tuple, checksums_ok, fix_checksums, readdress_inbound};
use super::reader::CaptureReader;
use super::report::{HostSummary, NicSummary, ReplaySummary};
use super::summary::CaptureSummary;
use super::verify::{At, Emitted, Verifier};
use super::writer::PcapNgCaptureWriter;
use crate::nat::{ConfigError, Egress, Family, Gateway, Ingress, NicId, Verdict};
use crate::time::Instant;
use crate::wire::parse::parse_ip;

/// `handle_timeout` runs when virtual time has moved on by at least this much. `process`
/// expires due flows by itself; the explicit call makes timer expiry its own step (events
/// attributed to no packet) without paying for a timer scan on every packet.
const TIMER_STEP_NS: u64 = 1_000_000;

/// Exit code of `natsim replay` when an invariant was violated.
pub const EXIT_VIOLATIONS: i32 = 4;

/// Output file names inside the output folder.
pub const INSIDE_FILE: &str = "inside.pcapng";
/// See [`INSIDE_FILE`].
pub const OUTSIDE_FILE: &str = "outside.pcapng";
/// See [`INSIDE_FILE`].
pub const VERDICTS_FILE: &str = "verdicts.jsonl";
/// See [`INSIDE_FILE`].
pub const SUMMARY_FILE: &str = "summary.json";

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The config file is malformed, does not fit the schema, or has an invalid value.
    #[error("{source_name}:{line}:{column}: {}{message}", field_prefix(.field.as_deref()))]
    Config {
        /// The file name.
        source_name: String,
        /// 1-based line (0 if unknown).
        line: u64,
        /// 1-based column (0 if unknown).
        column: u64,
        /// Dotted path of the field, when known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A configuration value (from the command line or built in code) is invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The capture cannot be read at all (nothing was replayed).
    #[error("{0}")]
    Capture(#[from] CaptureError),
    /// An output capture could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The output file.
        path: String,
        /// What failed.
        source: CaptureWriteError,
    },
    /// The gateway refused its configuration.
    #[error("gateway configuration: {0}")]
    Gateway(#[from] ConfigError),
}

fn field_prefix(field: Option<&str>) -> String {
    field.map(|f| format!("{f}: ")).unwrap_or_default()
}

/// What a replay produced.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayOutcome {
    /// Everything counted (also written as `summary.json`).
    pub summary: ReplaySummary,
    /// The printed table.
    pub table: String,
    /// Files written, in the output folder.
    pub files: Vec<PathBuf>,
    /// 0, or [`EXIT_VIOLATIONS`] when an invariant was violated.
    pub exit_code: i32,
}

/// Where output goes when `out_dir` is not set: `<capture stem>.replay` in the current folder.
pub fn default_out_dir(capture: &Path) -> PathBuf {
    let stem = capture
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "capture".into());
    PathBuf::from(format!("{stem}.replay"))
}

/// Replays the capture at `path` and writes `inside.pcapng`, `outside.pcapng`, `summary.json`
/// and (if `config.verdicts`) `verdicts.jsonl` into `config.out_dir` (default
/// [`default_out_dir`]). A capture whose header cannot be read is an error; one that fails
/// later is replayed up to the failure and the error is reported in the summary.
pub fn replay(path: &Path, config: &ReplayConfig) -> Result<ReplayOutcome, ReplayError> {
    config.validate()?;
    // Fail on an unreadable capture before creating any output.
    let first = CaptureReader::open(path)?;
    let out_dir = config
        .out_dir
        .clone()
        .unwrap_or_else(|| default_out_dir(path));
    std::fs::create_dir_all(&out_dir).map_err(|source| ReplayError::Io {
        path: out_dir.clone(),
        source,
    })?;
    let create = |name: &str| -> Result<(PathBuf, BufWriter<File>), ReplayError> {
        let p = out_dir.join(name);
        let f = File::create(&p).map_err(|source| ReplayError::Io {
            path: p.clone(),
            source,
        })?;
        Ok((p, BufWriter::with_capacity(1 << 16, f)))
    };
    let (inside_path, inside) = create(INSIDE_FILE)?;
    let (outside_path, outside) = create(OUTSIDE_FILE)?;
    let mut files = vec![inside_path, outside_path];
    let verdicts = if config.verdicts {
        let (p, w) = create(VERDICTS_FILE)?;
        files.push(p);
        Some(w)
    } else {
        None
    };
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let mut first = Some(first);
    let open = || match first.take() {
        Some(r) => Ok(r),
        None => CaptureReader::open(path),
    };
    let mut outcome = replay_streams(open, &name, config, inside, outside, verdicts)?;
    let summary_path = out_dir.join(SUMMARY_FILE);
    std::fs::write(&summary_path, outcome.summary.to_json()).map_err(|source| ReplayError::Io {
        path: summary_path.clone(),
        source,
    })?;
    files.push(summary_path);
    outcome.files = files;
    Ok(outcome)
}

/// The replay over any reader and writers (tests and benches use memory). `open` is called
/// twice: once for a pre-scan that decides whether rule 4 (guess) may apply, once to replay.
/// `name` labels the capture in the summary.
pub fn replay_streams<R: Read, W: Write>(
    mut open: impl FnMut() -> Result<CaptureReader<R>, CaptureError>,
    name: &str,
    config: &ReplayConfig,
    inside: W,
    outside: W,
    verdicts: Option<W>,
) -> Result<ReplayOutcome, ReplayError> {
    config.validate()?;
    let prefixes = PrefixSet::new(&config.inside_prefixes);
    let scan = prescan(open()?, &prefixes);
    let reader = open()?;
    let guessed = if scan.has_inside_address {
        None
    } else {
        scan.first_sender
    };
    let mut run = Run::new(
        config,
        Mapper::new(prefixes, guessed),
        inside,
        outside,
        verdicts,
    )?;
    let (capture, capture_error) = run.replay(reader)?;
    run.finish(name, capture, capture_error)
}

/// What the pre-scan learnt.
struct Scan {
    has_inside_address: bool,
    first_sender: Option<IpAddr>,
}

/// Reads until the first packet with an inside-prefix address (usually the first packet).
fn prescan<R: Read>(mut reader: CaptureReader<R>, prefixes: &PrefixSet) -> Scan {
    let mut scan = Scan {
        has_inside_address: false,
        first_sender: None,
    };
    while let Ok(Some(p)) = reader.next_packet() {
        let Some((src, dst)) = addresses(p.ip) else {
            continue;
        };
        if scan.first_sender.is_none() {
            scan.first_sender = to_ip(src);
        }
        if prefixes.contains_bytes(src) || prefixes.contains_bytes(dst) {
            scan.has_inside_address = true;
            break;
        }
    }
    scan
}

/// Counters of the replay loop (arrays indexed by enums: no maps on the hot path).
#[derive(Default)]
struct Stats {
    replayed: u64,
    from_inside: [u64; Rule::ALL.len()],
    from_outside: [u64; Rule::ALL.len()],
    internal: u64,
    unmapped: u64,
    no_addresses: u64,
    too_many_hosts: u64,
    input_bad_checksum: u64,
    fixed_ip_header: u64,
    fixed_transport: u64,
    readdressed: [u64; Readdress::ALL.len()],
    timestamp_clamped: u64,
    forward_outside: u64,
    forward_inside: u64,
    respond_outside: u64,
    respond_inside: u64,
    pass_through: u64,
    buffered: u64,
    dropped: u64,
    released_outside: u64,
    released_inside: u64,
    inside_written: u64,
    outside_written: u64,
}

struct Run<W: Write> {
    config: ReplayConfig,
    gateway: Gateway,
    mapper: Mapper,
    hosts: Hosts,
    verifier: Verifier,
    inside: PcapNgCaptureWriter<W>,
    outside: PcapNgCaptureWriter<W>,
    outside_iface: u32,
    verdicts: Option<W>,
    /// The packet being replayed (reused).
    buf: Vec<u8>,
    /// Verdict-line scratch (reused).
    line: String,
    before: String,
    /// Side per capture interface id, resolved on first sight (only with an interface map).
    interface_sides: Vec<Option<Option<EntrySide>>>,
    interface_keys_used: Vec<bool>,
    first_ts_ns: Option<u64>,
    now_ns: u64,
    /// Index of the last packet record replayed.
    last_index: u64,
    /// Virtual time of the last `handle_timeout`.
    timers_ns: u64,
    speed: f64,
    offset_ns: u64,
    guess_announced: bool,
    guesses: Vec<String>,
    stats: Stats,
}

fn write_err(path: &str) -> impl Fn(CaptureWriteError) -> ReplayError + '_ {
    move |source| ReplayError::Write {
        path: path.to_string(),
        source,
    }
}

fn verdicts_io(source: std::io::Error) -> ReplayError {
    ReplayError::Io {
        path: PathBuf::from(VERDICTS_FILE),
        source,
    }
}

impl<W: Write> Run<W> {
    fn new(
        config: &ReplayConfig,
        mapper: Mapper,
        inside: W,
        outside: W,
        verdicts: Option<W>,
    ) -> Result<Self, ReplayError> {
        let gateway = Gateway::new(config.gateway_config()?)?;
        let inside = PcapNgCaptureWriter::new(inside).map_err(write_err(INSIDE_FILE))?;
        let mut outside = PcapNgCaptureWriter::new(outside).map_err(write_err(OUTSIDE_FILE))?;
        let outside_iface = outside
            .add_interface("outside")
            .map_err(write_err(OUTSIDE_FILE))?;
        Ok(Run {
            hosts: Hosts::new(config.ports_per_nic, config.nat_pool.clone()),
            config: config.clone(),
            gateway,
            mapper,
            verifier: Verifier::new(),
            inside,
            outside,
            outside_iface,
            verdicts,
            buf: Vec::with_capacity(65_536),
            line: String::new(),
            before: String::new(),
            interface_sides: Vec::new(),
            interface_keys_used: vec![false; config.interfaces.len()],
            first_ts_ns: None,
            now_ns: 0,
            timers_ns: 0,
            last_index: 0,
            speed: config.speed,
            offset_ns: config.time_offset_ms.saturating_mul(1_000_000),
            guess_announced: false,
            guesses: Vec::new(),
            stats: Stats::default(),
        })
    }

    /// Replays every packet; returns the reader's summary and the read error that stopped it
    /// early, if any.
    fn replay<R: Read>(
        &mut self,
        mut reader: CaptureReader<R>,
    ) -> Result<(CaptureSummary, Option<String>), ReplayError> {
        let mut capture_error = None;
        loop {
            let (index, ts_ns, interface, direction) = match reader.next_packet() {
                Ok(Some(p)) => {
                    self.buf.clear();
                    self.buf.extend_from_slice(p.ip);
                    (p.index, p.timestamp_ns, p.interface, p.direction)
                }
                Ok(None) => break,
                Err(e) => {
                    capture_error = Some(e.to_string());
                    break;
                }
            };
            let side = self.interface_side(&reader, interface);
            self.packet(index, ts_ns, side, direction)?;
        }
        Ok((reader.summary(), capture_error))
    }

    /// The side the interface map gives `interface` (by id, then by `if_name`).
    fn interface_side<R: Read>(
        &mut self,
        reader: &CaptureReader<R>,
        interface: u32,
    ) -> Option<EntrySide> {
        if self.config.interfaces.is_empty() {
            return None;
        }
        let i = interface as usize;
        if let Some(Some(side)) = self.interface_sides.get(i) {
            return *side;
        }
        let summary = reader.summary();
        let name = summary
            .interfaces
            .get(&interface)
            .and_then(|s| s.name.clone());
        let id_key = interface.to_string();
        let found = self
            .config
            .interfaces
            .iter()
            .enumerate()
            .find(|(_, (k, _))| **k == id_key)
            .or_else(|| {
                let name = name.as_deref()?;
                self.config
                    .interfaces
                    .iter()
                    .enumerate()
                    .find(|(_, (k, _))| k.as_str() == name)
            })
            .map(|(pos, (_, side))| (pos, *side));
        if let Some((pos, _)) = found {
            self.interface_keys_used[pos] = true;
        }
        if self.interface_sides.len() <= i {
            self.interface_sides.resize(i + 1, None);
        }
        let side = found.map(|(_, s)| s);
        self.interface_sides[i] = Some(side);
        side
    }

    /// The virtual time of a packet: (ts − first ts) / speed + offset, never going back.
    fn clock(&mut self, ts_ns: u64) -> u64 {
        let first = *self.first_ts_ns.get_or_insert(ts_ns);
        let rel = ts_ns.saturating_sub(first);
        // Exact integer arithmetic at speed 1; the float path is IEEE-deterministic otherwise.
        let scaled = if self.speed == 1.0 {
            rel
        } else {
            (rel as f64 / self.speed).round() as u64
        };
        let t = scaled.saturating_add(self.offset_ns);
        if t < self.now_ns || ts_ns < first {
            self.stats.timestamp_clamped += 1;
            return self.now_ns;
        }
        self.now_ns = t;
        t
    }

    /// Output timestamp for virtual time `now`: anchored at the first capture timestamp, so that
    /// at speed 1 the views line up with the input.
    fn out_ts(&self, now_ns: u64) -> u64 {
        self.first_ts_ns.unwrap_or(0).saturating_add(now_ns)
    }

    fn host(&mut self, address: &[u8], now: Instant) -> Result<Option<NicId>, ReplayError> {
        let Some(addr) = to_ip(address) else {
            return Ok(None);
        };
        match self.hosts.get_or_add(&mut self.gateway, now, addr)? {
            HostLookup::Known(id) => Ok(Some(id)),
            HostLookup::Added(id) => {
                // NIC i is interface i of the inside view.
                let name = self
                    .hosts
                    .get(id)
                    .map(|h| h.name.clone())
                    .unwrap_or_default();
                self.inside
                    .add_interface(&name)
                    .map_err(write_err(INSIDE_FILE))?;
                Ok(Some(id))
            }
            HostLookup::Full => Ok(None),
        }
    }

    fn announce_guess(&mut self) {
        if self.guess_announced {
            return;
        }
        self.guess_announced = true;
        if let Some(g) = self.mapper.guessed() {
            self.guesses.push(format!(
                "inside hosts = {{{g}}} (first sender); pass --inside PREFIX to set"
            ));
        }
    }

    fn packet(
        &mut self,
        index: u64,
        ts_ns: u64,
        interface_side: Option<EntrySide>,
        direction: Option<CaptureDirection>,
    ) -> Result<(), ReplayError> {
        self.last_index = index;
        let now_ns = self.clock(ts_ns);
        let now = Instant::from_nanos(now_ns);
        let at = At {
            packet_index: index,
            time_ns: now_ns,
        };
        if now_ns.saturating_sub(self.timers_ns) >= TIMER_STEP_NS {
            self.timers(at);
        }
        let Some((src, dst)) = addresses(&self.buf) else {
            self.stats.no_addresses += 1;
            return self.skipped_line(at, "ip_header_truncated");
        };
        let mapping = self.mapper.map(interface_side, direction, src, dst);
        // Copy the addresses out: the buffer is about to change.
        let mut src_b = [0u8; 16];
        let mut dst_b = [0u8; 16];
        let alen = src.len();
        src_b[..alen].copy_from_slice(src);
        dst_b[..alen].copy_from_slice(dst);
        let (src, dst) = (&src_b[..alen], &dst_b[..alen]);
        let (ingress, nic) = match mapping {
            Mapping::Unmapped => {
                self.stats.unmapped += 1;
                return self.skipped_line(at, "unmapped");
            }
            Mapping::FromInside(rule) => {
                if rule == Rule::Guess {
                    self.announce_guess();
                }
                let Some(nic) = self.host(src, now)? else {
                    self.stats.too_many_hosts += 1;
                    return self.skipped_line(at, "too_many_hosts");
                };
                self.stats.from_inside[rule as usize] += 1;
                (Ingress::Inside(nic), nic)
            }
            Mapping::Internal => {
                let (Some(nic), Some(_)) = (self.host(src, now)?, self.host(dst, now)?) else {
                    self.stats.too_many_hosts += 1;
                    return self.skipped_line(at, "too_many_hosts");
                };
                self.stats.internal += 1;
                (Ingress::Inside(nic), nic)
            }
            Mapping::FromOutside(rule) => {
                if rule == Rule::Guess {
                    self.announce_guess();
                }
                let Some(nic) = self.host(dst, now)? else {
                    self.stats.too_many_hosts += 1;
                    return self.skipped_line(at, "too_many_hosts");
                };
                self.stats.from_outside[rule as usize] += 1;
                (Ingress::Outside, nic)
            }
        };
        self.stats.replayed += 1;
        if let Ok(meta) = parse_ip(&self.buf) {
            if self.config.fix_checksums {
                let fixed = fix_checksums(&mut self.buf, &meta);
                self.stats.fixed_ip_header += u64::from(fixed.ip_header);
                self.stats.fixed_transport += u64::from(fixed.transport);
            } else if !checksums_ok(&self.buf, &meta) {
                self.stats.input_bad_checksum += 1;
            }
        }
        let out_ts = self.out_ts(now_ns);
        let block = self.nic_block(nic, src.len());
        match ingress {
            Ingress::Inside(_) => {
                self.inside
                    .write_packet(nic.0, out_ts, Some(CaptureDirection::Outbound), &self.buf)
                    .map_err(write_err(INSIDE_FILE))?;
                self.stats.inside_written += 1;
            }
            Ingress::Outside => {
                let nat_ip = match block {
                    Some(b) => Some(b.nat_ip),
                    None if alen == 4 => self.config.nat_pool.ipv4(0),
                    None => self.config.nat_pool.ipv6(0),
                };
                let r = match nat_ip {
                    Some(ip) => readdress_inbound(&self.gateway, nic, ip, &mut self.buf),
                    None => Readdress::Unparsed,
                };
                self.stats.readdressed[r as usize] += 1;
                self.outside
                    .write_packet(
                        self.outside_iface,
                        out_ts,
                        Some(CaptureDirection::Inbound),
                        &self.buf,
                    )
                    .map_err(write_err(OUTSIDE_FILE))?;
                self.stats.outside_written += 1;
            }
        }
        if self.verdicts.is_some() {
            self.before.clear();
            let _ = write!(self.before, "{}", Tuple(&self.buf));
        }
        let verdict = self.gateway.process(now, ingress, &mut self.buf);
        let events = self.gateway.drain_events();
        if !events.is_empty() {
            self.verifier.on_events(at, Some(ingress), &events);
        }
        self.emit(at, Some(ingress), verdict, block, out_ts)?;
        if self.verdicts.is_some() {
            self.verdict_line(at, ingress, nic, verdict)?;
        }
        while let Some((egress, pkt)) = self.gateway.poll_transmit() {
            self.buf = pkt;
            self.emit(at, None, Verdict::Forward(egress), None, out_ts)?;
        }
        Ok(())
    }

    /// Expires what is due at `at.time_ns` and follows the events.
    fn timers(&mut self, at: At) {
        self.timers_ns = at.time_ns;
        self.gateway.handle_timeout(Instant::from_nanos(at.time_ns));
        let events = self.gateway.drain_events();
        if !events.is_empty() {
            self.verifier.on_events(at, None, &events);
        }
    }

    fn nic_block(&self, nic: NicId, addr_len: usize) -> Option<crate::nat::Block> {
        let family = if addr_len == 4 {
            Family::V4
        } else {
            Family::V6
        };
        self.hosts
            .get(nic)
            .and_then(|h| h.block)
            .filter(|b| Family::of(&b.nat_ip) == family)
    }

    /// Writes the packet in `buf` where the verdict sends it, and checks it.
    fn emit(
        &mut self,
        at: At,
        ingress: Option<Ingress>,
        verdict: Verdict,
        block: Option<crate::nat::Block>,
        out_ts: u64,
    ) -> Result<(), ReplayError> {
        let (egress, emitted) = match verdict {
            Verdict::Forward(e) => (e, Emitted::Forward),
            Verdict::Respond(e) => (e, Emitted::Respond),
            Verdict::PassThrough => {
                self.stats.pass_through += 1;
                return Ok(());
            }
            Verdict::Buffered => {
                self.stats.buffered += 1;
                return Ok(());
            }
            Verdict::Drop(_) => {
                self.stats.dropped += 1;
                return Ok(());
            }
        };
        let s = &mut self.stats;
        match (egress, emitted, ingress.is_some()) {
            (Egress::Outside, _, false) => s.released_outside += 1,
            (Egress::Nic(_), _, false) => s.released_inside += 1,
            (Egress::Outside, Emitted::Forward, true) => s.forward_outside += 1,
            (Egress::Nic(_), Emitted::Forward, true) => s.forward_inside += 1,
            (Egress::Outside, Emitted::Respond, true) => s.respond_outside += 1,
            (Egress::Nic(_), Emitted::Respond, true) => s.respond_inside += 1,
        }
        self.verifier
            .check_output(at, ingress, emitted, egress, block, &self.buf);
        match egress {
            Egress::Outside => {
                self.outside
                    .write_packet(
                        self.outside_iface,
                        out_ts,
                        Some(CaptureDirection::Outbound),
                        &self.buf,
                    )
                    .map_err(write_err(OUTSIDE_FILE))?;
                self.stats.outside_written += 1;
            }
            Egress::Nic(n) => {
                self.inside
                    .write_packet(n.0, out_ts, Some(CaptureDirection::Inbound), &self.buf)
                    .map_err(write_err(INSIDE_FILE))?;
                self.stats.inside_written += 1;
            }
        }
        Ok(())
    }

    fn skipped_line(&mut self, at: At, reason: &str) -> Result<(), ReplayError> {
        let Some(w) = self.verdicts.as_mut() else {
            return Ok(());
        };
        let r = writeln!(
            w,
            "{{\"index\":{},\"time_ns\":{},\"side\":null,\"verdict\":\"skipped\",\"reason\":\"{reason}\",\"before\":\"{}\",\"after\":null}}",
            at.packet_index,
            at.time_ns,
            Tuple(&self.buf)
        );
        r.map_err(verdicts_io)
    }

    fn verdict_line(
        &mut self,
        at: At,
        ingress: Ingress,
        nic: NicId,
        verdict: Verdict,
    ) -> Result<(), ReplayError> {
        let (name, egress, reason) = match verdict {
            Verdict::Forward(e) => ("forward", Some(e), None),
            Verdict::Respond(e) => ("respond", Some(e), None),
            Verdict::PassThrough => ("pass_through", None, None),
            Verdict::Buffered => ("buffered", None, None),
            Verdict::Drop(r) => ("drop", None, Some(r.name())),
        };
        let side = match ingress {
            Ingress::Inside(_) => "inside",
            Ingress::Outside => "outside",
        };
        self.line.clear();
        let l = &mut self.line;
        let _ = write!(
            l,
            "{{\"index\":{},\"time_ns\":{},\"side\":\"{side}\",\"nic\":{},\"verdict\":\"{name}\",",
            at.packet_index, at.time_ns, nic.0
        );
        match egress {
            Some(Egress::Outside) => l.push_str("\"egress\":\"outside\","),
            Some(Egress::Nic(n)) => {
                let _ = write!(l, "\"egress\":\"nic#{}\",", n.0);
            }
            None => l.push_str("\"egress\":null,"),
        }
        match reason {
            Some(r) => {
                let _ = write!(l, "\"reason\":\"{r}\",");
            }
            None => l.push_str("\"reason\":null,"),
        }
        let _ = write!(l, "\"before\":\"{}\",", self.before);
        if egress.is_some() || verdict == Verdict::PassThrough {
            let _ = write!(l, "\"after\":\"{}\"}}", Tuple(&self.buf));
        } else {
            l.push_str("\"after\":null}");
        }
        l.push('\n');
        let Some(w) = self.verdicts.as_mut() else {
            return Ok(());
        };
        let r = w.write_all(self.line.as_bytes());
        r.map_err(verdicts_io)
    }

    fn finish(
        mut self,
        name: &str,
        reader: CaptureSummary,
        capture_error: Option<String>,
    ) -> Result<ReplayOutcome, ReplayError> {
        self.gateway
            .handle_timeout(Instant::from_nanos(self.now_ns));
        let events = self.gateway.drain_events();
        let at = At {
            packet_index: 0,
            time_ns: self.now_ns,
        };
        self.verifier.on_events(at, None, &events);
        let summary = self.summary(name, &reader, capture_error);
        if let Some(mut w) = self.verdicts.take() {
            w.flush().map_err(verdicts_io)?;
        }
        self.inside.finish().map_err(write_err(INSIDE_FILE))?;
        self.outside.finish().map_err(write_err(OUTSIDE_FILE))?;
        let exit_code = if summary.violation_total() > 0 {
            EXIT_VIOLATIONS
        } else {
            0
        };
        Ok(ReplayOutcome {
            table: summary.table(),
            summary,
            files: Vec::new(),
            exit_code,
        })
    }

    fn summary(
        &self,
        name: &str,
        reader: &CaptureSummary,
        capture_error: Option<String>,
    ) -> ReplaySummary {
        let s = &self.stats;
        let mut skipped = reader.skipped.clone();
        for (k, v) in [
            ("skip.unmapped", s.unmapped),
            ("skip.ip_header_truncated", s.no_addresses),
            ("skip.too_many_hosts", s.too_many_hosts),
        ] {
            if v > 0 {
                skipped.insert(k.to_string(), v);
            }
        }
        let mut anomalies = reader.anomalies.clone();
        if s.timestamp_clamped > 0 {
            anomalies.insert("timestamp_clamped".into(), s.timestamp_clamped);
        }
        let mut mapping = std::collections::BTreeMap::new();
        for rule in Rule::ALL {
            for (side, counts) in [
                ("from_inside", &s.from_inside),
                ("from_outside", &s.from_outside),
            ] {
                let n = counts[rule as usize];
                if n > 0 {
                    mapping.insert(format!("{side}.{}", rule.name()), n);
                }
            }
        }
        if s.internal > 0 {
            mapping.insert("internal".into(), s.internal);
        }
        let nonzero = |pairs: &[(&str, u64)]| {
            pairs
                .iter()
                .filter(|(_, v)| *v > 0)
                .map(|(k, v)| (k.to_string(), *v))
                .collect()
        };
        let checksums = nonzero(&[
            ("input_bad_checksum", s.input_bad_checksum),
            ("fixed.ip_header", s.fixed_ip_header),
            ("fixed.transport", s.fixed_transport),
        ]);
        let inbound_readdressed = Readdress::ALL
            .iter()
            .filter(|r| s.readdressed[**r as usize] > 0)
            .map(|r| (r.name().to_string(), s.readdressed[*r as usize]))
            .collect();
        let verdicts = nonzero(&[
            ("forward.outside", s.forward_outside),
            ("forward.inside", s.forward_inside),
            ("respond.outside", s.respond_outside),
            ("respond.inside", s.respond_inside),
            ("released.outside", s.released_outside),
            ("released.inside", s.released_inside),
            ("pass_through", s.pass_through),
            ("buffered", s.buffered),
            ("drop", s.dropped),
        ]);
        let hosts: Vec<HostSummary> = self
            .hosts
            .hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| HostSummary {
                nic: i as u32,
                name: h.name.clone(),
                block: h
                    .block
                    .map(|b| format!("{}:{}-{}", b.nat_ip, b.port, b.end_port)),
            })
            .collect();
        let with_block = hosts.iter().filter(|h| h.block.is_some()).count() as u64;
        let mut notes = Vec::new();
        for (used, key) in self
            .interface_keys_used
            .iter()
            .zip(self.config.interfaces.keys())
        {
            if !used {
                notes.push(format!(
                    "interface map entry `{key}` matched no interface of the capture"
                ));
            }
        }
        let mut violations = std::collections::BTreeMap::new();
        for (inv, n) in self.verifier.counts() {
            violations.insert(inv.name().to_string(), n);
        }
        let (v4, v6) = self.gateway.live_flows();
        ReplaySummary {
            capture: name.to_string(),
            format: reader.format.clone(),
            profile: self.config.profile.clone(),
            ports_per_nic: self.config.ports_per_nic,
            speed: self.config.speed,
            fix_checksums: self.config.fix_checksums,
            packets_read: reader.packets,
            ip_packets: reader.ip_packets,
            replayed_packets: s.replayed,
            skipped,
            skipped_detail: reader.skipped_detail.clone(),
            anomalies,
            truncated_packets: reader.truncated_packets,
            mapping,
            checksums,
            inbound_readdressed,
            verdicts,
            gateway: self.gateway.counters().to_map(),
            nics: NicSummary {
                total: hosts.len() as u64,
                with_block,
                without_block: hosts.len() as u64 - with_block,
                hosts,
            },
            guesses: self.guesses.clone(),
            notes,
            outputs: [
                (INSIDE_FILE.to_string(), s.inside_written),
                (OUTSIDE_FILE.to_string(), s.outside_written),
            ]
            .into_iter()
            .collect(),
            virtual_duration_ns: self.now_ns.saturating_sub(self.offset_ns),
            live_flows_at_end: (v4 + v6) as u64,
            violations,
            violation_examples: self.verifier.examples().to_vec(),
            capture_error,
        }
    }
}
