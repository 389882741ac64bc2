//! Provider rules (behaviour §7): how IronCore, GCP, AWS and Azure turn public IPs into capacity.
//!
//! IronCore and GCP carve each IP into fixed per-NIC blocks of P ports; AWS and Azure share every
//! IP's ports across the whole fleet and limit concurrent connections per IP and destination.

use serde::{Deserialize, Serialize};

use super::analytic::{AnalyticError, MAX_POWER_OF_TWO_PORTS, PORTS_PER_IP, check_ports_per_nic};
use super::profiles::ProfileName;

/// GCP: NAT ports per IP.
pub const GCP_PORTS_PER_IP: u32 = 64_512;
/// GCP: default minimum ports per VM.
pub const GCP_DEFAULT_MIN_PORTS_PER_VM: u32 = 64;
/// AWS: concurrent connections per NAT IP per destination (IP, port, protocol).
pub const AWS_CONNECTIONS_PER_IP_PER_DESTINATION: u32 = 55_000;
/// AWS: most IPs on one NAT gateway.
pub const AWS_MAX_IPS: u32 = 8;
/// Azure: SNAT ports per public IP.
pub const AZURE_SNAT_PORTS_PER_IP: u32 = 64_512;
/// Azure: most public IPs on one NAT gateway.
pub const AZURE_MAX_IPS: u32 = 16;
/// Azure: concurrent connections per IP per destination endpoint.
pub const AZURE_CONNECTIONS_PER_IP_PER_DESTINATION: u32 = 50_000;

/// Whose rules turn IPs into capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rules {
    /// IronCore NATGateway: P (power of two) ports per NIC, floor(64512 / P) NICs per IP.
    Ironcore,
    /// Google Cloud NAT with static allocation: per-VM minimum rounded up to a power of two.
    Gcp,
    /// AWS NAT gateway: fleet-wide ports, 55000 connections per IP per destination, ≤ 8 IPs.
    Aws,
    /// Azure NAT gateway: fleet-wide SNAT ports, 50000 per IP per destination, ≤ 16 IPs.
    Azure,
}

/// The numbers behind one provider's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ProviderLimits {
    /// Usable NAT ports per public IP.
    pub ports_per_ip: u32,
    /// True when each NIC gets its own block of P ports (IronCore, GCP).
    pub per_nic_blocks: bool,
    /// Fleet-wide concurrent connections per IP and destination (AWS, Azure).
    pub connections_per_ip_per_destination: Option<u32>,
    /// Most public IPs per gateway, when the provider has a limit.
    pub max_ips: Option<u32>,
    /// The behaviour profile a plan uses under these rules unless it names one.
    pub native_profile: ProfileName,
}

impl Rules {
    /// Every provider, in comparison order.
    pub const ALL: [Rules; 4] = [Rules::Ironcore, Rules::Gcp, Rules::Aws, Rules::Azure];

    /// The name as written in plan files.
    pub fn as_str(self) -> &'static str {
        match self {
            Rules::Ironcore => "ironcore",
            Rules::Gcp => "gcp",
            Rules::Aws => "aws",
            Rules::Azure => "azure",
        }
    }

    /// Parses a plan-file name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The provider's limits.
    pub fn limits(self) -> ProviderLimits {
        match self {
            Rules::Ironcore => ProviderLimits {
                ports_per_ip: PORTS_PER_IP,
                per_nic_blocks: true,
                connections_per_ip_per_destination: None,
                max_ips: None,
                native_profile: ProfileName::Rfc,
            },
            Rules::Gcp => ProviderLimits {
                ports_per_ip: GCP_PORTS_PER_IP,
                per_nic_blocks: true,
                connections_per_ip_per_destination: None,
                max_ips: None,
                native_profile: ProfileName::Gcp,
            },
            Rules::Aws => ProviderLimits {
                ports_per_ip: PORTS_PER_IP,
                per_nic_blocks: false,
                connections_per_ip_per_destination: Some(AWS_CONNECTIONS_PER_IP_PER_DESTINATION),
                max_ips: Some(AWS_MAX_IPS),
                native_profile: ProfileName::Aws,
            },
            Rules::Azure => ProviderLimits {
                ports_per_ip: AZURE_SNAT_PORTS_PER_IP,
                per_nic_blocks: false,
                connections_per_ip_per_destination: Some(AZURE_CONNECTIONS_PER_IP_PER_DESTINATION),
                max_ips: Some(AZURE_MAX_IPS),
                native_profile: ProfileName::Azure,
            },
        }
    }

    /// The ports per NIC these rules really give for a requested `ports_per_nic`:
    /// IronCore requires a power of two; GCP rounds up to one; AWS and Azure have no per-NIC
    /// block (`None`).
    pub fn effective_ports_per_nic(self, ports_per_nic: u64) -> Result<Option<u32>, AnalyticError> {
        match self {
            Rules::Ironcore => check_ports_per_nic(ports_per_nic).map(Some),
            Rules::Gcp => {
                if ports_per_nic == 0 || ports_per_nic > u64::from(MAX_POWER_OF_TWO_PORTS) {
                    return Err(AnalyticError::BadPortsPerNic(ports_per_nic));
                }
                check_ports_per_nic(ports_per_nic.next_power_of_two()).map(Some)
            }
            Rules::Aws | Rules::Azure => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcp_rounds_up_to_power_of_two() {
        assert_eq!(Rules::Gcp.effective_ports_per_nic(64), Ok(Some(64)));
        assert_eq!(Rules::Gcp.effective_ports_per_nic(100), Ok(Some(128)));
        assert!(Rules::Gcp.effective_ports_per_nic(40_000).is_err());
        assert!(Rules::Ironcore.effective_ports_per_nic(100).is_err());
        assert_eq!(Rules::Aws.effective_ports_per_nic(3), Ok(None));
    }
}
