//! The TCP state machine of a flow (RFC 6146 §3.5.2.2, RFC 7857 §2.1), with direction checks:
//! only an inside ACK after an outside SYN or SYN-ACK makes a flow ESTABLISHED, so a SYN/SYN-ACK
//! flood never does (dpservice issue #628).

use crate::wire::tcp_flags::{ACK, FIN, RST, SYN};

/// State bits of a TCP flow.
pub(crate) mod bits {
    /// A SYN or SYN-ACK came from outside.
    pub const OUTSIDE_SYN: u8 = 0x01;
    /// The three-way handshake completed.
    pub const ESTABLISHED: u8 = 0x02;
    /// FIN seen from inside.
    pub const FIN_OUT: u8 = 0x04;
    /// FIN seen from outside.
    pub const FIN_IN: u8 = 0x08;
    /// RST seen (either direction).
    pub const RST: u8 = 0x10;
}

/// Direction of a packet relative to the flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Inside → outside.
    Out,
    /// Outside → inside.
    In,
}

/// The state after a packet with `flags` travelling in `dir`. With `rst_recovery`, a non-RST
/// packet after an RST puts the flow back to ESTABLISHED (RFC 6146 §3.5.2.2, docs/behaviour.md
/// §4 "TCP"): an RST the endpoints ignored (lost, forged, out of window) must not shorten a
/// connection that goes on. Without it (`linux`) the flow stays reset until it expires or a
/// new inside SYN reopens the tuple.
pub(crate) fn next_state(state: u8, dir: Dir, flags: u8, rst_recovery: bool) -> u8 {
    let mut s = state;
    if flags & RST != 0 {
        return s | bits::RST;
    }
    if rst_recovery && s & bits::RST != 0 {
        // Back to ESTABLISHED; FINs seen before the RST are forgotten with it. A FIN on this
        // very packet counts below.
        s = bits::OUTSIDE_SYN | bits::ESTABLISHED;
        if flags & FIN != 0 {
            s |= if dir == Dir::Out {
                bits::FIN_OUT
            } else {
                bits::FIN_IN
            };
        }
        return s;
    }
    if flags & SYN != 0 {
        if dir == Dir::Out && flags & ACK == 0 && is_closed(s) {
            // A new connection reusing the tuple of a closed one starts over (RFC 6146's
            // TRANS state re-opening); otherwise it could never leave the transitory timer.
            return 0;
        }
        if dir == Dir::In {
            s |= bits::OUTSIDE_SYN;
        }
        return s;
    }
    if dir == Dir::Out && flags & ACK != 0 && s & bits::OUTSIDE_SYN != 0 {
        s |= bits::ESTABLISHED;
    }
    if flags & FIN != 0 {
        s |= if dir == Dir::Out {
            bits::FIN_OUT
        } else {
            bits::FIN_IN
        };
    }
    s
}

/// True when the flow was reset (and has not recovered).
pub(crate) fn is_reset(state: u8) -> bool {
    state & bits::RST != 0
}

/// True when the flow runs on the transitory timer: opening, closed by both FINs, or reset.
pub(crate) fn is_transitory(state: u8) -> bool {
    state & bits::RST != 0
        || state & bits::ESTABLISHED == 0
        || (state & bits::FIN_OUT != 0 && state & bits::FIN_IN != 0)
}

/// True when the flow has closed (both FINs or RST), as opposed to merely idle.
pub(crate) fn is_closed(state: u8) -> bool {
    state & bits::RST != 0 || (state & bits::FIN_OUT != 0 && state & bits::FIN_IN != 0)
}

