//! `natsim check --shard K/N` and the check half of `natsim merge`.
//!
//! A shard checks the scenario files at positions `K`, `K+N`, ... of the folder's sorted list and
//! writes their results to `SHARD_OUT/check-K-of-N.json`, with the folder, the
//! `--require-exercised` setting and every file's name and content digest as its inputs (so
//! shards of different checkouts are not merged). `natsim merge` puts the results back in file
//! order and prints them, and writes the JUnit file, with the code the unsharded `natsim check`
//! uses: the same standard output and exit code, byte for byte; the JUnit file differs only in
//! its wall-clock `time` attributes, as two unsharded runs do.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cli::{CheckCase, check_one, finish_check, print_case, scenario_files};
use crate::exit::{self, Exit};
use crate::output;
use crate::shard::{
    Shard, ShardFile, ShardHeader, check_files, prepare_dir, read_files, write_and_report,
};

/// The `command` of check shard files.
pub const COMMAND: &str = "check";

/// What decides a check's output, as a shard file records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSettings {
    /// The folder as given.
    pub dir: PathBuf,
    /// `--require-exercised`.
    pub require_exercised: bool,
    /// Every scenario file of the folder, in check order: (name, digest of its contents).
    pub files: Vec<(String, String)>,
}

impl CheckSettings {
    fn canonical(&self) -> String {
        let files: Vec<String> = self.files.iter().map(|(n, d)| format!("{n}={d}")).collect();
        format!(
            "dir {}; require exercised {}; files {}",
            self.dir.display(),
            self.require_exercised,
            files.join(",")
        )
    }
}

/// One checked file of a shard: its position in the folder's list, and its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardCase {
    /// Position in [`CheckSettings::files`].
    pub position: u64,
    /// The result.
    pub case: CheckCase,
}

/// A check shard's result file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckShardFile {
    /// Format, version, command, inputs, shard.
    pub header: ShardHeader,
    /// The inputs, structured.
    pub settings: CheckSettings,
    /// The shard's files, in check order.
    pub cases: Vec<ShardCase>,
}

/// Where shard `shard` writes its results under `shard_out`.
pub fn shard_file(shard_out: &Path, shard: Shard) -> PathBuf {
    shard_out.join(shard.file_name(COMMAND))
}

fn digest_of(path: &Path) -> String {
    // `check_one` reports the file as bad input; the digest only has to be stable.
    crate::shard::file_digest(path).unwrap_or_else(|_| "unreadable".to_owned())
}

/// `natsim check DIR --shard K/N --shard-out OUT`: checks this shard's files, prints their lines
/// and writes the result file. Exit 0 once it is written (the verdict is the merge's), 2 for an
/// unusable folder or output.
pub fn check_shard_cmd(
    dir: &Path,
    require_exercised: bool,
    shard: Shard,
    shard_out: &Path,
) -> Exit {
    let files = match scenario_files(dir) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            return Exit(output::print_error(&format_args!(
                "{}: no scenario files (*.yaml, *.yml) in this folder; nothing was checked",
                dir.display()
            )));
        }
        Err(e) => return Exit(output::print_error(&format_args!("{}: {e}", dir.display()))),
    };
    if let Err(e) = prepare_dir(shard_out) {
        return Exit(output::print_error(&e));
    }
    let settings = CheckSettings {
        dir: dir.to_path_buf(),
        require_exercised,
        files: files
            .iter()
            .map(|f| (f.display().to_string(), digest_of(f)))
            .collect(),
    };
    let mut out = output::stdout();
    let total = files.len() as u64;
    let mut cases = Vec::new();
    for i in 0..shard.len_of(total) {
        let position = shard.position(i);
        let Some(f) = usize::try_from(position).ok().and_then(|p| files.get(p)) else {
            break;
        };
        let case = check_one(f, require_exercised);
        print_case(&mut out, &case);
        cases.push(ShardCase { position, case });
    }
    let failed = cases.iter().filter(|c| c.case.code != exit::OK).count();
    let file = CheckShardFile {
        header: ShardHeader::new(COMMAND, settings.canonical(), shard),
        settings,
        cases,
    };
    let path = shard_file(shard_out, shard);
    let summary = format!("{} scenarios, {failed} failed", file.cases.len());
    let code = write_and_report(&path, &file, shard, &summary, &mut out);
    Exit(output::finish(code, out, output::stderr()))
}

/// Checks a complete set of check shard files and returns every file's result in check order.
pub fn combine(files: &[(String, CheckShardFile)]) -> Result<Vec<CheckCase>, String> {
    check_files(files, COMMAND)?;
    let mut all: Vec<(u64, CheckCase)> = Vec::new();
    for (name, f) in files {
        let shard = f.header.shard;
        let total = f.settings.files.len() as u64;
        let got: Vec<u64> = f.cases.iter().map(|c| c.position).collect();
        shard.check_positions(name, "scenario files", total, &got)?;
        for c in &f.cases {
            let listed = usize::try_from(c.position)
                .ok()
                .and_then(|p| f.settings.files.get(p))
                .map(|(n, _)| n.as_str());
            if listed != Some(c.case.name.as_str()) {
                return Err(format!(
                    "{name}: the result at position {} is for {}, which the file list does not have there",
                    c.position, c.case.name
                ));
            }
            all.push((c.position, c.case.clone()));
        }
    }
    all.sort_by_key(|(p, _)| *p);
    Ok(all.into_iter().map(|(_, c)| c).collect())
}

/// `natsim merge FILE... [--junit PATH]` for check shards: exit 2 with a message for an
/// incomplete, duplicated or mixed set; otherwise the unsharded check's output and exit code.
pub fn merge_cmd(paths: &[PathBuf], junit: Option<&Path>) -> Exit {
    if let Some(Err(e)) = junit.map(output::check_output_file) {
        return Exit(output::print_error(&e));
    }
    let files: Vec<(String, CheckShardFile)> = match read_files(paths, COMMAND) {
        Ok(f) => f,
        Err(e) => return Exit(output::print_error(&e)),
    };
    let cases = match combine(&files) {
        Ok(c) => c,
        Err(e) => return Exit(output::print_error(&e)),
    };
    let mut out = output::stdout();
    let mut err = output::stderr();
    for c in &cases {
        print_case(&mut out, c);
    }
    let code = finish_check(&mut out, &mut err, &cases, junit);
    Exit(output::finish(code.0, out, err))
}

impl ShardFile for CheckShardFile {
    fn header(&self) -> &ShardHeader {
        &self.header
    }
    fn canonical_input(&self) -> String {
        self.settings.canonical()
    }
}
