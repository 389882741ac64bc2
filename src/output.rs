//! Honest outputs: a file natsim writes is either complete or absent, and a lost standard
//! output or standard error is reported, never ignored and never a panic.
//!
//! - [`AtomicFile`] / [`write_atomic`]: the bytes go to a temporary file in the target's
//!   folder, which is renamed over the target only once everything was written and synced.
//!   A full disk or a crash leaves the previous file (or none), not a truncated one that
//!   looks complete.
//! - [`check_output_file`] / [`check_output_dir`]: refuse an unusable output path before any
//!   work (a plan must not simulate for minutes and then fail to write).
//! - [`Tracked`]: a writer that remembers its first error, so commands that print as they go
//!   can still fail at the end when the output was lost (EPIPE, ENOSPC on `/dev/full`).
//!   [`finish`] turns that into a message and a non-zero exit code ([`crate::exit`]).

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::exit;

/// A file being written: a temporary file next to `dest`, renamed onto it by
/// [`AtomicFile::commit`]. Dropping it without committing deletes the temporary file and
/// leaves `dest` untouched.
pub struct AtomicFile {
    file: Target,
    dest: PathBuf,
}

/// Where the bytes go until commit.
enum Target {
    /// A temporary file in the destination's folder.
    Temporary(BufWriter<NamedTempFile>),
    /// The destination itself, when it is not a regular file (`/dev/stdout`, a pipe, a
    /// device): renaming over it would replace the device node, so natsim writes to it.
    Direct(BufWriter<std::fs::File>),
}

impl AtomicFile {
    /// Starts writing `dest` (its folder must exist). A symbolic link is followed: the file
    /// it points to is replaced.
    pub fn create(dest: &Path) -> io::Result<AtomicFile> {
        let dest = match std::fs::canonicalize(dest) {
            Ok(real) => real,
            Err(_) => dest.to_path_buf(),
        };
        if let Ok(meta) = std::fs::metadata(&dest)
            && !meta.is_file()
            && !meta.is_dir()
        {
            let f = std::fs::OpenOptions::new().write(true).open(&dest)?;
            return Ok(AtomicFile {
                file: Target::Direct(BufWriter::new(f)),
                dest,
            });
        }
        let dir = folder_of(&dest);
        // 0o666 before the umask, as `File::create` would give; tempfile's default is 0o600.
        #[cfg(unix)]
        let permissions = {
            use std::os::unix::fs::PermissionsExt;
            Some(std::fs::Permissions::from_mode(0o666))
        };
        #[cfg(not(unix))]
        let permissions: Option<std::fs::Permissions> = None;
        let mut builder = tempfile::Builder::new();
        builder.prefix(".natsim-").suffix(".partial");
        if let Some(p) = permissions {
            builder.permissions(p);
        }
        let tmp = builder.tempfile_in(dir)?;
        Ok(AtomicFile {
            file: Target::Temporary(BufWriter::with_capacity(1 << 16, tmp)),
            dest,
        })
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flushes, syncs (so a full disk is seen now, not after the rename) and renames the
    /// temporary file onto the final path.
    pub fn commit(self) -> io::Result<()> {
        match self.file {
            Target::Temporary(file) => {
                let tmp = file.into_inner().map_err(io::IntoInnerError::into_error)?;
                tmp.as_file().sync_all()?;
                tmp.persist(&self.dest).map_err(|e| e.error)?;
            }
            Target::Direct(mut file) => file.flush()?,
        }
        Ok(())
    }

    fn writer(&mut self) -> &mut dyn Write {
        match &mut self.file {
            Target::Temporary(f) => f,
            Target::Direct(f) => f,
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer().flush()
    }
}

/// Writes `bytes` to `dest` all at once or not at all (see [`AtomicFile`]).
pub fn write_atomic(dest: &Path, bytes: impl AsRef<[u8]>) -> io::Result<()> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(bytes.as_ref())?;
    f.commit()
}

/// The folder a file path lives in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Why an output path cannot be used.
#[derive(Debug)]
pub struct OutputPathError {
    /// The path as given.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for OutputPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "output {}: {}",
            self.path.display(),
            self.reason.trim_end()
        )
    }
}

