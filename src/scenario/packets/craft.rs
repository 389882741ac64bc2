//! A `packets:` item (or the packet an ICMP error quotes) → bytes, through `wire`'s typed
//! [`PacketRepr`]: the one builder, which fills lengths and checksums. Inconsistent fields (a
//! family mix, an error quoting nothing, options that do not fit) are refused with the field
//! that is wrong, never clamped silently.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::pattern::Value;
use super::{
    FragmentsDoc, IcmpFieldsDoc, IpFieldsDoc, NumField, PacketItem, QuotedDoc, TcpFieldsDoc,
    UdpFieldsDoc,
};
use crate::wire::icmp;
use crate::wire::repr::{IcmpRepr, IpRepr, PacketRepr, TransportRepr, tcp_flags};
use crate::wire::{IpVersion, proto};

/// A refusal: the field (relative to the item, e.g. `icmp.quote`) and why.
pub type CraftError = (String, String);

/// How names in a crafted packet resolve: an address, host name or `ip:<name>` → an address,
/// preferring the family of `like`; `None` with the message when it does not resolve.
pub type Resolve<'a> = &'a dyn Fn(&str, Option<IpAddr>) -> Result<IpAddr, String>;

/// The most bytes one `packets:` item may add up to (all its fragments and their padding).
pub const MAX_ITEM_BYTES: usize = 1 << 20;

/// Variables captured so far: name → value.
pub type Vars = BTreeMap<String, Value>;

/// A number of a crafted packet: a literal within `0..=max`, or a variable's value plus its
/// offset; `wrap` fields (TCP sequence and acknowledgement numbers) are taken modulo 2^32, as TCP
/// compares them, every other field must land within its range.
fn number(f: &NumField, vars: &Vars, max: u64, wrap: bool, field: &str) -> Result<u64, CraftError> {
    let err = |m: String| (field.to_string(), m);
    match f {
        NumField::Num(n) if *n <= max => Ok(*n),
        NumField::Num(n) => Err(err(format!("{n} is out of range 0..={max}"))),
        NumField::Var(s) => {
            let Some((name, offset)) = super::parse_var(s) else {
                return Err(err(format!(
                    "`{s}` is not a number or `$variable` (optionally `+N` or `-N`)"
                )));
            };
            let v = match vars.get(name) {
                Some(Value::Num(v)) => *v,
                Some(Value::Addr(a)) => {
                    return Err(err(format!(
                        "`${name}` holds an address ({a}), not a number"
                    )));
                }
                None => return Err(err(format!("`${name}` is not captured"))),
            };
            let sum = i128::from(v) + i128::from(offset);
            if wrap {
                return Ok(sum.rem_euclid(1 << 32) as u64);
            }
            u64::try_from(sum)
                .ok()
                .filter(|x| *x <= max)
                .ok_or_else(|| err(format!("`{s}` = {sum} is out of range 0..={max}")))
        }
    }
}

fn port(f: &NumField, vars: &Vars, field: &str) -> Result<u16, CraftError> {
    number(f, vars, u64::from(u16::MAX), false, field).map(|v| v as u16)
}

fn seq32(f: &NumField, vars: &Vars, field: &str) -> Result<u32, CraftError> {
    number(f, vars, u64::from(u32::MAX), true, field).map(|v| v as u32)
}

