//! Resolving packet steps: `packets:` items built into bytes (names resolved, fields checked),
//! `expect.packets` patterns checked and compiled, and the links they watch captured. A crafted
//! packet that uses variables is checked here and built when it is sent ([`DeferredPacket`]).

use super::*;
use crate::scenario::packets::craft::{Vars, craft, variables};
use crate::scenario::packets::pattern::{Compiled, Value, compile};
use crate::scenario::packets::{Field, PacketItem};

/// The most bytes all of a scenario's crafted packets built at load may add up to.
pub const MAX_SCENARIO_BYTES: usize = 64 << 20;

/// Why a crafted packet that uses variables was not sent (its `flows` outcome).
pub const NOT_CAPTURED: &str = "a variable it uses was not captured before it was due";
/// Why a crafted packet whose variables were captured could not be built from their values.
pub const BAD_VALUE: &str = "a field computed from a variable is out of range or of the wrong kind";

/// A crafted packet that uses variables: built from their values just before it is due.
#[derive(Clone, Debug)]
pub struct DeferredPacket {
    /// Its application index in the simulator's configuration.
    pub app: usize,
    /// When it is sent.
    pub at_ns: u64,
    item: PacketItem,
    own: Vec<IpAddr>,
    /// Every host or gateway IP name the item uses → its addresses.
    names: BTreeMap<String, Vec<IpAddr>>,
}

impl DeferredPacket {
    /// The packets, built with the variables captured so far; `Err` is the outcome's reason.
    pub fn build(&self, vars: &Vars) -> Result<Vec<Vec<u8>>, &'static str> {
        let missing = variables(&self.item)
            .iter()
            .any(|(v, _, _)| !vars.contains_key(v));
        if missing {
            return Err(NOT_CAPTURED);
        }
        craft(
            &self.item,
            &|d| own_addr(&self.own, d),
            &|n, like| self.resolve(n, like),
            vars,
        )
        .map_err(|_| BAD_VALUE)
    }

    fn resolve(&self, name: &str, like: Option<IpAddr>) -> Result<IpAddr, String> {
        if let Ok(ip) = name.parse() {
            return Ok(ip);
        }
        let addrs = self
            .names
            .get(name)
            .ok_or_else(|| format!("no host `{name}`"))?;
        pick(addrs, like).ok_or_else(|| format!("`{name}` has no address"))
    }
}

fn own_addr(own: &[IpAddr], dst: IpAddr) -> Option<IpAddr> {
    own.iter().copied().find(|a| a.is_ipv4() == dst.is_ipv4())
}

