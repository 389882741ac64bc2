//! The host stack: sending on a host's link, reassembling fragments, matching a packet to a
//! socket (connected, bound, or a service), echo replies, and RST / ICMP port unreachable for
//! closed ports; ephemeral ports and source addresses.

use super::*;

impl Simulator {
    pub(super) fn host_send(&mut self, h: HostId, buf: Vec<u8>) {
        let host = &mut self.hosts[h.index()];
        if let Some(n) = host.nic
            && !self.nics[n as usize].present
        {
            self.pool.push(buf);
            return;
        }
        host.stats.sent += 1;
        let link = host.link;
        let from = match self.roles[link.index()] {
            Role::Access { .. } => LinkEnd::A,
            _ => LinkEnd::B,
        };
        self.send_from(link, from, Kind::Plain, buf, Some(h), None);
    }

    pub(super) fn flush_out(&mut self, h: HostId) {
        let mut out = std::mem::take(&mut self.out);
        for b in out.drain(..) {
            self.host_send(h, b);
        }
        self.out = out;
    }

    pub(super) fn deliver(&mut self, h: HostId, kind: Kind, buf: Vec<u8>) {
        let from_outside = matches!(kind, Kind::FromOutside);
        let nic = self.hosts[h.index()].nic;
        self.notify(&Observation::Delivered {
            nic: nic.map(NicId),
            from_outside,
            pkt: &buf,
        });
        let st = &mut self.hosts[h.index()].stats;
        st.received += 1;
        if from_outside {
            st.from_outside += 1;
        }
        let buf = if may_be_fragment(&buf) {
            match self.hosts[h.index()].reassembly.offer(self.now_ns, buf) {
                Offer::Whole(whole) => whole,
                Offer::Pending | Offer::Dropped => return,
            }
        } else {
            buf
        };
        let Some(t) = Tuple::parse(&buf) else {
            self.unmatched(h, from_outside);
            self.recycle(buf);
            return;
        };
        match t.icmp {
            Some(IcmpKind::EchoRequest) => {
                let mut b = self.pool.pop().unwrap_or_default();
                build_echo(
                    &mut b,
                    t.dst,
                    t.src,
                    false,
                    t.src_port,
                    t.icmp_seq,
                    t.payload_len,
                );
                self.host_send(h, b);
            }
            Some(IcmpKind::EchoReply) => {
                let key = SocketKey {
                    host: h,
                    proto: t.protocol,
                    port: t.dst_port,
                    remote: SocketAddr::new(t.src, 0),
                };
                match self.conns.get(&key).copied() {
                    Some(a) => self.with_app(a, |app, io| app.on_packet(&t, &buf, io)),
                    None => self.unmatched(h, from_outside),
                }
            }
            Some(IcmpKind::Error) => {
                self.hosts[h.index()].stats.icmp_errors += 1;
                let q = quoted_offset(&buf).and_then(|o| Tuple::parse_quoted(&buf[o..]));
                let too_big = packet_too_big_mtu(&buf);
                if let (Some(mtu), Some(q)) = (too_big, q.as_ref()) {
                    // The path MTU towards the quoted packet's destination (RFC 1191 §6.3,
                    // RFC 8201 §4): later datagrams to it are fragmented to fit at the source.
                    let known = &mut self.hosts[h.index()].path_mtu;
                    let mtu = mtu.clamp(MIN_PATH_MTU_BYTES, usize::from(u16::MAX));
                    let old = known.get(&q.dst).copied().unwrap_or(usize::MAX);
                    known.insert(q.dst, old.min(mtu));
                }
                let app = q.and_then(|q| {
                    let remote = if q.icmp.is_some() {
                        SocketAddr::new(q.dst, 0)
                    } else {
                        q.dst_addr()
                    };
                    self.conns
                        .get(&SocketKey {
                            host: h,
                            proto: q.protocol,
                            port: q.src_port,
                            remote,
                        })
                        .copied()
                });
                match app {
                    Some(a) => {
                        self.apps[a.index()].on_icmp_error();
                        if let Some(mtu) = too_big {
                            self.with_app(a, |app, io| app.on_packet_too_big(mtu as u64, io));
                        }
                    }
                    None => self.unmatched(h, from_outside),
                }
            }
            Some(IcmpKind::Other) => self.unmatched(h, from_outside),
            None => self.deliver_l4(h, &t, &buf, from_outside),
        }
        self.recycle(buf);
    }

    pub(super) fn unmatched(&mut self, h: HostId, from_outside: bool) {
        let st = &mut self.hosts[h.index()].stats;
        st.unmatched += 1;
        if from_outside {
            st.unsolicited_from_outside += 1;
        }
    }

    pub(super) fn deliver_l4(&mut self, h: HostId, t: &Tuple, buf: &[u8], from_outside: bool) {
        let key = SocketKey {
            host: h,
            proto: t.protocol,
            port: t.dst_port,
            remote: t.src_addr(),
        };
        if let Some(&a) = self.conns.get(&key) {
            self.with_app(a, |app, io| app.on_packet(t, buf, io));
            return;
        }
        match self.bound.get(&(h, t.protocol, t.dst_port)).copied() {
            Some(Bound::App(a)) => self.with_app(a, |app, io| app.on_packet(t, buf, io)),
            Some(Bound::Service(kind)) => self.serve(h, kind, t, buf, key),
            None => {
                self.unmatched(h, from_outside);
                self.refuse(h, t, buf);
            }
        }
    }

