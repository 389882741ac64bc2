//! Packet expectations: fields read off captured packets, patterns checked at load (every name
//! known, every variable captured by an earlier expectation, nothing that can never match) and
//! evaluated after the run, in file order, so a variable captured by one expectation is
//! compared by the later ones.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use super::craft::{parse_tcp_flags, protocol_number, tcp_flags_text};
use super::{Field, FieldMatchDoc, FieldTestDoc, PacketExpect, PatternDoc, ValueDoc};
use crate::nat::Block;
use crate::scenario::expect::ExpectationResult;
use crate::scenario::ranges::ms_to_ns;
use crate::scenario::schema::BoundDoc;
use crate::sim::engine::CapturedPacket;
use crate::wire::{IcmpRepr, IpMeta, IpVersion, PacketRepr, TransportRepr, parse_ip_lax, proto};

/// A field's value: a number or an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// A number (ports, TTL, flags, ...).
    Num(u64),
    /// An address.
    Addr(IpAddr),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Num(n) => write!(f, "{n}"),
            Value::Addr(a) => write!(f, "{a}"),
        }
    }
}

/// Something a field is compared with.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Operand {
    Value(Value),
    /// A protocol name: `icmp` stands for ICMPv4 and ICMPv6.
    Icmp,
    Var(String),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Value(v) => write!(f, "{v}"),
            Operand::Icmp => f.write_str("icmp"),
            Operand::Var(v) => write!(f, "${v}"),
        }
    }
}

/// One condition on one field.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cond {
    Present,
    Eq(Operand),
    Not(Operand),
    Min(u64),
    Max(u64),
    InBlockOf(String),
}

/// A checked packet expectation, ready to evaluate.
#[derive(Clone, Debug)]
pub struct Compiled {
    index: usize,
    link: String,
    from_ns: u64,
    to_ns: u64,
    conds: Vec<(Field, Cond)>,
    count: BoundDoc,
    capture: Vec<(String, Field)>,
    text: String,
}

/// A refusal at load: field path (under `expect.packets[i]`) and message.
pub type PatternError = (String, String);

fn field_kind_error(field: Field, what: &str) -> String {
    format!("`{}` holds {}; {what}", field.name(), field.kind())
}

/// Checks expectation `index` and compiles it. `vars` holds the variables captured by earlier
/// expectations (this one's captures are added), `links` the run's link names, `nics` the
/// NIC names.
pub fn compile(
    index: usize,
    e: &PacketExpect,
    links: &[String],
    nics: &[&str],
    vars: &mut BTreeMap<String, Field>,
) -> Result<Compiled, PatternError> {
    let at = |f: &str| format!("expect.packets[{index}].{f}");
    if !links.contains(&e.on) {
        return Err((
            at("on"),
            crate::scenario::names::unknown("link", &e.on, links.iter().map(String::as_str)),
        ));
    }
    let (from_ns, to_ns) = match e.between_ms {
        Some([a, b]) if a > b => {
            return Err((
                at("between_ms"),
                format!("[{a}, {b}] ends before it begins"),
            ));
        }
        Some([a, b]) => (ms_to_ns(a), ms_to_ns(b)),
        None => (0, u64::MAX),
    };
    let count = match (&e.count, e.never) {
        (Some(_), true) => {
            return Err((at("never"), "give `never` or `count`, not both".into()));
        }
        (Some(c), false) => c.clone(),
        (None, true) => BoundDoc::Exact(0),
        (None, false) => BoundDoc::Range {
            eq: None,
            min: Some(1),
            max: None,
        },
    };
    let may_be_zero = match &count {
        BoundDoc::Exact(n) => *n == 0,
        BoundDoc::Range { eq, min, .. } => eq.is_some_and(|v| v == 0) || min.is_none_or(|m| m == 0),
    };
    if may_be_zero && !e.capture.is_empty() {
        return Err((
            at("capture"),
            "a capture needs a matching packet: the count must be at least 1".into(),
        ));
    }
    let conds = pattern_conds(&e.pattern, &at("match"), nics, vars)?;
    let mut capture = Vec::new();
    for (var, field) in &e.capture {
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err((
                at(&format!("capture.{var}")),
                "a variable name is letters, digits and `_`".into(),
            ));
        }
        if vars.contains_key(var) {
            return Err((
                at(&format!("capture.{var}")),
                format!("variable `${var}` is already captured by an earlier expectation"),
            ));
        }
        capture.push((var.clone(), *field));
    }
    for (var, field) in &capture {
        vars.insert(var.clone(), *field);
    }
    Ok(Compiled {
        index,
        link: e.on.clone(),
        from_ns,
        to_ns,
        text: describe(&conds),
        conds,
        count,
        capture,
    })
}

