import Foundation
import Logging
import WrennImage

/// Creates and removes per-capsule network namespaces (veth to the host, TAP for the VM).
///
/// Safety rule: the whole slot pool is blackholed in the root namespace before any slot is created, so traffic to
/// a deleted capsule's address never leaves the machine; the agent only ever talks to addresses inside namespaces
/// it created.
public actor NetworkManager {
    /// Names and addresses.
    public let config: NetworkConfig
    private var allocator: SlotAllocator
    private let logger: Logger

    /// Creates a manager; call ``start(keeping:)`` before allocating.
    public init(config: NetworkConfig, logger: Logger = Logger(label: "wrenn.network")) {
        self.config = config
        self.allocator = SlotAllocator(maxSlot: config.addressing.maxSlot)
        self.logger = logger
    }

    /// Installs the pool blackhole route and the host guards, and removes stale namespaces/veths of this prefix
    /// whose slots are not in `keeping`.
    public func start(keeping: Set<Int>) async throws {
        try await Command(NetworkPlan.blackhole(config)[0], Array(NetworkPlan.blackhole(config).dropFirst())).check()
        try await installHostGuards()
        for slot in keeping { allocator.claim(slot) }
        for slot in try await existingSlots() where !keeping.contains(slot) {
            logger.info("removing stale capsule network", metadata: ["slot": "\(slot)"])
            await teardownCommands(slot: slot)
        }
    }

    /// Slots that currently have a namespace or a host veth of this prefix.
    public func existingSlots() async throws -> Set<Int> {
        var slots: Set<Int> = []
        let namespaces = try await Command("ip", ["netns", "list"]).check().stdoutText
        for line in namespaces.split(separator: "\n") {
            let name = line.split(separator: " ").first.map(String.init) ?? ""
            if let slot = config.slot(ofNamespace: name) { slots.insert(slot) }
        }
        let links = try await Command("ip", ["-o", "link", "show"]).check().stdoutText
        let vethPrefix = "\(config.namePrefix)v"
        for line in links.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 1 else { continue }
            var name = String(fields[1].dropLast())  // "name:" or "name@peer:"
            if let at = name.firstIndex(of: "@") { name = String(name[..<at]) }
            if name.hasPrefix(vethPrefix), let slot = Int(name.dropFirst(vethPrefix.count)) { slots.insert(slot) }
        }
        return slots
    }

    /// Root-namespace filter and NAT rules (``NetworkPlan/hostGuards(_:)``); idempotent.
    private func installHostGuards() async throws {
        for step in NetworkPlan.hostGuards(config) {
            let command = Command(step.argv[0], Array(step.argv.dropFirst()))
            if step.ignoreFailure { _ = try? await command.run() } else { try await command.check() }
        }
        for jump in NetworkPlan.guardJumps(config) {
            let present = try await Command("iptables", ["-w", "-t", jump.table, "-C", jump.chain, "-j", jump.target]).run()
            if present.status != 0 {
                try await Command("iptables", ["-w", "-t", jump.table, "-I", jump.chain, "1", "-j", jump.target]).check()
            }
        }
    }

    /// Whether the host forwards IPv4 already (turned on lazily, by the first capsule with egress).
    private var forwardingEnabled = false

    /// Allocates the lowest free slot and builds its network; `egress` gives the guest a NAT route out.
    public func allocate(egress: Bool = false) async throws -> Int {
        guard let slot = allocator.allocate() else { throw RuntimeError.noFreeSlot }
        do {
            try await setup(slot: slot, egress: egress)
        } catch {
            await teardownCommands(slot: slot)
            allocator.release(slot)
            throw error
        }
        return slot
    }

    /// Makes sure slot `slot` (already owned by a capsule) has its network, rebuilding it if it was lost.
    public func ensure(slot: Int, egress: Bool = false) async throws {
        allocator.claim(slot)
        let exists = try await Command("ip", ["netns", "list"]).check().stdoutText
            .split(separator: "\n").contains { $0.split(separator: " ").first.map(String.init) == config.namespace(slot: slot) }
        if exists { return }
        await teardownCommands(slot: slot)
        try await setup(slot: slot, egress: egress)
    }

    private func setup(slot: Int, egress: Bool) async throws {
        if egress, !forwardingEnabled {
            try await Command("sysctl", ["-qw", "net.ipv4.ip_forward=1"]).check()
            forwardingEnabled = true
        }
        for argv in NetworkPlan.setup(config, slot: slot, egress: egress) {
            try await Command(argv[0], Array(argv.dropFirst())).check()
        }
    }

    /// Removes slot `slot`'s namespace and veth and frees the slot; idempotent.
    public func release(slot: Int) async {
        await teardownCommands(slot: slot)
        allocator.release(slot)
    }

    private func teardownCommands(slot: Int) async {
        for argv in NetworkPlan.teardown(config, slot: slot) {
            _ = try? await Command(argv[0], Array(argv.dropFirst())).run()
        }
    }

    /// Where envd of the capsule in `slot` is reached.
    public nonisolated func envdEndpoint(slot: Int) -> (host: String, port: Int) {
        (config.addressing.capsuleAddress(slot: slot), config.envdPort)
    }
}