    /// What a host's stack does with a packet for a closed port: RST for TCP (unless it is one),
    /// ICMP port unreachable for UDP.
    pub(super) fn refuse(&mut self, h: HostId, t: &Tuple, buf: &[u8]) {
        if self.hosts[h.index()].silent_closed_ports {
            return;
        }
        let mut b = self.pool.pop().unwrap_or_default();
        if t.protocol == Proto::Tcp.number() {
            if t.tcp_flags & RST != 0 {
                self.pool.push(b);
                return;
            }
            let seq = if t.tcp_flags & ACK != 0 { t.ack } else { 0 };
            let ack = t
                .seq
                .wrapping_add(t.payload_len as u32 + u32::from(t.tcp_flags & SYN != 0));
            build_tcp(&mut b, t.dst_addr(), t.src_addr(), RST | ACK, seq, ack, 0);
        } else {
            let (ty, code) = if t.dst.is_ipv4() { (3, 3) } else { (1, 4) };
            build_icmp_error(&mut b, t.dst, t.src, ty, code, buf);
        }
        self.host_send(h, b);
    }

    pub(super) fn serve(
        &mut self,
        h: HostId,
        kind: ServiceKind,
        t: &Tuple,
        buf: &[u8],
        key: SocketKey,
    ) {
        let tcp = t.protocol == Proto::Tcp.number();
        match kind {
            ServiceKind::Respond {
                response_bytes,
                close_first,
                rto_ms,
                max_retries,
            } if tcp => {
                if t.tcp_flags & (SYN | ACK) != SYN {
                    self.unmatched(h, false);
                    self.refuse(h, t, buf);
                    return;
                }
                let iss = self.hosts[h.index()].rng.next_u64() as u32;
                let server = self.with_io(|io| {
                    let timers = (rto_ms, max_retries);
                    let mut s = TcpServer::accept(t.dst_addr(), t, iss, response_bytes, timers, io);
                    s.close_first = close_first;
                    s
                });
                let a = self.new_app(h, AppState::TcpServer(Box::new(server)), None, None);
                self.conns.insert(key, a);
                self.app_keys[a.index()].0 = Some(key);
                self.flush_out(h);
                self.reschedule(a);
            }
            ServiceKind::Respond { response_bytes, .. } => {
                if response_bytes > 0 {
                    let mut b = self.pool.pop().unwrap_or_default();
                    build_udp_len(&mut b, t.dst_addr(), t.src_addr(), response_bytes as usize);
                    self.host_send(h, b);
                }
            }
            ServiceKind::Stun if !tcp => {
                let cmd = buf.get(t.payload_offset).copied().unwrap_or(0);
                let addrs = &self.hosts[h.index()].addresses;
                // The alternate address is of the request's family (a dual-stack server has both).
                let other_ip = addrs
                    .iter()
                    .copied()
                    .find(|a| *a != t.dst && a.is_ipv4() == t.dst.is_ipv4())
                    .unwrap_or(t.dst);
                let other_port = self
                    .cfg
                    .remotes
                    .iter()
                    .flat_map(|r| r.services.iter())
                    .find(|s| s.kind == ServiceKind::Stun && s.port != t.dst_port)
                    .map_or(t.dst_port, |s| s.port);
                let from = match cmd {
                    1 => SocketAddr::new(t.dst, other_port),
                    2 => SocketAddr::new(other_ip, other_port),
                    3 => SocketAddr::new(other_ip, t.dst_port),
                    _ => t.dst_addr(),
                };
                let mut payload = Vec::with_capacity(19);
                encode_endpoint(t.src_addr(), &mut payload);
                let mut b = self.pool.pop().unwrap_or_default();
                build_udp(&mut b, from, t.src_addr(), &payload);
                self.host_send(h, b);
            }
            ServiceKind::Stun => self.refuse(h, t, buf),
        }
    }

    pub(super) fn ephemeral_port(&mut self, h: HostId, proto: u8, remote: SocketAddr) -> u16 {
        for _ in 0..64 {
            let host = &mut self.hosts[h.index()];
            let p = host.next_port;
            host.next_port = if p >= 60999 { 32768 } else { p + 1 };
            let key = SocketKey {
                host: h,
                proto,
                port: p,
                remote,
            };
            if !self.conns.contains_key(&key) && !self.bound.contains_key(&(h, proto, p)) {
                return p;
            }
        }
        self.hosts[h.index()].next_port
    }

    /// The host's address of `dst`'s family: `None` when it has none, as a real host's socket
    /// fails to send to an address family it has no address of.
    pub(super) fn source_addr(&self, h: HostId, dst: IpAddr) -> Option<IpAddr> {
        self.hosts[h.index()]
            .addresses
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == dst.is_ipv4())
    }

    pub(super) fn host_index(&self, r: HostRef) -> Option<HostId> {
        match r {
            HostRef::Nic(i) => self.nics.get(i as usize).map(|n| n.host),
            HostRef::Remote(i) => self.remote_hosts.get(i as usize).copied(),
        }
    }
}

/// The smallest path MTU a host accepts from a Fragmentation Needed / Packet Too Big (RFC 791's
/// 68 bytes; an IPv6 host would not go below 1280, RFC 8201 §4, but a smaller one is kept as
/// given so that a scenario can see what the gateway translated).
const MIN_PATH_MTU_BYTES: usize = 68;

/// The MTU a Fragmentation Needed / Packet Too Big reports (`None` for any other packet).
fn packet_too_big_mtu(pkt: &[u8]) -> Option<usize> {
    let meta = crate::wire::parse_ip(pkt).ok()?;
    let icmp = crate::wire::IcmpView::new_checked(pkt.get(meta.l4_offset..meta.end)?)?;
    let rest = u32::from(icmp.ident()) << 16 | u32::from(icmp.seq_no());
    crate::wire::icmp::packet_too_big_mtu(meta.version, icmp.msg_type(), icmp.code(), rest)
        .map(|m| m as usize)
}