/// The conditions of a pattern (errors name the field under `prefix`), refused when they can
/// never hold together.
fn pattern_conds(
    p: &PatternDoc,
    prefix: &str,
    nics: &[&str],
    vars: &BTreeMap<String, Field>,
) -> Result<Vec<(Field, Cond)>, PatternError> {
    let mut conds = Vec::new();
    for (field, m) in p.fields() {
        let f = format!("{prefix}.{}", field.name());
        for c in conditions(field, m, nics, vars).map_err(|msg| (f.clone(), msg))? {
            conds.push((field, c));
        }
    }
    if let Some(df) = p.df {
        conds.push((
            Field::Df,
            Cond::Eq(Operand::Value(Value::Num(u64::from(df)))),
        ));
    }
    if let Some(flags) = &p.tcp_flags {
        let bits = parse_tcp_flags(flags).map_err(|m| (format!("{prefix}.tcp_flags"), m))?;
        conds.push((
            Field::TcpFlags,
            Cond::Eq(Operand::Value(Value::Num(u64::from(bits)))),
        ));
    }
    never_matches(p, &conds).map_err(|(f, m)| (format!("{prefix}.{f}"), m))?;
    Ok(conds)
}

fn operand(field: Field, v: &ValueDoc, vars: &BTreeMap<String, Field>) -> Result<Operand, String> {
    match v {
        ValueDoc::Number(n) if field.is_address() => {
            Err(field_kind_error(field, &format!("{n} is not one")))
        }
        ValueDoc::Number(n) if *n > field.max_value() => Err(format!(
            "{n} is more than `{}` can hold ({}): nothing can match",
            field.name(),
            field.max_value()
        )),
        ValueDoc::Number(n) => Ok(Operand::Value(Value::Num(*n))),
        ValueDoc::Text(s) => {
            if let Some(var) = s.strip_prefix('$') {
                let Some(vf) = vars.get(var) else {
                    let known: Vec<&str> = vars.keys().map(String::as_str).collect();
                    return Err(format!(
                        "variable `${var}` is not captured by an earlier expectation{}",
                        if known.is_empty() {
                            String::new()
                        } else {
                            format!(" (captured: {})", known.join(", "))
                        }
                    ));
                };
                if vf.is_address() != field.is_address() {
                    return Err(format!(
                        "variable `${var}` holds {} and `{}` {}",
                        vf.kind(),
                        field.name(),
                        field.kind(),
                    ));
                }
                return Ok(Operand::Var(var.to_string()));
            }
            if field.is_address() {
                return s
                    .parse::<IpAddr>()
                    .map(|a| Operand::Value(Value::Addr(a)))
                    .map_err(|_| format!("`{s}` is not an address, `$variable` or `*`"));
            }
            if field == Field::Proto {
                return match protocol_number(s) {
                    Some(proto::ICMP) => Ok(Operand::Icmp),
                    Some(n) => Ok(Operand::Value(Value::Num(u64::from(n)))),
                    None => Err(format!(
                        "`{s}` is not a protocol (tcp, udp, icmp, icmpv6 or a number)"
                    )),
                };
            }
            Err(field_kind_error(
                field,
                &format!("`{s}` is not a number, `$variable` or `*`"),
            ))
        }
    }
}

fn conditions(
    field: Field,
    m: &FieldMatchDoc,
    nics: &[&str],
    vars: &BTreeMap<String, Field>,
) -> Result<Vec<Cond>, String> {
    Ok(match m {
        FieldMatchDoc::Text(s) if s == "*" => vec![Cond::Present],
        FieldMatchDoc::Number(n) => vec![Cond::Eq(operand(field, &ValueDoc::Number(*n), vars)?)],
        FieldMatchDoc::Text(s) => vec![Cond::Eq(operand(field, &ValueDoc::Text(s.clone()), vars)?)],
        FieldMatchDoc::Test(t) => test_conditions(field, t, nics, vars)?,
    })
}