/// The variables a crafted packet uses, each with its field path and whether it must hold an
/// address.
pub fn variables(item: &PacketItem) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let addr = |s: &str, field: &str, out: &mut Vec<(String, String, bool)>| {
        if let Some((name, _)) = super::parse_var(s) {
            out.push((name.to_string(), field.to_string(), true));
        }
    };
    addr(&item.to, "to", &mut out);
    if let Some(s) = &item.src {
        addr(s, "src", &mut out);
    }
    fn nums(
        prefix: &str,
        tcp: Option<&TcpFieldsDoc>,
        udp: Option<&UdpFieldsDoc>,
        icmp: Option<&IcmpFieldsDoc>,
        out: &mut Vec<(String, String, bool)>,
    ) {
        let mut push = |f: &NumField, name: &str| {
            if let NumField::Var(s) = f
                && let Some((v, _)) = super::parse_var(s)
            {
                out.push((v.to_string(), format!("{prefix}{name}"), false));
            }
        };
        if let Some(t) = tcp {
            push(&t.src_port, "tcp.src_port");
            push(&t.dst_port, "tcp.dst_port");
            push(&t.seq, "tcp.seq");
            push(&t.ack, "tcp.ack");
        }
        if let Some(u) = udp {
            push(&u.src_port, "udp.src_port");
            push(&u.dst_port, "udp.dst_port");
        }
        if let Some(m) = icmp {
            push(&m.id, "icmp.id");
            push(&m.seq, "icmp.seq");
            push(&m.rest, "icmp.rest");
            if let Some(q) = &m.quote {
                for (s, f) in [(&q.src, "src"), (&q.dst, "dst")] {
                    if let Some((v, _)) = super::parse_var(s) {
                        out.push((v.to_string(), format!("{prefix}icmp.quote.{f}"), true));
                    }
                }
                let qp = format!("{prefix}icmp.quote.");
                nums(&qp, q.tcp.as_ref(), q.udp.as_ref(), q.icmp.as_ref(), out);
            }
        }
    }
    nums(
        "",
        item.tcp.as_ref(),
        item.udp.as_ref(),
        item.icmp.as_ref(),
        &mut out,
    );
    out
}

/// TCP flag letters, in the order of their bits.
const FLAG_LETTERS: [(char, u8); 8] = [
    ('F', tcp_flags::FIN),
    ('S', tcp_flags::SYN),
    ('R', tcp_flags::RST),
    ('P', tcp_flags::PSH),
    ('A', tcp_flags::ACK),
    ('U', 0x20),
    ('E', 0x40),
    ('C', 0x80),
];

/// `SA` → SYN|ACK. Each letter once; unknown letters refused.
pub fn parse_tcp_flags(s: &str) -> Result<u8, String> {
    let mut bits = 0u8;
    for c in s.chars() {
        let Some(&(_, b)) = FLAG_LETTERS
            .iter()
            .find(|(l, _)| *l == c.to_ascii_uppercase())
        else {
            return Err(format!(
                "`{c}` in `{s}` is not a TCP flag letter (F S R P A U E C)"
            ));
        };
        if bits & b != 0 {
            return Err(format!("flag `{c}` is given twice in `{s}`"));
        }
        bits |= b;
    }
    Ok(bits)
}

/// Flags byte → letters (`SA`), in bit order.
pub fn tcp_flags_text(bits: u8) -> String {
    FLAG_LETTERS
        .iter()
        .filter(|(_, b)| bits & b != 0)
        .map(|(l, _)| *l)
        .collect()
}

fn hex_bytes(s: &str, field: &str) -> Result<Vec<u8>, CraftError> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    // Checked first: slicing below is by bytes, so a non-ASCII character must not reach it.
    if !s.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err((field.into(), format!("`{s}` is not hex")));
    }
    if !s.len().is_multiple_of(2) {
        return Err((
            field.into(),
            format!("`{s}` has an odd number of hex digits"),
        ));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16)
                .map_err(|_| (field.to_string(), format!("`{s}` is not hex")))
        })
        .collect()
}

