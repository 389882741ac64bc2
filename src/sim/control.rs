//! The simulator's control plane: a thin adapter over the IronCore API reconciler
//! ([`crate::api::World`]), so the blocks the simulated dataplanes hold are the ones the real
//! reconciler hands out (behaviour §3), not a second implementation of the rules.
//!
//! The adapter only translates:
//! - simulated NICs (dataplane [`NicId`](crate::nat::NicId)s, indices into
//!   [`SimConfig::nics`]) ↔ API `NetworkInterface` keys (namespace, name);
//! - scripted control-plane faults → [`World`] mutators (`apply`, `delete`, `set_labels`,
//!   `set_virtual_ip`, `add_gateway_ip`, ...);
//! - [`crate::api::DataplaneChange`]s → [`BlockChange`]s with dataplane [`Block`]s;
//! - `gateway_status` / `gateway_routing` → the report's [`Status`] and the rows the status
//!   invariant compares with the dataplanes ([`RoutingView`]).
//!
//! Selection, slot arithmetic, stickiness, quarantine and exhaustion all live in `crate::api`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::config::{NicSpec, SimConfig};
use crate::api::{
    ApiError, DataplaneChange, IpFamily, Kind, NatGatewayIp, NetworkInterface, NicVirtualIp,
    Object, ObjectKey, World, WorldConfig,
};
use crate::nat::{Block, Family};
use crate::time::Instant;

/// The control-plane part of a run's configuration: the IronCore API objects the run starts
/// with and the reconciler's knobs.
#[derive(Clone, Debug, Default)]
pub struct ControlConfig {
    /// Public address pools and the block quarantine.
    pub world: WorldConfig,
    /// Networks, VirtualIPs, NATGateways, and the `NetworkInterface`s of simulated NICs that
    /// are not derived from their [`NicSpec`] (e.g. declared in manifests). Every
    /// `NetworkInterface` here must be a simulated NIC (same namespace and name).
    pub objects: Vec<Object>,
    /// The gateway the report's status describes and that gateway faults (`add_nat_ip`,
    /// `remove_nat_ip`, `set_ports_per_nic`, `delete_gateway`) change.
    pub gateway: Option<ObjectKey>,
}

/// Why a scripted control-plane change was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The API refused the change.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A gateway fault, but the run has no gateway.
    #[error("the scenario has no NAT gateway to change")]
    NoGateway,
    /// A NIC index outside the configuration.
    #[error("NIC #{0} does not exist")]
    NoSuchNic(u32),
    /// The configuration is inconsistent.
    #[error("{0}")]
    Config(String),
}

/// A block change for one simulated NIC, ready for `assign_block` / `release_block`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockChange {
    /// The NIC's translations of `family` must stop using `block` at once.
    Released {
        /// NIC index.
        nic: u32,
        /// Family.
        family: Family,
        /// The block it had.
        block: Block,
    },
    /// The NIC may translate into `block` from now on.
    Assigned {
        /// NIC index.
        nic: u32,
        /// The block.
        block: Block,
    },
}

/// `NATGateway.status` (from `World::gateway_status`) plus the routing table (from
/// `World::gateway_routing`) of the run's gateway, in the report's shape.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// `status.portsUsed`: P × number of NICs holding at least one block.
    pub ports_used: u64,
    /// NICs the gateway claims, per family name (zero counts omitted).
    pub requested: BTreeMap<&'static str, u64>,
    /// NICs holding a block, per family name (zero counts omitted).
    pub allocated: BTreeMap<&'static str, u64>,
    /// Per NIC (`namespace/name`), per family, its block.
    pub routing: BTreeMap<String, BTreeMap<&'static str, Block>>,
}

/// One gateway's status as the status invariant sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingView {
    /// The gateway.
    pub gateway: ObjectKey,
    /// `status.portsUsed`.
    pub ports_used: u64,
    /// P.
    pub ports_per_nic: u32,
    /// The routing table: (NIC index, family) → block.
    pub blocks: BTreeMap<(u32, Family), Block>,
}

/// The dataplane family of an API family.
pub fn family(f: IpFamily) -> Family {
    match f {
        IpFamily::IPv4 => Family::V4,
        IpFamily::IPv6 => Family::V6,
    }
}

/// The API family of a dataplane family.
pub fn ip_family(f: Family) -> IpFamily {
    match f {
        Family::V4 => IpFamily::IPv4,
        Family::V6 => IpFamily::IPv6,
    }
}

