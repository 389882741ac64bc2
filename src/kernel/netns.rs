//! Network namespaces natsim creates for the kernel dataplane, and the tools it drives them with
//! (`ip` from iproute2, `nft` from nftables).
//!
//! Every namespace is named `natsim-<pid>-<n>` and deleted when its [`Namespace`] is dropped;
//! [`cleanup_all`] (`natsim kernel-cleanup`) deletes any left behind by a process that died.
//! A namespace holds only TUN devices whose other end is natsim's own descriptor, so nothing
//! in it has a route to the machine's real network.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::KernelError;
use super::sys;

/// Prefix of every namespace natsim creates.
pub const NETNS_PREFIX: &str = "natsim-";

/// Where `ip netns` keeps its namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Namespaces made by this process so far (part of the next name).
static CREATED: AtomicU32 = AtomicU32::new(0);

/// Checks that the kernel dataplane can run here: root, `ip`, `nft`, `conntrack` and
/// `/dev/net/tun`.
/// The error names what is missing and the Debian package that provides it.
pub fn preflight() -> Result<(), KernelError> {
    if sys::effective_uid() != 0 {
        return Err(KernelError::new(
            "the kernel dataplane needs root (network namespaces, TUN devices, nftables); run as root",
        ));
    }
    for (tool, arg, package) in [
        ("ip", "-V", "iproute2"),
        ("nft", "--version", "nftables"),
        ("conntrack", "--version", "conntrack"),
    ] {
        let ok = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(KernelError::new(format!(
                "`{tool}` is missing: install the `{package}` package (apt-get install {package})"
            )));
        }
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Err(KernelError::new(
            "/dev/net/tun is missing: the kernel needs TUN support (modprobe tun)",
        ));
    }
    Ok(())
}

/// A network namespace natsim created; deleted on drop.
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Creates a fresh, empty namespace with its loopback up.
    pub fn create() -> Result<Namespace, KernelError> {
        let n = CREATED.fetch_add(1, Ordering::Relaxed);
        let name = format!("{NETNS_PREFIX}{}-{n}", std::process::id());
        run("ip", &["netns", "add", &name], None)?;
        let ns = Namespace { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Its name (`natsim-<pid>-<n>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(NETNS_DIR).join(&self.name)
    }

    /// Runs `ip -n NAME ARGS...`.
    pub fn ip(&self, args: &[&str]) -> Result<(), KernelError> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all, None)
    }

    /// Runs several `ip` commands (one per line, `ip -batch` syntax) in the namespace.
    pub fn ip_batch(&self, commands: &str) -> Result<(), KernelError> {
        run("ip", &["-n", &self.name, "-batch", "-"], Some(commands))
    }

    /// Loads an nftables ruleset (`nft -f -`) in the namespace.
    pub fn nft(&self, ruleset: &str) -> Result<(), KernelError> {
        run(
            "ip",
            &["netns", "exec", &self.name, "nft", "-f", "-"],
            Some(ruleset),
        )
    }

    /// Runs `f` on a thread that has entered the namespace (for TUN devices and sysctls, which
    /// belong to the namespace of the thread that opens them).
    pub fn run_inside<T: Send>(
        &self,
        f: impl FnOnce() -> std::io::Result<T> + Send,
    ) -> Result<T, KernelError> {
        let path = self.path();
        std::thread::scope(|s| {
            s.spawn(|| {
                sys::enter_netns(&path)?;
                f()
            })
            .join()
        })
        .map_err(|_| KernelError::new("a namespace worker thread panicked"))?
        .map_err(|e| KernelError::new(format!("in namespace {}: {e}", self.name)))
    }

    /// Writes sysctls (`net/ipv4/ip_forward` style paths under /proc/sys) in the namespace.
    pub fn sysctls(&self, values: &[(String, String)]) -> Result<(), KernelError> {
        self.run_inside(|| {
            for (key, value) in values {
                let path = format!("/proc/sys/{key}");
                std::fs::write(&path, value).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("writing {value} to {path}: {e}"))
                })?;
            }
            Ok(())
        })
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting the namespace destroys its devices and conntrack table; nothing to report
        // if it is already gone.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Deletes every namespace whose name starts with [`NETNS_PREFIX`] (left by a natsim process
/// that was killed); returns their names.
pub fn cleanup_all() -> Result<Vec<String>, KernelError> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map_err(|e| KernelError::new(format!("running `ip netns list`: {e}")))?;
    let list = String::from_utf8_lossy(&out.stdout);
    let mut deleted = Vec::new();
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if name.starts_with(NETNS_PREFIX) {
            run("ip", &["netns", "del", name], None)?;
            deleted.push(name.to_string());
        }
    }
    Ok(deleted)
}

/// Runs a command, feeding `input` on stdin; an error carries the command and its stderr.
fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<(), KernelError> {
    let shown = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| KernelError::new(format!("running `{shown}`: {e}")))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| KernelError::new(format!("writing to `{shown}`: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| KernelError::new(format!("running `{shown}`: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let detail = match input {
            Some(text) => format!("\ninput was:\n{text}"),
            None => String::new(),
        };
        return Err(KernelError::new(format!(
            "`{shown}` failed: {}{detail}",
            err.trim()
        )));
    }
    Ok(())
}