/// Builds a `packets:` item: its source (`src`, else the sender's own address of the
/// destination's family, `own`), destination and layers, split into fragments and ordered when
/// asked, each packet followed by `padding_bytes` zeros. The packets in sending order.
pub fn craft(
    item: &PacketItem,
    own: &dyn Fn(IpAddr) -> Option<IpAddr>,
    names: Resolve<'_>,
    vars: &Vars,
) -> Result<Vec<Vec<u8>>, CraftError> {
    let with_vars = |s: &str, like: Option<IpAddr>| -> Result<IpAddr, String> {
        match super::parse_var(s) {
            Some((name, 0)) => match vars.get(name) {
                Some(Value::Addr(a)) => Ok(*a),
                Some(Value::Num(n)) => {
                    Err(format!("`${name}` holds a number ({n}), not an address"))
                }
                None => Err(format!("`${name}` is not captured")),
            },
            Some(_) => Err(format!("`{s}`: an address takes no offset")),
            None => names(s, like),
        }
    };
    let resolve: Resolve<'_> = &with_vars;
    let dst = resolve(&item.to, None).map_err(|m| ("to".to_string(), m))?;
    let src = match &item.src {
        Some(s) => resolve(s, Some(dst)).map_err(|m| ("src".to_string(), m))?,
        None => own(dst).ok_or_else(|| {
            (
                "from".to_string(),
                format!(
                    "`{}` has no {} address to send from (set `src`)",
                    item.from,
                    if dst.is_ipv4() { "IPv4" } else { "IPv6" }
                ),
            )
        })?,
    };
    let layers = Layers {
        tcp: item.tcp.as_ref(),
        udp: item.udp.as_ref(),
        icmp: item.icmp.as_ref(),
    };
    let env = Env { resolve, vars };
    let repr = repr_of(src, dst, &item.ip, layers, "", env, true)?;
    let whole = emit(&repr, "")?;
    let mut packets = match &item.fragments {
        None => vec![whole],
        Some(f) => fragments(&repr, f)?,
    };
    // Padding is added to every packet: bound the whole before allocating it.
    let padding = item.padding_bytes as usize;
    let total: usize = packets.iter().map(|p| p.len() + padding).sum();
    if total > MAX_ITEM_BYTES {
        return Err((
            "padding_bytes".into(),
            format!("the packets of this item add up to {total} bytes; at most {MAX_ITEM_BYTES}"),
        ));
    }
    for p in &mut packets {
        p.resize(p.len() + padding, 0);
    }
    Ok(packets)
}

fn fragments(repr: &PacketRepr, f: &FragmentsDoc) -> Result<Vec<Vec<u8>>, CraftError> {
    if f.data_bytes < 8 || !f.data_bytes.is_multiple_of(8) {
        return Err((
            "fragments.data_bytes".into(),
            format!("{} is not a multiple of 8 of at least 8", f.data_bytes),
        ));
    }
    if repr.ip.dont_fragment {
        return Err((
            "fragments".into(),
            "a datagram with Don't Fragment set is not fragmented (clear `ip.df`)".into(),
        ));
    }
    let all = repr.emit_fragments(f.data_bytes as usize);
    if all.len() < 2 {
        return Err((
            "fragments.data_bytes".into(),
            format!(
                "the datagram fits in one fragment of {} bytes: nothing to fragment",
                f.data_bytes
            ),
        ));
    }
    let Some(order) = &f.order else {
        return Ok(all);
    };
    order
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            all.get(i as usize).cloned().ok_or_else(|| {
                (
                    format!("fragments.order[{k}]"),
                    format!(
                        "the datagram has {} fragments (0..={})",
                        all.len(),
                        all.len() - 1
                    ),
                )
            })
        })
        .collect()
}

/// How names and variables resolve while a packet is built.
#[derive(Clone, Copy)]
struct Env<'a> {
    resolve: Resolve<'a>,
    vars: &'a Vars,
}

struct Layers<'a> {
    tcp: Option<&'a TcpFieldsDoc>,
    udp: Option<&'a UdpFieldsDoc>,
    icmp: Option<&'a IcmpFieldsDoc>,
}

fn emit(repr: &PacketRepr, prefix: &str) -> Result<Vec<u8>, CraftError> {
    repr.try_emit().map_err(|e| {
        (
            format!("{prefix}ip"),
            format!("the packet cannot be built as given ({e})"),
        )
    })
}

