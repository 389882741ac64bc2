//! Syntax rules for names, labels, addresses and prefixes. Each check returns the complaint
//! (including what would be valid) or `Ok`.

use std::net::IpAddr;

use ipnet::IpNet;

use super::model::{IpFamily, MAX_PORTS_PER_NETWORK_INTERFACE, USABLE_PORTS};

/// RFC 1123 DNS label: what Kubernetes requires of these object names.
pub fn dns_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a DNS label; valid: 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"
        ))
    }
}

fn label_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && s.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric)
}

fn dns_subdomain_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(|part| dns_label(part).is_ok())
}

/// Kubernetes label key: `[prefix/]name`, prefix a DNS subdomain, name ≤ 63 characters.
pub fn label_key(s: &str) -> Result<(), String> {
    let ok = match s.split_once('/') {
        Some((prefix, name)) => dns_subdomain_ok(prefix) && label_name_ok(name),
        None => label_name_ok(s),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a label key; valid: an optional DNS-subdomain prefix and '/', then 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

/// Kubernetes label value: empty, or like a label name.
pub fn label_value(s: &str) -> Result<(), String> {
    if s.is_empty() || label_name_ok(s) {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a label value; valid: empty, or 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

/// An IP family name.
pub fn family(s: &str) -> Result<IpFamily, String> {
    IpFamily::parse(s).ok_or_else(|| format!("unknown IP family `{s}`; valid: IPv4, IPv6"))
}

/// A single IP address (no prefix length).
pub fn address(s: &str) -> Result<IpAddr, String> {
    s.parse::<IpAddr>().map_err(|_| {
        format!("`{s}` is not an IP address; valid: an IPv4 address like 192.0.2.1 or an IPv6 address like 2001:db8::1")
    })
}

/// A prefix in canonical form (no host bits set).
pub fn prefix(s: &str) -> Result<IpNet, String> {
    let net: IpNet = s.parse().map_err(|_| {
        format!("`{s}` is not a prefix; valid: CIDR notation like 10.0.0.0/24 or fd00::/64")
    })?;
    if net.trunc() != net {
        return Err(format!(
            "`{s}` has host bits set; did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

/// `portsPerNetworkInterface`: a power of two in 1..=64512 (so at most 32768).
pub fn ports_per_network_interface(p: i64) -> Result<u32, String> {
    let valid = format!("valid: a power of two from 1 to {MAX_PORTS_PER_NETWORK_INTERFACE}");
    if p < 1 {
        return Err(format!("{p} is too small; {valid}"));
    }
    if p > i64::from(USABLE_PORTS) {
        return Err(format!(
            "{p} is larger than {USABLE_PORTS}, the usable ports 1024-65535 of one IP, which leaves zero port blocks per IP; {valid}"
        ));
    }
    let p32 = u32::try_from(p).map_err(|_| format!("{p} is out of range; {valid}"))?;
    if !p32.is_power_of_two() {
        let lower = 1u32 << (31 - p32.leading_zeros());
        return Err(format!(
            "{p} is not a power of two; {valid} (nearest: {lower} or {})",
            lower * 2
        ));
    }
    Ok(p32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_follow_kubernetes_syntax() {
        assert!(dns_label("my-nat").is_ok());
        assert!(dns_label("My-nat").is_err());
        assert!(dns_label("-a").is_err());
        assert!(dns_label(&"a".repeat(64)).is_err());
        assert!(label_key("app.kubernetes.io/name").is_ok());
        assert!(label_key("tier").is_ok());
        assert!(label_key("/x").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("a b").is_err());
    }

    #[test]
    fn ports_per_nic_must_be_power_of_two_within_usable_ports() {
        assert_eq!(ports_per_network_interface(64), Ok(64));
        assert_eq!(ports_per_network_interface(32768), Ok(32768));
        let too_big = ports_per_network_interface(65536).unwrap_err();
        assert!(too_big.contains("zero port blocks"), "{too_big}");
        assert!(ports_per_network_interface(0).is_err());
        let odd = ports_per_network_interface(100).unwrap_err();
        assert!(odd.contains("64 or 128"), "{odd}");
    }

    #[test]
    fn prefixes_must_be_canonical() {
        assert!(prefix("10.0.0.0/24").is_ok());
        assert!(prefix("10.0.0.1/24").unwrap_err().contains("10.0.0.0/24"));
        assert!(prefix("10.0.0.0").is_err());
    }
}