fn test_conditions(
    field: Field,
    t: &FieldTestDoc,
    nics: &[&str],
    vars: &BTreeMap<String, Field>,
) -> Result<Vec<Cond>, String> {
    let mut out = Vec::new();
    if let Some(v) = &t.eq {
        out.push(Cond::Eq(operand(field, v, vars)?));
    }
    if let Some(v) = &t.not {
        out.push(Cond::Not(operand(field, v, vars)?));
    }
    if (t.min.is_some() || t.max.is_some()) && field.is_address() {
        return Err(field_kind_error(field, "`min` and `max` compare numbers"));
    }
    if let (Some(a), Some(b)) = (t.min, t.max)
        && a > b
    {
        return Err(format!("min {a} is above max {b}: nothing can match"));
    }
    if let Some(n) = t.min {
        if n > field.max_value() {
            return Err(format!(
                "min {n} is more than `{}` can hold ({}): nothing can match",
                field.name(),
                field.max_value()
            ));
        }
        out.push(Cond::Min(n));
    }
    if let Some(n) = t.max {
        out.push(Cond::Max(n));
    }
    if let Some(nic) = &t.in_block_of {
        if !field.is_address() && !field.is_port() {
            return Err(format!(
                "`in_block_of` applies to ports and addresses, not `{}`",
                field.name()
            ));
        }
        if !nics.contains(&nic.as_str()) {
            return Err(crate::scenario::names::unknown(
                "NIC",
                nic,
                nics.iter().copied(),
            ));
        }
        out.push(Cond::InBlockOf(nic.clone()));
    }
    if out.is_empty() {
        return Err("an empty test: give eq, not, min, max or in_block_of".into());
    }
    Ok(out)
}

/// A pattern as a filter on packets (targeted loss): no variables and no `in_block_of`, which
/// only mean something for expectations. Errors name the field under `prefix`.
pub fn filter(
    p: &PatternDoc,
    prefix: &str,
) -> Result<impl Fn(&[u8]) -> bool + Send + Sync + 'static, PatternError> {
    for (field, m) in p.fields() {
        let (uses_var, uses_block) = match m {
            FieldMatchDoc::Text(s) => (s.starts_with('$'), false),
            FieldMatchDoc::Test(t) => (
                [&t.eq, &t.not]
                    .into_iter()
                    .flatten()
                    .any(|v| matches!(v, ValueDoc::Text(s) if s.starts_with('$'))),
                t.in_block_of.is_some(),
            ),
            FieldMatchDoc::Number(_) => (false, false),
        };
        let f = format!("{prefix}.{}", field.name());
        if uses_var {
            return Err((f, "a drop filter takes no variables".into()));
        }
        if uses_block {
            return Err((f, "a drop filter takes no `in_block_of`".into()));
        }
    }
    let conds = pattern_conds(p, prefix, &[], &BTreeMap::new())?;
    Ok(move |pkt: &[u8]| {
        let Some(d) = decode(pkt) else {
            return false;
        };
        let (vars, facts) = (
            BTreeMap::new(),
            RunFacts {
                blocks: BTreeMap::new(),
            },
        );
        let eval = Eval {
            vars: &vars,
            facts: &facts,
        };
        conds.iter().all(|(f, c)| eval.holds(*f, c, &d))
    })
}

