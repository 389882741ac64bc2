//! Splitting one run over several processes or machines, and checking the parts belong together.
//!
//! Shard `K/N` (0-based, as cargo-mutants numbers them) takes the items of the run whose position
//! in the run's own order is `K` modulo `N`: round-robin, so shards are balanced, and the
//! assignment depends only on `K`, `N` and the item list, never on threads or timing. On
//! Kubernetes an Indexed Job gives each pod `JOB_COMPLETION_INDEX`; with `NATSIM_SHARDS` set to
//! the Job's `completions`, natsim takes its shard from the two ([`Shard::from_env`]).
//!
//! Every shard writes a result file that starts with a [`ShardHeader`]: the format, natsim's
//! version, the command, a canonical text of the inputs that decide the output (`--jobs` is not
//! one of them) and its digest, and the shard. `natsim merge` accepts a set of files only when
//! [`check_set`] finds them complete: the same inputs and version, every shard of `0..N` exactly
//! once.

use std::fmt;
use std::io::Write as _;

use serde::{Deserialize, Serialize};

use crate::sim::Digest;

/// The `format` of every shard result file this version writes and reads.
pub const FORMAT: &str = "natsim-shard-result/1";

/// Environment variable with the shard index (set by Kubernetes Indexed Jobs).
pub const INDEX_VAR: &str = "JOB_COMPLETION_INDEX";
/// Environment variable with the number of shards (the Job's `completions`).
pub const COUNT_VAR: &str = "NATSIM_SHARDS";

/// The most shards natsim splits a run into (far beyond any Job's parallelism; it bounds the
/// bookkeeping of a merge).
pub const MAX_SHARDS: u32 = 10_000;

/// Shard `index` of `count`, 0-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, `0..count`.
    pub index: u32,
    /// How many shards the run is split into.
    pub count: u32,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The whole run: shard 0 of 1.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// A shard from its index and count; refuses a count of 0, over [`MAX_SHARDS`], or an index
    /// outside `0..count`.
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "shard count {count} is out of range; valid: 1 to {MAX_SHARDS}"
            ));
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is out of range for {count} shards; valid: 0 to {} (shards are numbered from 0)",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// Parses `K/N`, for clap's `value_parser`.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not a shard; valid: K/N such as 0/4"))?;
        let num = |x: &str, what: &str| {
            x.trim().parse::<u32>().map_err(|_| {
                format!("`{s}`: the {what} `{x}` is not a whole number; valid: K/N such as 0/4")
            })
        };
        Shard::new(num(k, "index")?, num(n, "count")?)
    }

    /// The shard the environment names: `JOB_COMPLETION_INDEX` and `NATSIM_SHARDS` both set.
    /// `Ok(None)` when neither is; an error when `NATSIM_SHARDS` is set without an index, or a
    /// value is not usable. `JOB_COMPLETION_INDEX` alone (a pod of some other Indexed Job) is
    /// not taken as a request to shard.
    pub fn from_env() -> Result<Option<Shard>, String> {
        let var = |name: &str| std::env::var(name).ok();
        Shard::from_vars(var(INDEX_VAR).as_deref(), var(COUNT_VAR).as_deref())
    }

    /// [`Shard::from_env`] on given values.
    pub fn from_vars(index: Option<&str>, count: Option<&str>) -> Result<Option<Shard>, String> {
        match (index, count) {
            (_, None) => Ok(None),
            (None, Some(_)) => Err(format!(
                "{COUNT_VAR} is set but {INDEX_VAR} is not; set both (a Kubernetes Indexed Job sets {INDEX_VAR}) or pass --shard K/N"
            )),
            (Some(k), Some(n)) => {
                let num = |x: &str, var: &str| {
                    x.trim()
                        .parse::<u32>()
                        .map_err(|_| format!("{var}=`{x}` is not a whole number"))
                };
                let shard = Shard::new(num(k, INDEX_VAR)?, num(n, COUNT_VAR)?)
                    .map_err(|e| format!("{INDEX_VAR}/{COUNT_VAR}: {e}"))?;
                Ok(Some(shard))
            }
        }
    }

    /// Whether the item at `position` (0-based, in the run's own order) is this shard's.
    pub fn owns(self, position: u64) -> bool {
        position % u64::from(self.count) == u64::from(self.index)
    }

    /// How many of `total` items this shard takes.
    pub fn len_of(self, total: u64) -> u64 {
        let (n, k) = (u64::from(self.count), u64::from(self.index));
        total / n + u64::from(total % n > k)
    }

    /// The position in the whole run of this shard's `i`-th item.
    pub fn position(self, i: u64) -> u64 {
        i.saturating_mul(u64::from(self.count))
            .saturating_add(u64::from(self.index))
    }

    /// Checks that `got`, the positions a shard file lists `what` at, are exactly the ones this
    /// shard owns out of `total`, in order. Allocates nothing by `total`: it comes from the file.
    pub fn check_positions(
        self,
        name: &str,
        what: &str,
        total: u64,
        got: &[u64],
    ) -> Result<(), String> {
        let expected = self.len_of(total);
        if got.len() as u64 != expected {
            return Err(format!(
                "{name}: shard {self} holds {} {what}, expected {expected} (of {total})",
                got.len()
            ));
        }
        match (0u64..).zip(got).find(|&(i, &p)| p != self.position(i)) {
            Some((i, p)) => Err(format!(
                "{name}: shard {self} holds {what} at position {p} where it owns position {}",
                self.position(i)
            )),
            None => Ok(()),
        }
    }

    /// The file name a shard's results go to: `COMMAND-K-of-N.json`.
    pub fn file_name(self, command: &str) -> String {
        format!("{command}-{}-of-{}.json", self.index, self.count)
    }
}

