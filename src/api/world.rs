//! The in-memory object store: desired objects, plus the reconciled allocation state.
//!
//! Changes (`apply`, `delete`, `set_labels`, ...) only record the desired state and mark
//! what is dirty; [`World::reconcile`](super::World::reconcile) at a virtual time turns that
//! into port blocks and a dataplane diff. A simulator scripts changes and calls `reconcile`
//! at the times it chooses (and at [`World::next_deadline`], when quarantines end).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use thiserror::Error;

use super::model::{
    IpFamily, Kind, NatGateway, NatGatewayIp, Network, NetworkInterface, NicVirtualIp, Object,
    ObjectKey, VirtualIp, valid_ports_per_network_interface,
};
use super::pool::Pools;
use super::slots::{QuarantinedRange, SlotTable};

/// The default `block_quarantine`: how long a released block stays unusable (RFC 6888
/// REQ-8 spirit: longer than any late reply).
pub const DEFAULT_BLOCK_QUARANTINE: Duration = Duration::from_secs(120);

/// Knobs of the control plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorldConfig {
    /// Public address pools.
    pub pools: Pools,
    /// How long a released port block is quarantined before another NIC may get it.
    pub block_quarantine: Duration,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            pools: Pools::default(),
            block_quarantine: DEFAULT_BLOCK_QUARANTINE,
        }
    }
}

/// Why a change to the [`World`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ApiError {
    /// The object does not exist.
    #[error("{kind} {key} not found")]
    NotFound {
        /// Kind looked up.
        kind: Kind,
        /// Key looked up.
        key: ObjectKey,
    },
    /// A field that cannot change after creation was changed.
    #[error(
        "{kind} {key}: {field} is immutable (was `{old}`, got `{new}`); delete and recreate the object instead"
    )]
    Immutable {
        /// Object kind.
        kind: Kind,
        /// Object key.
        key: ObjectKey,
        /// Field path.
        field: &'static str,
        /// Value before.
        old: String,
        /// Value asked for.
        new: String,
    },
    /// A pinned address is already held by another object.
    #[error("{kind} {key}: {field}: address {address} is already used by {holder}")]
    AddressInUse {
        /// Object kind.
        kind: Kind,
        /// Object key.
        key: ObjectKey,
        /// Field path.
        field: String,
        /// The address.
        address: IpAddr,
        /// Who holds it (boxed to keep the error small).
        holder: Box<Holder>,
    },
    /// The object breaks a rule the reconciler depends on.
    #[error("{kind} {key}: {field}: {message}")]
    Invalid {
        /// Object kind.
        kind: Kind,
        /// Object key.
        key: ObjectKey,
        /// Field path.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Who holds a public address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Holder {
    /// A named IP of a gateway, for one family.
    Gateway {
        /// The gateway.
        key: ObjectKey,
        /// The `spec.ips[].name`.
        ip_name: String,
    },
    /// A VirtualIP.
    VirtualIp(ObjectKey),
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Gateway { key, ip_name } => write!(f, "NATGateway {key} (ip `{ip_name}`)"),
            Holder::VirtualIp(key) => write!(f, "VirtualIP {key}"),
        }
    }
}

/// One public IP of a gateway for one family, as reconciled.
#[derive(Clone, Debug)]
pub(crate) struct GatewayIpState {
    pub name: String,
    /// `None` when the pools had no free address (reported as a condition).
    pub address: Option<IpAddr>,
    pub slots: Option<SlotTable>,
}

/// A gateway's allocation state for one family.
#[derive(Clone, Debug, Default)]
pub(crate) struct FamilyState {
    /// In `spec.ips` order: the allocator fills the first IP with a free slot.
    pub ips: Vec<GatewayIpState>,
    /// Routed NICs: NIC → (address, slot).
    pub blocks: BTreeMap<ObjectKey, (IpAddr, u32)>,
    /// Claimed by this gateway but without a block (exhaustion or quarantine).
    pub pending: BTreeSet<ObjectKey>,
    /// Selected, but claimed by an earlier gateway.
    pub conflicts: BTreeSet<ObjectKey>,
}

/// A gateway as last reconciled.
#[derive(Clone, Debug)]
pub(crate) struct GatewayState {
    pub spec: NatGateway,
    pub families: [Option<FamilyState>; 2],
}

