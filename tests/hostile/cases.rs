//! The corpus: hostile inputs for every command, each with its expected exit code and
//! message pieces (`|` separates pieces that must all appear).

use super::Case;

/// A valid manifest; the line numbers in the expectations below refer to it.
const MANIFEST: &str = "\
apiVersion: networking.ironcore.dev/v1alpha1
kind: Network
metadata:
  name: net
spec:
  prefixes: [10.0.0.0/24]
---
apiVersion: networking.ironcore.dev/v1alpha1
kind: NetworkInterface
metadata:
  name: nic-a
  labels:
    app: web
spec:
  networkRef:
    name: net
  ipFamilies: [IPv4]
  ips:
  - value: 10.0.0.1
---
apiVersion: networking.ironcore.dev/v1alpha1
kind: NATGateway
metadata:
  name: nat
spec:
  type: Public
  ipFamilies: [IPv4]
  networkRef:
    name: net
  ips:
  - name: ip1
  portsPerNetworkInterface: 64
  networkInterfaceSelector:
    matchLabels:
      app: web
";

/// A small valid scenario that captures a link.
const SCENARIO: &str = include_str!("../../scenarios/tcp-basic.yaml");

fn mutate(from: &str, to: &str) -> String {
    assert!(MANIFEST.contains(from), "{from}");
    MANIFEST.replacen(from, to, 1)
}

/// Every case.
pub fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    manifest_cases(&mut all);
    pool_cases(&mut all);
    output_cases(&mut all);
    check_cases(&mut all);
    usage_cases(&mut all);
    scenario_cases(&mut all);
    all
}

