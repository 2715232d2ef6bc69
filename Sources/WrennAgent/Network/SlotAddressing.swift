/// IPv4 addressing of the per-capsule network slots.
///
/// The pool is an IPv4 block (default `10.200.0.0/16`) cut into /30 links, one per slot: for slot `n` the link is
/// `pool + 4n`, the host (root namespace) end of the veth is `+1`, the capsule namespace end is `+2`. The agent
/// reaches the capsule's envd at the namespace end, which DNATs to the guest's fixed address. Slot 0 is never used.
public struct SlotAddressing: Sendable, Equatable {
    /// First address of the pool, as a 32-bit number.
    public var poolBase: UInt32
    /// Prefix length of the pool.
    public var poolPrefix: Int

    /// Creates the addressing for a pool given as `a.b.c.d/prefix`.
    public init?(pool: String) {
        let parts = pool.split(separator: "/")
        guard parts.count == 2, let prefix = Int(parts[1]), (8...28).contains(prefix), let base = IPv4.parse(String(parts[0])) else { return nil }
        let mask: UInt32 = prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix)
        guard base & ~mask == 0 else { return nil }
        self.poolBase = base
        self.poolPrefix = prefix
    }

    /// The pool as CIDR text (the blackhole route).
    public var poolCIDR: String { "\(IPv4.format(poolBase))/\(poolPrefix)" }

    /// Highest usable slot number.
    public var maxSlot: Int { (1 << (32 - poolPrefix)) / 4 - 1 }

    /// Host end of slot `n`'s link.
    public func hostAddress(slot: Int) -> String { IPv4.format(poolBase + UInt32(slot * 4 + 1)) }
    /// Namespace end of slot `n`'s link (where the agent reaches envd).
    public func capsuleAddress(slot: Int) -> String { IPv4.format(poolBase + UInt32(slot * 4 + 2)) }
    /// Prefix length of each link.
    public static let linkPrefix = 30

    /// Guest address inside every namespace (identical in all capsules, so restored clones never collide).
    public static let guestAddress = "169.254.0.21"
    /// TAP (gateway) address inside every namespace.
    public static let tapAddress = "169.254.0.22"
    /// Prefix of the guest/TAP link.
    public static let guestPrefix = 30
    /// Guest MAC (identical in all capsules).
    public static let guestMAC = "02:fc:00:00:00:05"
    /// TAP MAC (identical in all namespaces, so the neighbour entry a restored guest cached stays valid).
    public static let tapMAC = "02:fc:00:00:00:06"
}

/// Round-robin slot allocation: a freed slot is handed out again only after every other free slot has been.
///
/// Lowest-free reuse gave a new capsule the address of the one just destroyed, so a keep-alive connection the agent
/// still pooled to the old capsule's envd hit the new VM and was reset (seen as "envd unreachable" on the first exec
/// after a destroy + create). Rotating through the pool lets such connections idle out long before reuse.
public struct SlotAllocator: Sendable {
    /// Slots in use.
    public private(set) var used: Set<Int>
    /// Highest slot number.
    public let maxSlot: Int
    /// Where the next search starts.
    private var next = 1

    /// Creates an allocator for slots `1...maxSlot` with some already in use.
    public init(maxSlot: Int, used: Set<Int> = []) {
        self.maxSlot = maxSlot
        self.used = used
    }

    /// Takes the next free slot after the last one handed out (wrapping), or `nil` when all are in use.
    public mutating func allocate() -> Int? {
        guard used.count < maxSlot, maxSlot > 0 else { return nil }
        for offset in 0..<maxSlot {
            let slot = (next - 1 + offset) % maxSlot + 1
            if used.insert(slot).inserted {
                next = slot % maxSlot + 1
                return slot
            }
        }
        return nil
    }

    /// Marks a slot as used (re-adoption); returns false if it was already taken.
    @discardableResult
    public mutating func claim(_ slot: Int) -> Bool { used.insert(slot).inserted }

    /// Frees a slot.
    public mutating func release(_ slot: Int) { used.remove(slot) }
}

/// Dotted-quad helpers.
public enum IPv4 {
    /// Parses `a.b.c.d`.
    public static func parse(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".")
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard let octet = UInt8(part) else { return nil }
            value = value << 8 | UInt32(octet)
        }
        return value
    }

    /// Formats a 32-bit address.
    public static func format(_ value: UInt32) -> String {
        "\(value >> 24 & 255).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)"
    }
}