/// Which gateway holds a NIC, per family.
#[derive(Clone, Debug)]
pub(crate) struct NicState {
    pub network: ObjectKey,
    pub holders: [Option<ObjectKey>; 2],
}

/// The control-plane store. See the module docs of [`crate::api`] for the semantics.
#[derive(Clone, Debug, Default)]
pub struct World {
    pub(crate) config: WorldConfig,
    // Desired state.
    pub(crate) networks: BTreeMap<ObjectKey, Network>,
    pub(crate) nics: BTreeMap<ObjectKey, NetworkInterface>,
    pub(crate) virtual_ips: BTreeMap<ObjectKey, VirtualIp>,
    pub(crate) gateways: BTreeMap<ObjectKey, NatGateway>,
    pub(crate) nics_by_network: BTreeMap<ObjectKey, BTreeSet<ObjectKey>>,
    /// Addresses pinned by desired objects.
    pub(crate) pinned: BTreeMap<IpAddr, Holder>,
    // Reconciled state.
    pub(crate) state: BTreeMap<ObjectKey, GatewayState>,
    pub(crate) gateways_by_network: BTreeMap<ObjectKey, BTreeSet<ObjectKey>>,
    pub(crate) nic_state: BTreeMap<ObjectKey, NicState>,
    /// Addresses held by reconciled objects (pinned or allocated).
    pub(crate) held: BTreeMap<IpAddr, Holder>,
    pub(crate) vip_addresses: BTreeMap<ObjectKey, IpAddr>,
    /// Quarantined port ranges of addresses that left a table (IP removed, P changed).
    pub(crate) quarantine: BTreeMap<IpAddr, Vec<QuarantinedRange>>,
    // Work for the next reconcile.
    pub(crate) dirty_nics: BTreeSet<ObjectKey>,
    pub(crate) dirty_gateways: BTreeSet<ObjectKey>,
    pub(crate) dirty_vips: BTreeSet<ObjectKey>,
}

impl World {
    /// An empty world.
    pub fn new(config: WorldConfig) -> Self {
        World {
            config,
            ..World::default()
        }
    }

    /// A world holding `objects` (not yet reconciled). The result does not depend on the
    /// order of `objects` as long as they are valid together (see [`super::load`]).
    pub fn from_objects(
        objects: impl IntoIterator<Item = Object>,
        config: WorldConfig,
    ) -> Result<Self, ApiError> {
        let mut world = World::new(config);
        for o in objects {
            world.apply(o)?;
        }
        Ok(world)
    }

    /// The configuration.
    pub fn config(&self) -> &WorldConfig {
        &self.config
    }

    /// Creates or replaces an object (like `kubectl apply`). Takes effect at the next
    /// [`World::reconcile`].
    pub fn apply(&mut self, object: Object) -> Result<(), ApiError> {
        match object {
            Object::Network(n) => {
                self.networks.insert(n.key.clone(), n);
            }
            Object::NetworkInterface(nic) => self.apply_nic(nic)?,
            Object::VirtualIp(vip) => self.apply_virtual_ip(vip)?,
            Object::NatGateway(gw) => self.apply_gateway(gw)?,
        }
        Ok(())
    }

    fn apply_nic(&mut self, nic: NetworkInterface) -> Result<(), ApiError> {
        if let Some(old) = self.nics.get(&nic.key)
            && old.network != nic.network
        {
            return Err(ApiError::Immutable {
                kind: Kind::NetworkInterface,
                key: nic.key.clone(),
                field: "spec.networkRef.name",
                old: old.network.clone(),
                new: nic.network.clone(),
            });
        }
        self.nics_by_network
            .entry(nic.network_key())
            .or_default()
            .insert(nic.key.clone());
        self.dirty_nics.insert(nic.key.clone());
        self.nics.insert(nic.key.clone(), nic);
        Ok(())
    }

    fn apply_virtual_ip(&mut self, vip: VirtualIp) -> Result<(), ApiError> {
        let holder = Holder::VirtualIp(vip.key.clone());
        if let Some(addr) = vip.address {
            if IpFamily::of(addr) != vip.family {
                return Err(ApiError::Invalid {
                    kind: Kind::VirtualIp,
                    key: vip.key.clone(),
                    field: "status.ip",
                    message: format!("{addr} is not an {} address", vip.family),
                });
            }
            self.check_free(addr, &holder, Kind::VirtualIp, &vip.key, "status.ip".into())?;
        }
        self.pinned.retain(|_, h| *h != holder);
        if let Some(addr) = vip.address {
            self.pinned.insert(addr, holder);
        }
        self.dirty_vips.insert(vip.key.clone());
        self.virtual_ips.insert(vip.key.clone(), vip);
        Ok(())
    }

