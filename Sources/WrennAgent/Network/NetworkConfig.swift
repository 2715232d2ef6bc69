/// Names and addresses the network manager uses; tests use their own prefix and pool.
public struct NetworkConfig: Sendable, Equatable {
    /// Prefix of every namespace and host-side veth this agent creates (e.g. `wrenn-`); stale ones are cleaned at start.
    public var namePrefix: String
    /// Slot address pool (CIDR).
    public var addressing: SlotAddressing
    /// TCP port of envd in the guest.
    public var envdPort: Int

    /// Creates a config; `pool` must be a valid IPv4 CIDR of prefix 8–28.
    public init?(namePrefix: String = "wrenn-", pool: String = "10.200.0.0/16", envdPort: Int = 49983) {
        guard let addressing = SlotAddressing(pool: pool), namePrefix.count <= 6,
              namePrefix.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else { return nil }
        self.namePrefix = namePrefix
        self.addressing = addressing
        self.envdPort = envdPort
    }

    /// Namespace name of a slot.
    public func namespace(slot: Int) -> String { "\(namePrefix)ns-\(slot)" }
    /// Host-side veth name of a slot (≤ 15 characters).
    public func hostVeth(slot: Int) -> String { "\(namePrefix)v\(slot)" }
    /// Veth name inside the namespace.
    public static let namespaceVeth = "veth0"
    /// TAP name inside the namespace.
    public static let tapName = "tap0"

    /// Slot number of a namespace name this agent created, or `nil`.
    public func slot(ofNamespace name: String) -> Int? {
        guard name.hasPrefix("\(namePrefix)ns-") else { return nil }
        return Int(name.dropFirst("\(namePrefix)ns-".count))
    }
}
