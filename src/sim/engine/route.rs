//! Links, the router and relay between dataplane nodes: a packet goes on a link (fragmented by
//! its sender or a router when over the MTU, then lost, delayed or duplicated by the link), and
//! on arrival is handed to a host, a dataplane node or the router; the router delivers by
//! destination address, and a node relays a packet for a port block another node owns.

use super::*;
use crate::wire::icmp::ErrorMessage;

impl Simulator {
    pub(super) fn send(
        &mut self,
        link: LinkId,
        from: LinkEnd,
        kind: Kind,
        buf: Vec<u8>,
        trail: Option<Box<Trail>>,
    ) {
        self.send_from(link, from, kind, buf, None, trail);
    }

    /// Sends on a link, splitting a datagram larger than its MTU: by the sending host's own
    /// stack when `source_host` is given (IPv6 too: only the source may), else as a router
    /// (IPv4 without DF). What cannot be fragmented goes on and the link drops and counts it.
    pub(super) fn send_from(
        &mut self,
        link: LinkId,
        from: LinkEnd,
        kind: Kind,
        buf: Vec<u8>,
        source_host: Option<HostId>,
        trail: Option<Box<Trail>>,
    ) {
        let link_mtu = self.links[link.index()].config.mtu_bytes as usize;
        // A host sends no more than the path MTU it learned for the destination.
        // (Most hosts never learn one: skip the parse then.)
        let mtu = source_host
            .map(|h| &self.hosts[h.index()].path_mtu)
            .filter(|known| !known.is_empty())
            .and_then(|known| known.get(&dst_of(&buf)?).copied())
            .map_or(link_mtu, |p| p.min(link_mtu));
        if buf.len() > mtu {
            let ident = source_host.map(|h| self.hosts[h.index()].next_fragment_ident);
            let mut pieces = Vec::new();
            let result = fragment(&buf, mtu, ident, &mut pieces);
            if let Err(CannotFragment::DontFragment | CannotFragment::Ipv6InTransit) = result
                && source_host.is_none()
                && self.is_router_end(link, from)
            {
                // A router does not put on a link what does not fit: it drops it and tells
                // the source (rate limits permitting).
                self.router_error(ErrorMessage::PacketTooBig, link_mtu, &buf);
                let note =
                    format!("dropped by the router: too big for the next link ({link_mtu} bytes)");
                self.mark_dropped(trail.as_deref(), &note);
                self.recycle(buf);
                return;
            }
            if result.is_ok() {
                match source_host {
                    Some(h) => {
                        let host = &mut self.hosts[h.index()];
                        host.next_fragment_ident = host.next_fragment_ident.wrapping_add(1);
                        host.stats.fragmented += 1;
                    }
                    None => self.stats.fragmented_in_transit += 1,
                }
                self.recycle(buf);
                for p in pieces {
                    self.transmit(link, from, kind, p, trail.clone());
                }
                return;
            }
        }
        self.transmit(link, from, kind, buf, trail);
    }

    /// `from` is the router's end of `link` (uplinks: B; remote host links: A).
    fn is_router_end(&self, link: LinkId, from: LinkEnd) -> bool {
        matches!(
            (self.roles[link.index()], from),
            (Role::Uplink { .. }, LinkEnd::B) | (Role::Remote { .. }, LinkEnd::A)
        )
    }