fn repr_of(
    src: IpAddr,
    dst: IpAddr,
    ip: &IpFieldsDoc,
    layers: Layers<'_>,
    prefix: &str,
    env: Env<'_>,
    may_quote: bool,
) -> Result<PacketRepr, CraftError> {
    let vars = env.vars;
    if src.is_ipv4() != dst.is_ipv4() {
        return Err((
            format!("{prefix}src"),
            format!("source {src} and destination {dst} are of different families"),
        ));
    }
    let version = if dst.is_ipv4() {
        IpVersion::V4
    } else {
        IpVersion::V6
    };
    if ip.df && version == IpVersion::V6 {
        return Err((
            format!("{prefix}ip.df"),
            "IPv6 has no Don't Fragment bit (IPv6 routers never fragment)".into(),
        ));
    }
    let ip_repr = IpRepr {
        ttl: ip.ttl,
        ident: u32::from(ip.id),
        tos: ip.tos,
        dont_fragment: ip.df,
        options: hex_bytes(&ip.options_hex, &format!("{prefix}ip.options_hex"))?,
        ..IpRepr::new(src, dst)
    };
    let transport = match (layers.tcp, layers.udp, layers.icmp) {
        (Some(t), None, None) => TransportRepr::Tcp {
            src_port: port(&t.src_port, vars, &format!("{prefix}tcp.src_port"))?,
            dst_port: port(&t.dst_port, vars, &format!("{prefix}tcp.dst_port"))?,
            seq: seq32(&t.seq, vars, &format!("{prefix}tcp.seq"))?,
            ack: seq32(&t.ack, vars, &format!("{prefix}tcp.ack"))?,
            flags: parse_tcp_flags(&t.flags).map_err(|m| (format!("{prefix}tcp.flags"), m))?,
            window: t.window,
            options: hex_bytes(&t.options_hex, &format!("{prefix}tcp.options_hex"))?,
            payload: vec![0; t.payload_bytes as usize],
        },
        (None, Some(u), None) => {
            if u.zero_checksum && version == IpVersion::V6 {
                return Err((
                    format!("{prefix}udp.zero_checksum"),
                    "IPv6 UDP must carry a checksum (RFC 8200 §8.1)".into(),
                ));
            }
            TransportRepr::Udp {
                src_port: port(&u.src_port, vars, &format!("{prefix}udp.src_port"))?,
                dst_port: port(&u.dst_port, vars, &format!("{prefix}udp.dst_port"))?,
                zero_checksum: u.zero_checksum,
                payload: vec![0; u.payload_bytes as usize],
            }
        }
        (None, None, Some(m)) => {
            TransportRepr::Icmp(icmp_repr(version, m, prefix, env, may_quote)?)
        }
        _ => {
            return Err((
                prefix.trim_end_matches('.').to_string(),
                "exactly one of tcp, udp, icmp".into(),
            ));
        }
    };
    Ok(PacketRepr {
        ip: ip_repr,
        transport,
    })
}

fn icmp_repr(
    version: IpVersion,
    m: &IcmpFieldsDoc,
    prefix: &str,
    env: Env<'_>,
    may_quote: bool,
) -> Result<IcmpRepr, CraftError> {
    let vars = env.vars;
    let data = vec![0; m.payload_bytes as usize];
    let t = m.icmp_type;
    let field = |f: &str| format!("{prefix}icmp.{f}");
    let ident = port(&m.id, vars, &field("id"))?;
    let seq = port(&m.seq, vars, &field("seq"))?;
    let rest = number(&m.rest, vars, u64::from(u32::MAX), false, &field("rest"))? as u32;
    if icmp::is_error(version, t) {
        let Some(q) = &m.quote else {
            return Err((
                field("quote"),
                format!("ICMP type {t} is an error and must quote a packet (set `quote`)"),
            ));
        };
        if !may_quote {
            return Err((
                field("quote"),
                "a quoted packet cannot itself quote one".into(),
            ));
        }
        if m.payload_bytes != 0 {
            return Err((
                field("payload_bytes"),
                "an error's body is its quote (set `quote.bytes` to cut it)".into(),
            ));
        }
        let quoted = quote(version, q, &format!("{prefix}icmp.quote."), env)?;
        return Ok(IcmpRepr::Error {
            icmp_type: t,
            code: m.code,
            rest,
            quoted,
        });
    }
    if m.quote.is_some() {
        return Err((
            field("quote"),
            format!("ICMP type {t} is not an error and quotes nothing"),
        ));
    }
    let (request, reply) = (
        icmp::is_echo_request(version, t),
        icmp::is_echo_reply(version, t),
    );
    if (request || reply) && (m.code != 0 || rest != 0) {
        return Err((
            field(if m.code != 0 { "code" } else { "rest" }),
            "an echo has code 0 and no `rest` (its identifier and sequence are `id` and `seq`)"
                .into(),
        ));
    }
    Ok(if request {
        IcmpRepr::EchoRequest { ident, seq, data }
    } else if reply {
        IcmpRepr::EchoReply { ident, seq, data }
    } else {
        if ident != 0 || seq != 0 {
            return Err((
                field(if ident != 0 { "id" } else { "seq" }),
                format!("ICMP type {t} is not an echo and has no identifier or sequence"),
            ));
        }
        let mut body = rest.to_be_bytes().to_vec();
        body.extend(data);
        IcmpRepr::Other {
            icmp_type: t,
            code: m.code,
            body,
        }
    })
}