/// Which protocols a pattern's fields need: a pattern that asks for TCP flags and an ICMP
/// type, or names UDP and asks for TCP flags, can never match and is refused.
fn never_matches(p: &PatternDoc, conds: &[(Field, Cond)]) -> Result<(), (String, String)> {
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Needs {
        Tcp,
        Udp,
        TcpOrUdp,
        Icmp,
    }
    let needs = |f: Field| match f {
        Field::TcpFlags | Field::TcpSeq | Field::TcpAck => Some(Needs::Tcp),
        Field::UdpChecksum => Some(Needs::Udp),
        Field::SrcPort | Field::DstPort => Some(Needs::TcpOrUdp),
        Field::IcmpType
        | Field::IcmpCode
        | Field::IcmpId
        | Field::IcmpRest
        | Field::QuotedSrc
        | Field::QuotedDst
        | Field::QuotedSrcPort
        | Field::QuotedDstPort => Some(Needs::Icmp),
        _ => None,
    };
    let named = conds.iter().find_map(|(f, c)| match (f, c) {
        (Field::Proto, Cond::Eq(Operand::Value(Value::Num(n)))) => Some(match *n as u8 {
            proto::TCP => Needs::Tcp,
            proto::UDP => Needs::Udp,
            proto::ICMP | proto::ICMPV6 => Needs::Icmp,
            _ => return None,
        }),
        (Field::Proto, Cond::Eq(Operand::Icmp)) => Some(Needs::Icmp),
        _ => None,
    });
    let mut seen: Option<(Field, Needs)> = named.map(|n| (Field::Proto, n));
    for (f, _) in conds {
        let Some(n) = needs(*f) else { continue };
        if let Some((g, m)) = seen {
            let compatible = m == n
                || (m == Needs::TcpOrUdp && matches!(n, Needs::Tcp | Needs::Udp))
                || (n == Needs::TcpOrUdp && matches!(m, Needs::Tcp | Needs::Udp));
            if !compatible {
                return Err((
                    f.name().to_string(),
                    format!(
                        "no packet has both `{}` and `{}`: the pattern can never match",
                        g.name(),
                        f.name()
                    ),
                ));
            }
            if m == Needs::TcpOrUdp {
                seen = Some((*f, n));
            }
        } else {
            seen = Some((*f, n));
        }
    }
    if p.df.is_some()
        && let Some((_, Cond::Eq(Operand::Value(Value::Addr(a))))) = conds
            .iter()
            .find(|(f, _)| matches!(f, Field::Src | Field::Dst))
        && a.is_ipv6()
    {
        return Err((
            "df".into(),
            "IPv6 packets have no Don't Fragment bit: the pattern can never match".into(),
        ));
    }
    Ok(())
}

