//! Typed ids of the simulator's parts, so a host index cannot be passed where a link or an
//! application index is meant. Each wraps the index into the simulator's list of that part.

/// A host (a NIC's VM or a remote host): its index in the simulator's hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub u32);

/// A running application (scripted, generated, or a server's accepted connection): its slot
/// in the simulator's applications. Slots are reused once an application finishes; timer
/// events carry the slot's generation so a stale one is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppId(pub u32);

/// A link: its index in the simulator's links (and the weight of its edge in the topology
/// graph).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u32);

/// A dataplane node (one gateway instance): its index in the simulator's nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u16);

/// One end of a link: a link connects end [`LinkEnd::A`] to end [`LinkEnd::B`] (access links:
/// NIC host to dataplane node; uplinks: dataplane node to router; remote links: router to
/// remote host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkEnd {
    /// The first end (the NIC host, the dataplane node, the router).
    A,
    /// The second end (the dataplane node, the router, the remote host).
    B,
}

impl HostId {
    /// The index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl AppId {
    /// The index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl LinkId {
    /// The index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl NodeId {
    /// The index.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl LinkEnd {
    /// The end a packet sent from this end arrives at.
    pub fn other(self) -> LinkEnd {
        match self {
            LinkEnd::A => LinkEnd::B,
            LinkEnd::B => LinkEnd::A,
        }
    }

    /// 0 or 1: how the trace digest has always numbered link ends.
    pub fn index(self) -> u64 {
        match self {
            LinkEnd::A => 0,
            LinkEnd::B => 1,
        }
    }
}
