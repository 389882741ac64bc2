//! ICMP and ICMPv6 message types and their classification: the one place natsim decides what an
//! ICMP type number means (echo request, echo reply, error, other) for each family.
//!
//! The errors are the ones a NAT translates (RFC 5508 for ICMP, RFC 4443 for ICMPv6): ICMP 3
//! (destination unreachable), 11 (time exceeded) and 12 (parameter problem); ICMPv6 1
//! (destination unreachable), 2 (packet too big), 3 (time exceeded) and 4 (parameter problem).
//! ICMP 4 (source quench) and 5 (redirect) are deprecated (RFC 6633) or host-local and are not
//! errors a NAT forwards: they classify as [`IcmpKind::Other`].

use super::parse::{IpVersion, proto};

/// ICMP (IPv4) type numbers natsim uses.
pub mod v4 {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 12;
}

/// ICMPv6 type numbers natsim uses.
pub mod v6 {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;

    /// Neighbour discovery (RFC 4861: router solicitation and advertisement, neighbour
    /// solicitation and advertisement, redirect, 133–137): link-scoped, never a NIC's traffic.
    pub fn is_neighbour_discovery(t: u8) -> bool {
        (133..=137).contains(&t)
    }

    /// Multicast listener discovery (MLD query, report and done 130–132, MLDv2 report 143).
    pub fn is_multicast_listener(t: u8) -> bool {
        matches!(t, 130..=132 | 143)
    }
}

/// The ICMP errors natsim's gateway and hosts send, named; [`ErrorMessage::type_code`] gives
/// the family's numbers, so no caller spells them out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorMessage {
    /// Host unreachable (ICMP 3/1; ICMPv6 1/3 address unreachable).
    HostUnreachable,
    /// Port unreachable (ICMP 3/3; ICMPv6 1/4).
    PortUnreachable,
    /// Communication administratively prohibited (ICMP 3/13; ICMPv6 1/1), RFC 5382 REQ-4's
    /// answer to an unsolicited SYN.
    AdminProhibited,
    /// Time exceeded in transit (ICMP 11/0; ICMPv6 3/0).
    TimeExceeded,
    /// Fragmentation needed and DF set (ICMP 3/4; ICMPv6 2/0 packet too big); the MTU goes in
    /// the word after the checksum ([`packet_too_big_mtu`]).
    PacketTooBig,
}

impl ErrorMessage {
    /// (type, code) of this error in `version`'s ICMP.
    pub fn type_code(self, version: IpVersion) -> (u8, u8) {
        match (self, version) {
            (ErrorMessage::HostUnreachable, IpVersion::V4) => (v4::DEST_UNREACHABLE, 1),
            (ErrorMessage::HostUnreachable, IpVersion::V6) => (v6::DEST_UNREACHABLE, 3),
            (ErrorMessage::PortUnreachable, IpVersion::V4) => (v4::DEST_UNREACHABLE, 3),
            (ErrorMessage::PortUnreachable, IpVersion::V6) => (v6::DEST_UNREACHABLE, 4),
            (ErrorMessage::AdminProhibited, IpVersion::V4) => (v4::DEST_UNREACHABLE, 13),
            (ErrorMessage::AdminProhibited, IpVersion::V6) => (v6::DEST_UNREACHABLE, 1),
            (ErrorMessage::TimeExceeded, IpVersion::V4) => (v4::TIME_EXCEEDED, 0),
            (ErrorMessage::TimeExceeded, IpVersion::V6) => (v6::TIME_EXCEEDED, 0),
            (ErrorMessage::PacketTooBig, IpVersion::V4) => (v4::DEST_UNREACHABLE, 4),
            (ErrorMessage::PacketTooBig, IpVersion::V6) => (v6::PACKET_TOO_BIG, 0),
        }
    }
}

/// The MTU a Fragmentation Needed (ICMP 3/4: the low 16 bits of `rest`, the word after the
/// checksum, RFC 1191) or Packet Too Big (ICMPv6 2: all of it, RFC 4443 §3.2) reports; `None`
/// for any other message.
pub fn packet_too_big_mtu(version: IpVersion, icmp_type: u8, code: u8, rest: u32) -> Option<u32> {
    match (version, icmp_type, code) {
        (IpVersion::V4, v4::DEST_UNREACHABLE, 4) => Some(rest & 0xFFFF),
        (IpVersion::V6, v6::PACKET_TOO_BIG, _) => Some(rest),
        _ => None,
    }
}

/// The word after the checksum of an ICMP error carrying `mtu` as [`ErrorMessage::PacketTooBig`]
/// does in `version` (IPv4 keeps 16 bits of it); 0 for the other errors.
pub fn rest_word(message: ErrorMessage, version: IpVersion, mtu: u32) -> u32 {
    match (message, version) {
        (ErrorMessage::PacketTooBig, IpVersion::V4) => mtu.min(0xFFFF),
        (ErrorMessage::PacketTooBig, IpVersion::V6) => mtu,
        _ => 0,
    }
}