/// Adds an item's packets to the scenario's crafted bytes, refused past [`MAX_SCENARIO_BYTES`].
fn count_bytes(
    cx: &Ctx,
    s: &Spanned<PacketItem>,
    field: &str,
    packets: &[Vec<u8>],
    total_bytes: &mut usize,
) -> Result<(), ScenarioError> {
    *total_bytes += packets.iter().map(Vec::len).sum::<usize>();
    if *total_bytes > MAX_SCENARIO_BYTES {
        return Err(cx.at(
            s,
            field.to_string(),
            format!("the crafted packets add up to more than {MAX_SCENARIO_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// The variables `expect.packets` captures, with the field each holds.
fn captured(doc: &ScenarioFile) -> BTreeMap<&str, Field> {
    doc.expect
        .packets
        .iter()
        .flat_map(|e| e.value.capture.iter().map(|(v, f)| (v.as_str(), *f)))
        .collect()
}

/// A `packets:` item as an application that sends its bytes once; one that uses variables is
/// checked with stand-in values now and returned with its [`DeferredPacket`].
pub(super) fn resolve_packet(
    cx: &Ctx,
    i: usize,
    s: &Spanned<PacketItem>,
    names: &Names,
    doc: &ScenarioFile,
    app: usize,
    total_bytes: &mut usize,
) -> Result<(AppSpec, Option<DeferredPacket>), ScenarioError> {
    let p = &s.value;
    let field = format!("packets[{i}]");
    let host = host_ref(names, &p.from)
        .ok_or_else(|| cx.at(s, format!("{field}.from"), names.unknown_host(&p.from)))?;
    let own_addrs: &[IpAddr] = match host {
        HostRef::Nic(n) => &names.nic_addrs[n as usize],
        HostRef::Remote(r) => &names.remote_addrs[r as usize],
    };
    let resolve = |name: &str, like: Option<IpAddr>| {
        names
            .host_addr(name, like)
            .ok_or_else(|| names.unknown_host(name))
    };
    let used = variables(p);
    let path = |f: &str| {
        if f.is_empty() {
            field.clone()
        } else {
            format!("{field}.{f}")
        }
    };
    if used.is_empty() {
        let packets = craft(p, &|d| own_addr(own_addrs, d), &resolve, &Vars::new())
            .map_err(|(f, m)| cx.at(s, path(&f), m))?;
        count_bytes(cx, s, &field, &packets, total_bytes)?;
        let spec = AppSpec {
            name: p.name.clone(),
            at_ns: ms_to_ns(p.at_ms),
            host,
            kind: AppKind::Crafted(Ok(packets)),
        };
        return Ok((spec, None));
    }
    let known = captured(doc);
    let mut stand_in = Vars::new();
    let to_family = resolve(&p.to, None).ok();
    for (var, f, wants_addr) in &used {
        let Some(field_kind) = known.get(var.as_str()) else {
            return Err(cx.at(
                s,
                path(f),
                format!("variable `${var}` is not captured by any `expect.packets` entry"),
            ));
        };
        if field_kind.is_address() != *wants_addr {
            return Err(cx.at(
                s,
                path(f),
                format!(
                    "variable `${var}` holds {} (`{}`), and this field {}",
                    field_kind.kind(),
                    field_kind.name(),
                    if *wants_addr {
                        "an address"
                    } else {
                        "a number"
                    }
                ),
            ));
        }
        let v = if *wants_addr {
            Value::Addr(match to_family {
                Some(IpAddr::V6(_)) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            })
        } else {
            Value::Num(1 << 15)
        };
        stand_in.insert(var.clone(), v);
    }
    if p.at_ms == 0 {
        return Err(cx.at(
            s,
            path("at_ms"),
            "a packet that uses variables is built from packets seen before it: send it after 0 ms",
        ));
    }
    // The stand-in values check every field that does not depend on a variable; a field that
    // does is checked when the packet is built. Variables change header fields, not sizes
    // (bar the address family), so the stand-in packets count against the scenario's bytes.
    match craft(p, &|d| own_addr(own_addrs, d), &resolve, &stand_in) {
        Ok(packets) => count_bytes(cx, s, &field, &packets, total_bytes)?,
        Err((f, m)) if !used.iter().any(|(_, vf, _)| *vf == f) => {
            return Err(cx.at(s, path(&f), m));
        }
        Err(_) => {}
    }
    let mut table = BTreeMap::new();
    let mut texts = vec![p.to.as_str()];
    texts.extend(p.src.as_deref());
    if let Some(q) = p.icmp.as_ref().and_then(|m| m.quote.as_ref()) {
        texts.push(q.src.as_str());
        texts.push(q.dst.as_str());
    }
    for t in texts {
        if t.starts_with('$') || t.parse::<IpAddr>().is_ok() {
            continue;
        }
        if let Some(addrs) = names.addresses_of(t) {
            table.insert(t.to_string(), addrs);
        }
    }
    let spec = AppSpec {
        name: p.name.clone(),
        at_ns: ms_to_ns(p.at_ms),
        host,
        kind: AppKind::Crafted(Err(NOT_CAPTURED)),
    };
    let deferred = DeferredPacket {
        app,
        at_ns: spec.at_ns,
        item: p.clone(),
        own: own_addrs.to_vec(),
        names: table,
    };
    Ok((spec, Some(deferred)))
}

/// Checks and compiles `expect.packets`, and adds the links they watch to the captured ones.
pub(super) fn resolve_packet_expectations(
    cx: &Ctx,
    doc: &ScenarioFile,
    sim: &mut SimConfig,
) -> Result<Vec<Compiled>, ScenarioError> {
    let links = link_names(sim);
    let nics: Vec<&str> = sim.nics.iter().map(|n| n.name.as_str()).collect();
    let mut vars = BTreeMap::new();
    let mut out = Vec::new();
    for (i, s) in doc.expect.packets.iter().enumerate() {
        let c = compile(i, &s.value, &links, &nics, &mut vars).map_err(|(f, m)| cx.at(s, f, m))?;
        if !sim.capture.contains(&s.value.on) {
            sim.capture.push(s.value.on.clone());
        }
        out.push(c);
    }
    Ok(out)
}