fn describe(conds: &[(Field, Cond)]) -> String {
    if conds.is_empty() {
        return "any packet".into();
    }
    conds
        .iter()
        .map(|(f, c)| {
            let v = |o: &Operand| match (f, o) {
                (Field::TcpFlags, Operand::Value(Value::Num(n))) => tcp_flags_text(*n as u8),
                _ => o.to_string(),
            };
            match c {
                Cond::Present => format!("{} present", f.name()),
                Cond::Eq(o) => format!("{}={}", f.name(), v(o)),
                Cond::Not(o) => format!("{}!={}", f.name(), v(o)),
                Cond::Min(n) => format!("{}>={n}", f.name()),
                Cond::Max(n) => format!("{}<={n}", f.name()),
                Cond::InBlockOf(nic) => format!("{} in block of {nic}", f.name()),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A captured packet decoded once for every field read.
struct Decoded<'a> {
    bytes: &'a [u8],
    meta: IpMeta,
    repr: PacketRepr,
    quoted: Option<PacketRepr>,
}

fn decode(bytes: &[u8]) -> Option<Decoded<'_>> {
    let meta = parse_ip_lax(bytes).ok()?;
    let repr = PacketRepr::parse_lax(bytes).ok()?;
    let quoted = match &repr.transport {
        TransportRepr::Icmp(IcmpRepr::Error { quoted, .. }) => PacketRepr::parse_lax(quoted).ok(),
        _ => None,
    };
    Some(Decoded {
        bytes,
        meta,
        repr,
        quoted,
    })
}

fn ports(t: &TransportRepr) -> Option<(u16, u16)> {
    match t {
        TransportRepr::Tcp {
            src_port, dst_port, ..
        }
        | TransportRepr::Udp {
            src_port, dst_port, ..
        } => Some((*src_port, *dst_port)),
        _ => None,
    }
}

/// The value of `field` in a decoded packet, `None` when the packet has no such field.
fn read(field: Field, d: &Decoded<'_>) -> Option<Value> {
    let num = |n: u64| Some(Value::Num(n));
    let ip = &d.repr.ip;
    let version = d.meta.version;
    let v4 = version == IpVersion::V4;
    let icmp = match &d.repr.transport {
        TransportRepr::Icmp(m) => Some(m),
        _ => None,
    };
    match field {
        Field::Src => Some(Value::Addr(ip.src)),
        Field::Dst => Some(Value::Addr(ip.dst)),
        Field::Proto => num(u64::from(d.meta.protocol)),
        Field::SrcPort => ports(&d.repr.transport).and_then(|p| num(u64::from(p.0))),
        Field::DstPort => ports(&d.repr.transport).and_then(|p| num(u64::from(p.1))),
        Field::Ttl => num(u64::from(ip.ttl)),
        Field::Df => v4.then(|| Value::Num(u64::from(ip.dont_fragment))),
        Field::IpId => v4.then(|| Value::Num(u64::from(ip.ident))),
        Field::Length => num(d.meta.end as u64),
        Field::Padding => num(d.bytes.len().saturating_sub(d.meta.end) as u64),
        Field::TcpFlags | Field::TcpSeq | Field::TcpAck => match &d.repr.transport {
            TransportRepr::Tcp {
                flags, seq, ack, ..
            } => num(match field {
                Field::TcpFlags => u64::from(*flags),
                Field::TcpSeq => u64::from(*seq),
                _ => u64::from(*ack),
            }),
            _ => None,
        },
        Field::UdpChecksum => match &d.repr.transport {
            TransportRepr::Udp { .. } => {
                crate::wire::UdpView::new_checked(d.bytes.get(d.meta.l4_offset..d.meta.end)?)
                    .map(|u| Value::Num(u64::from(u.checksum())))
            }
            _ => None,
        },
        Field::IcmpType | Field::IcmpCode => {
            let (t, c) = match icmp? {
                IcmpRepr::EchoRequest { .. } => (crate::wire::icmp::echo_type(version, true), 0),
                IcmpRepr::EchoReply { .. } => (crate::wire::icmp::echo_type(version, false), 0),
                IcmpRepr::Error {
                    icmp_type, code, ..
                }
                | IcmpRepr::Other {
                    icmp_type, code, ..
                } => (*icmp_type, *code),
            };
            num(u64::from(if field == Field::IcmpType { t } else { c }))
        }
        Field::IcmpId => match icmp? {
            IcmpRepr::EchoRequest { ident, .. } | IcmpRepr::EchoReply { ident, .. } => {
                num(u64::from(*ident))
            }
            _ => None,
        },
        Field::IcmpRest => match icmp? {
            IcmpRepr::Error { rest, .. } => num(u64::from(*rest)),
            _ => None,
        },
        Field::QuotedSrc => d.quoted.as_ref().map(|q| Value::Addr(q.ip.src)),
        Field::QuotedDst => d.quoted.as_ref().map(|q| Value::Addr(q.ip.dst)),
        Field::QuotedSrcPort | Field::QuotedDstPort => {
            let q = d.quoted.as_ref()?;
            let (s, t) = match &q.transport {
                TransportRepr::Icmp(
                    IcmpRepr::EchoRequest { ident, .. } | IcmpRepr::EchoReply { ident, .. },
                ) => (*ident, *ident),
                t => ports(t)?,
            };
            num(u64::from(if field == Field::QuotedSrcPort { s } else { t }))
        }
    }
}

/// What evaluation needs of the run besides the captures: each NIC's final blocks.
pub struct RunFacts<'a> {
    /// NIC name → its blocks at the end of the run.
    pub blocks: BTreeMap<&'a str, Vec<Block>>,
}

impl<'a> RunFacts<'a> {
    /// Each NIC's blocks from the status at the end of a run (routing keys are
    /// `namespace/name`).
    pub fn from_status(status: &'a crate::sim::control::Status) -> Self {
        let mut blocks: BTreeMap<&'a str, Vec<Block>> = BTreeMap::new();
        for (key, fams) in &status.routing {
            let name = key.rsplit_once('/').map_or(key.as_str(), |(_, n)| n);
            blocks
                .entry(name)
                .or_default()
                .extend(fams.values().copied());
        }
        RunFacts { blocks }
    }
}

struct Eval<'a> {
    vars: &'a BTreeMap<String, Value>,
    facts: &'a RunFacts<'a>,
}

