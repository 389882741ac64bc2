//! Outside adversaries, link faults and control-plane changes over time.

use super::*;

pub(super) fn attack(name: String, at_ms: u64, from: &str) -> AttackItem {
    AttackItem {
        name,
        at_ms,
        from: from.into(),
        port_scan: None,
        unsolicited: None,
        spoof_reply: None,
        forged_icmp: None,
        rst_inject: None,
    }
}

/// Ports an outside attacker aims at: mostly the start of the NAT port range, where the first
/// blocks live.
pub(super) fn attack_port(d: &mut Draw) -> u16 {
    match d.range(0, 3) {
        0 | 1 => 1024 + d.range(0, 255) as u16,
        2 => d.range(1, 65_535) as u16,
        _ => d.pick(&[22, 53, 80, 443, 3389]),
    }
}

pub(super) fn attack_items(
    d: &mut Draw,
    f: &Features,
    gw: &GatewayPlan,
    nics: &[NicPlan],
    flows: &[FlowRef],
    duration_ms: u64,
) -> Vec<AttackItem> {
    let mut out = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("a{}", n - 1)
    };
    if f.unsolicited {
        for _ in 0..d.range(1, 3) {
            let mut a = attack(next(), d.range(0, duration_ms), EVIL.name);
            let target = if d.chance(3, 4) {
                gw.some_nat_addr(d)
            } else {
                let nic = &nics[d.index(nics.len())];
                let v4 = nic.family(d);
                nic.addr(v4).unwrap_or_default().to_string()
            };
            a.unsolicited = Some(UnsolicitedDoc {
                target: endpoint(&target, attack_port(d)),
                kind: d.pick(&[
                    UnsolicitedKindDoc::TcpSyn,
                    UnsolicitedKindDoc::Udp,
                    UnsolicitedKindDoc::IcmpEcho,
                ]),
                count: d.range(1, 5) as u32,
                interval_ms: d.range(10, 100),
            });
            out.push(a);
        }
    }
    if f.port_scan {
        let mut a = attack(next(), d.range(0, duration_ms), EVIL.name);
        let first = if d.chance(3, 4) {
            1024 + d.range(0, 256)
        } else {
            d.range(1, 60_000)
        };
        a.port_scan = Some(PortScanDoc {
            target: gw.some_nat_addr(d),
            ports: [first as u16, (first + d.range(16, 256)) as u16],
            protocol: d.pick(&[ProtoDoc::Tcp, ProtoDoc::Udp]),
            interval_us: d.range(100, 2_000),
        });
        out.push(a);
    }
    // Soon after the flow starts, while it most likely still has its mapping (many flows
    // finish within a few round trips).
    let live_after = |d: &mut Draw, fl: &FlowRef| fl.at_ms + d.range(5, 80);
    if f.spoof && !flows.is_empty() {
        for _ in 0..d.range(1, 2) {
            let fl = &flows[d.index(flows.len())];
            let mut a = attack(next(), live_after(d, fl), fl.remote);
            a.spoof_reply = Some(SpoofDoc {
                flow: fl.name.clone(),
                vary: d.pick(&[
                    VaryDoc::SrcPort,
                    VaryDoc::SrcAddr,
                    VaryDoc::DstPort,
                    VaryDoc::Nothing,
                ]),
                count: d.range(1, 3) as u32,
            });
            out.push(a);
        }
    }
    if f.forged_icmp && !flows.is_empty() {
        for _ in 0..d.range(1, 3) {
            let fl = &flows[d.index(flows.len())];
            let mut a = attack(next(), live_after(d, fl), fl.remote);
            a.forged_icmp = Some(ForgedIcmpDoc {
                flow: fl.name.clone(),
                bad_checksum: d.chance(1, 2),
                wrong_port: d.chance(1, 3),
                outer_destination: None,
                icmp_type: None,
                code: None,
            });
            out.push(a);
        }
    }
    let tcp_flows: Vec<&FlowRef> = flows.iter().filter(|fl| fl.tcp).collect();
    if f.rst_inject && !tcp_flows.is_empty() {
        let fl = tcp_flows[d.index(tcp_flows.len())];
        let mut a = attack(next(), live_after(d, fl), fl.remote);
        a.rst_inject = Some(RstDoc {
            flow: fl.name.clone(),
            from_remote: d.chance(1, 2),
            seq_offset: 0,
        });
        out.push(a);
    }
    out
}

/// Forged ICMP errors about live flows, addressed to some NAT address (another than the flow's
/// whenever the gateway has several): the gateway must drop those (docs/behaviour.md §4 ICMP).
/// With a single NAT IP the second address is not the gateway's, which it drops as well.
pub(super) fn readdressed_icmp(
    d: &mut Draw,
    gw: &GatewayPlan,
    flows: &[FlowRef],
) -> Vec<AttackItem> {
    let mut out = Vec::new();
    if flows.is_empty() {
        return out;
    }
    for i in 0..d.range(1, 3) {
        let fl = &flows[d.index(flows.len())];
        let at_ms = fl.at_ms + d.range(5, 80);
        let mut a = attack(format!("icmp-outer-{i}"), at_ms, fl.remote);
        let v4 = match gw.families {
            Families::V4 => true,
            Families::V6 => false,
            Families::Dual => d.chance(1, 2),
        };
        a.forged_icmp = Some(ForgedIcmpDoc {
            flow: fl.name.clone(),
            bad_checksum: false,
            wrong_port: false,
            outer_destination: Some(GatewayPlan::nat_addr(d.range(1, gw.ips.max(2)), v4)),
            icmp_type: None,
            code: None,
        });
        out.push(a);
    }
    out
}