/// Human name of a state, for reports.
pub(crate) fn state_name(state: u8) -> &'static str {
    if state & bits::RST != 0 {
        "reset"
    } else if is_closed(state) {
        "closed"
    } else if state & (bits::FIN_IN | bits::FIN_OUT) != 0 {
        "closing"
    } else if state & bits::ESTABLISHED != 0 {
        "established"
    } else if state & bits::OUTSIDE_SYN != 0 {
        "syn_received"
    } else {
        "syn_sent"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_synack_flood_never_reaches_established() {
        let mut s = 0;
        for _ in 0..100 {
            s = next_state(s, Dir::Out, SYN, true);
            s = next_state(s, Dir::In, SYN | ACK, true);
            s = next_state(s, Dir::Out, SYN | ACK, true);
        }
        assert_eq!(s & bits::ESTABLISHED, 0);
        assert!(is_transitory(s));
    }

    #[test]
    fn handshake_then_both_fins_is_closed_and_transitory() {
        let mut s = next_state(0, Dir::Out, SYN, true);
        s = next_state(s, Dir::In, SYN | ACK, true);
        s = next_state(s, Dir::Out, ACK, true);
        assert_eq!(state_name(s), "established");
        assert!(!is_transitory(s));
        s = next_state(s, Dir::Out, FIN | ACK, true);
        assert!(!is_transitory(s), "one FIN keeps the established timer");
        s = next_state(s, Dir::In, FIN | ACK, true);
        assert!(is_closed(s) && is_transitory(s));
    }

    #[test]
    fn inside_ack_before_outside_synack_does_not_establish() {
        let s = next_state(next_state(0, Dir::Out, SYN, true), Dir::Out, ACK, true);
        assert_eq!(s & bits::ESTABLISHED, 0);
    }

    #[test]
    fn new_inside_syn_after_close_starts_a_fresh_handshake() {
        for (close, recovery) in [(FIN, true), (RST, false)] {
            let mut s = next_state(0, Dir::Out, SYN, recovery);
            s = next_state(s, Dir::In, SYN | ACK, recovery);
            s = next_state(s, Dir::Out, ACK, recovery);
            s = next_state(s, Dir::Out, close | ACK, recovery);
            if close == FIN {
                s = next_state(s, Dir::In, FIN | ACK, recovery);
            }
            assert!(is_closed(s));
            s = next_state(s, Dir::Out, SYN, recovery);
            assert_eq!(s, 0);
            s = next_state(s, Dir::In, SYN | ACK, recovery);
            s = next_state(s, Dir::Out, ACK, recovery);
            assert_eq!(state_name(s), "established");
        }
    }

    #[test]
    fn any_non_rst_packet_after_an_rst_puts_the_flow_back_to_established() {
        for (dir, flags) in [
            (Dir::Out, ACK),
            (Dir::In, ACK),
            (Dir::In, SYN | ACK),
            (Dir::Out, SYN),
        ] {
            let mut s = next_state(0, Dir::Out, SYN, true);
            s = next_state(s, Dir::In, SYN | ACK, true);
            s = next_state(s, Dir::In, RST, true);
            assert!(is_reset(s) && is_transitory(s));
            s = next_state(s, dir, flags, true);
            assert_eq!(state_name(s), "established", "{dir:?} {flags:#x}");
            assert!(!is_transitory(s));
        }
    }

    #[test]
    fn without_recovery_a_reset_flow_stays_reset() {
        let mut s = next_state(0, Dir::Out, SYN, false);
        s = next_state(s, Dir::In, SYN | ACK, false);
        s = next_state(s, Dir::Out, ACK, false);
        s = next_state(s, Dir::In, RST, false);
        for (dir, flags) in [(Dir::Out, ACK), (Dir::In, ACK), (Dir::In, FIN | ACK)] {
            s = next_state(s, dir, flags, false);
            assert_eq!(state_name(s), "reset");
        }
    }

    #[test]
    fn simultaneous_open_establishes_after_inside_ack() {
        let mut s = next_state(0, Dir::Out, SYN, true);
        s = next_state(s, Dir::In, SYN, true);
        s = next_state(s, Dir::Out, SYN | ACK, true);
        s = next_state(s, Dir::Out, ACK, true);
        assert_ne!(s & bits::ESTABLISHED, 0);
    }

    #[test]
    fn a_fin_on_the_packet_that_recovers_from_an_rst_counts_for_its_own_direction_only() {
        for (dir, fin) in [(Dir::Out, bits::FIN_OUT), (Dir::In, bits::FIN_IN)] {
            let mut s = next_state(0, Dir::Out, SYN, true);
            s = next_state(s, Dir::In, SYN | ACK, true);
            s = next_state(s, Dir::Out, ACK, true);
            s = next_state(s, Dir::Out, FIN | ACK, true);
            s = next_state(s, Dir::In, RST, true);
            // The FIN seen before the RST is forgotten; the one on this packet counts.
            s = next_state(s, dir, FIN | ACK, true);
            assert_eq!(s, bits::OUTSIDE_SYN | bits::ESTABLISHED | fin, "{dir:?}");
            assert!(
                !is_closed(s) && !is_transitory(s),
                "one FIN keeps it established"
            );
        }
    }

    #[test]
    fn a_syn_retransmitted_after_the_syn_ack_keeps_the_handshake() {
        let mut s = next_state(0, Dir::Out, SYN, true);
        s = next_state(s, Dir::In, SYN | ACK, true);
        // The inside did not see the SYN-ACK yet and sends its SYN again.
        s = next_state(s, Dir::Out, SYN, true);
        assert_eq!(s, bits::OUTSIDE_SYN);
        s = next_state(s, Dir::Out, ACK, true);
        assert_eq!(state_name(s), "established");
    }

    #[test]
    fn only_an_inside_ack_completes_the_handshake() {
        let mut s = next_state(0, Dir::Out, SYN, true);
        s = next_state(s, Dir::In, SYN | ACK, true);
        // The outside's own ACKs or data do not complete it, nor an inside segment without ACK.
        assert_eq!(next_state(s, Dir::In, ACK, true) & bits::ESTABLISHED, 0);
        assert_eq!(next_state(s, Dir::Out, FIN, true) & bits::ESTABLISHED, 0);
        assert_ne!(next_state(s, Dir::Out, ACK, true) & bits::ESTABLISHED, 0);
    }
}