impl Eval<'_> {
    fn operand(&self, o: &Operand) -> Option<Value> {
        match o {
            Operand::Value(v) => Some(*v),
            Operand::Icmp => None,
            Operand::Var(name) => self.vars.get(name).copied(),
        }
    }

    fn holds(&self, field: Field, c: &Cond, d: &Decoded<'_>) -> bool {
        let Some(v) = read(field, d) else {
            return false;
        };
        let is_icmp = |v: Value| matches!(v, Value::Num(n) if n == u64::from(proto::ICMP) || n == u64::from(proto::ICMPV6));
        match c {
            Cond::Present => true,
            Cond::Eq(Operand::Icmp) => is_icmp(v),
            Cond::Not(Operand::Icmp) => !is_icmp(v),
            Cond::Eq(o) => self.operand(o) == Some(v),
            Cond::Not(o) => self.operand(o).is_some_and(|w| w != v),
            Cond::Min(n) => matches!(v, Value::Num(x) if x >= *n),
            Cond::Max(n) => matches!(v, Value::Num(x) if x <= *n),
            Cond::InBlockOf(nic) => self.facts.blocks.get(nic.as_str()).is_some_and(|bs| {
                bs.iter().any(|b| match v {
                    Value::Addr(a) => a == b.nat_ip,
                    Value::Num(p) => (u64::from(b.port)..=u64::from(b.end_port)).contains(&p),
                })
            }),
        }
    }
}

/// Evaluates the compiled expectations in order over the captured links; returns their
/// results and the variables captured (name → value; an expectation with no match captures
/// nothing, and the later ones that compare with its variables then fail).
pub fn evaluate(
    compiled: &[Compiled],
    captures: &[(String, &[CapturedPacket])],
    facts: &RunFacts<'_>,
) -> (Vec<ExpectationResult>, BTreeMap<String, Value>) {
    let mut vars: BTreeMap<String, Value> = BTreeMap::new();
    let mut out = Vec::new();
    for c in compiled {
        let pkts: &[CapturedPacket] = captures
            .iter()
            .find(|(l, _)| *l == c.link)
            .map_or(&[], |(_, p)| *p);
        // What a condition needs and the run did not give: a variable not captured, or a NIC
        // holding no block at the end. Such an entry is unmet, never vacuously true (a `never`
        // whose `in_block_of` named a NIC without a block would otherwise pass).
        let missing: Vec<String> = c
            .conds
            .iter()
            .filter_map(|(_, cond)| match cond {
                Cond::Eq(Operand::Var(v)) | Cond::Not(Operand::Var(v)) if !vars.contains_key(v) => {
                    Some(format!("${v} not captured"))
                }
                Cond::InBlockOf(nic)
                    if facts.blocks.get(nic.as_str()).is_none_or(Vec::is_empty) =>
                {
                    Some(format!("{nic} holds no block at the end"))
                }
                _ => None,
            })
            .collect();
        let eval = Eval { vars: &vars, facts };
        let mut n = 0u64;
        let mut first: Option<(u64, Vec<(String, Value)>)> = None;
        if missing.is_empty() {
            for p in pkts
                .iter()
                .filter(|p| p.time_ns >= c.from_ns && p.time_ns <= c.to_ns)
            {
                let d = decode(&p.bytes);
                // An empty pattern is any packet, one that does not parse included.
                let matches = match &d {
                    Some(d) => c.conds.iter().all(|(f, cond)| eval.holds(*f, cond, d)),
                    None => c.conds.is_empty(),
                };
                if matches {
                    n += 1;
                    if first.is_none() {
                        let got = c
                            .capture
                            .iter()
                            .filter_map(|(var, f)| read(*f, d.as_ref()?).map(|v| (var.clone(), v)))
                            .collect();
                        first = Some((p.time_ns, got));
                    }
                }
            }
        }
        let (ok_count, expected) = crate::scenario::expect::bound(&c.count, n);
        let window = if c.to_ns == u64::MAX {
            String::new()
        } else {
            format!(
                " between {} and {} ms",
                c.from_ns / 1_000_000,
                c.to_ns / 1_000_000
            )
        };
        let mut actual = n.to_string();
        let mut ok = ok_count && missing.is_empty();
        if !missing.is_empty() {
            actual = format!("not evaluated: {}", missing.join(", "));
        } else if let Some((t, got)) = &first {
            actual.push_str(&format!(" (first at {} ns", t));
            for (var, v) in got {
                actual.push_str(&format!(", ${var} = {v}"));
            }
            actual.push(')');
            if got.len() != c.capture.len() {
                ok = false;
                actual.push_str("; the first match lacks a captured field");
            }
            for (var, v) in got {
                vars.insert(var.clone(), *v);
            }
        }
        out.push(ExpectationResult {
            what: format!("packets[{}] on {}{window}", c.index, c.link),
            expected: format!("{expected} packets with {}", c.text),
            actual,
            ok,
        });
    }
    (out, vars)
}
