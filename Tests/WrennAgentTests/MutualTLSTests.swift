import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import Testing
import WrennAgent
import WrennPKI
import WrennTestSupport

/// The control plane's agent CA and mutual TLS between the control plane and a real agent server: only a client
/// with a certificate from the agent's CA gets an answer; a foreign certificate, no certificate, or plain HTTP do not.
@Suite("mutual TLS between the control plane and agents")
struct MutualTLSTests {
    static func temporaryDirectory() -> String {
        NSTemporaryDirectory() + "wrenn-pki-" + UUID().uuidString.prefix(8).lowercased()
    }

    @Test func caIsCreatedOncePersistedPrivatelyAndSignsOnlyValidCSRs() throws {
        let dir = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ca = try CertificateAuthority.loadOrCreate(directory: dir)
        let again = try CertificateAuthority.loadOrCreate(directory: dir)
        #expect(again.certificatePEM == ca.certificatePEM)
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/ca-key.pem")[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let (_, csr) = try TLSIdentity.makeKeyAndCSR(commonName: "whatever-the-agent-says")
        let certificate = try ca.issue(csrPEM: csr, commonName: "host-abc", validity: 3600)
        #expect(certificate.contains("BEGIN CERTIFICATE"))
        #expect(throws: PKIError.self) { try ca.issue(csrPEM: "not a csr", commonName: "x", validity: 60) }
        // A CSR whose signature does not match its content is refused.
        var lines = csr.split(separator: "\n").map(String.init)
        let middle = lines.count / 2
        var bytes = Array(lines[middle])
        bytes[10] = bytes[10] == "A" ? "B" : "A"
        lines[middle] = String(bytes)
        #expect(throws: (any Error).self) { try ca.issue(csrPEM: lines.joined(separator: "\n"), commonName: "x", validity: 60) }
    }

    @Test func agentServesOnlyClientsCertifiedByItsCA() async throws {
        let dir = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ca = try CertificateAuthority.loadOrCreate(directory: dir + "/pki")
        let (agentKey, csr) = try TLSIdentity.makeKeyAndCSR(commonName: "agent")
        let agentIdentity = TLSIdentity(certificatePEM: try ca.issue(csrPEM: csr, commonName: "host-1", validity: 3600),
                                        privateKeyPEM: agentKey, caPEM: ca.certificatePEM)
        try agentIdentity.save(to: dir + "/agent-tls")
        #expect(try TLSIdentity.load(from: dir + "/agent-tls") == agentIdentity)
        let controlPlane = try ca.issueIdentity(commonName: "wrenn-control-plane", validity: 3600)
        let foreignCA = try CertificateAuthority.loadOrCreate(directory: dir + "/foreign")
        let foreign = try foreignCA.issueIdentity(commonName: "wrenn-control-plane", validity: 3600)

        let agent = try await LocalAgent.start(tls: RenewableServerIdentity(agentIdentity))
        // Trusts our CA (so it would accept the control plane's client certificate) but holds a foreign certificate.
        let impostor = try await LocalAgent.start(tls: RenewableServerIdentity(TLSIdentity(
            certificatePEM: foreign.certificatePEM, privateKeyPEM: foreign.privateKeyPEM, caPEM: ca.certificatePEM)))
        let port = agent.port

        func get(_ scheme: String, tls: TLSConfiguration?, port: Int = port) async throws -> Int {
            var config = HTTPClient.Configuration()
            config.tlsConfiguration = tls
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
            do {
                var request = HTTPClientRequest(url: "\(scheme)://127.0.0.1:\(port)/v1/host")
                request.headers.add(name: "Authorization", value: "Bearer \(agent.token)")
                let response = try await client.execute(request, timeout: .seconds(5))
                try await client.shutdown()
                return Int(response.status.code)
            } catch {
                try? await client.shutdown()
                throw error
            }
        }

        /// The call fails in the TLS handshake (not by timing out or at HTTP level).
        func expectTLSRefusal(_ what: String, tls: TLSConfiguration, port: Int = port, _ fragment: String) async {
            do {
                let status = try await get("https", tls: tls, port: port)
                Issue.record("\(what): answered \(status)")
            } catch {
                let text = String(reflecting: error)
                #expect(text.contains("SSL") && text.contains(fragment), "\(what): \(text)")
            }
        }

        #expect(try await get("https", tls: try controlPlane.clientConfiguration()) == 200)
        // A client that trusts the agent but holds a certificate of another CA: the agent refuses it.
        let foreignClient = TLSIdentity(certificatePEM: foreign.certificatePEM, privateKeyPEM: foreign.privateKeyPEM, caPEM: ca.certificatePEM)
        await expectTLSRefusal("foreign client certificate", tls: try foreignClient.clientConfiguration(), "TLSV1_ALERT")
        var anonymous = TLSConfiguration.makeClientConfiguration()
        anonymous.certificateVerification = .none
        await expectTLSRefusal("no client certificate", tls: anonymous, "CERTIFICATE_REQUIRED")
        await #expect(throws: (any Error).self) { _ = try await get("http", tls: nil) }
        // The control plane's side refuses a server its CA did not certify (someone posing as an agent).
        await expectTLSRefusal("impostor agent", tls: try controlPlane.clientConfiguration(), port: impostor.port, "CERTIFICATE_VERIFY_FAILED")

        await agent.stop()
        await impostor.stop()
    }
}