impl std::error::Error for OutputPathError {}

fn path_error(path: &Path, reason: impl Into<String>) -> OutputPathError {
    OutputPathError {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Checks, before any work, that a file can be written at `path`: it is not a folder, its
/// folder exists and accepts new files (probed with a temporary file, removed again).
pub fn check_output_file(path: &Path) -> Result<(), OutputPathError> {
    if path.as_os_str().is_empty() {
        return Err(path_error(path, "empty path; give a file name"));
    }
    if path.is_dir() {
        return Err(path_error(
            path,
            "is a folder; give a file name (e.g. DIR/report.json)",
        ));
    }
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
    {
        // A device or pipe (`/dev/stdout`): written directly, nothing to probe.
        return Ok(());
    }
    let dir = folder_of(path);
    if !dir.is_dir() {
        return Err(path_error(
            path,
            format!("folder {} does not exist; create it first", dir.display()),
        ));
    }
    probe(dir).map_err(|e| path_error(path, format!("cannot write in {}: {e}", dir.display())))
}

/// Checks, before any work, that natsim can write files in folder `dir`: it is a folder
/// that accepts new files, or it does not exist yet and its nearest existing parent is one
/// (the command creates it when it writes). Nothing is created here.
pub fn check_output_dir(dir: &Path) -> Result<(), OutputPathError> {
    if dir.as_os_str().is_empty() {
        return Err(path_error(dir, "empty path; give a folder"));
    }
    if dir.exists() {
        if !dir.is_dir() {
            return Err(path_error(dir, "exists and is not a folder; give a folder"));
        }
        return probe(dir).map_err(|e| path_error(dir, format!("cannot write in it: {e}")));
    }
    let mut parent = folder_of(dir);
    while !parent.exists() {
        parent = match parent.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    if !parent.is_dir() {
        return Err(path_error(
            dir,
            format!("{} is not a folder; give a folder", parent.display()),
        ));
    }
    probe(parent).map_err(|e| {
        path_error(
            dir,
            format!("cannot create it in {}: {e}", parent.display()),
        )
    })
}

/// Creates and removes a temporary file in `dir`.
fn probe(dir: &Path) -> io::Result<()> {
    tempfile::Builder::new()
        .prefix(".natsim-probe-")
        .tempfile_in(dir)
        .map(drop)
}

/// A writer that keeps its first error. Later writes after an error are refused with the
/// same kind of error, so a half-written line is never followed by more output.
pub struct Tracked<W: Write> {
    inner: W,
    error: Option<io::Error>,
}

impl<W: Write> Tracked<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Tracked { inner, error: None }
    }

    /// Flushes and returns the first error seen, if any.
    pub fn finish(mut self) -> io::Result<()> {
        if self.error.is_none()
            && let Err(e) = self.inner.flush()
        {
            self.error = Some(e);
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn record<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r
            && self.error.is_none()
        {
            self.error = Some(io::Error::new(e.kind(), e.to_string()));
        }
        r
    }

    fn failed(&self) -> Option<io::Error> {
        self.error
            .as_ref()
            .map(|e| io::Error::new(e.kind(), e.to_string()))
    }
}

impl<W: Write> Write for Tracked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(e) = self.failed() {
            return Err(e);
        }
        let r = self.inner.write(buf);
        self.record(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(e) = self.failed() {
            return Err(e);
        }
        let r = self.inner.flush();
        self.record(r)
    }
}

/// Standard output, tracked.
pub fn stdout() -> Tracked<io::StdoutLock<'static>> {
    Tracked::new(io::stdout().lock())
}

/// Standard error, tracked.
pub fn stderr() -> Tracked<io::StderrLock<'static>> {
    Tracked::new(io::stderr().lock())
}

/// Ends a command that printed to `out` and `err`: when standard output was lost, says so
/// on standard error; either stream lost makes the exit code at least
/// [`exit::BAD_INPUT`] (a higher code of the command itself is kept).
pub fn finish<O: Write, E: Write>(code: u8, out: Tracked<O>, err: Tracked<E>) -> u8 {
    let mut code = code;
    let mut err_ok = true;
    let mut err = err;
    if let Err(e) = out.finish() {
        code = code.max(exit::BAD_INPUT);
        err_ok &= writeln!(err, "error: writing standard output: {e}").is_ok();
    }
    if err.finish().is_err() || !err_ok {
        code = code.max(exit::BAD_INPUT);
    }
    code
}