/// The `NetworkInterface` a simulated NIC stands for when no object is given for it: its
/// labels, its network (by name, in its namespace), its addresses, and an ephemeral VirtualIP
/// when `virtual_ip` is set.
pub fn nic_object(spec: &NicSpec, network: &str) -> NetworkInterface {
    let mut ip_families: Vec<IpFamily> = Vec::new();
    for a in &spec.addresses {
        let f = IpFamily::of(*a);
        if !ip_families.contains(&f) {
            ip_families.push(f);
        }
    }
    NetworkInterface {
        key: ObjectKey::new(spec.namespace.clone(), spec.name.clone()),
        labels: spec.labels.clone(),
        network: network.to_owned(),
        ip_families,
        ips: spec.addresses.clone(),
        virtual_ip: spec.virtual_ip.then_some(NicVirtualIp::Ephemeral),
        deleting: false,
    }
}

/// The reconciler plus the NIC ↔ key maps.
#[derive(Clone, Debug)]
pub struct ControlPlane {
    world: World,
    gateway: Option<ObjectKey>,
    /// Per simulated NIC, the object it is (re)created from.
    nics: Vec<NetworkInterface>,
    by_key: BTreeMap<ObjectKey, u32>,
}

impl ControlPlane {
    /// The control plane of `cfg`, before its first reconcile: every non-NIC object applied,
    /// and the NetworkInterfaces of the NICs present at start.
    pub fn new(cfg: &SimConfig) -> Result<Self, ControlError> {
        let mut given: BTreeMap<ObjectKey, NetworkInterface> = BTreeMap::new();
        let mut others = Vec::new();
        for o in &cfg.control.objects {
            match o {
                Object::NetworkInterface(n) => {
                    given.insert(n.key.clone(), n.clone());
                }
                other => others.push(other.clone()),
            }
        }
        let mut nics = Vec::with_capacity(cfg.nics.len());
        let mut by_key = BTreeMap::new();
        for (i, spec) in cfg.nics.iter().enumerate() {
            let key = ObjectKey::new(spec.namespace.clone(), spec.name.clone());
            let object = match given.remove(&key) {
                Some(o) => o,
                None => {
                    let network = cfg
                        .gateway
                        .networks
                        .get(usize::from(spec.network))
                        .map(|n| n.name.as_str())
                        .ok_or_else(|| {
                            ControlError::Config(format!(
                                "NIC {key}: network #{} does not exist",
                                spec.network
                            ))
                        })?;
                    nic_object(spec, network)
                }
            };
            if by_key.insert(key.clone(), i as u32).is_some() {
                return Err(ControlError::Config(format!(
                    "two simulated NICs are NetworkInterface {key}"
                )));
            }
            nics.push(object);
        }
        if let Some(key) = given.keys().next() {
            return Err(ControlError::Config(format!(
                "NetworkInterface {key} is not a simulated NIC"
            )));
        }
        let mut world = World::new(cfg.control.world.clone());
        for o in others {
            world.apply(o)?;
        }
        for (spec, object) in cfg.nics.iter().zip(&nics) {
            if spec.present {
                world.apply(Object::NetworkInterface(object.clone()))?;
            }
        }
        Ok(ControlPlane {
            world,
            gateway: cfg.control.gateway.clone(),
            nics,
            by_key,
        })
    }

    /// The API store (read-only: changes go through the methods below).
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The run's gateway, if any.
    pub fn gateway(&self) -> Option<&ObjectKey> {
        self.gateway.as_ref()
    }

    /// The API key of a simulated NIC.
    pub fn key(&self, nic: u32) -> Option<&ObjectKey> {
        self.nics.get(nic as usize).map(|n| &n.key)
    }

    /// Reconciles at `now`: the block changes to apply to the dataplanes and when to
    /// reconcile again (a quarantine ends).
    pub fn reconcile(&mut self, now: Instant) -> (Vec<BlockChange>, Option<Instant>) {
        let out = self.world.reconcile(now);
        let changes = out
            .changes
            .iter()
            .filter_map(|c| self.block_change(c))
            .collect();
        (changes, out.next_deadline)
    }

    fn block_change(&self, c: &DataplaneChange) -> Option<BlockChange> {
        // Every NetworkInterface in the world is a simulated NIC (checked in `new`).
        let nic = *self.by_key.get(c.nic())?;
        Some(match *c {
            DataplaneChange::BlockReleased {
                family: f,
                ip,
                port,
                end_port,
                ..
            } => BlockChange::Released {
                nic,
                family: family(f),
                block: Block {
                    nat_ip: ip,
                    port,
                    end_port,
                },
            },
            DataplaneChange::BlockAssigned {
                ip, port, end_port, ..
            } => BlockChange::Assigned {
                nic,
                block: Block {
                    nat_ip: ip,
                    port,
                    end_port,
                },
            },
        })
    }