fn quote(
    version: IpVersion,
    q: &QuotedDoc,
    prefix: &str,
    env: Env<'_>,
) -> Result<Vec<u8>, CraftError> {
    let resolve = env.resolve;
    let dst = resolve(&q.dst, None).map_err(|m| (format!("{prefix}dst"), m))?;
    let src = resolve(&q.src, Some(dst)).map_err(|m| (format!("{prefix}src"), m))?;
    if dst.is_ipv4() != (version == IpVersion::V4) {
        return Err((
            format!("{prefix}dst"),
            "an ICMP error quotes a packet of its own family".into(),
        ));
    }
    let layers = Layers {
        tcp: q.tcp.as_ref(),
        udp: q.udp.as_ref(),
        icmp: q.icmp.as_ref(),
    };
    let repr = repr_of(src, dst, &q.ip, layers, prefix, env, false)?;
    let mut bytes = emit(&repr, prefix)?;
    let keep = match q.bytes {
        Some(n) => n as usize,
        None if version == IpVersion::V4 => ipv4_header_len(&bytes) + 8,
        None => crate::wire::build::max_quoted(IpVersion::V6),
    };
    bytes.truncate(keep);
    if bytes.is_empty() {
        return Err((
            format!("{prefix}bytes"),
            "an ICMP error must quote at least one byte".into(),
        ));
    }
    Ok(bytes)
}

fn ipv4_header_len(b: &[u8]) -> usize {
    b.first().map_or(20, |v| usize::from(v & 0x0F) * 4)
}

