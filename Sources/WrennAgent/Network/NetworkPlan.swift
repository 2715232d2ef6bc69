/// The exact `ip`/`iptables` argv lists that build and tear down one capsule's network (pure, unit-tested).
public enum NetworkPlan {
    /// Commands that create slot `slot`: namespace, veth pair, TAP, addresses, forwarding, DNAT to the guest.
    ///
    /// No NAT to the outside is set up: the namespace has no default route, so guest traffic can only reach the
    /// host end of its own link.
    public static func setup(_ config: NetworkConfig, slot: Int) -> [[String]] {
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
        ]
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