    fn nic_key(&self, nic: u32) -> Result<ObjectKey, ControlError> {
        self.key(nic).cloned().ok_or(ControlError::NoSuchNic(nic))
    }

    fn gateway_key(&self) -> Result<ObjectKey, ControlError> {
        self.gateway.clone().ok_or(ControlError::NoGateway)
    }

    /// A NIC declared absent at start is created.
    pub fn add_nic(&mut self, nic: u32) -> Result<(), ControlError> {
        let object = self
            .nics
            .get(nic as usize)
            .cloned()
            .ok_or(ControlError::NoSuchNic(nic))?;
        self.world.apply(Object::NetworkInterface(object))?;
        Ok(())
    }

    /// A NIC is deleted.
    pub fn delete_nic(&mut self, nic: u32) -> Result<(), ControlError> {
        let key = self.nic_key(nic)?;
        self.world.delete(Kind::NetworkInterface, &key)?;
        Ok(())
    }

    /// A NIC's labels are replaced.
    pub fn relabel(
        &mut self,
        nic: u32,
        labels: BTreeMap<String, String>,
    ) -> Result<(), ControlError> {
        let key = self.nic_key(nic)?;
        self.world.set_labels(&key, labels)?;
        Ok(())
    }

    /// A VirtualIP is attached to (`true`) or removed from a NIC. Attaching reuses the NIC's
    /// declared VirtualIP reference when it has one, else an ephemeral VirtualIP.
    pub fn set_virtual_ip(&mut self, nic: u32, attached: bool) -> Result<(), ControlError> {
        let key = self.nic_key(nic)?;
        let vip = attached.then(|| {
            self.nics
                .get(nic as usize)
                .and_then(|n| n.virtual_ip.clone())
                .unwrap_or(NicVirtualIp::Ephemeral)
        });
        self.world.set_virtual_ip(&key, vip)?;
        Ok(())
    }

    /// A named IP is appended to the gateway's `spec.ips` (no addresses: from the pools).
    pub fn add_gateway_ip(
        &mut self,
        name: String,
        addresses: Vec<std::net::IpAddr>,
    ) -> Result<(), ControlError> {
        let gw = self.gateway_key()?;
        self.world
            .add_gateway_ip(&gw, NatGatewayIp { name, addresses })?;
        Ok(())
    }

    /// A named IP is removed from the gateway.
    pub fn remove_gateway_ip(&mut self, name: &str) -> Result<(), ControlError> {
        let gw = self.gateway_key()?;
        self.world.remove_gateway_ip(&gw, name)?;
        Ok(())
    }

    /// The gateway's P changes.
    pub fn set_ports_per_nic(&mut self, p: u32) -> Result<(), ControlError> {
        let gw = self.gateway_key()?;
        self.world.set_ports_per_network_interface(&gw, p)?;
        Ok(())
    }

    /// The gateway is deleted.
    pub fn delete_gateway(&mut self) -> Result<(), ControlError> {
        let gw = self.gateway_key()?;
        self.world.delete(Kind::NatGateway, &gw)?;
        Ok(())
    }

    /// The block a NIC holds for `family`, from whichever gateway routes it.
    pub fn block(&self, nic: u32, f: Family) -> Option<Block> {
        let b = self.world.block(self.key(nic)?, ip_family(f))?;
        Some(Block {
            nat_ip: b.ip,
            port: b.port,
            end_port: b.end_port,
        })
    }

    /// Every reconciled gateway's `portsUsed`, P and routing table, in (namespace, name)
    /// order, read from `World::gateway_status` and `World::gateway_routing`.
    pub fn routing_views(&self) -> Vec<RoutingView> {
        let mut out = Vec::new();
        for (key, spec) in self.world.gateways() {
            let (Some(status), Some(routing)) = (
                self.world.gateway_status(key),
                self.world.gateway_routing(key),
            ) else {
                continue;
            };
            let mut blocks = BTreeMap::new();
            for d in routing.destinations {
                // Routing names NICs in the gateway's namespace.
                let Some(&nic) = self.by_key.get(&key.sibling(&d.name)) else {
                    continue;
                };
                for ip in d.ips {
                    blocks.insert(
                        (nic, Family::of(&ip.ip)),
                        Block {
                            nat_ip: ip.ip,
                            port: ip.port,
                            end_port: ip.end_port,
                        },
                    );
                }
            }
            out.push(RoutingView {
                gateway: key.clone(),
                ports_used: status.ports_used,
                ports_per_nic: spec.ports_per_network_interface,
                blocks,
            });
        }
        out
    }