    /// The router tells the source of `pkt` why it was not forwarded, from its own address,
    /// quoting as much of the packet as RFC 1812 §4.3.2.3 / RFC 4443 §2.4 allow: too big for
    /// the next link and not to be fragmented (Fragmentation Needed 3/4 or Packet Too Big 2/0,
    /// with the MTU: RFC 1191 §4, RFC 4443 §3.2), TTL expired (Time Exceeded 11/0 or 3/0), no
    /// route (host unreachable 3/1, address unreachable 1/3). It never answers an ICMP error or
    /// a fragment other than the first (RFC 1812 §4.3.2.7), and not more often than its token
    /// bucket allows (§4.3.2.8). The caller drops the packet.
    fn router_error(&mut self, why: ErrorMessage, mtu: usize, pkt: &[u8]) {
        let Ok(meta) = crate::wire::parse_ip_lax(pkt) else {
            return;
        };
        if meta.fragment.is_some_and(|f| !f.is_first()) {
            return;
        }
        let quotes_an_error = crate::wire::icmp::is_icmp(meta.version, meta.protocol)
            && pkt
                .get(meta.l4_offset..meta.end)
                .and_then(crate::wire::IcmpView::new_checked)
                .is_some_and(|m| crate::wire::icmp::is_error(meta.version, m.msg_type()));
        if quotes_an_error {
            return;
        }
        let to = meta.src(pkt);
        if to.is_unspecified() || to.is_multicast() {
            return;
        }
        let v4 = meta.version == crate::wire::IpVersion::V4;
        let Some(from) = self
            .cfg
            .router
            .addresses
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == v4)
        else {
            return;
        };
        if !self.router_icmp.take(self.now_ns) {
            self.stats.icmp_errors_rate_limited += 1;
            return;
        }
        let (ty, code) = why.type_code(meta.version);
        let mut repr = crate::wire::PacketRepr::icmp_error(from, to, ty, code, pkt);
        if let crate::wire::TransportRepr::Icmp(crate::wire::IcmpRepr::Error { rest, .. }) =
            &mut repr.transport
        {
            let mtu = u32::try_from(mtu).unwrap_or(u32::MAX);
            *rest = crate::wire::icmp::rest_word(why, meta.version, mtu);
        }
        self.stats.icmp_errors_sent += 1;
        let err = repr.emit();
        self.route_at_router(Kind::Plain, err, true, None);
    }

    pub(super) fn transmit(
        &mut self,
        link: LinkId,
        from: LinkEnd,
        kind: Kind,
        buf: Vec<u8>,
        mut trail: Option<Box<Trail>>,
    ) {
        let now = self.now_ns;
        self.capture.record(link.0, now, &buf, &mut trail);
        match self.links[link.index()].transmit(now, &buf) {
            Transmit::Dropped => {
                if let Some(t) = trail.as_deref().filter(|t| t.captured()) {
                    let text = format!("lost on link {}", self.links[link.index()].name);
                    self.capture.annotate(t, &text);
                }
                self.pool.push(buf);
            }
            Transmit::Deliver {
                at_ns,
                duplicate_at_ns,
            } => {
                let to = from.other();
                if let Some(d) = duplicate_at_ns {
                    let mut copy = self.pool.pop().unwrap_or_default();
                    copy.clear();
                    copy.extend_from_slice(&buf);
                    self.schedule(
                        d,
                        Ev::Arrive {
                            link,
                            to,
                            kind,
                            buf: copy,
                            trail: trail.clone(),
                        },
                    );
                }
                self.schedule(
                    at_ns,
                    Ev::Arrive {
                        link,
                        to,
                        kind,
                        buf,
                        trail,
                    },
                );
            }
        }
    }

    pub(super) fn arrive(
        &mut self,
        link: LinkId,
        to: LinkEnd,
        kind: Kind,
        buf: Vec<u8>,
        trail: Option<Box<Trail>>,
    ) {
        self.stats.packet_events += 1;
        self.digest.word(self.now_ns);
        // Links enter the digest by a hash of their name, not their index, so adding a host
        // elsewhere leaves an otherwise identical trace with the same digest.
        self.digest.word(self.link_keys[link.index()] ^ to.index());
        self.digest.bytes(&buf);
        let clean = self.violation.is_none();
        match (self.roles[link.index()], to) {
            (Role::Access { nic, .. }, LinkEnd::A) => {
                let h = self.nics[nic as usize].host;
                self.deliver(h, kind, buf);
                self.mark_delivered(trail.as_deref(), clean);
            }
            (Role::Access { nic, node }, _) => self.on_nic_packet(node, nic, buf, trail),
            (Role::Uplink { node }, LinkEnd::A) => self.on_router_packet(node, kind, buf, trail),
            (Role::Uplink { .. }, _) => self.at_router(kind, buf, false, trail),
            (Role::Remote { .. }, LinkEnd::A) => self.at_router(kind, buf, true, trail),
            (Role::Remote { host }, _) => {
                self.deliver(host, kind, buf);
                self.mark_delivered(trail.as_deref(), clean);
            }
        }
    }

    pub(super) fn recycle(&mut self, buf: Vec<u8>) {
        if self.pool.len() < 4096 {
            self.pool.push(buf);
        }
    }

    /// A packet reaches the router. As a router hop (`decrement_ttl`) it takes one off the TTL
    /// or hop limit of what it forwards, and answers one that would leave with 0 with Time
    /// Exceeded (RFC 1812 §5.3.1, RFC 4443 §3.3); relay between dataplane nodes is underlay and
    /// not touched.
    pub(super) fn at_router(
        &mut self,
        kind: Kind,
        mut buf: Vec<u8>,
        from_internet: bool,
        trail: Option<Box<Trail>>,
    ) {
        if matches!(kind, Kind::Plain | Kind::FromOutside)
            && self.cfg.router.decrement_ttl
            && let Ok(meta) = crate::wire::parse_ip_lax(&buf)
        {
            if crate::wire::rewrite::hop_limit(&buf, meta.version) <= 1 {
                self.router_error(ErrorMessage::TimeExceeded, 0, &buf);
                self.mark_dropped(trail.as_deref(), "dropped by the router: TTL expired");
                self.recycle(buf);
                return;
            }
            crate::wire::rewrite::decrement_hop_limit(&mut buf, meta.version);
        }
        self.route_at_router(kind, buf, from_internet, trail);
    }

    /// Where the router sends a packet: to a remote host by address, to a dataplane node (what
    /// comes from the internet for anything else), or nowhere (from inside to an address no
    /// host has: Destination Unreachable when the router is set to say so).
    fn route_at_router(
        &mut self,
        kind: Kind,
        buf: Vec<u8>,
        from_internet: bool,
        trail: Option<Box<Trail>>,
    ) {
        let target_node = match kind {
            Kind::ToNic { nic: m, .. } => self.nics.get(m as usize).map(|n| NodeId(n.spec.node)),
            Kind::ToNode(k) => Some(k),
            Kind::Plain | Kind::FromOutside => {
                let Some(dst) = dst_of(&buf) else {
                    self.mark_dropped(trail.as_deref(), "dropped by the router: no address");
                    self.recycle(buf);
                    return;
                };
                if let Some(&h) = self.remote_by_addr.get(&dst) {
                    let link = self.hosts[h.index()].link;
                    self.send(link, LinkEnd::A, Kind::Plain, buf, trail);
                    return;
                }
                if !from_internet {
                    self.stats.no_route += 1;
                    if self.cfg.router.unreachable {
                        self.router_error(ErrorMessage::HostUnreachable, 0, &buf);
                    }
                    self.mark_dropped(trail.as_deref(), "dropped by the router: no route");
                    self.recycle(buf);
                    return;
                }
                // The underlay may deliver to any node (behaviour §4 distributed dataplane).
                let n = self.nodes.len() as u64;
                Some(NodeId(if n > 1 {
                    self.router_rng.below(n) as u16
                } else {
                    0
                }))
            }
        };
        match target_node.and_then(|k| self.nodes.get(k.index()).map(|n| n.uplink)) {
            Some(uplink) => self.send(uplink, LinkEnd::B, kind, buf, trail),
            None => {
                self.stats.no_route += 1;
                self.mark_dropped(trail.as_deref(), "dropped by the router: no route");
                self.recycle(buf);
            }
        }
    }

    pub(super) fn on_router_packet(
        &mut self,
        node: NodeId,
        kind: Kind,
        buf: Vec<u8>,
        trail: Option<Box<Trail>>,
    ) {
        match kind {
            Kind::ToNic { nic, from_outside } => {
                self.send_to_nic(node, nic, from_outside, buf, trail)
            }
            Kind::ToNode(_) => self.process_and_route(node, Ingress::Outside, buf, trail),
            Kind::Plain | Kind::FromOutside => {
                if self.nodes.len() > 1
                    && let Some(owner) = self.owner_node(&buf)
                    && owner != node
                {
                    self.stats.relayed += 1;
                    let uplink = self.nodes[node.index()].uplink;
                    self.send(uplink, LinkEnd::A, Kind::ToNode(owner), buf, trail);
                    return;
                }
                self.process_and_route(node, Ingress::Outside, buf, trail);
            }
        }
    }

    /// The node owning the destination (NAT IP, port) of an inbound packet, from the blocks the
    /// control plane handed out (the simulator's own knowledge, not the dataplane's).
    pub(super) fn owner_node(&self, buf: &[u8]) -> Option<NodeId> {
        let t = Tuple::parse(buf)?;
        let (ip, port) = match t.icmp {
            Some(IcmpKind::Error) => {
                let off = quoted_offset(buf)?;
                let q = Tuple::parse_quoted(&buf[off..])?;
                (q.src, q.src_port)
            }
            Some(IcmpKind::EchoReply) => (t.dst, t.dst_port),
            Some(_) => return None,
            None => (t.dst, t.dst_port),
        };
        let (&(bip, _), &(end, nic)) = self.owners.range(..=(ip, port)).next_back()?;
        (bip == ip && port <= end).then(|| NodeId(self.nics[nic as usize].spec.node))
    }

    pub(super) fn route_verdict(
        &mut self,
        node: NodeId,
        ingress: Ingress,
        verdict: Verdict,
        buf: Vec<u8>,
        trail: Option<Box<Trail>>,
    ) {
        match verdict {
            Verdict::Forward(Egress::Outside) | Verdict::Respond(Egress::Outside) => {
                let up = self.nodes[node.index()].uplink;
                self.send(up, LinkEnd::A, Kind::Plain, buf, trail);
            }
            Verdict::Forward(Egress::Nic(m)) => self.send_to_nic(node, m.0, true, buf, trail),
            Verdict::Respond(Egress::Nic(m)) => self.send_to_nic(node, m.0, false, buf, trail),
            Verdict::PassThrough => {
                let (Ingress::Inside(src), Some(dst)) = (ingress, dst_of(&buf)) else {
                    self.recycle(buf);
                    return;
                };
                let net = self.nics[src.0 as usize].spec.network;
                match self.nic_by_addr.get(&(net, dst)) {
                    Some(&m) => self.send_to_nic(node, m, false, buf, trail),
                    None => {
                        self.stats.no_route += 1;
                        self.mark_dropped(trail.as_deref(), "no route to an inside host");
                        self.recycle(buf);
                    }
                }
            }
            Verdict::Buffered | Verdict::Drop(_) => self.recycle(buf),
        }
    }

    pub(super) fn send_to_nic(
        &mut self,
        node: NodeId,
        m: u32,
        from_outside: bool,
        buf: Vec<u8>,
        trail: Option<Box<Trail>>,
    ) {
        let Some(n) = self.nics.get(m as usize).filter(|n| n.present) else {
            self.stats.no_such_nic += 1;
            self.mark_dropped(trail.as_deref(), "dropped: the NIC is gone");
            self.recycle(buf);
            return;
        };
        if NodeId(n.spec.node) == node {
            let kind = if from_outside {
                Kind::FromOutside
            } else {
                Kind::Plain
            };
            let link = n.link;
            self.send(link, LinkEnd::B, kind, buf, trail);
        } else {
            self.stats.relayed += 1;
            let up = self.nodes[node.index()].uplink;
            self.send(
                up,
                LinkEnd::A,
                Kind::ToNic {
                    nic: m,
                    from_outside,
                },
                buf,
                trail,
            );
        }
    }
}
