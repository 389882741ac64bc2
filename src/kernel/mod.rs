//! The kernel dataplane: a real Linux NAT (netfilter conntrack + nf_nat, configured with
//! nftables) in a network namespace natsim creates, driven through the simulator's dataplane
//! interface, so any scenario or capture can run against the kernel as well as the model
//! (`--dataplane linux`, `natsim diff`; docs/linux.md).
//!
//! - [`netns`]: namespaces (named `natsim-<pid>-<n>`, always deleted), `ip` and `nft`.
//! - [`rules`]: the gateway as an nftables ruleset.
//! - [`clock`]: virtual time → wall time (the kernel's timers run on the wall clock).
//! - [`conntrack`]: the kernel's connection table read back as natsim flows.
//! - [`events`]: conntrack's netlink events (connections created and destroyed).
//! - [`settings`]: [`KernelSettings`], [`KernelStats`] and the conntrack sysctls of a profile.
//! - [`dataplane`]: [`KernelDataplane`], the `Packets`/`Control`/`Inspect` implementation.
//! - `sys`: the few system calls std lacks (setns, TUN, poll): all of this module's `unsafe`.
//!
//! Runs against the kernel are not deterministic (the kernel picks ports at random in a block,
//! and its timers run on wall time), so the determinism invariant does not apply to them.

pub mod clock;
pub mod conntrack;
pub mod dataplane;
pub mod events;
pub mod netns;
pub mod rules;
pub mod settings;
mod sys;

pub use dataplane::KernelDataplane;
pub use netns::{NETNS_PREFIX, cleanup_all, preflight};
pub use settings::{KernelSettings, KernelStats, conntrack_sysctls};

/// Why the kernel dataplane cannot run, or a command it ran failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("kernel dataplane: {0}")]
pub struct KernelError(String);

impl KernelError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        KernelError(message.into())
    }
}
