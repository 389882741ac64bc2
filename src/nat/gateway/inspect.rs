//! The gateway's inspection part: events, counters, flows and translations as checkers,
//! reports and replay read them (never on the packet path).

use super::*;

impl Gateway {
    /// Takes the events recorded since the last call.
    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Counters over all NICs.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Counters of one NIC.
    pub fn nic_counters(&self, id: NicId) -> Option<&Counters> {
        self.nic_counters.get(id.0 as usize)
    }

    /// Live (translating) flows per family: (IPv4, IPv6).
    pub fn live_flows(&self) -> (usize, usize) {
        (
            self.fams.v4.table.live_count(),
            self.fams.v6.table.live_count(),
        )
    }

    /// Slots in use (live plus held) per family: (IPv4, IPv6).
    pub fn tracked_flows(&self) -> (u32, u32) {
        (self.fams.v4.table.used, self.fams.v6.table.used)
    }

    /// Answers to unsolicited SYNs waiting for their 6 s (at most
    /// [`crate::nat::MAX_PENDING_SYN_ANSWERS`]).
    pub fn pending_syn_answers(&self) -> usize {
        self.deferred.len()
    }

    /// Fragmented datagrams tracked now.
    pub fn fragment_datagrams(&self) -> usize {
        self.frags.len()
    }

    /// Heap bytes held by the connection-tracking tables: (IPv4, IPv6).
    pub fn table_bytes(&self) -> (usize, usize) {
        (
            self.fams.v4.table.allocated_bytes(),
            self.fams.v6.table.allocated_bytes(),
        )
    }

    /// Every tracked flow (live and held), IPv4 first, in table order (deterministic).
    pub fn flows(&self) -> Vec<FlowInfo> {
        let mut out = self.flows_of::<[u8; 4]>();
        out.extend(self.flows_of::<[u8; 16]>());
        out
    }

    fn flows_of<A: Fam>(&self) -> Vec<FlowInfo> {
        let t = &A::state_ref(&self.fams).table;
        t.flows
            .iter()
            .filter(|f| f.class != class::FREE)
            .map(|f| FlowInfo {
                flow: self.view::<A>(f),
                live: f.is_live(),
                state: if !f.is_live() {
                    "held"
                } else if f.proto == proto::TCP {
                    tcp::state_name(f.state)
                } else {
                    "active"
                },
                last_active: Instant::from_nanos(f.last_active_ns),
                deadline: Instant::from_nanos(self.deadline_ns(f.class, f.last_active_ns)),
            })
            .collect()
    }

    /// The NAT endpoint of the live flow `nic` opened from `inside` to `remote` (for ICMP echo
    /// flows the ports are the identifier and 0). Replay uses it to address a captured reply the
    /// way it would have reached the NAT.
    pub fn translation_of(
        &self,
        nic: NicId,
        protocol: u8,
        inside: SocketAddr,
        remote: SocketAddr,
    ) -> Option<SocketAddr> {
        match (inside.ip(), remote.ip()) {
            (IpAddr::V4(i), IpAddr::V4(r)) => self.translation_in::<[u8; 4]>(
                nic,
                protocol,
                i.octets(),
                inside.port(),
                r.octets(),
                remote.port(),
            ),
            (IpAddr::V6(i), IpAddr::V6(r)) => self.translation_in::<[u8; 16]>(
                nic,
                protocol,
                i.octets(),
                inside.port(),
                r.octets(),
                remote.port(),
            ),
            _ => None,
        }
    }

    fn translation_in<A: Fam>(
        &self,
        nic: NicId,
        protocol: u8,
        inside: A,
        iport: u16,
        remote: A,
        rport: u16,
    ) -> Option<SocketAddr> {
        let fam = A::state_ref(&self.fams);
        let idx = fam
            .table
            .find_out(nic.0, protocol, &inside, iport, &remote, rport)?;
        let f = &fam.table.flows[idx as usize];
        let nat = fam.nat_ips.get(usize::from(f.nat_ip))?;
        Some(SocketAddr::new(nat.to_ip(), f.nat_port))
    }
}
