import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WrennImage
import WrennWire
@testable import WrennAgent
import WrennTestSupport

/// The agent's `/v1/capsules/{id}/ports/{port}/…` route: authenticated like every agent route, and — over the real
/// QEMU runtime — reaching a server the guest runs on a port other than envd's, through the slot's DNAT.
@Suite("Agent guest port proxy", .serialized)
struct GuestPortProxyTests {
    static let server = "mkdir -p /tmp/www && echo port-proxy-ok > /tmp/www/hello.txt && exec python3 -m http.server 8000 --bind 0.0.0.0 -d /tmp/www"

    @Test func authenticatedAndValidated() async throws {
        let agent = try await AgentHarness.start()
        do {
            #expect(try await agent.create("pp-envd").status == 201)
            let noToken = try await agent.request(.GET, "/v1/capsules/pp-envd/ports/8000/", authorization: .some(nil))
            #expect(noToken.status == 401)
            #expect(try await agent.request(.GET, "/v1/capsules/pp-envd/ports/70000/").status == 400)
            #expect(try await agent.request(.GET, "/v1/capsules/pp-missing/ports/8000/").status == 404)
            _ = try await agent.request(.POST, "/v1/capsules/pp-envd/pause")
            #expect(try await agent.request(.GET, "/v1/capsules/pp-envd/ports/8000/").errorCode == "invalid_state")
        } catch {
            await agent.shutdown()
            throw error
        }
        await agent.shutdown()
    }

    @Test("a guest HTTP server on port 8000 through the agent (QEMU)",
          .enabled(if: AgentQemuIntegrationTests.canRun, "needs root and qemu-system-x86"), .timeLimit(.minutes(10)))
    func qemuGuestPort() async throws {
        _ = try await TestSupport.image()
        let network = try #require(NetworkConfig(namePrefix: "wp-", pool: "10.205.0.0/16"))
        let dataDirectory = TestSupport.dataDirectory + "/port-proxy-tests"
        let runtime = QemuMicrovmRuntime(config: RuntimeConfig(
            dataDirectory: dataDirectory, network: network, imagesDirectory: TestSupport.dataDirectory + "/images"))
        let agent = try await AgentHarness.start(runtime: runtime, dataDirectory: dataDirectory)
        let id = "cl-pp-\(UUID().uuidString.prefix(8).lowercased())"
        do {
            let created = try await agent.request(.POST, "/v1/capsules", json: AgentCreateCapsule(
                id: id, template: TestSupport.imageName, vcpus: 1, memoryMB: 512, diskSizeMB: 3072, timeoutSec: 0), timeout: 300)
            #expect(created.status == 201, "\(created.text)")
            let started = try await agent.request(.POST, "/v1/capsules/\(id)/envd/exec",
                                                  json: ExecRequest(cmd: "/bin/sh", args: ["-c", Self.server], background: true))
            #expect(started.status == 202, "\(started.text)")
            var reply = try await agent.request(.GET, "/v1/capsules/\(id)/ports/8000/hello.txt")
            let deadline = ContinuousClock.now + .seconds(60)
            while reply.status != 200, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                reply = try await agent.request(.GET, "/v1/capsules/\(id)/ports/8000/hello.txt")
            }
            #expect(reply.status == 200, "\(reply.text)")
            #expect(reply.text == "port-proxy-ok\n")
            // Nothing listens on 8001: 502 from the agent.
            let closed = try await agent.request(.GET, "/v1/capsules/\(id)/ports/8001/")
            #expect(closed.status == 502)
            #expect(try await agent.request(.DELETE, "/v1/capsules/\(id)", timeout: 60).status == 204)
        } catch {
            try? await runtime.destroy(id)
            await agent.shutdown()
            throw error
        }
        await agent.shutdown()
    }
}
