import Foundation
import Testing
import WrennImage
import WrennWire
@testable import WrennAgent

/// Egress NAT and the host guards with real QEMU guests: a capsule with egress reaches a server in a "wan"
/// namespace this test creates (masqueraded as the host), one without egress does not, and no capsule reaches a
/// service of the host or another capsule. Traffic stays on this machine: the "outside" is 198.18.0.0/30
/// (benchmarking range) on a veth into our own namespace.
@Suite("QEMU runtime: egress NAT and host guards (integration)", .serialized)
struct EgressIntegrationTests {
    static let prefix = "we-"
    static let wanNamespace = "we-wan"
    static let wanHostVeth = "we-wan0"
    static let wanHostAddress = "198.18.0.1"
    static let wanServerAddress = "198.18.0.2"

    /// An HTTP server that answers every GET with the client's address, printing its port first.
    static let echoServer = """
        import http.server, sys
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = self.client_address[0].encode()
                self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                self.wfile.write(body)
            def log_message(self, *a): pass
        s = http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H)
        print(s.server_address[1], flush=True)
        s.serve_forever()
        """

    /// Starts the echo server (optionally inside a namespace) and returns it with its port.
    static func startEchoServer(namespace: String?, host: String, port: Int) throws -> (Process, Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let python = ["python3", "-c", echoServer, host, String(port)]
        process.arguments = namespace.map { ["ip", "netns", "exec", $0] + python } ?? python
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        guard let bound = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            kill(process.processIdentifier, SIGKILL)
            throw RuntimeError.invalidRequest("echo server did not start: \(line)")
        }
        return (process, bound)
    }

    static func removeWan() async {
        _ = try? await Command("ip", ["netns", "delete", wanNamespace]).run()
        _ = try? await Command("ip", ["link", "delete", wanHostVeth]).run()
    }

    static func makeWan() async throws {
        await removeWan()
        for argv in [
            ["ip", "netns", "add", wanNamespace],
            ["ip", "link", "add", wanHostVeth, "type", "veth", "peer", "name", "eth0", "netns", wanNamespace],
            ["ip", "addr", "add", wanHostAddress + "/30", "dev", wanHostVeth],
            ["ip", "link", "set", wanHostVeth, "up"],
            ["ip", "-n", wanNamespace, "addr", "add", wanServerAddress + "/30", "dev", "eth0"],
            ["ip", "-n", wanNamespace, "link", "set", "eth0", "up"],
            ["ip", "-n", wanNamespace, "link", "set", "lo", "up"],
        ] {
            try await Command(argv[0], Array(argv.dropFirst())).check()
        }
    }

    @Test(.enabled(if: RuntimeIntegrationTests.canRun, "needs root and qemu-system-x86"), .timeLimit(.minutes(10)))
    func egressCapsuleReachesTheOutsideOthersDoNotAndNoneReachesTheHost() async throws {
        _ = try await TestSupport.image()
        let network = try #require(NetworkConfig(namePrefix: Self.prefix, pool: "10.203.0.0/16"))
        var config = RuntimeConfig(dataDirectory: TestSupport.dataDirectory + "/egress-tests", network: network,
                                   imagesDirectory: TestSupport.dataDirectory + "/images")
        config.guestNameservers = [Self.wanServerAddress]
        let runtime = QemuMicrovmRuntime(config: config)
        try await runtime.start()
        try await Self.makeWan()
        let (wanServer, wanPort) = try Self.startEchoServer(namespace: Self.wanNamespace, host: Self.wanServerAddress, port: 8080)
        let (hostServer, hostPort) = try Self.startEchoServer(namespace: nil, host: "0.0.0.0", port: 0)
        let suffix = String(UUID().uuidString.prefix(8)).lowercased()
        let idOut = "cl-eg-out-\(suffix)", idIn = "cl-eg-in-\(suffix)"
        defer {
            // SIGKILL: children of the test runner inherit its ignored SIGTERM (swift-service-lifecycle installs
            // a handler), so terminate() would leave these servers running after the suite.
            for server in [wanServer, hostServer] {
                kill(server.processIdentifier, SIGKILL)
                server.waitUntilExit()
            }
        }
        do {
            let out = try await runtime.create(CapsuleRequest(id: idOut, template: TestSupport.imageName, egress: true))
            let closed = try await runtime.create(CapsuleRequest(id: idIn, template: TestSupport.imageName))
            let curl = "curl -s -m 5 -o - -w ' %{http_code}'"

            // Out through the namespace and the host: the outside sees the host's address (masquerade).
            let reached = try await RuntimeIntegrationTests.exec(out, "\(curl) http://\(Self.wanServerAddress):\(wanPort)/")
            #expect(reached.stdout == "\(Self.wanHostAddress) 200", "egress capsule: \(reached.stdout)")

            // No egress: no route out.
            let blocked = try await RuntimeIntegrationTests.exec(closed, "\(curl) http://\(Self.wanServerAddress):\(wanPort)/; echo \" rc=$?\"")
            #expect(!blocked.stdout.contains(" 200"), "capsule without egress reached the outside: \(blocked.stdout)")

            // Neither reaches a service of the host (its end of the link), nor another capsule's slot address.
            let hostEnd = network.addressing.hostAddress(slot: out.slot)
            let toHost = try await RuntimeIntegrationTests.exec(out, "\(curl) http://\(hostEnd):\(hostPort)/; echo \" rc=$?\"")
            #expect(!toHost.stdout.contains(" 200"), "capsule reached a host service: \(toHost.stdout)")
            let toOther = try await RuntimeIntegrationTests.exec(out, "\(curl) http://\(closed.envdHost):\(closed.envdPort)/health; echo \" rc=$?\"")
            #expect(!toOther.stdout.contains(" 200"), "capsule reached another capsule: \(toOther.stdout)")
            // The host itself still reaches both guests (the agent's own path).
            let health = try await GuestHTTP.request(host: closed.envdHost, port: closed.envdPort, method: "GET", path: "/health", timeout: .seconds(5))
            #expect(health.status == 200)

            // The real envd writes the resolver it is given on re-identify (the Python stand-in ignores it).
            if TestSupport.imageName == "test-envd" {
                let resolv = try await RuntimeIntegrationTests.exec(out, "cat /etc/resolv.conf")
                #expect(resolv.stdout.contains("nameserver \(Self.wanServerAddress)"))
            }
        } catch {
            Issue.record("egress test failed: \(error)")
        }
        try? await runtime.destroy(idOut)
        try? await runtime.destroy(idIn)
        await Self.removeWan()
        let left = try await RuntimeIntegrationTests.leftovers(prefix: Self.prefix, dirs: [
            runtime.layout(of: idOut).directory, runtime.layout(of: idIn).directory])
        #expect(left.isEmpty, "left behind: \(left)")
    }
}