/// What every shard result file starts with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardHeader {
    /// [`FORMAT`].
    pub format: String,
    /// The natsim version that wrote the file (shards of different versions are not merged).
    pub natsim_version: String,
    /// The command that was sharded (`swarm`).
    pub command: String,
    /// The inputs that decide the output, as one canonical line.
    pub input: String,
    /// Digest of `input` (hex), to tell sets apart at a glance.
    pub input_digest: String,
    /// Which shard wrote the file.
    pub shard: Shard,
}

impl ShardHeader {
    /// The header of shard `shard` of `command` over `input`.
    pub fn new(command: &str, input: String, shard: Shard) -> ShardHeader {
        ShardHeader {
            format: FORMAT.to_owned(),
            natsim_version: env!("CARGO_PKG_VERSION").to_owned(),
            command: command.to_owned(),
            input_digest: digest_hex(input.as_bytes()),
            input,
            shard,
        }
    }
}

/// The digest (hex) shard headers use for their inputs.
pub fn digest_hex(bytes: &[u8]) -> String {
    let mut d = Digest::default();
    d.bytes(bytes);
    d.hex()
}

/// The digest (hex) of the file at `path`: shard headers record their input files by content.
pub fn file_digest(path: &std::path::Path) -> std::io::Result<String> {
    std::fs::read(path).map(|bytes| digest_hex(&bytes))
}

/// A command's shard result file, as the set checks see it.
pub trait ShardFile {
    /// Its header.
    fn header(&self) -> &ShardHeader;
    /// The canonical text of the settings it records (must equal the header's `input`).
    fn canonical_input(&self) -> String;
}

/// [`check_set`] over the files' headers, and for each file: written by `command`, and its
/// settings are the ones its header names (a file edited by hand is refused).
pub fn check_files<T: ShardFile>(files: &[(String, T)], command: &str) -> Result<(), String> {
    let headers: Vec<(String, ShardHeader)> = files
        .iter()
        .map(|(n, f)| (n.clone(), f.header().clone()))
        .collect();
    check_set(&headers)?;
    for (name, f) in files {
        let h = f.header();
        if h.command != command {
            return Err(format!(
                "{name}: a `{}` shard, not a {command} shard",
                h.command
            ));
        }
        if f.canonical_input() != h.input {
            return Err(format!(
                "{name}: its settings do not match its header's inputs (edited by hand?)"
            ));
        }
    }
    Ok(())
}