/// `natsim validate` on broken manifests: exit 1 (a failing verdict, README "Exit codes"),
/// every finding with file:line and field.
fn manifest_cases(all: &mut Vec<Case>) {
    let m: &[(&str, &str, &str, &str)] = &[
        // (name, from, to, expected pieces)
        (
            "ports-quoted-string",
            "portsPerNetworkInterface: 64",
            "portsPerNetworkInterface: \"64\"",
            "m.yaml:32:|spec.portsPerNetworkInterface|quoted string",
        ),
        (
            "ports-single-quoted",
            "portsPerNetworkInterface: 64",
            "portsPerNetworkInterface: '64'",
            "m.yaml:32:|quoted string",
        ),
        (
            "ports-zero",
            "portsPerNetworkInterface: 64",
            "portsPerNetworkInterface: 0",
            "m.yaml:32:|spec.portsPerNetworkInterface",
        ),
        (
            "ports-negative",
            "portsPerNetworkInterface: 64",
            "portsPerNetworkInterface: -64",
            "m.yaml:32:|spec.portsPerNetworkInterface",
        ),
        (
            "ports-65536",
            "portsPerNetworkInterface: 64",
            "portsPerNetworkInterface: 65536",
            "m.yaml:32:|spec.portsPerNetworkInterface",
        ),
        (
            "ports-huge",
            "portsPerNetworkInterface: 64",
            "portsPerNetworkInterface: 99999999999999999999999",
            "m.yaml:32:|spec.portsPerNetworkInterface",
        ),
        (
            "ports-not-power-of-two",
            "portsPerNetworkInterface: 64",
            "portsPerNetworkInterface: 63",
            "m.yaml:32:|spec.portsPerNetworkInterface",
        ),
        (
            "ports-float",
            "portsPerNetworkInterface: 64",
            "portsPerNetworkInterface: 64.5",
            "m.yaml:32:|not a whole number",
        ),
        (
            "ports-bool",
            "portsPerNetworkInterface: 64",
            "portsPerNetworkInterface: true",
            "m.yaml:32:|not a whole number",
        ),
        (
            "ports-list",
            "portsPerNetworkInterface: 64",
            "portsPerNetworkInterface: [64]",
            "m.yaml:32:|spec.portsPerNetworkInterface",
        ),
        (
            "ports-word",
            "portsPerNetworkInterface: 64",
            "portsPerNetworkInterface: lots",
            "m.yaml:32:|not a whole number",
        ),
        (
            "kind-unknown",
            "kind: NATGateway",
            "kind: NatGateway",
            "m.yaml:22:|kind|unknown kind",
        ),
        (
            "kind-missing",
            "kind: NATGateway\n",
            "",
            "m.yaml:21:|kind|missing",
        ),
        (
            "api-version-wrong",
            "apiVersion: networking.ironcore.dev/v1alpha1\nkind: NATGateway",
            "apiVersion: v1\nkind: NATGateway",
            "m.yaml:21:|apiVersion|unsupported",
        ),
        (
            "name-uppercase",
            "name: nat\n",
            "name: NAT\n",
            "m.yaml:24:|metadata.name",
        ),
        (
            "name-too-long",
            "name: nat\n",
            "name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
            "m.yaml:24:|metadata.name",
        ),
        (
            "name-number",
            "name: nat\n",
            "name: 42\n",
            "m.yaml:24:|metadata.name|not a string|such as \"42\"",
        ),
        (
            "name-bool",
            "name: nat\n",
            "name: true\n",
            "m.yaml:24:|metadata.name|not a string",
        ),
        (
            "label-value-number",
            "    app: web\n",
            "    app: 1\n",
            "m.yaml:13:|metadata.labels.app|not a string",
        ),
        (
            "network-ref-name-number",
            "    name: net\n  ipFamilies",
            "    name: 7\n  ipFamilies",
            "m.yaml:16:|spec.networkRef.name|not a string",
        ),
        (
            "name-quoted-number-is-a-string",
            "name: nat\n",
            "name: \"42\"\n",
            "ok: 0 error(s)",
        ),
        (
            "custom-tag-on-value",
            "name: nat\n",
            "name: !foo nat\n",
            "m.yaml:24:|metadata.name|unsupported tag `!foo`|remove the tag",
        ),
        (
            "custom-tag-on-mapping",
            "spec:\n  type: Public",
            "spec: !secret\n  type: Public",
            // The parser reports a tagged collection at its first entry, one line down.
            "m.yaml:26:|spec.type|unsupported tag `!secret`",
        ),
        (
            "custom-tag-on-sequence-item",
            "  - name: ip1\n",
            "  - !ip\n    name: ip1\n",
            "m.yaml:32:|spec.ips[0]|unsupported tag `!ip`",
        ),
        (
            "python-object-tag",
            "name: nat\n",
            "name: !!python/object:os.system nat\n",
            "m.yaml:24:|unsupported tag",
        ),
        (
            "tag-on-field-name",
            "  type: Public\n",
            "  !foo type: Public\n",
            "m.yaml:26:|tag",
        ),
        (
            "standard-str-tag-is-fine",
            "name: nat\n",
            "name: !!str nat\n",
            "ok: 0 error(s)",
        ),
        (
            "name-missing",
            "  name: nat\n",
            "  labels: {}\n",
            "metadata.name|missing",
        ),
        (
            "duplicate-key",
            "  type: Public\n",
            "  type: Public\n  type: Public\n",
            "m.yaml:27:|duplicate|each key may appear once",
        ),
        (
            "unknown-field",
            "  type: Public\n",
            "  type: Public\n  colour: blue\n",
            "m.yaml:27:|colour",
        ),
        (
            "type-private",
            "type: Public",
            "type: Private",
            "m.yaml:26:|spec.type",
        ),
        (
            "family-lowercase",
            "  ipFamilies: [IPv4]\n  networkRef:\n    name: net\n  ips:",
            "  ipFamilies: [ipv4]\n  networkRef:\n    name: net\n  ips:",
            "m.yaml:27:|spec.ipFamilies",
        ),
        (
            "family-ipv5",
            "  ipFamilies: [IPv4]\n  networkRef:\n    name: net\n  ips:",
            "  ipFamilies: [IPv5]\n  networkRef:\n    name: net\n  ips:",
            "m.yaml:27:|spec.ipFamilies",
        ),
        (
            "nic-address-garbage",
            "value: 10.0.0.1",
            "value: 10.0.0.256",
            "m.yaml:19:|spec.ips[0].value",
        ),
        (
            "nic-address-prefix",
            "value: 10.0.0.1",
            "value: 10.0.0.1/24",
            "m.yaml:19:|spec.ips[0].value",
        ),
        (
            "nic-address-v6-in-v4-nic",
            "value: 10.0.0.1",
            "value: \"fd00::1\"",
            "m.yaml:19:|spec.ips[0].value",
        ),
        (
            "nic-outside-network-prefix",
            "value: 10.0.0.1",
            "value: 10.9.9.9",
            "m.yaml:19:|spec.ips[0].value|outside every prefix of Network default/net",
        ),
        (
            "network-ref-unknown",
            "    name: net\n  ipFamilies: [IPv4]\n  ips:\n  - value",
            "    name: nett\n  ipFamilies: [IPv4]\n  ips:\n  - value",
            "m.yaml:16:|spec.networkRef.name|not found",
        ),
        (
            "network-prefix-host-bits",
            "prefixes: [10.0.0.0/24]",
            "prefixes: [10.0.0.1/24]",
            "m.yaml:6:|spec.prefixes[0]",
        ),
        (
            "network-prefix-garbage",
            "prefixes: [10.0.0.0/24]",
            "prefixes: [banana]",
            "m.yaml:6:|spec.prefixes[0]",
        ),
        (
            "nat-ip-is-nic-private-address",
            "  - name: ip1\n",
            "  - name: ip1\n    addresses: [10.0.0.1]\n",
            "m.yaml:32:|spec.ips[0].addresses[0]|private address of NetworkInterface default/nic-a",
        ),
        (
            "pinned-address-garbage",
            "  - name: ip1\n",
            "  - name: ip1\n    addresses: [not-an-ip]\n",
            "m.yaml:32:|spec.ips[0].addresses[0]",
        ),
        (
            "ip-name-duplicate",
            "  - name: ip1\n",
            "  - name: ip1\n  - name: ip1\n",
            "m.yaml:32:|spec.ips[1].name",
        ),
        (
            "selector-bad-operator",
            "    matchLabels:\n      app: web\n",
            "    matchExpressions:\n    - {key: app, operator: Like, values: [web]}\n",
            "m.yaml:35:|operator",
        ),
        (
            "tab-indentation",
            "  name: nat\n",
            "\tname: nat\n",
            "m.yaml:24:",
        ),
        (
            "unterminated-quote",
            "name: nat\n",
            "name: \"nat\n",
            "m.yaml:",
        ),
        (
            "unclosed-bracket",
            "ipFamilies: [IPv4]\n  networkRef:\n    name: net\n  ips:",
            "ipFamilies: [IPv4\n  networkRef:\n    name: net\n  ips:",
            "m.yaml:",
        ),
        (
            "document-is-a-list",
            "apiVersion: networking.ironcore.dev/v1alpha1\nkind: Network\n",
            "- a\n- b\n---\napiVersion: networking.ironcore.dev/v1alpha1\nkind: Network\n",
            "m.yaml:1:",
        ),
        (
            "document-is-a-scalar",
            "apiVersion: networking.ironcore.dev/v1alpha1\nkind: Network\n",
            "hello\n---\napiVersion: networking.ironcore.dev/v1alpha1\nkind: Network\n",
            "m.yaml:1:",
        ),
        (
            "deletion-timestamp-empty",
            "  name: nic-a\n",
            "  name: nic-a\n  deletionTimestamp: \"\"\n",
            "m.yaml:12:|metadata.deletionTimestamp",
        ),
    ];
    for (name, from, to, expect) in m {
        let text = mutate(from, to);
        let ok = expect.starts_with("ok:");
        all.push(
            Case::new(
                &format!("validate-{name}"),
                &["validate", "m.yaml"],
                if ok { 0 } else { 1 },
                expect,
            )
            .file("m.yaml", text),
        );
    }
    // Same inputs through `reconcile`: findings on stderr, nothing reconciled, exit 1.
    for (name, from, to, expect) in m.iter().filter(|c| !c.3.starts_with("ok:")).take(12) {
        let text = mutate(from, to);
        all.push(
            Case::new(
                &format!("reconcile-{name}"),
                &["reconcile", "m.yaml"],
                1,
                expect,
            )
            .file("m.yaml", text),
        );
    }
    let alias_bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\ni: [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    all.push(
        Case::new(
            "validate-alias-bomb",
            &["validate", "bomb.yaml"],
            1,
            "bomb.yaml:",
        )
        .file("bomb.yaml", alias_bomb),
    );
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    all.push(
        Case::new(
            "validate-deep-nesting",
            &["validate", "deep.yaml"],
            1,
            "deep.yaml:",
        )
        .file("deep.yaml", deep),
    );
    all.push(
        Case::new(
            "validate-empty-file",
            &["validate", "e.yaml"],
            0,
            "e.yaml:1:1|no documents",
        )
        .file("e.yaml", ""),
    );
    all.push(
        Case::new(
            "validate-only-comments",
            &["validate", "e.yaml"],
            0,
            "no documents",
        )
        .file("e.yaml", "# nothing\n---\n# more\n"),
    );
    all.push(
        Case::new(
            "validate-binary",
            &["validate", "b.yaml"],
            2,
            "b.yaml|cannot read",
        )
        .file("b.yaml", [0xff, 0xfe, 0x00, 0x01, 0x80]),
    );
    all.push(Case::new(
        "validate-missing-file",
        &["validate", "nope.yaml"],
        2,
        "nope.yaml|cannot read",
    ));
    all.push(
        Case::new(
            "validate-folder-as-file",
            &["validate", "d"],
            2,
            "cannot read",
        )
        .file("d/", ""),
    );
    all.push(
        Case::new(
            "validate-second-file-line-numbers",
            &["validate", "ok.yaml", "m.yaml"],
            1,
            "m.yaml:32:|quoted string",
        )
        .file("ok.yaml", MANIFEST)
        .file(
            "m.yaml",
            mutate(
                "portsPerNetworkInterface: 64",
                "portsPerNetworkInterface: \"64\"",
            ),
        ),
    );
    all.push(
        Case::new(
            "validate-duplicate-objects-across-files",
            &["validate", "a.yaml", "b.yaml"],
            1,
            "b.yaml:4:3:|duplicate object|first defined as Network default/net (a.yaml:2)",
        )
        .file("a.yaml", MANIFEST)
        .file("b.yaml", MANIFEST),
    );
    // Many documents with an error deep in the file: the line is still exact.
    let mut many = String::from(MANIFEST);
    for i in 0..2000 {
        many.push_str(&format!("---\napiVersion: networking.ironcore.dev/v1alpha1\nkind: NetworkInterface\nmetadata:\n  name: n{i}\nspec:\n  networkRef: {{name: net}}\n  ipFamilies: [IPv4]\n  ips: [{{value: 10.0.{}.{}}}]\n", i / 200, i % 200 + 2));
    }
    let lines = many.lines().count();
    many.push_str("---\napiVersion: networking.ironcore.dev/v1alpha1\nkind: Network\nmetadata:\n  name: late\n  colour: red\n");
    all.push(
        Case::new(
            "validate-error-after-2000-documents",
            &["validate", "many.yaml"],
            1,
            &format!("many.yaml:{}:|colour", lines + 6),
        )
        .file("many.yaml", many),
    );
    all.push(
        Case::new(
            "validate-valid",
            &["validate", "m.yaml"],
            0,
            "ok: 0 error(s)",
        )
        .file("m.yaml", MANIFEST),
    );
    all.push(
        Case::new(
            "reconcile-valid",
            &["reconcile", "m.yaml"],
            0,
            "kind: NATGatewayRouting",
        )
        .file("m.yaml", MANIFEST),
    );
}

/// `natsim reconcile --pool`: prefixes that cannot be public pools are refused by name.
fn pool_cases(all: &mut Vec<Case>) {
    let pools: &[(&str, &str, &str)] = &[
        ("host-bits", "203.0.113.5/24", "host bits|203.0.113.0/24"),
        ("everything-v4", "0.0.0.0/0", "whole address space"),
        ("everything-v6", "::/0", "whole address space"),
        ("loopback", "127.0.0.0/8", "loopback"),
        ("loopback-host", "127.0.0.1/32", "loopback"),
        ("loopback-v6", "::1/128", "loopback"),
        ("multicast", "224.0.0.0/24", "multicast"),
        ("multicast-v6", "ff02::/16", "multicast"),
        ("link-local", "169.254.0.0/16", "link-local"),
        ("link-local-v6", "fe80::/64", "link-local"),
        ("this-network", "0.0.0.0/8", "this network"),
        ("reserved", "240.0.0.0/8", "reserved"),
        ("broadcast", "255.255.255.255/32", "reserved"),
        ("v4-mapped", "::ffff:0:0/112", "IPv4-mapped"),
        (
            "covers-special-purpose",
            "128.0.0.0/1",
            "special-purpose address registry",
        ),
        (
            "network-own-prefix",
            "10.0.0.0/24",
            "Network default/net spec.prefixes 10.0.0.0/24",
        ),
        (
            "inside-network-prefix",
            "10.0.0.0/28",
            "Network default/net spec.prefixes",
        ),
        ("not-a-prefix", "banana", "invalid value 'banana'"),
    ];
    for (name, pool, expect) in pools {
        all.push(
            Case::new(
                &format!("reconcile-pool-{name}"),
                &["reconcile", "m.yaml", "--pool", pool],
                2,
                expect,
            )
            .file("m.yaml", MANIFEST),
        );
    }
    let no_prefix = MANIFEST.replacen("spec:\n  prefixes: [10.0.0.0/24]\n", "", 1);
    all.push(
        Case::new(
            "reconcile-pool-contains-nic-address",
            &["reconcile", "m.yaml", "--pool", "10.0.0.0/30"],
            2,
            "10.0.0.1, the private address of NetworkInterface default/nic-a",
        )
        .file("m.yaml", no_prefix),
    );
    all.push(
        Case::new(
            "reconcile-pool-ok",
            &["reconcile", "m.yaml", "--pool", "198.51.100.0/24"],
            0,
            "198.51.100.1",
        )
        .file("m.yaml", MANIFEST),
    );
}

/// Outputs: full disks and closed outputs are reported, output paths are checked before the
/// work, and nothing partial is left.
fn output_cases(all: &mut Vec<Case>) {
    let full = "error: writing standard output";
    all.push(Case::new("demo-stdout-full", &["demo"], 2, full).stdout_full());
    all.push(
        Case::new(
            "demo-aws-stdout-full",
            &["demo", "--profile", "aws"],
            2,
            full,
        )
        .stdout_full(),
    );
    all.push(Case::new("schema-stdout-full", &["schema"], 2, full).stdout_full());
    all.push(
        Case::new("validate-stdout-full", &["validate", "m.yaml"], 2, full)
            .file("m.yaml", MANIFEST)
            .stdout_full(),
    );
    all.push(
        Case::new(
            "validate-invalid-stdout-full",
            &["validate", "m.yaml"],
            2,
            full,
        )
        .file("m.yaml", mutate("kind: NATGateway", "kind: Nat"))
        .stdout_full(),
    );
    all.push(
        Case::new("reconcile-stdout-full", &["reconcile", "m.yaml"], 2, full)
            .file("m.yaml", MANIFEST)
            .stdout_full(),
    );
    all.push(
        Case::new("run-stdout-full", &["run", "s.yaml"], 2, full)
            .file("s.yaml", SCENARIO)
            .stdout_full(),
    );
    all.push(
        Case::new("check-stdout-full", &["check", "d"], 2, full)
            .file("d/s.yaml", SCENARIO)
            .stdout_full(),
    );
    all.push(
        Case::new(
            "swarm-stdout-full",
            &["swarm", "--seeds", "1", "--out", "f"],
            2,
            full,
        )
        .stdout_full(),
    );
    all.push(
        Case::new(
            "swarm-reproduce-stdout-full",
            &["swarm", "--reproduce", "s.yaml"],
            2,
            full,
        )
        .file("s.yaml", SCENARIO)
        .stdout_full(),
    );
    // Output files written completely or not at all.
    all.push(
        Case::new(
            "schema-out-file",
            &["schema", "--out", "schema.json"],
            0,
            "",
        )
        .output("schema.json"),
    );
    all.push(Case::new("schema-out-folder", &["schema", "--out", "d"], 2, "d").file("d/", ""));
    all.push(Case::new(
        "schema-out-missing-folder",
        &["schema", "--out", "no/such/schema.json"],
        2,
        "writing no/such/schema.json",
    ));
    all.push(Case::new(
        "schema-out-dev-full",
        &["schema", "--out", "/dev/full"],
        2,
        "No space left on device",
    ));
    all.push(
        Case::new(
            "run-json-and-pcap",
            &["run", "s.yaml", "--json", "r.json", "--pcap-dir", "caps"],
            0,
            "pcapng: caps/s-seed1.pcapng",
        )
        .file("s.yaml", SCENARIO)
        .output("r.json")
        .output("caps/")
        .output("caps/s-seed1.pcapng"),
    );
    all.push(
        Case::new(
            "run-json-is-folder",
            &["run", "s.yaml", "--json", "d"],
            2,
            "output d: is a folder",
        )
        .file("s.yaml", SCENARIO)
        .file("d/", ""),
    );
    all.push(
        Case::new(
            "run-json-missing-folder",
            &["run", "s.yaml", "--json", "no/r.json"],
            2,
            "output no/r.json: folder no does not exist",
        )
        .file("s.yaml", SCENARIO),
    );
    all.push(
        Case::new(
            "run-json-dev-full",
            &["run", "s.yaml", "--json", "/dev/full"],
            2,
            "No space left on device",
        )
        .file("s.yaml", SCENARIO),
    );
    all.push(
        Case::new(
            "run-pcap-dir-is-file",
            &["run", "s.yaml", "--pcap-dir", "f"],
            2,
            "output f: exists and is not a folder",
        )
        .file("s.yaml", SCENARIO)
        .file("f", "x"),
    );
    all.push(
        Case::new(
            "run-pcap-dir-under-file",
            &["run", "s.yaml", "--pcap-dir", "f/caps"],
            2,
            "is not a folder",
        )
        .file("s.yaml", SCENARIO)
        .file("f", "x"),
    );
    all.push(
        Case::new(
            "check-junit-is-folder",
            &["check", "d", "--junit", "j"],
            2,
            "output j: is a folder",
        )
        .file("d/s.yaml", SCENARIO)
        .file("j/", ""),
    );
    all.push(
        Case::new(
            "check-junit-missing-folder",
            &["check", "d", "--junit", "no/j.xml"],
            2,
            "folder no does not exist",
        )
        .file("d/s.yaml", SCENARIO),
    );
    all.push(
        Case::new(
            "check-junit-dev-full",
            &["check", "d", "--junit", "/dev/full"],
            2,
            "No space left on device",
        )
        .file("d/s.yaml", SCENARIO),
    );
    all.push(
        Case::new(
            "check-junit-ok",
            &["check", "d", "--junit", "j.xml"],
            0,
            "1 scenarios, 0 failed",
        )
        .file("d/s.yaml", SCENARIO)
        .output("j.xml"),
    );
    all.push(
        Case::new(
            "swarm-out-is-file",
            &["swarm", "--seeds", "1", "--out", "f"],
            2,
            "output f: exists and is not a folder",
        )
        .file("f", "x"),
    );
    all.push(
        Case::new(
            "plan-out-is-file",
            &["plan", "p.yaml", "--out", "f"],
            2,
            "output f: exists and is not a folder",
        )
        .file("f", "x")
        .file("p.yaml", "x: 1\n"),
    );
    all.push(
        Case::new(
            "replay-out-is-file",
            &["replay", "c.pcap", "--out", "f"],
            2,
            "output f: exists and is not a folder",
        )
        .file("f", "x")
        .file("c.pcap", "x"),
    );
}

/// `natsim check`: an empty selection fails.
fn check_cases(all: &mut Vec<Case>) {
    all.push(
        Case::new(
            "check-empty-folder",
            &["check", "d"],
            2,
            "d: no scenario files|nothing was checked",
        )
        .file("d/", ""),
    );
    all.push(
        Case::new(
            "check-only-subfolders",
            &["check", "d"],
            2,
            "subfolders are not searched|natsim check d/sub",
        )
        .file("d/sub/s.yaml", SCENARIO),
    );
    all.push(
        Case::new(
            "check-only-other-extensions",
            &["check", "d"],
            2,
            "no scenario files",
        )
        .file("d/s.json", "{}")
        .file("d/README.md", "x"),
    );
    all.push(Case::new(
        "check-missing-folder",
        &["check", "nope"],
        2,
        "nope",
    ));
    all.push(
        Case::new("check-file-not-folder", &["check", "s.yaml"], 2, "s.yaml")
            .file("s.yaml", SCENARIO),
    );
    all.push(
        Case::new(
            "check-bad-scenario",
            &["check", "d"],
            2,
            "BAD INPUT d/bad.yaml|1 failed",
        )
        .file("d/bad.yaml", "kind: Scenario\nbogus: 1\n"),
    );
}

/// Command-line usage errors: exit 2 from the argument parser or the command.
fn usage_cases(all: &mut Vec<Case>) {
    let u: &[(&str, &[&str], &str)] = &[
        (
            "swarm-jobs-zero",
            &["swarm", "--seeds", "1", "--jobs", "0"],
            "0 worker threads",
        ),
        (
            "swarm-jobs-negative",
            &["swarm", "--seeds", "1", "--jobs", "-1"],
            "'-1'",
        ),
        (
            "swarm-jobs-word",
            &["swarm", "--seeds", "1", "--jobs", "many"],
            "not a number of threads",
        ),
        (
            "plan-jobs-zero",
            &["plan", "p.yaml", "--out", "o", "--jobs", "0"],
            "0 worker threads",
        ),
        (
            "swarm-seeds-empty",
            &["swarm", "--seeds", "5..5"],
            "empty range",
        ),
        (
            "swarm-seeds-reversed",
            &["swarm", "--seeds", "5..1"],
            "empty range",
        ),
        (
            "swarm-seeds-word",
            &["swarm", "--seeds", "abc"],
            "not a seed",
        ),
        (
            "swarm-seeds-overflow",
            &["swarm", "--seeds", "99999999999999999999"],
            "not a seed",
        ),
        ("swarm-no-seeds", &["swarm"], "--seeds"),
        (
            "swarm-broken-unknown",
            &["swarm", "--seeds", "1", "--broken", "nonsense"],
            "nonsense",
        ),
        (
            "swarm-reproduce-missing",
            &["swarm", "--reproduce", "nope.yaml"],
            "nope.yaml",
        ),
        (
            "swarm-from-fuzz-missing",
            &["swarm", "--from-fuzz", "nope.bin", "--out", "f"],
            "reading nope.bin",
        ),
        (
            "demo-unknown-profile",
            &["demo", "--profile", "cisco"],
            "cisco",
        ),
        ("run-missing-file", &["run", "nope.yaml"], "nope.yaml"),
        ("run-no-args", &["run"], "SCENARIO"),
        ("reconcile-no-files", &["reconcile"], "FILES"),
        ("validate-no-files", &["validate"], "FILES"),
        ("unknown-command", &["frobnicate"], "frobnicate"),
        (
            "plan-missing-file",
            &["plan", "nope.yaml", "--out", "o"],
            "nope.yaml",
        ),
        (
            "replay-missing-capture",
            &["replay", "nope.pcap", "--out", "o"],
            "nope.pcap",
        ),
        (
            "replay-bad-inside",
            &["replay", "c.pcap", "--inside", "10.0.0.0/33"],
            "10.0.0.0/33",
        ),
        (
            "replay-bad-speed",
            &["replay", "c.pcap", "--speed", "fast"],
            "fast",
        ),
        (
            "reconcile-pool-missing-value",
            &["reconcile", "m.yaml", "--pool"],
            "--pool",
        ),
        ("run-seed-word", &["run", "s.yaml", "--seed", "x"], "--seed"),
        (
            "run-seed-negative",
            &["run", "s.yaml", "--seed", "-1"],
            "'-1'",
        ),
    ];
    for (name, args, expect) in u {
        all.push(Case::new(name, args, 2, expect));
    }
    all.push(
        Case::new(
            "replay-garbage-capture",
            &["replay", "c.pcap", "--out", "o"],
            2,
            "c.pcap",
        )
        .file("c.pcap", "this is not a capture"),
    );
    all.push(
        Case::new(
            "replay-empty-capture",
            &["replay", "c.pcap", "--out", "o"],
            2,
            "c.pcap",
        )
        .file("c.pcap", ""),
    );
    all.push(
        Case::new(
            "replay-config-unknown-field",
            &["replay", "c.pcap", "--config", "r.yaml", "--out", "o"],
            2,
            "r.yaml:1:",
        )
        .file("c.pcap", "x")
        .file("r.yaml", "colour: red\n"),
    );
    all.push(
        Case::new(
            "plan-empty-file",
            &["plan", "p.yaml", "--out", "o"],
            2,
            "p.yaml",
        )
        .file("p.yaml", ""),
    );
    all.push(
        Case::new(
            "plan-garbage",
            &["plan", "p.yaml", "--out", "o"],
            2,
            "p.yaml",
        )
        .file("p.yaml", "[[[["),
    );
    all.push(
        Case::new(
            "plan-multi-document",
            &["plan", "p.yaml", "--out", "o"],
            2,
            "p.yaml",
        )
        .file("p.yaml", "a: 1\n---\nb: 2\n"),
    );
    all.push(
        Case::new(
            "swarm-from-fuzz-empty-input",
            &["swarm", "--from-fuzz", "in.bin", "--out", "f"],
            0,
            "nothing to write",
        )
        .file("in.bin", ""),
    );
}

/// Scenario files (`run`): malformed YAML and shapes. Only cases that hold on this branch;
/// numbers and names are checked in the scenario loader's own tests.
fn scenario_cases(all: &mut Vec<Case>) {
    let s: &[(&str, &str, &str)] = &[
        ("empty", "", "s.yaml"),
        ("only-comment", "# nothing\n", "s.yaml"),
        ("scalar", "hello\n", "s.yaml"),
        ("list", "- a\n- b\n", "s.yaml:1:"),
        ("binary", "\u{0}\u{1}\u{2}", "s.yaml"),
        (
            "unterminated-quote",
            "apiVersion: \"natsim.dev/v1\nkind: Scenario\n",
            "s.yaml:",
        ),
        ("unclosed-flow", "topology: {networks: [\n", "s.yaml:"),
        ("tab-indent", "topology:\n\tnetworks: []\n", "s.yaml:2:"),
        ("duplicate-key", "seed: 1\nseed: 2\n", "s.yaml:2:"),
        (
            "unknown-top-level",
            "apiVersion: natsim.dev/v1\nkind: Scenario\nbogus: 1\n",
            "s.yaml:3:",
        ),
        (
            "alias-bomb",
            "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
            "s.yaml",
        ),
        ("deep-nesting", "", "s.yaml"),
        ("packet-quotes-nested-deep", "", "s.yaml:"),
        ("packet-padding-huge", "", "packets[0].padding_bytes"),
        ("seed-string", "", "s.yaml"),
        ("wrong-kind", "", "s.yaml"),
    ];
    for (name, text, expect) in s {
        let text = match *name {
            "deep-nesting" => format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
            // An ICMP error quoting an error quoting an error ...: the YAML depth budget
            // refuses it before the crafting recursion sees it.
            "packet-quotes-nested-deep" => {
                let mut q = String::from("{src: web, dst: vm-a, udp: {src_port: 1, dst_port: 2}}");
                for _ in 0..300 {
                    q = format!("{{src: web, dst: vm-a, icmp: {{type: 3, quote: {q}}}}}");
                }
                format!(
                    "{SCENARIO}packets:\n  - {{name: p, from: vm-a, to: web, icmp: {{type: 3, quote: {q}}}}}\n"
                )
            }
            // 8,192 fragments with 64 KiB of padding each would be 512 MiB: refused first.
            "packet-padding-huge" => format!(
                "{SCENARIO}packets:\n  - {{name: p, from: vm-a, to: web, udp: {{src_port: 1, dst_port: 2, payload_bytes: 65000}}, fragments: {{data_bytes: 8}}, padding_bytes: 65535}}\n"
            ),
            "seed-string" => SCENARIO.replacen("seed: 1", "seed: [1]", 1),
            "wrong-kind" => SCENARIO.replacen("kind: Scenario", "kind: Plan", 1),
            _ => (*text).to_owned(),
        };
        all.push(
            Case::new(
                &format!("run-scenario-{name}"),
                &["run", "s.yaml"],
                2,
                expect,
            )
            .file("s.yaml", text),
        );
    }
    // Library hints never reach users.
    all.push(
        Case::new(
            "run-scenario-two-documents",
            &["run", "s.yaml"],
            2,
            "one YAML document",
        )
        .file("s.yaml", format!("{SCENARIO}---\nseed: 2\n")),
    );
    // Errors found after parsing (only the field path known) still name the line.
    all.push(
        Case::new(
            "run-scenario-no-ip-family",
            &["run", "s.yaml"],
            2,
            "s.yaml:26:3: gateway.ip_families|at least one family",
        )
        .file(
            "s.yaml",
            SCENARIO.replacen(
                "  ports_per_nic: 64\n",
                "  ports_per_nic: 64\n  ip_families: []\n",
                1,
            ),
        ),
    );
    all.push(
        Case::new(
            "run-scenario-bad-override",
            &["run", "s.yaml"],
            2,
            "s.yaml:26:3: gateway.overrides|",
        )
        .file(
            "s.yaml",
            SCENARIO.replacen(
                "  ports_per_nic: 64\n",
                "  ports_per_nic: 64\n  overrides: {no_such_knob: 1}\n",
                1,
            ),
        ),
    );
    // Custom YAML tags are refused in every file natsim reads, not silently dropped.
    all.push(
        Case::new(
            "run-scenario-custom-tag",
            &["run", "s.yaml"],
            2,
            "s.yaml:2:|unsupported tag `!foo`",
        )
        .file(
            "s.yaml",
            SCENARIO.replacen("kind: Scenario", "kind: !foo Scenario", 1),
        ),
    );
    all.push(
        Case::new(
            "plan-custom-tag",
            &["plan", "p.yaml", "--out", "o"],
            2,
            "p.yaml:2:|unsupported tag `!foo`",
        )
        .file("p.yaml", "apiVersion: natsim.dev/v1\nkind: !foo Plan\n"),
    );
    all.push(
        Case::new(
            "replay-config-custom-tag",
            &["replay", "c.pcap", "--config", "r.yaml", "--out", "o"],
            2,
            "r.yaml:1:|unsupported tag `!foo`",
        )
        .file("c.pcap", "x")
        .file("r.yaml", "profile: !foo rfc\n"),
    );
    plan_value_cases(all);
    all.push(Case::new("run-valid", &["run", "s.yaml"], 0, "s.yaml").file("s.yaml", SCENARIO));
    truncated_capture_cases(all);
}

/// A capture cut in its last record: replayed up to the cut, exit 2 unless
/// `--allow-truncated`; the outputs written are complete files for the packets read.
fn truncated_capture_cases(all: &mut Vec<Case>) {
    let whole = include_bytes!("../../testdata/pcaps/tcpdump/dns_tcp.pcap");
    let cut = &whole[..whole.len() - 30];
    for (name, extra, exit, expect) in [
        (
            "replay-truncated-capture",
            None,
            2,
            "file truncated|packet index 10|--allow-truncated",
        ),
        (
            "replay-truncated-capture-allowed",
            Some("--allow-truncated"),
            0,
            "capture ended early",
        ),
    ] {
        let mut args = vec!["replay", "c.pcap", "--out", "o"];
        args.extend(extra);
        let mut case = Case::new(name, &args, exit, expect).file("c.pcap", cut);
        for f in [
            "o/",
            "o/inside.pcapng",
            "o/outside.pcapng",
            "o/summary.json",
        ] {
            case = if exit == 0 {
                case.output(f)
            } else {
                case.output_on_failure(f)
            };
        }
        all.push(case);
    }
}

/// A small valid plan: one analytic point.
const PLAN: &str = "apiVersion: natsim.dev/v1
kind: Plan
metadata: {name: small}
fleet:
  nics: 50
  traffic:
    flow_rate_per_s: 1
    flow_duration: {dist: exponential, mean_s: 10}
    destinations: {count: 5, zipf_s: 1.0}
    protocol_mix: {tcp: 1.0}
gateway: {rules: ironcore, ports_per_nic: 2048, ips: 2, profile: dpservice}
target: {blocking_max: 0.01}
";

/// Plan values that type-check as numbers but mean nothing: refused with the line (exit 2),
/// not planned into an "over target" verdict (exit 1).
fn plan_value_cases(all: &mut Vec<Case>) {
    let args: &[&str] = &["plan", "p.yaml", "--out", "o", "--no-sim"];
    all.push(
        Case::new("plan-valid", args, 0, "1 points, 0 over target")
            .file("p.yaml", PLAN)
            .output("o/")
            .output("o/report.json")
            .output("o/report.md"),
    );
    for (name, from, to, expect) in [
        (
            "plan-zero-nics",
            "nics: 50",
            "nics: 0",
            "p.yaml:5:|fleet.nics|at least 1",
        ),
        (
            "plan-quoted-number",
            "flow_rate_per_s: 1",
            "flow_rate_per_s: \"0.5\"",
            "p.yaml:7:|fleet.traffic.flow_rate_per_s|got the string \"0.5\"",
        ),
    ] {
        all.push(Case::new(name, args, 2, expect).file("p.yaml", PLAN.replacen(from, to, 1)));
    }
}