/// ICMP message classes natsim distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IcmpKind {
    /// Echo request (v4 8, v6 128).
    EchoRequest,
    /// Echo reply (v4 0, v6 129).
    EchoReply,
    /// An error message (v4 3/11/12, v6 1–4).
    Error,
    /// Anything else.
    Other,
}

/// The class of ICMP type `t` in the given family (the code is not looked at).
#[inline]
pub fn classify(version: IpVersion, t: u8) -> IcmpKind {
    match (version, t) {
        (IpVersion::V4, v4::ECHO_REQUEST) | (IpVersion::V6, v6::ECHO_REQUEST) => {
            IcmpKind::EchoRequest
        }
        (IpVersion::V4, v4::ECHO_REPLY) | (IpVersion::V6, v6::ECHO_REPLY) => IcmpKind::EchoReply,
        (IpVersion::V4, v4::DEST_UNREACHABLE | v4::TIME_EXCEEDED | v4::PARAMETER_PROBLEM)
        | (IpVersion::V6, v6::DEST_UNREACHABLE..=v6::PARAMETER_PROBLEM) => IcmpKind::Error,
        _ => IcmpKind::Other,
    }
}

/// True for the ICMP error types a NAT translates (see the module documentation).
#[inline]
pub fn is_error(version: IpVersion, t: u8) -> bool {
    // Written out rather than through `classify`: the gateway asks this per packet.
    matches!(
        (version, t),
        (
            IpVersion::V4,
            v4::DEST_UNREACHABLE | v4::TIME_EXCEEDED | v4::PARAMETER_PROBLEM
        ) | (IpVersion::V6, v6::DEST_UNREACHABLE..=v6::PARAMETER_PROBLEM)
    )
}

/// True for an echo request (v4 8, v6 128).
#[inline]
pub fn is_echo_request(version: IpVersion, t: u8) -> bool {
    matches!(
        (version, t),
        (IpVersion::V4, v4::ECHO_REQUEST) | (IpVersion::V6, v6::ECHO_REQUEST)
    )
}

/// True for an echo reply (v4 0, v6 129).
#[inline]
pub fn is_echo_reply(version: IpVersion, t: u8) -> bool {
    matches!(
        (version, t),
        (IpVersion::V4, v4::ECHO_REPLY) | (IpVersion::V6, v6::ECHO_REPLY)
    )
}

/// True when `protocol` is the ICMP of the packet's own family (ICMP over IPv4, ICMPv6 over
/// IPv6); ICMP carried over the other family is just another protocol.
#[inline]
pub fn is_icmp(version: IpVersion, protocol: u8) -> bool {
    protocol == protocol_of(version)
}

/// The ICMP protocol number of a family.
#[inline]
pub fn protocol_of(version: IpVersion) -> u8 {
    match version {
        IpVersion::V4 => proto::ICMP,
        IpVersion::V6 => proto::ICMPV6,
    }
}

/// The echo request or reply type of a family.
#[inline]
pub fn echo_type(version: IpVersion, request: bool) -> u8 {
    match (version, request) {
        (IpVersion::V4, true) => v4::ECHO_REQUEST,
        (IpVersion::V4, false) => v4::ECHO_REPLY,
        (IpVersion::V6, true) => v6::ECHO_REQUEST,
        (IpVersion::V6, false) => v6::ECHO_REPLY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_classifies_as_the_rfcs_say() {
        for t in 0..=255u8 {
            let want4 = match t {
                8 => IcmpKind::EchoRequest,
                0 => IcmpKind::EchoReply,
                3 | 11 | 12 => IcmpKind::Error,
                _ => IcmpKind::Other,
            };
            let want6 = match t {
                128 => IcmpKind::EchoRequest,
                129 => IcmpKind::EchoReply,
                1..=4 => IcmpKind::Error,
                _ => IcmpKind::Other,
            };
            assert_eq!(classify(IpVersion::V4, t), want4, "ICMP type {t}");
            assert_eq!(classify(IpVersion::V6, t), want6, "ICMPv6 type {t}");
            for (v, want) in [(IpVersion::V4, want4), (IpVersion::V6, want6)] {
                assert_eq!(is_error(v, t), want == IcmpKind::Error);
                assert_eq!(is_echo_request(v, t), want == IcmpKind::EchoRequest);
                assert_eq!(is_echo_reply(v, t), want == IcmpKind::EchoReply);
            }
        }
        assert!(is_icmp(IpVersion::V4, proto::ICMP) && !is_icmp(IpVersion::V4, proto::ICMPV6));
        assert!(is_icmp(IpVersion::V6, proto::ICMPV6) && !is_icmp(IpVersion::V6, proto::ICMP));
        for v in [IpVersion::V4, IpVersion::V6] {
            for e in [
                ErrorMessage::HostUnreachable,
                ErrorMessage::PortUnreachable,
                ErrorMessage::AdminProhibited,
                ErrorMessage::TimeExceeded,
            ] {
                assert!(is_error(v, e.type_code(v).0), "{e:?} over {v:?}");
            }
            assert!(is_echo_request(v, echo_type(v, true)));
            assert!(is_echo_reply(v, echo_type(v, false)));
        }
    }
}
