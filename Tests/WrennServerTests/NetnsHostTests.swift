import AsyncHTTPClient
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
/// back. With QEMU and the test image, the same setup runs real capsules on both agents (missing while an agent is
/// down, back as they really are after it restarts, force delete cleans up). Runs only as root (it needs `ip netns`).
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
        func outerVeth(_ i: Int) -> String { "wh4\(tag)\(i)o" }
        func address(_ i: Int) -> String { "\(subnet).\(i + 2)" }
        var gateway: String { "\(subnet).1" }

        func up(count: Int) throws {
            try ip(["link", "add", bridge, "type", "bridge"])
            try ip(["addr", "add", gateway + "/24", "dev", bridge])
            try ip(["link", "set", bridge, "up"])
            for i in 0..<count {
                let ns = namespace(i), outer = outerVeth(i), inner = "wh4\(tag)\(i)i"
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

        /// Removes only what `up` made. The veth pairs go first: a deleted namespace lingers (with its devices) while
        /// the kernel still holds sockets of the killed agent in it, for a minute or two.
        func down(count: Int) {
            for i in 0..<count { try? ip(["link", "del", outerVeth(i)]) }
            for i in 0..<count { try? ip(["netns", "del", namespace(i)]) }
            try? ip(["link", "del", bridge])
        }
    }

    /// A `wrenn agent` process inside namespace `i`.
    /// Without `capsules` the agent's capsule network settings are a throwaway prefix and pool (it never runs a VM);
    /// with them, its own prefix and pool and no egress.
    static func agent(_ net: Net, _ i: Int, controlPlane: String, dataDirectory: String, register token: String?,
                      capsules: (prefix: String, pool: String)? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        var arguments = ["netns", "exec", net.namespace(i), try StreamingMemoryTests.wrennBinary(), "agent",
                         "--address", "\(net.address(i)):9725", "--listen", "\(net.address(i)):9725", "--data-dir", dataDirectory,
                         "--heartbeat-interval", "1"]
        if let token { arguments += ["--register", token] }
        if capsules != nil { arguments.append("--no-egress") }
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["WRENN_CP_URL"] = controlPlane
        env["WRENN_NETWORK_PREFIX"] = capsules?.prefix ?? "h4\(net.tag)"
        env["WRENN_NETWORK_POOL"] = capsules?.pool ?? "10.252.0.0/16"
        env["WRENN_LOG_LEVEL"] = "warning"
        env["WRENN_AGENT_TOKEN"] = nil
        process.environment = env
        let log = FileHandle(forWritingAtPath: dataDirectory + "/agent.log") ?? FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
        return process
    }

    /// `count` pending regular hosts with one-time registration tokens (what POST /v1/hosts makes).
    static func pendingHosts(_ database: Database, _ clock: ManualWallClock, count: Int) async throws -> [(id: String, token: String)] {
        var hosts: [(id: String, token: String)] = []
        for _ in 0..<count {
            let id = PrefixedID.make(.host), token = UUID().uuidString + UUID().uuidString
            let hash = SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
            let now = clock.now().timeIntervalSince1970 * 1000
            try await database.read { sql in
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
        return hosts
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

    /// A control plane (SQLite under `root`, manual clock, monitor left to the test) listening on `gateway`.
    struct ServedControlPlane {
        let assembly: ControlPlane.Assembly
        let clock: ManualWallClock
        let group: ServiceGroup
        let server: Task<Void, any Error>
        let url: String
        let logger: Logger
    }

    static func serveControlPlane(root: String, gateway: String) async throws -> ServedControlPlane {
        var config = ServerConfig(dataDirectory: root + "/cp", databaseURL: "sqlite://\(root)/cp.db", secret: String(repeating: "n", count: 40),
                                  bcryptCost: 4)
        config.hostMonitor = .init(interval: .seconds(3600))
        try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
        var logger = Logger(label: "test.netns")
        logger.logLevel = .critical
        let clock = ManualWallClock()
        let assembly = try await ControlPlane.assemble(config: config, clock: clock, logger: logger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = ControlPlane.makeApplication(assembly, host: gateway, port: 0, logger: logger) { port in
            continuation.yield(port)
            continuation.finish()
        }
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
        let server = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            server.cancel()
            throw LocalAgentError("control plane did not start")
        }
        return ServedControlPlane(assembly: assembly, clock: clock, group: group, server: server, url: "http://\(gateway):\(port)", logger: logger)
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

        let served = try await Self.serveControlPlane(root: root, gateway: net.gateway)
        let (assembly, clock, group, server, controlPlane) = (served.assembly, served.clock, served.group, served.server, served.url)
        defer { Task { await group.triggerGracefulShutdown() } }

        // Two pending hosts with one-time tokens (what POST /v1/hosts makes).
        let hosts = try await Self.pendingHosts(assembly.database, clock, count: 2)
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

    /// Whether real microVMs can run here: root, QEMU, and the real envd for the test image (`WRENN_TEST_ENVD`).
    static var canRunCapsules: Bool { TestImage.canRunQEMU && !(ProcessInfo.processInfo.environment["WRENN_TEST_ENVD"] ?? "").isEmpty }

    /// One call to the control plane's HTTP API with an API key: status and JSON body.
    static func api(_ base: String, _ key: String, _ method: String, _ path: String,
                    json: [String: Any]? = nil, session: (cookie: String, csrf: String)? = nil) async throws -> (status: Int, body: Data) {
        var request = HTTPClientRequest(url: base + path)
        request.method = .init(rawValue: method)
        if let session {
            request.headers.add(name: "Cookie", value: session.cookie)
            request.headers.add(name: "X-CSRF-Token", value: session.csrf)
        } else if !key.isEmpty {
            request.headers.add(name: "X-API-Key", value: key)
        }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(try JSONSerialization.data(withJSONObject: json))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), Data(body.readableBytesView))
    }

    /// Signs in with a password over HTTP: the session cookie header and the CSRF token.
    static func signIn(_ base: String, email: String, password: String) async throws -> (cookie: String, csrf: String) {
        var request = HTTPClientRequest(url: base + "/v1/auth/login")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(try JSONSerialization.data(withJSONObject: ["email": email, "password": password]))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 1 << 20)
        var cookies: [String: String] = [:]
        for field in response.headers["set-cookie"] {
            let pair = field.split(separator: ";", maxSplits: 1)[0]
            guard let eq = pair.firstIndex(of: "=") else { continue }
            cookies[String(pair[..<eq]).trimmingCharacters(in: .whitespaces)] = String(pair[pair.index(after: eq)...])
        }
        guard response.status.code == 200, let csrf = cookies["wrenn_csrf"] else { throw LocalAgentError("login failed: \(response.status)") }
        return (cookies.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "; "), csrf)
    }

    static func capsuleStatus(_ base: String, _ key: String, _ id: String) async throws -> CapsuleStatus {
        let (status, body) = try await api(base, key, "GET", "/v1/capsules/\(id)")
        guard status == 200 else { throw LocalAgentError("GET capsule \(id): \(status)") }
        return try WireCoding.makeDecoder().decode(Capsule.self, from: body).status
    }

    static func hostOf(_ database: Database, _ capsule: String) async throws -> String? {
        try await database.read { sql in
            try await sql.raw("SELECT host_id FROM capsules WHERE id = \(bind: capsule)").first(decodingColumn: "host_id", as: String?.self) ?? nil
        }
    }

    /// PIDs of processes whose command line mentions `path` (the QEMU of capsules under an agent's data directory).
    static func qemuProcesses(under path: String) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
            let line = String(decoding: data.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
            return line.contains("qemu") && line.contains(path) ? pid : nil
        }
    }

    /// Namespaces and links whose names start with one of `prefixes`; links of the root network namespace, or of
    /// `namespace` (where an agent running in it puts its capsules' host-side veths).
    static func leftovers(_ prefixes: [String], in namespace: String? = nil) throws -> [String] {
        var names: [String] = []
        for arguments in [["netns", "list"], (namespace.map { ["-n", $0] } ?? []) + ["-o", "link", "show"]] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: " ")
                let name = arguments[0] == "netns" ? fields.first.map(String.init) : (fields.count > 1 ? String(fields[1].dropLast()) : nil)
                if let name, prefixes.contains(where: { name.hasPrefix($0) }) { names.append(name) }
            }
        }
        return names
    }

    /// The same two agents in namespaces, now running real QEMU capsules (each agent its own data directory with the
    /// shared test image as platform template `minimal`, its own namespace prefix and address pool, no egress):
    /// capsules created over the HTTP API spread over both hosts; killing agent 0 makes its running capsule `missing`
    /// and sends a new capsule to agent 1; restarting it brings its capsules back `running`/`paused` as they really
    /// are; force-deleting the hosts destroys every capsule, and no namespace or veth of the agents' prefixes is left.
    @Test(.enabled(if: canRunCapsules), .timeLimit(.minutes(10)))
    func capsulesOnAgentsInNamespacesGoMissingAndComeBack() async throws {
        let image = try await TestImage.image()
        let tag = String(UUID().uuidString.lowercased().filter(\.isHexDigit).prefix(4))
        let net = Net(tag: tag, subnet: "10.251.\(Int.random(in: 1...250))")
        let capsuleNets = [(prefix: "q8a\(tag.prefix(2))-", pool: "10.246.0.0/16"), (prefix: "q8b\(tag.prefix(2))-", pool: "10.247.0.0/16")]
        let root = NSTemporaryDirectory() + "wrenn-netns-" + tag
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var processes: [Process] = []
        var netIsUp = true
        defer {
            for p in processes where p.isRunning { p.terminate(); p.waitUntilExit() }
            if netIsUp { net.down(count: 2) }
            try? FileManager.default.removeItem(atPath: root)
        }
        try net.up(count: 2)

        let served = try await Self.serveControlPlane(root: root, gateway: net.gateway)
        let (assembly, clock, group, server, controlPlane, logger) = (served.assembly, served.clock, served.group, served.server,
                                                                       served.url, served.logger)
        defer { Task { await group.triggerGracefulShutdown() } }

        // An admin, a team and an API key (what `wrenn dev` bootstraps).
        let envPath = try #require(try await DevBootstrap(services: assembly.services, logger: logger).run(baseURL: controlPlane))
        let env = try String(contentsOfFile: envPath, encoding: .utf8).split(separator: "\n")
        func value(_ name: String) throws -> String {
            try #require(env.first { $0.hasPrefix(name + "=") }?.dropFirst(name.count + 1)).description
        }
        let key = try value("WRENN_API_KEY")
        let admin = try await Self.signIn(controlPlane, email: try value("WRENN_ADMIN_EMAIL"), password: try value("WRENN_ADMIN_PASSWORD"))

        let hosts = try await Self.pendingHosts(assembly.database, clock, count: 2)
        let directories = (0..<2).map { "\(root)/agent\($0)" }
        func start(_ i: Int, register: String?) throws -> Process {
            try Self.agent(net, i, controlPlane: controlPlane, dataDirectory: directories[i], register: register, capsules: capsuleNets[i])
        }
        for (i, directory) in directories.enumerated() {
            // The platform template `minimal` is the shared test image, linked into this agent's own images directory.
            try FileManager.default.createDirectory(atPath: directory + "/images", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: directory + "/images/minimal", withDestinationPath: image.directory)
            FileManager.default.createFile(atPath: directory + "/agent.log", contents: nil)
            processes.append(try start(i, register: hosts[i].token))
        }
        for (i, host) in hosts.enumerated() {
            try await Self.eventually("agent \(i) online") { try await Self.status(assembly.database, host.id).0 == "online" }
        }

        func create() async throws -> String {
            let (status, body) = try await Self.api(controlPlane, key, "POST", "/v1/capsules", json: ["template": "minimal", "memory_mb": 512])
            #expect(status == 202, "\(String(decoding: body, as: UTF8.self))")
            let id = try WireCoding.makeDecoder().decode(Capsule.self, from: body).id
            try await Self.eventually("capsule \(id) running", timeout: .seconds(240)) {
                let now = try await Self.capsuleStatus(controlPlane, key, id)
                if now == .error { throw LocalAgentError("capsule \(id) went to error") }
                return now == .running
            }
            return id
        }
        do {
            // Two equal hosts: the first two capsules land one on each.
            let first = try await create(), second = try await create()
            let placed = [try await Self.hostOf(assembly.database, first), try await Self.hostOf(assembly.database, second)]
            #expect(Set(placed.compactMap { $0 }) == Set(hosts.map(\.id)))
            let paused = placed[0] == hosts[0].id ? first : second
            let onB = paused == first ? second : first
            #expect(try await Self.api(controlPlane, key, "POST", "/v1/capsules/\(paused)/pause").status == 202)
            try await Self.eventually("capsule paused", timeout: .seconds(120)) { try await Self.capsuleStatus(controlPlane, key, paused) == .paused }
            // A paused capsule holds half its memory: host 0 now has the most headroom.
            let running = try await create()
            #expect(try await Self.hostOf(assembly.database, running) == hosts[0].id)

            // Agent 0 dies (its VMs live on): after the timeout its running capsule is missing, the paused one stays paused.
            processes[0].terminate()
            processes[0].waitUntilExit()
            clock.advance(by: 91)
            let moved = Int64(clock.now().timeIntervalSince1970 * 1000)
            try await Self.eventually("agent 1 heartbeat") { try await Self.status(assembly.database, hosts[1].id).1 >= moved - 10 }
            #expect(await assembly.services.hostMonitor.sweep() == [hosts[0].id])
            #expect(try await Self.capsuleStatus(controlPlane, key, running) == .missing)
            #expect(try await Self.capsuleStatus(controlPlane, key, paused) == .paused)
            #expect(try await Self.capsuleStatus(controlPlane, key, onB) == .running)
            // A new capsule goes to the agent that is still up.
            let fourth = try await create()
            #expect(try await Self.hostOf(assembly.database, fourth) == hosts[1].id)

            // Restarted with its saved credentials, agent 0 re-adopts its VMs; reconciliation restores the real states.
            processes[0] = try start(0, register: nil)
            try await Self.eventually("agent 0 back online") { try await Self.status(assembly.database, hosts[0].id).0 == "online" }
            _ = try await assembly.services.hostService.reconciler.reconcile(hostID: hosts[0].id)
            try await Self.eventually("missing capsule running again") { try await Self.capsuleStatus(controlPlane, key, running) == .running }
            #expect(try await Self.capsuleStatus(controlPlane, key, paused) == .paused)

            // Each capsule has its namespace and veth under its agent's prefix (what the check at the end looks for).
            for i in 0..<2 {
                let networks = try Self.leftovers([capsuleNets[i].prefix], in: net.namespace(i))
                #expect(networks.contains(where: { $0.hasPrefix(capsuleNets[i].prefix + "ns") }) && networks.contains(where: { $0.hasPrefix(capsuleNets[i].prefix + "v") }),
                        "\(networks)")
            }
            #expect(!Self.qemuProcesses(under: root).isEmpty)

            // Force delete destroys every capsule on the agents and removes the hosts.
            for host in hosts {
                #expect(try await Self.api(controlPlane, "", "DELETE", "/v1/hosts/\(host.id)?force=true", session: admin).status == 204)
                #expect(try await Self.api(controlPlane, "", "GET", "/v1/hosts/\(host.id)", session: admin).status == 404)
            }
            for id in [first, second, running, fourth] { #expect(try await Self.capsuleStatus(controlPlane, key, id) == .stopped) }
            for i in 0..<2 { #expect(try Self.leftovers(capsuleNets.map(\.prefix), in: net.namespace(i)) == []) }
        } catch {
            for (i, directory) in directories.enumerated() {
                print("agent \(i) log:\n" + ((try? String(contentsOfFile: directory + "/agent.log", encoding: .utf8)) ?? ""))
            }
            throw error
        }

        for p in processes where p.isRunning { p.terminate(); p.waitUntilExit() }
        await group.triggerGracefulShutdown()
        _ = await server.result
        net.down(count: 2)
        netIsUp = false
        #expect(Self.qemuProcesses(under: root) == [])
        #expect(try Self.leftovers(capsuleNets.map(\.prefix) + [net.bridge, net.namespace(0), net.namespace(1), net.outerVeth(0), net.outerVeth(1)]) == [])
    }
}
