//! The process exit codes of every `natsim` command, in one place (README "Exit codes").
//!
//! CI reads these numbers, so they never change meaning: a higher code is a worse outcome,
//! and commands that run several cases exit with the worst case's code.

/// Success: everything asked for was done and held.
pub const OK: u8 = 0;
/// A failing verdict on valid input: invalid manifests (`validate`, `reconcile`), plan points
/// over target.
pub const FAILED: u8 = 1;
/// Bad input or usage: the message names the file, line and field (or packet index). Also an
/// output that cannot be written (an unusable `--out` path, a full disk, a closed standard
/// output): the command could not do what was asked, and says why.
pub const BAD_INPUT: u8 = 2;
/// A scenario's expectations were not met.
pub const UNMET: u8 = 3;
/// An invariant was violated.
pub const VIOLATION: u8 = 4;
/// A run bound (events, virtual time) was hit with work left.
pub const BOUND_HIT: u8 = 5;

/// The [`std::process::ExitCode`] of a code above.
pub fn code(c: u8) -> std::process::ExitCode {
    std::process::ExitCode::from(c)
}

/// A process exit status as the command functions return it. `u8::from(exit)` /
/// `ExitCode::from(exit)` give the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit(pub u8);

impl Exit {
    /// Success.
    pub const OK: Exit = Exit(OK);
    /// Bad input (2).
    pub const BAD_INPUT: Exit = Exit(BAD_INPUT);
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.0)
    }
}

impl From<Exit> for u8 {
    fn from(e: Exit) -> u8 {
        e.0
    }
}
