import Crypto
import Foundation
import Logging
import ServiceLifecycle
import SQLKit
import Testing
import WrennServer
import WrennTestSupport
import WrennWire

/// Two real `wrenn agent` processes, each in its own network namespace created by the test (bridge + veth pairs on a
/// private /24, removed afterwards), register with one control plane listening on the bridge address: both come
/// online and are reachable from the control plane over mutual TLS; killing one makes its host `unreachable` after
/// the heartbeat timeout while the other stays `online`; restarting it (saved credentials, no `--register`) brings it
/// back. Runs only as root (it needs `ip netns`).
@Suite("hosts in network namespaces", .serialized,
       .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")))
struct NetnsHostTests {
    static func ip(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw LocalAgentError("ip \(arguments.joined(separator: " ")) failed") }
    }

    struct Net {
        let tag: String
        let subnet: String   // "10.251.N"
        var bridge: String { "wh4b\(tag)" }
        func namespace(_ i: Int) -> String { "wh4n\(tag)\(i)" }
        func address(_ i: Int) -> String { "\(subnet).\(i + 2)" }
        var gateway: String { "\(subnet).1" }

        func up(count: Int) throws {
            try ip(["link", "add", bridge, "type", "bridge"])
            try ip(["addr", "add", gateway + "/24", "dev", bridge])
            try ip(["link", "set", bridge, "up"])
            for i in 0..<count {
                let ns = namespace(i), outer = "wh4\(tag)\(i)o", inner = "wh4\(tag)\(i)i"
                try ip(["netns", "add", ns])
                try ip(["link", "add", outer, "type", "veth", "peer", "name", inner])
                try ip(["link", "set", inner, "netns", ns])
                try ip(["link", "set", outer, "master", bridge])
                try ip(["link", "set", outer, "up"])
                try ip(["-n", ns, "addr", "add", address(i) + "/24", "dev", inner])
                try ip(["-n", ns, "link", "set", inner, "up"])
                try ip(["-n", ns, "link", "set", "lo", "up"])
            }
        }

        /// Removes only what `up` made (deleting a namespace deletes its veth pair).
        func down(count: Int) {
            for i in 0..<count { try? ip(["netns", "del", namespace(i)]) }
            try? ip(["link", "del", bridge])
        }
    }

    /// A `wrenn agent` process inside namespace `i`.
    static func agent(_ net: Net, _ i: Int, controlPlane: String, dataDirectory: String, register token: String?) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        var arguments = ["netns", "exec", net.namespace(i), try StreamingMemoryTests.wrennBinary(), "agent",
                         "--address", "\(net.address(i)):9725", "--listen", "\(net.address(i)):9725", "--data-dir", dataDirectory,
                         "--heartbeat-interval", "1"]
        if let token { arguments += ["--register", token] }
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["WRENN_CP_URL"] = controlPlane
        env["WRENN_NETWORK_PREFIX"] = "h4\(net.tag)"
        env["WRENN_NETWORK_POOL"] = "10.252.0.0/16"
        env["WRENN_LOG_LEVEL"] = "warning"
        env["WRENN_AGENT_TOKEN"] = nil
        process.environment = env
        let log = FileHandle(forWritingAtPath: dataDirectory + "/agent.log") ?? FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
        return process
    }

    static func status(_ database: Database, _ host: String) async throws -> (String, Int64) {
        try await database.read { sql in
            let row = try await sql.raw("SELECT status, last_heartbeat_at FROM hosts WHERE id = \(bind: host)").first()
            return (try row?.decode(column: "status", as: String.self) ?? "", try row?.decode(column: "last_heartbeat_at", as: Int64?.self) ?? 0)
        }
    }

    static func eventually(_ what: String, timeout: Duration = .seconds(30), _ check: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !check() {
            if ContinuousClock.now > deadline { throw LocalAgentError("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    @Test func agentsInNamespacesRegisterFailAndReturn() async throws {
        let tag = String(UUID().uuidString.lowercased().filter(\.isHexDigit).prefix(4))
        let net = Net(tag: tag, subnet: "10.251.\(Int.random(in: 1...250))")
        let root = NSTemporaryDirectory() + "wrenn-netns-" + tag
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var processes: [Process] = []
        defer {
            for p in processes where p.isRunning { p.terminate(); p.waitUntilExit() }
            net.down(count: 2)
            try? FileManager.default.removeItem(atPath: root)
        }
        try net.up(count: 2)

        var config = ServerConfig(dataDirectory: root + "/cp", databaseURL: "sqlite://\(root)/cp.db", secret: String(repeating: "n", count: 40),
                                  bcryptCost: 4)
        config.hostMonitor = .init(interval: .seconds(3600))
        try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
        var logger = Logger(label: "test.netns")
        logger.logLevel = .critical
        let clock = ManualWallClock()
        let assembly = try await ControlPlane.assemble(config: config, clock: clock, logger: logger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = ControlPlane.makeApplication(assembly, host: net.gateway, port: 0, logger: logger) { port in
            continuation.yield(port)
            continuation.finish()
        }
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
        let server = Task { try await group.run() }
        defer { Task { await group.triggerGracefulShutdown() } }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        let controlPlane = "http://\(net.gateway):\(port)"

        // Two pending hosts with one-time tokens (what POST /v1/hosts makes).
        var hosts: [(id: String, token: String)] = []
        for _ in 0..<2 {
            let id = PrefixedID.make(.host), token = UUID().uuidString + UUID().uuidString
            let hash = SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
            let now = clock.now().timeIntervalSince1970 * 1000
            try await assembly.database.read { sql in
                try await sql.raw("""
                    INSERT INTO hosts (id, type, status, token_generation, created_at, updated_at)
                    VALUES (\(bind: id), 'regular', 'pending', 0, \(bind: Int64(now)), \(bind: Int64(now)))
                    """).run()
                try await sql.raw("""
                    INSERT INTO host_tokens (id, host_id, token_hash, created_at, expires_at)
                    VALUES (\(bind: PrefixedID.make(.hostToken)), \(bind: id), \(bind: hash), \(bind: Int64(now)), \(bind: Int64(now) + 3_600_000))
                    """).run()
            }
            hosts.append((id, token))
        }
        let directories = (0..<2).map { "\(root)/agent\($0)" }
        for (i, directory) in directories.enumerated() {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: directory + "/agent.log", contents: nil)
            processes.append(try Self.agent(net, i, controlPlane: controlPlane, dataDirectory: directory, register: hosts[i].token))
        }
        for (i, host) in hosts.enumerated() {
            try await Self.eventually("agent \(i) online") { try await Self.status(assembly.database, host.id).0 == "online" }
            let registered = try await assembly.database.read { sql in
                try await sql.raw("SELECT address FROM hosts WHERE id = \(bind: host.id)").first(decodingColumn: "address", as: String.self)
            }
            #expect(registered == "\(net.address(i)):9725")
            // The control plane reaches the agent inside its namespace (mutual TLS).
            try await assembly.services.hostService.reconciler.reconcile(hostID: host.id)
        }

        // Agent 0 dies: after the timeout its host is unreachable; agent 1 keeps heartbeating.
        processes[0].terminate()
        processes[0].waitUntilExit()
        clock.advance(by: 91)
        let moved = Int64(clock.now().timeIntervalSince1970 * 1000)
        try await Self.eventually("agent 1 heartbeat") { try await Self.status(assembly.database, hosts[1].id).1 >= moved - 10 }
        #expect(await assembly.services.hostMonitor.sweep() == [hosts[0].id])
        #expect(try await Self.status(assembly.database, hosts[0].id).0 == "unreachable")
        #expect(try await Self.status(assembly.database, hosts[1].id).0 == "online")

        // Restarted with its saved credentials (no --register), it comes back.
        processes[0] = try Self.agent(net, 0, controlPlane: controlPlane, dataDirectory: directories[0], register: nil)
        try await Self.eventually("agent 0 back online") { try await Self.status(assembly.database, hosts[0].id).0 == "online" }
        try await assembly.services.hostService.reconciler.reconcile(hostID: hosts[0].id)

        for p in processes where p.isRunning { p.terminate(); p.waitUntilExit() }
        await group.triggerGracefulShutdown()
        _ = await server.result
    }
}