pub(super) fn fault(at_ms: u64) -> FaultItem {
    FaultItem {
        at_ms,
        link_down: None,
        link_up: None,
        restart_node: None,
        remove_nat_ip: None,
        add_nat_ip: None,
        add_nic: None,
        delete_nic: None,
        relabel: None,
        attach_virtual_ip: None,
        detach_virtual_ip: None,
        set_ports_per_nic: None,
        delete_gateway: None,
        drop_packets: None,
    }
}

/// Link faults and control-plane changes over time, sorted by time.
pub(super) fn fault_items(
    d: &mut Draw,
    f: &Features,
    gw: &GatewayPlan,
    nics: &[NicPlan],
    nodes: u16,
    duration_ms: u64,
) -> Vec<FaultItem> {
    let mut out = Vec::new();
    let when = |d: &mut Draw| d.range(duration_ms / 10, duration_ms);
    let last_node = u64::from(nodes) - 1;
    if f.link_flap {
        let nic = &nics[d.index(nics.len())];
        let name = match d.range(0, 2) {
            0 => format!("nic/{}", nic.name),
            1 => format!("uplink/{}", d.range(0, last_node)),
            _ => format!("remote/{}", d.pick(&["web", "web2"])),
        };
        let at_ms = when(d);
        let mut down = fault(at_ms);
        down.link_down = Some(name.clone());
        let mut up = fault(at_ms + d.range(200, 3_000));
        up.link_up = Some(name);
        out.extend([down, up]);
    }
    if f.restart {
        let mut x = fault(when(d));
        x.restart_node = Some(d.range(0, last_node) as u16);
        out.push(x);
    }
    // Relabels and VirtualIP changes only touch NICs that exist for the whole run: the
    // IronCore API cannot change an object that does not exist (and the simulator does not
    // refuse it, see docs/swarm.md "Findings").
    let mut stable: Vec<&NicPlan> = nics.iter().filter(|n| n.present).collect();
    if f.nic_churn {
        for n in nics.iter().filter(|n| !n.present) {
            let mut x = fault(when(d));
            x.add_nic = Some(n.name.clone());
            out.push(x);
        }
        if !stable.is_empty() && d.chance(1, 2) {
            let gone = stable.remove(d.index(stable.len()));
            let mut x = fault(when(d));
            x.delete_nic = Some(gone.name.clone());
            out.push(x);
        }
    }
    if f.relabel && !stable.is_empty() {
        let nic = stable[d.index(stable.len())];
        let selected = gw.selector.selects(&nic.labels);
        let at_ms = when(d);
        let mut x = fault(at_ms);
        x.relabel = Some(RelabelDoc {
            nic: nic.name.clone(),
            labels: gw.selector.labels(!selected),
        });
        out.push(x);
        if d.chance(1, 2) {
            let mut back = fault(at_ms + d.range(100, 3_000));
            back.relabel = Some(RelabelDoc {
                nic: nic.name.clone(),
                labels: nic.labels.clone(),
            });
            out.push(back);
        }
    }
    if f.virtual_ip && !stable.is_empty() {
        let nic = stable[d.index(stable.len())];
        let at_ms = when(d);
        let mut x = fault(at_ms);
        if nic.virtual_ip {
            x.detach_virtual_ip = Some(nic.name.clone());
        } else {
            x.attach_virtual_ip = Some(nic.name.clone());
        }
        out.push(x);
        if d.chance(1, 2) {
            let mut back = fault(at_ms + d.range(100, 3_000));
            if nic.virtual_ip {
                back.attach_virtual_ip = Some(nic.name.clone());
            } else {
                back.detach_virtual_ip = Some(nic.name.clone());
            }
            out.push(back);
        }
    }
    if f.p_change {
        let mut x = fault(when(d));
        x.set_ports_per_nic = Some(if f.scarce_blocks {
            d.pick(&[8_192, 16_384, 32_768])
        } else {
            1 << d.range(0, 6)
        });
        out.push(x);
    }
    if f.ip_churn {
        let mut x = fault(when(d));
        x.add_nat_ip = Some(gw.ip_doc(gw.ips + 1));
        out.push(x);
        if d.chance(1, 2) {
            let mut x = fault(when(d));
            x.remove_nat_ip = Some(format!("ip{}", d.range(1, gw.ips)));
            out.push(x);
        }
    }
    if f.delete_gateway {
        let mut x = fault(d.range(duration_ms / 2, duration_ms));
        x.delete_gateway = Some(true);
        out.push(x);
    }
    out.sort_by_key(|x| x.at_ms);
    out
}
