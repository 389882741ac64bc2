//! A capture through the model and the kernel.
//!
//! - [`diff_capture`]: two ordinary replays ([`crate::replay::replay_with`]) with verdict lines
//!   on, one against the model and one against the kernel, into `<out>/model` and
//!   `<out>/linux`; their `verdicts.jsonl` are read back and compared record by record (the
//!   same capture records, so they line up by index).
//! - [`diff_recorded`]: a capture natsim wrote while running against the kernel (`natsim run
//!   --dataplane linux --pcap-dir`) carries the kernel's verdict on every packet as a pcapng
//!   comment; it is replayed through the model and each record's verdict compared with the
//!   recorded one. Packets the gateway itself sent (answers, released fragments) are not inputs
//!   and are left out, counted.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Comparison, Record, VerdictClass, compare};
use crate::check::Target;
use crate::replay::run::{VERDICTS_FILE, default_out_dir};
use crate::replay::{ReplayConfig, replay_with};
use crate::sim::comment::{EnteredVerdict, entered_verdict};

/// One line of `verdicts.jsonl` (the fields compared).
#[derive(Deserialize)]
struct Line {
    index: u64,
    time_ns: u64,
    side: Option<String>,
    nic: Option<u64>,
    verdict: String,
    egress: Option<String>,
    reason: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

fn class_of(l: &Line) -> Option<VerdictClass> {
    Some(match (l.verdict.as_str(), l.egress.as_deref()) {
        ("forward", Some("outside")) => VerdictClass::ForwardOutside,
        ("forward", Some(_)) => VerdictClass::ForwardInside,
        ("respond", _) => VerdictClass::Respond,
        ("pass_through", _) => VerdictClass::PassThrough,
        ("buffered", _) => VerdictClass::Buffered,
        ("drop", _) => VerdictClass::Drop,
        // Records replay classified or skipped were never handed to a dataplane.
        _ => return None,
    })
}

/// Reads a replay's verdict lines as records (records that never reached the dataplane are
/// left out).
pub fn read_verdicts(path: &Path) -> Result<Vec<Record>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let l: Line =
            serde_json::from_str(raw).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        let Some(class) = class_of(&l) else {
            continue;
        };
        let side = match (l.side.as_deref(), l.nic) {
            (Some("inside"), Some(nic)) => format!("nic#{nic}"),
            (Some(s), _) => s.to_string(),
            (None, _) => "-".into(),
        };
        let verdict = match &l.reason {
            Some(r) => format!("drop: {r}"),
            None => class.name().to_string(),
        };
        out.push(Record {
            index: l.index,
            time_ns: l.time_ns,
            shape: format!("record {}", l.index),
            side,
            class,
            verdict,
            packet: l.before.unwrap_or_default(),
            hex: String::new(),
            output: l.after.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The output folder of a capture diff, and the comparison.
#[derive(Debug)]
pub struct CaptureDiff {
    /// Where the replays wrote.
    pub out_dir: PathBuf,
    /// Record by record.
    pub comparison: Comparison,
    /// Records left out of a recorded comparison (packets the gateway sent itself, records
    /// without a comment); 0 for a live one.
    pub not_inputs: u64,
}

fn replay_records(
    capture: &Path,
    config: &ReplayConfig,
    dir: PathBuf,
    target: Target,
) -> Result<Vec<Record>, String> {
    let cfg = ReplayConfig {
        verdicts: true,
        out_dir: Some(dir.clone()),
        ..config.clone()
    };
    replay_with(capture, &cfg, target).map_err(|e| e.to_string())?;
    read_verdicts(&dir.join(VERDICTS_FILE))
}

/// Replays `capture` through the model and the kernel and compares the verdicts.
pub fn diff_capture(
    capture: &Path,
    config: &ReplayConfig,
    kernel: Target,
) -> Result<CaptureDiff, String> {
    let out_dir = config
        .out_dir
        .clone()
        .unwrap_or_else(|| default_out_dir(capture));
    let m = replay_records(capture, config, out_dir.join("model"), Target::Real)?;
    let k = replay_records(capture, config, out_dir.join("linux"), kernel)?;
    Ok(CaptureDiff {
        out_dir,
        comparison: compare(&m, &k),
        not_inputs: 0,
    })
}

/// The verdict class a natsim verdict comment records for a packet that entered the gateway
/// (read by [`entered_verdict`], next to the code that writes the comments); `None` for
/// packets the gateway sent itself, and anything else.
pub fn recorded_class(comment: &str) -> Option<VerdictClass> {
    Some(match entered_verdict(comment)? {
        EnteredVerdict::SentOutside => VerdictClass::ForwardOutside,
        EnteredVerdict::Delivered => VerdictClass::ForwardInside,
        EnteredVerdict::Answered => VerdictClass::Respond,
        EnteredVerdict::PassedThrough => VerdictClass::PassThrough,
        EnteredVerdict::Buffered => VerdictClass::Buffered,
        EnteredVerdict::Dropped => VerdictClass::Drop,
    })
}

/// Replays a capture recorded from a natsim run against the kernel through the model and
/// compares each record's verdict with the one recorded in its comment.
pub fn diff_recorded(capture: &Path, config: &ReplayConfig) -> Result<CaptureDiff, String> {
    let bytes = std::fs::read(capture).map_err(|e| format!("{}: {e}", capture.display()))?;
    let comments = crate::replay::pcapng::packet_comments(&bytes).map_err(|e| {
        format!(
            "{}: not a pcapng with natsim verdict comments: {e}",
            capture.display()
        )
    })?;
    let out_dir = config
        .out_dir
        .clone()
        .unwrap_or_else(|| default_out_dir(capture));
    let model = replay_records(capture, config, out_dir.join("model"), Target::Real)?;
    let mut m = Vec::new();
    let mut k = Vec::new();
    let mut not_inputs = 0u64;
    for r in model {
        let comment = usize::try_from(r.index)
            .ok()
            .and_then(|i| comments.get(i))
            .and_then(|c| c.as_deref());
        let Some((class, words)) = comment.and_then(|c| recorded_class(c).map(|k| (k, c))) else {
            not_inputs += 1;
            continue;
        };
        k.push(Record {
            class,
            verdict: words.to_string(),
            output: String::new(),
            ..r.clone()
        });
        m.push(r);
    }
    Ok(CaptureDiff {
        out_dir,
        comparison: compare(&m, &k),
        not_inputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_comments_map_to_verdict_classes() {
        let c = |s: &str| recorded_class(s);
        assert_eq!(
            c("translated 10.0.0.2:40000 → 203.0.113.1:1024, sent outside"),
            Some(VerdictClass::ForwardOutside)
        );
        assert_eq!(
            c("translated 203.0.113.1:1024 → 10.0.0.2:40000, delivered to vm-a"),
            Some(VerdictClass::ForwardInside)
        );
        assert_eq!(c("dropped: ports_exhausted"), Some(VerdictClass::Drop));
        assert_eq!(c("generated by the gateway in answer to record 3"), None);
        assert_eq!(
            c("released fragment, translated with its first fragment"),
            None
        );
        assert_eq!(c("translated 10.0.0.2:40000 → 203.0.113.1:1024"), None);
    }
}