/// Prints `text` to standard output and ends like [`finish`]: for commands whose whole
/// output is one string.
pub fn print_all(code: u8, text: &str) -> u8 {
    let mut out = stdout();
    let _ = out.write_all(text.as_bytes());
    finish(code, out, stderr())
}

/// Prints one error line to standard error; a lost standard error is reported through the
/// exit code (the returned code is at least [`exit::BAD_INPUT`]).
pub fn print_error(message: &dyn fmt::Display) -> u8 {
    let mut err = stderr();
    let _ = writeln!(err, "error: {message}");
    finish(exit::BAD_INPUT, Tracked::new(io::sink()), err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("temp dir");
        let dest = dir.path().join("out.txt");
        write_atomic(&dest, "old\n").expect("first write");
        write_atomic(&dest, "new\n").expect("second write");
        assert_eq!(std::fs::read_to_string(&dest).expect("read"), "new\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.txt")]);
    }

    #[test]
    fn devices_are_written_directly_not_replaced() {
        write_atomic(Path::new("/dev/null"), "x").expect("write to /dev/null");
        let meta = std::fs::metadata("/dev/null").expect("still there");
        assert!(!meta.is_file(), "/dev/null is still a device");
        assert!(check_output_file(Path::new("/dev/null")).is_ok());
        let e = write_atomic(Path::new("/dev/full"), "x").expect_err("full device");
        assert_eq!(e.raw_os_error(), Some(28), "ENOSPC: {e}");
    }

    #[test]
    fn uncommitted_file_leaves_target_untouched() {
        let dir = tempfile::tempdir().expect("temp dir");
        let dest = dir.path().join("out.txt");
        write_atomic(&dest, "old\n").expect("write");
        {
            let mut f = AtomicFile::create(&dest).expect("create");
            f.write_all(b"half").expect("write");
        }
        assert_eq!(std::fs::read_to_string(&dest).expect("read"), "old\n");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[test]
    fn output_paths_are_checked_before_work() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(check_output_file(&dir.path().join("x.json")).is_ok());
        let e = check_output_file(dir.path()).expect_err("a folder is not a file");
        assert!(e.to_string().contains("is a folder"), "{e}");
        let e = check_output_file(&dir.path().join("missing/x.json")).expect_err("no folder");
        assert!(e.to_string().contains("does not exist"), "{e}");
        let file = dir.path().join("plain");
        std::fs::write(&file, "").expect("write");
        let e = check_output_dir(&file).expect_err("a file is not a folder");
        assert!(e.to_string().contains("not a folder"), "{e}");
        assert!(check_output_dir(&dir.path().join("new/sub")).is_ok());
        assert!(!dir.path().join("new").exists(), "checking creates nothing");
        let e = check_output_dir(&file.join("sub")).expect_err("under a file");
        assert!(e.to_string().contains("is not a folder"), "{e}");
    }

    /// A writer that fails like a full disk after `left` bytes.
    struct Full {
        left: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::from_raw_os_error(28));
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn tracked_writer_remembers_the_first_error() {
        let mut w = Tracked::new(Full { left: 3 });
        let _ = writeln!(w, "hello");
        assert!(writeln!(w, "x").is_err(), "writes after an error fail too");
        let e = w.finish().expect_err("error kept");
        assert_eq!(e.raw_os_error(), None, "copied error keeps its kind");
        assert_eq!(e.kind(), io::Error::from_raw_os_error(28).kind());
        let lost = || {
            let mut w = Tracked::new(Full { left: 0 });
            let _ = writeln!(w, "lost");
            w
        };
        let code = finish(exit::OK, lost(), Tracked::new(Vec::new()));
        assert_eq!(code, exit::BAD_INPUT);
        let code = finish(exit::VIOLATION, lost(), Tracked::new(Vec::new()));
        assert_eq!(code, exit::VIOLATION, "a worse code of the command is kept");
    }
}