/// The protocol number a pattern's `proto` name stands for: `tcp`, `udp`, `icmp` (either
/// family's ICMP; the caller compares with the packet's family).
pub fn protocol_number(name: &str) -> Option<u8> {
    match name {
        "tcp" => Some(proto::TCP),
        "udp" => Some(proto::UDP),
        "icmp" => Some(proto::ICMP),
        "icmpv6" => Some(proto::ICMPV6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(s: &str, _like: Option<IpAddr>) -> Result<IpAddr, String> {
        s.parse().map_err(|_| format!("no host `{s}`"))
    }

    fn item(yaml: &str) -> PacketItem {
        crate::yaml::from_str(yaml).expect("valid item")
    }

    fn own(_dst: IpAddr) -> Option<IpAddr> {
        Some("10.0.0.1".parse().expect("address"))
    }

    #[test]
    fn tcp_flag_letters_round_trip_and_bad_letters_are_refused() {
        assert_eq!(parse_tcp_flags("SA"), Ok(tcp_flags::SYN | tcp_flags::ACK));
        assert_eq!(tcp_flags_text(tcp_flags::SYN | tcp_flags::ACK), "SA");
        assert_eq!(parse_tcp_flags(""), Ok(0));
        assert!(parse_tcp_flags("SX").is_err());
        assert!(parse_tcp_flags("SS").is_err());
    }

    #[test]
    fn a_crafted_udp_datagram_has_its_fields_and_a_zero_checksum_and_padding() {
        let p = item(
            "{name: p, from: vm-a, to: 198.51.100.10, ip: {ttl: 3, df: true, id: 7}, \
             udp: {src_port: 5000, dst_port: 53, payload_bytes: 4, zero_checksum: true}, \
             padding_bytes: 6}",
        );
        let b = craft(&p, &own, &resolve, &Vars::new())
            .expect("built")
            .remove(0);
        assert_eq!(b.len(), 20 + 8 + 4 + 6);
        assert_eq!(b[8], 3, "ttl");
        assert_eq!(&b[4..6], &[0, 7], "id");
        assert_eq!(b[6] & 0x40, 0x40, "df");
        assert_eq!(&b[2..4], &[0, 32], "total length leaves the padding out");
        assert_eq!(&b[26..28], &[0, 0], "zero checksum");
    }

    #[test]
    fn an_icmp_error_without_a_quote_is_refused_naming_the_field() {
        let p = item("{name: p, from: web, to: 10.0.0.1, icmp: {type: 3, code: 4}}");
        let e = craft(&p, &own, &resolve, &Vars::new()).expect_err("refused");
        assert_eq!(e.0, "icmp.quote");
    }

    #[test]
    fn an_icmp_error_quotes_the_ipv4_header_and_8_bytes_by_default() {
        let p = item(
            "{name: p, from: web, to: 10.0.0.1, src: 192.0.2.1, \
             icmp: {type: 3, code: 4, rest: 1400, quote: {src: 10.0.0.1, dst: 198.51.100.10, \
             tcp: {src_port: 1000, dst_port: 80, flags: S, payload_bytes: 100}}}}",
        );
        let b = craft(&p, &own, &resolve, &Vars::new())
            .expect("built")
            .remove(0);
        assert_eq!(b.len(), 20 + 8 + 28);
        assert_eq!(&b[24..28], &1400u32.to_be_bytes());
    }

    #[test]
    fn fragments_are_sent_in_the_order_given_and_a_bad_index_is_refused() {
        let p = item(
            "{name: p, from: vm-a, to: 198.51.100.10, ip: {id: 9}, \
             udp: {src_port: 1, dst_port: 2, payload_bytes: 32}, \
             fragments: {data_bytes: 16, order: [2, 0, 1]}}",
        );
        let b = craft(&p, &own, &resolve, &Vars::new()).expect("built");
        let offsets: Vec<u16> = b
            .iter()
            .map(|f| u16::from_be_bytes([f[6], f[7]]) & 0x1FFF)
            .collect();
        assert_eq!(offsets, vec![4, 0, 2], "8-byte units, in the order asked");
        let p = item(
            "{name: p, from: vm-a, to: 198.51.100.10, udp: {src_port: 1, dst_port: 2, \
             payload_bytes: 32}, fragments: {data_bytes: 16, order: [3]}}",
        );
        assert_eq!(
            craft(&p, &own, &resolve, &Vars::new())
                .expect_err("no fragment 3")
                .0,
            "fragments.order[0]"
        );
    }

    #[test]
    fn options_that_are_not_hex_are_refused_without_panicking() {
        for bad in ["a\u{e9}1", "zz", "\u{e9}\u{e9}"] {
            let p = PacketItem {
                ip: IpFieldsDoc {
                    options_hex: bad.into(),
                    ..IpFieldsDoc::default()
                },
                ..item("{name: p, from: vm-a, to: 198.51.100.10, udp: {src_port: 1, dst_port: 2}}")
            };
            let e = craft(&p, &own, &resolve, &Vars::new()).expect_err(bad);
            assert_eq!(e.0, "ip.options_hex", "{bad}");
        }
    }

    #[test]
    fn mixed_families_and_ipv6_df_are_refused() {
        let p = item(
            "{name: p, from: vm-a, to: 198.51.100.10, src: '2001:db8::1', udp: {src_port: 1, dst_port: 2}}",
        );
        assert_eq!(
            craft(&p, &own, &resolve, &Vars::new())
                .expect_err("mixed")
                .0,
            "src"
        );
        let p = item(
            "{name: p, from: vm-a, to: '2001:db8::2', src: '2001:db8::1', ip: {df: true}, udp: {src_port: 1, dst_port: 2}}",
        );
        assert_eq!(
            craft(&p, &own, &resolve, &Vars::new()).expect_err("df").0,
            "ip.df"
        );
    }
}