    fn apply_gateway(&mut self, gw: NatGateway) -> Result<(), ApiError> {
        let invalid = |field: &'static str, message: String| ApiError::Invalid {
            kind: Kind::NatGateway,
            key: gw.key.clone(),
            field,
            message,
        };
        if !valid_ports_per_network_interface(gw.ports_per_network_interface) {
            return Err(invalid(
                "spec.portsPerNetworkInterface",
                format!(
                    "{} is not a power of two in 1..=64512",
                    gw.ports_per_network_interface
                ),
            ));
        }
        if gw.ip_families.is_empty() {
            return Err(invalid("spec.ipFamilies", "must not be empty".into()));
        }
        let mut names = BTreeSet::new();
        for ip in &gw.ips {
            if !names.insert(ip.name.as_str()) {
                return Err(invalid(
                    "spec.ips",
                    format!("name `{}` is used twice", ip.name),
                ));
            }
        }
        if let Some(old) = self.gateways.get(&gw.key)
            && old.network != gw.network
        {
            return Err(ApiError::Immutable {
                kind: Kind::NatGateway,
                key: gw.key.clone(),
                field: "spec.networkRef.name",
                old: old.network.clone(),
                new: gw.network.clone(),
            });
        }
        for (i, ip) in gw.ips.iter().enumerate() {
            for (j, addr) in ip.addresses.iter().enumerate() {
                let holder = Holder::Gateway {
                    key: gw.key.clone(),
                    ip_name: ip.name.clone(),
                };
                let field = format!("spec.ips[{i}].addresses[{j}]");
                if !gw.has_family(IpFamily::of(*addr)) {
                    return Err(invalid(
                        "spec.ips",
                        format!("{field}: {addr} is not of a family in ipFamilies"),
                    ));
                }
                self.check_free(*addr, &holder, Kind::NatGateway, &gw.key, field)?;
            }
        }
        self.pinned
            .retain(|_, h| !matches!(h, Holder::Gateway { key, .. } if *key == gw.key));
        for ip in &gw.ips {
            for addr in &ip.addresses {
                self.pinned.insert(
                    *addr,
                    Holder::Gateway {
                        key: gw.key.clone(),
                        ip_name: ip.name.clone(),
                    },
                );
            }
        }
        self.dirty_gateways.insert(gw.key.clone());
        self.gateways.insert(gw.key.clone(), gw);
        Ok(())
    }

    /// Refuses a pinned address that another object pins or holds.
    fn check_free(
        &self,
        addr: IpAddr,
        holder: &Holder,
        kind: Kind,
        key: &ObjectKey,
        field: String,
    ) -> Result<(), ApiError> {
        let same_object = |h: &Holder| match (h, holder) {
            (Holder::Gateway { key: a, .. }, Holder::Gateway { key: b, .. }) => a == b,
            (a, b) => a == b,
        };
        for other in [self.pinned.get(&addr), self.held.get(&addr)]
            .into_iter()
            .flatten()
        {
            if !same_object(other) {
                return Err(ApiError::AddressInUse {
                    kind,
                    key: key.clone(),
                    field,
                    address: addr,
                    holder: Box::new(other.clone()),
                });
            }
        }
        Ok(())
    }

    /// Deletes an object. Takes effect at the next reconcile.
    pub fn delete(&mut self, kind: Kind, key: &ObjectKey) -> Result<(), ApiError> {
        let not_found = || ApiError::NotFound {
            kind,
            key: key.clone(),
        };
        match kind {
            Kind::Network => {
                self.networks.remove(key).ok_or_else(not_found)?;
            }
            Kind::NetworkInterface => {
                let nic = self.nics.remove(key).ok_or_else(not_found)?;
                if let Some(set) = self.nics_by_network.get_mut(&nic.network_key()) {
                    set.remove(key);
                    if set.is_empty() {
                        self.nics_by_network.remove(&nic.network_key());
                    }
                }
                self.dirty_nics.insert(key.clone());
            }
            Kind::VirtualIp => {
                self.virtual_ips.remove(key).ok_or_else(not_found)?;
                let holder = Holder::VirtualIp(key.clone());
                self.pinned.retain(|_, h| *h != holder);
                self.dirty_vips.insert(key.clone());
            }
            Kind::NatGateway => {
                self.gateways.remove(key).ok_or_else(not_found)?;
                self.pinned
                    .retain(|_, h| !matches!(h, Holder::Gateway { key: k, .. } if k == key));
                self.dirty_gateways.insert(key.clone());
            }
        }
        Ok(())
    }

    fn nic_mut(&mut self, key: &ObjectKey) -> Result<&mut NetworkInterface, ApiError> {
        self.dirty_nics.insert(key.clone());
        self.nics.get_mut(key).ok_or_else(|| ApiError::NotFound {
            kind: Kind::NetworkInterface,
            key: key.clone(),
        })
    }

    /// Replaces a NIC's labels (relabelling).
    pub fn set_labels(
        &mut self,
        nic: &ObjectKey,
        labels: BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        self.nic_mut(nic)?.labels = labels;
        Ok(())
    }

    /// Marks a NIC as being deleted (`metadata.deletionTimestamp` set): it is deselected.
    pub fn mark_deleting(&mut self, nic: &ObjectKey) -> Result<(), ApiError> {
        self.nic_mut(nic)?.deleting = true;
        Ok(())
    }

    /// Attaches (`Some`) or removes (`None`) a NIC's VirtualIP.
    pub fn set_virtual_ip(
        &mut self,
        nic: &ObjectKey,
        virtual_ip: Option<NicVirtualIp>,
    ) -> Result<(), ApiError> {
        self.nic_mut(nic)?.virtual_ip = virtual_ip;
        Ok(())
    }

    fn gateway_spec(&self, key: &ObjectKey) -> Result<NatGateway, ApiError> {
        self.gateways
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::NotFound {
                kind: Kind::NatGateway,
                key: key.clone(),
            })
    }

    /// Changes a gateway's P. All its blocks are re-cut at the next reconcile.
    pub fn set_ports_per_network_interface(
        &mut self,
        gateway: &ObjectKey,
        ports_per_network_interface: u32,
    ) -> Result<(), ApiError> {
        let mut gw = self.gateway_spec(gateway)?;
        gw.ports_per_network_interface = ports_per_network_interface;
        self.apply_gateway(gw)
    }

    /// Appends a named IP to a gateway's `spec.ips`.
    pub fn add_gateway_ip(
        &mut self,
        gateway: &ObjectKey,
        ip: NatGatewayIp,
    ) -> Result<(), ApiError> {
        let mut gw = self.gateway_spec(gateway)?;
        gw.ips.push(ip);
        self.apply_gateway(gw)
    }

    /// Removes a named IP from a gateway's `spec.ips`; its blocks are released.
    pub fn remove_gateway_ip(&mut self, gateway: &ObjectKey, name: &str) -> Result<(), ApiError> {
        let mut gw = self.gateway_spec(gateway)?;
        let before = gw.ips.len();
        gw.ips.retain(|ip| ip.name != name);
        if gw.ips.len() == before {
            return Err(ApiError::Invalid {
                kind: Kind::NatGateway,
                key: gateway.clone(),
                field: "spec.ips",
                message: format!("no ip named `{name}`"),
            });
        }
        self.apply_gateway(gw)
    }

    /// Desired networks.
    pub fn networks(&self) -> &BTreeMap<ObjectKey, Network> {
        &self.networks
    }

    /// Desired NICs.
    pub fn network_interfaces(&self) -> &BTreeMap<ObjectKey, NetworkInterface> {
        &self.nics
    }

    /// Desired VirtualIPs.
    pub fn virtual_ips(&self) -> &BTreeMap<ObjectKey, VirtualIp> {
        &self.virtual_ips
    }

    /// Desired gateways.
    pub fn gateways(&self) -> &BTreeMap<ObjectKey, NatGateway> {
        &self.gateways
    }

    /// The reconciled address of a VirtualIP.
    pub fn virtual_ip_address(&self, key: &ObjectKey) -> Option<IpAddr> {
        self.vip_addresses.get(key).copied()
    }

    /// Whether changes are waiting for a reconcile.
    pub fn is_dirty(&self) -> bool {
        !(self.dirty_nics.is_empty()
            && self.dirty_gateways.is_empty()
            && self.dirty_vips.is_empty())
    }
}
