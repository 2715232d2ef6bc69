/// The exact `ip`/`iptables` argv lists that build and tear down one capsule's network (pure, unit-tested).
public enum NetworkPlan {
    /// Commands that create slot `slot`: namespace, veth pair, TAP, addresses, forwarding, DNAT to the guest.
    ///
    /// Without `egress` the namespace has no default route, so guest traffic can only reach the host end of its own
    /// link (and the host drops new connections from there, see ``hostGuards(_:)``). With `egress` the namespace
    /// routes out through the host end and masquerades the guest as the slot address; the host forwards and
    /// masquerades the pool (``hostGuards(_:)``).
    public static func setup(_ config: NetworkConfig, slot: Int, egress: Bool = false) -> [[String]] {
        let ns = config.namespace(slot: slot)
        let veth = config.hostVeth(slot: slot)
        let host = config.addressing.hostAddress(slot: slot)
        let capsule = config.addressing.capsuleAddress(slot: slot)
        let link = "/\(SlotAddressing.linkPrefix)"
        return [
            ["ip", "netns", "add", ns],
            // IPv4 only: no IPv6 link-local chatter on the capsule's links.
            ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"],
            ["ip", "link", "add", veth, "type", "veth", "peer", "name", NetworkConfig.namespaceVeth, "netns", ns],
            ["sysctl", "-qw", "net.ipv6.conf.\(veth).disable_ipv6=1"],
            ["ip", "addr", "add", host + link, "dev", veth],
            ["ip", "link", "set", veth, "up"],
            ["ip", "-n", ns, "link", "set", "lo", "up"],
            ["ip", "-n", ns, "addr", "add", capsule + link, "dev", NetworkConfig.namespaceVeth],
            ["ip", "-n", ns, "link", "set", NetworkConfig.namespaceVeth, "up"],
            ["ip", "-n", ns, "tuntap", "add", "dev", NetworkConfig.tapName, "mode", "tap"],
            ["ip", "-n", ns, "link", "set", NetworkConfig.tapName, "address", SlotAddressing.tapMAC],
            ["ip", "-n", ns, "addr", "add", "\(SlotAddressing.tapAddress)/\(SlotAddressing.guestPrefix)", "dev", NetworkConfig.tapName],
            ["ip", "-n", ns, "link", "set", NetworkConfig.tapName, "up"],
            // No static neighbour entry for the guest on purpose: the namespace's first ARP request is what refreshes
            // a restored guest's cached MAC for the gateway (templates saved with another TAP MAC otherwise stall
            // ~27 s until the guest's entry goes stale; measured).
            ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
            ["ip", "netns", "exec", ns, "iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-i", NetworkConfig.namespaceVeth,
             "-d", capsule, "-j", "DNAT", "--to-destination", SlotAddressing.guestAddress],
        ] + (egress ? [
            ["ip", "-n", ns, "route", "add", "default", "via", host],
            ["ip", "netns", "exec", ns, "iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-o", NetworkConfig.namespaceVeth,
             "-s", SlotAddressing.guestAddress, "-j", "MASQUERADE"],
        ] : [])
    }

    /// Names of this agent's root-namespace iptables chains (per name prefix, so test agents never touch
    /// production rules).
    public static func guardChains(_ config: NetworkConfig) -> (input: String, forward: String, nat: String) {
        let prefix = config.namePrefix.uppercased()
        return (prefix + "IN", prefix + "FWD", prefix + "NAT")
    }

    /// Root-namespace rules, installed at agent start (chains flushed and refilled, jumps added once):
    /// - input: new connections arriving from any capsule veth are dropped, so no guest reaches a service of
    ///   the host (the agent, the control plane, sshd…); replies to the host's own connections still pass.
    /// - forward: capsule → capsule is dropped (no guest reaches another's slot address); capsule → elsewhere and
    ///   the replies are accepted (only egress namespaces have a route out).
    /// - nat: the pool is masqueraded towards anything outside it.
    /// Each inner array is one argv; `ignoreFailure` marks the `-N` that fails when the chain already exists.
    public static func hostGuards(_ config: NetworkConfig) -> [(argv: [String], ignoreFailure: Bool)] {
        let chains = guardChains(config)
        let pool = config.addressing.poolCIDR
        let veths = config.namePrefix + "v+"
        func ipt(_ args: [String]) -> [String] { ["iptables", "-w"] + args }
        return [
            (ipt(["-N", chains.input]), true),
            (ipt(["-F", chains.input]), false),
            (ipt(["-A", chains.input, "-i", veths, "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"]), false),
            (ipt(["-N", chains.forward]), true),
            (ipt(["-F", chains.forward]), false),
            (ipt(["-A", chains.forward, "-i", veths, "-o", veths, "-j", "DROP"]), false),
            (ipt(["-A", chains.forward, "-i", veths, "-s", pool, "-j", "ACCEPT"]), false),
            (ipt(["-A", chains.forward, "-o", veths, "-d", pool, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"]), false),
            (ipt(["-t", "nat", "-N", chains.nat]), true),
            (ipt(["-t", "nat", "-F", chains.nat]), false),
            (ipt(["-t", "nat", "-A", chains.nat, "-s", pool, "!", "-d", pool, "-j", "MASQUERADE"]), false),
        ]
    }

    /// The jumps from the built-in chains into ``guardChains(_:)``: `(table, builtin chain, our chain)`.
    public static func guardJumps(_ config: NetworkConfig) -> [(table: String, chain: String, target: String)] {
        let chains = guardChains(config)
        return [("filter", "INPUT", chains.input), ("filter", "FORWARD", chains.forward), ("nat", "POSTROUTING", chains.nat)]
    }

    /// Commands that remove slot `slot` (deleting the namespace removes the veth pair and the TAP).
    public static func teardown(_ config: NetworkConfig, slot: Int) -> [[String]] {
        [["ip", "netns", "delete", config.namespace(slot: slot)], ["ip", "link", "delete", config.hostVeth(slot: slot)]]
    }

    /// The root-namespace blackhole route for the whole pool (traffic to a torn-down slot dies on the host).
    public static func blackhole(_ config: NetworkConfig) -> [String] {
        ["ip", "route", "replace", "blackhole", config.addressing.poolCIDR]
    }
}