/// Creates `dir` for a shard result file and checks it is writable.
pub fn prepare_dir(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
        .and_then(|()| crate::output::check_output_dir(dir).map_err(|e| e.to_string()))
}

/// Writes a shard result file whole (atomically: never a partial file at `path`).
pub fn write_file<T: Serialize>(path: &std::path::Path, file: &T) -> Result<(), String> {
    serde_json::to_vec_pretty(file)
        .map_err(|e| e.to_string())
        .and_then(|bytes| crate::output::write_atomic(path, bytes).map_err(|e| e.to_string()))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The end of every `--shard` run: writes `file` to `path` (atomically) and prints
/// `shard K/N: <summary>; wrote <path> ...` to `out`, or the error to standard error; returns
/// the exit code (`exit::BAD_INPUT` when the file could not be written).
pub fn write_and_report<T: Serialize>(
    path: &std::path::Path,
    file: &T,
    shard: Shard,
    summary: &str,
    out: &mut dyn std::io::Write,
) -> u8 {
    match write_file(path, file) {
        Ok(()) => {
            let _ = writeln!(
                out,
                "shard {shard}: {summary}; wrote {} (merge every shard with `natsim merge`)",
                path.display()
            );
            crate::exit::OK
        }
        Err(e) => {
            let _ = writeln!(crate::output::stderr(), "error: {e}");
            crate::exit::BAD_INPUT
        }
    }
}

/// Reads every shard result file of `paths` as a `what` shard file, named as given.
pub fn read_files<T: serde::de::DeserializeOwned>(
    paths: &[std::path::PathBuf],
    what: &str,
) -> Result<Vec<(String, T)>, String> {
    paths
        .iter()
        .map(|path| {
            let text =
                std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
            let file = serde_json::from_slice(&text).map_err(|e| {
                format!(
                    "{}:{}:{}: not a natsim {what} shard result file: {e}",
                    path.display(),
                    e.line(),
                    e.column()
                )
            })?;
            Ok((path.display().to_string(), file))
        })
        .collect()
}

/// Reads the header of a shard result file, to tell which command wrote it.
pub fn read_header(path: &std::path::Path) -> Result<ShardHeader, String> {
    #[derive(Deserialize)]
    struct Head {
        header: ShardHeader,
    }
    let text = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    serde_json::from_slice::<Head>(&text)
        .map(|h| h.header)
        .map_err(|e| {
            format!(
                "{}:{}:{}: not a natsim shard result file: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })
}

/// Checks that `files` (name, header) are one complete set of shards of one run: same format,
/// version, command and inputs, the same shard count, and every index `0..N` exactly once. The
/// error names the files and shards at fault.
pub fn check_set(files: &[(String, ShardHeader)]) -> Result<(), String> {
    let Some((first_name, first)) = files.first() else {
        return Err("no shard result files given".to_owned());
    };
    for (name, h) in files {
        if h.format != FORMAT {
            return Err(format!(
                "{name}: format `{}` is not {FORMAT}; it was not written by this natsim",
                h.format
            ));
        }
        let differs = [
            ("natsim version", &h.natsim_version, &first.natsim_version),
            ("command", &h.command, &first.command),
            ("inputs", &h.input, &first.input),
        ]
        .into_iter()
        .find(|(_, a, b)| a != b);
        if let Some((what, a, b)) = differs {
            return Err(format!(
                "{name} and {first_name} are not shards of the same run: {what} differ (`{a}` vs `{b}`)"
            ));
        }
        if h.shard.count != first.shard.count {
            return Err(format!(
                "{name} is shard {} but {first_name} is shard {}: the shard counts differ",
                h.shard, first.shard
            ));
        }
    }
    let count = first.shard.count;
    let mut seen: Vec<Option<&str>> = vec![None; count as usize];
    for (name, h) in files {
        let slot = &mut seen[h.shard.index as usize];
        if let Some(other) = slot {
            return Err(format!(
                "shard {} is given twice: {other} and {name}",
                h.shard
            ));
        }
        *slot = Some(name);
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "incomplete set: {} of {count} shards missing ({}); give every shard's result file",
            missing.len(),
            missing.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_file_must_hold_exactly_its_own_positions() {
        let s = Shard { index: 1, count: 3 };
        // Of 8 items, shard 1/3 owns positions 1, 4 and 7.
        assert_eq!(s.check_positions("f", "points", 8, &[1, 4, 7]), Ok(()));
        for bad in [&[1, 4][..], &[1, 4, 7, 10], &[1, 7, 4], &[0, 4, 7], &[]] {
            let e = s.check_positions("f", "points", 8, bad).unwrap_err();
            assert!(e.starts_with("f: shard 1/3 holds"), "{bad:?}: {e}");
        }
        // A total read from a hostile file is only compared with, never allocated by.
        let e = s
            .check_positions("f", "points", u64::MAX, &[1, 4, 7])
            .unwrap_err();
        assert!(e.contains("expected 6148914691236517205"), "{e}");
    }

    #[test]
    fn shards_parse_and_refuse_nonsense() {
        assert_eq!(Shard::parse("0/4"), Ok(Shard { index: 0, count: 4 }));
        assert_eq!(Shard::parse(" 3 / 4 "), Ok(Shard { index: 3, count: 4 }));
        for bad in ["4/4", "0/0", "1", "a/2", "-1/2", "0/10001"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_robin_covers_every_position_once() {
        for count in [1u32, 2, 3, 7] {
            for total in [0u64, 1, 6, 7, 300] {
                let mut owners = vec![0u32; total as usize];
                for index in 0..count {
                    let s = Shard::new(index, count).expect("shard");
                    for i in 0..s.len_of(total) {
                        let p = s.position(i);
                        assert!(s.owns(p));
                        owners[p as usize] += 1;
                    }
                }
                assert!(owners.iter().all(|&n| n == 1), "{count} {total}");
            }
        }
    }

    #[test]
    fn the_environment_names_a_shard_only_with_both_variables() {
        assert_eq!(Shard::from_vars(None, None), Ok(None));
        assert_eq!(Shard::from_vars(Some("2"), None), Ok(None));
        assert_eq!(
            Shard::from_vars(Some("2"), Some("3")),
            Ok(Some(Shard { index: 2, count: 3 }))
        );
        assert!(Shard::from_vars(None, Some("3")).is_err());
        assert!(Shard::from_vars(Some("3"), Some("3")).is_err());
        assert!(Shard::from_vars(Some("x"), Some("3")).is_err());
    }

    fn set(shards: &[(u32, u32)], input: &str) -> Vec<(String, ShardHeader)> {
        shards
            .iter()
            .map(|&(k, n)| {
                let s = Shard::new(k, n).expect("shard");
                (
                    s.file_name("swarm"),
                    ShardHeader::new("swarm", input.to_owned(), s),
                )
            })
            .collect()
    }

    #[test]
    fn a_set_must_be_complete_unique_and_of_one_run() {
        assert_eq!(check_set(&set(&[(0, 3), (2, 3), (1, 3)], "a")), Ok(()));
        let e = check_set(&set(&[(0, 3), (2, 3)], "a")).unwrap_err();
        assert!(e.contains("1/3"), "{e}");
        let e = check_set(&set(&[(0, 2), (0, 2), (1, 2)], "a")).unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let mut mixed = set(&[(0, 2)], "a");
        mixed.extend(set(&[(1, 2)], "b"));
        assert!(check_set(&mixed).unwrap_err().contains("inputs differ"));
        let mut counts = set(&[(0, 2)], "a");
        counts.extend(set(&[(1, 3)], "a"));
        assert!(check_set(&counts).unwrap_err().contains("counts differ"));
        assert!(check_set(&[]).is_err());
    }
}