    /// The run's gateway's status and routing table ([`Status::default`] when there is none,
    /// e.g. after `delete_gateway`).
    pub fn status(&self) -> Status {
        let Some(key) = &self.gateway else {
            return Status::default();
        };
        let (Some(status), Some(routing)) = (
            self.world.gateway_status(key),
            self.world.gateway_routing(key),
        ) else {
            return Status::default();
        };
        let mut st = Status {
            ports_used: status.ports_used,
            ..Status::default()
        };
        for a in &status.allocation {
            let name = family(a.family).name();
            if a.requested > 0 {
                st.requested.insert(name, a.requested as u64);
            }
            if a.allocated > 0 {
                st.allocated.insert(name, a.allocated as u64);
            }
        }
        for d in routing.destinations {
            let nic = key.sibling(&d.name).to_string();
            let entry = st.routing.entry(nic).or_default();
            for ip in d.ips {
                entry.insert(
                    Family::of(&ip.ip).name(),
                    Block {
                        nat_ip: ip.ip,
                        port: ip.port,
                        end_port: ip.end_port,
                    },
                );
            }
        }
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load_str;

    const SCENARIO: &str = "apiVersion: natsim.dev/v1
kind: Scenario
metadata: {name: t}
topology:
  networks: [{name: net, prefixes: [10.0.0.0/24]}]
  nics:
    - {name: a, network: net, addresses: [10.0.0.1]}
    - {name: b, network: net, addresses: [10.0.0.2], virtual_ip: true}
gateway: {network: net, ips: [{name: ip1, addresses: [192.0.2.1]}], ports_per_nic: 32768, selector: {}}
";

    fn config() -> SimConfig {
        load_str(std::path::Path::new("t.yaml"), SCENARIO)
            .expect("loads")
            .sim
    }

    #[test]
    fn derived_nics_follow_their_spec_and_faults_go_through_the_world() {
        let cfg = config();
        let b = nic_object(&cfg.nics[1], "net");
        assert_eq!(b.virtual_ip, Some(NicVirtualIp::Ephemeral));
        assert_eq!(b.ip_families, vec![IpFamily::IPv4]);
        let mut cp = ControlPlane::new(&cfg).expect("builds");
        let (changes, next) = cp.reconcile(Instant::ZERO);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(next, None);
        assert_eq!(cp.block(0, Family::V4).map(|b| b.port), Some(1024));
        // a loses its block to a VirtualIP; b cannot have the quarantined slot yet.
        cp.set_virtual_ip(0, true).expect("attach");
        cp.set_virtual_ip(1, false).expect("detach");
        let (changes, next) = cp.reconcile(Instant::from_secs(1));
        assert!(
            matches!(changes.as_slice(), [BlockChange::Released { nic: 0, .. }]),
            "{changes:?}"
        );
        assert_eq!(next, Some(Instant::from_secs(121)));
        let (changes, _) = cp.reconcile(Instant::from_secs(121));
        assert!(
            matches!(changes.as_slice(), [BlockChange::Assigned { nic: 1, .. }]),
            "{changes:?}"
        );
        let st = cp.status();
        assert_eq!(st.ports_used, 32768);
        assert!(st.routing.contains_key("default/b"));
        let views = cp.routing_views();
        assert_eq!(views.len(), 1);
        assert_eq!(
            views[0].blocks.keys().collect::<Vec<_>>(),
            [&(1, Family::V4)]
        );
    }

    #[test]
    fn an_object_for_a_nic_that_is_not_simulated_is_refused() {
        let mut cfg = config();
        let mut ghost = nic_object(&cfg.nics[0], "net");
        ghost.key = ObjectKey::in_default("ghost");
        cfg.control.objects.push(Object::NetworkInterface(ghost));
        assert!(matches!(
            ControlPlane::new(&cfg),
            Err(ControlError::Config(m)) if m.contains("ghost")
        ));
        cfg.control.objects.clear();
        cfg.control.gateway = None;
        let mut cp = ControlPlane::new(&cfg).expect("builds");
        assert_eq!(cp.set_ports_per_nic(64), Err(ControlError::NoGateway));
    }
}
