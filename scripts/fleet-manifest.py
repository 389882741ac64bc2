#!/usr/bin/env python3
"""Writes one manifest file with a Network, a NATGateway (P = 64) and N NetworkInterfaces,
block style, the same shape as `fleet_manifest` in benches/manifest_load.rs.

Used to measure `natsim validate` / `natsim reconcile` on large files (reports/BENCHMARKS.md):

    python3 scripts/fleet-manifest.py 100000 > /tmp/fleet-100k.yaml
"""
import ipaddress
import sys


def main() -> None:
    nics = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    ips = max(1, -(-nics // 1008))  # 1008 blocks of 64 ports per address
    out = sys.stdout
    out.write(
        "apiVersion: networking.ironcore.dev/v1alpha1\nkind: Network\nmetadata:\n  name: net\n"
        "spec:\n  prefixes:\n  - 10.0.0.0/8\n"
    )
    out.write(
        "---\napiVersion: networking.ironcore.dev/v1alpha1\nkind: NATGateway\nmetadata:\n"
        "  name: nat\nspec:\n  type: Public\n  ipFamilies: [IPv4]\n  networkRef:\n    name: net\n"
        "  portsPerNetworkInterface: 64\n  networkInterfaceSelector:\n    matchLabels:\n"
        '      nat: "on"\n  ips:\n'
    )
    for i in range(ips):
        out.write(f"  - name: ip{i}\n")
    base = int(ipaddress.IPv4Address("10.0.0.1"))
    for i in range(nics):
        a = ipaddress.IPv4Address(base + i)
        out.write(
            "---\napiVersion: networking.ironcore.dev/v1alpha1\nkind: NetworkInterface\n"
            f'metadata:\n  name: nic-{i:06}\n  labels:\n    nat: "on"\nspec:\n  networkRef:\n'
            f"    name: net\n  ipFamilies: [IPv4]\n  ips:\n  - value: {a}\n"
        )


if __name__ == "__main__":
    main()
