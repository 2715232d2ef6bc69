import AsyncHTTPClient
import Foundation
import NIOSSL
import Synchronization
import WrennPKI

/// The control plane's side of mutual TLS with registered host agents: the agent CA in `<data>/pki/` (it certifies
/// each agent's key from the CSR sent at registration and refresh), the control plane's own client certificate from
/// that CA (`<data>/pki/control-plane/`, re-issued when it nears expiry), and the HTTP client that presents it.
///
/// The client lives as long as the process, like `HTTPClient.shared`: one per data directory (tests run several
/// control planes in one process), never shut down, so no request path can outlive it.
public struct AgentTLS: Sendable {
    public let authority: CertificateAuthority
    public let identity: TLSIdentity
    public let clientConfiguration: TLSConfiguration
    /// The lifecycle and data-plane connection pools that present the control plane's certificate.
    public let pools: AgentClient.Pools

    /// Certificates issued to agents last this long; agents renew them at a refresh within the last 30 days.
    public static let agentCertificateValidity: TimeInterval = 90 * 86_400
    static let clientValidity: TimeInterval = 365 * 86_400

    private static let cache = Mutex<[String: AgentTLS]>([:])

    /// The CA and client identity of `dataDirectory`, created on first use.
    public static func load(dataDirectory: String, now: Date = Date()) throws -> AgentTLS {
        let directory = (dataDirectory as NSString).appendingPathComponent("pki")
        if let cached = cache.withLock({ $0[directory] }) { return cached }
        let authority = try CertificateAuthority.loadOrCreate(directory: directory, now: now)
        let identityDirectory = directory + "/control-plane"
        var identity = try TLSIdentity.load(from: identityDirectory)
        if identity == nil || identity?.caPEM != authority.certificatePEM
            || (try? identity?.notValidAfter()).flatMap({ $0 }).map({ $0.timeIntervalSince(now) < 30 * 86_400 }) ?? true {
            identity = try authority.issueIdentity(commonName: "wrenn-control-plane", validity: clientValidity, now: now)
            try identity?.save(to: identityDirectory)
        }
        guard let identity else { throw PKIError("no control plane identity") }
        let clientConfiguration = try identity.clientConfiguration()
        return try cache.withLock { cache in
            if let cached = cache[directory] { return cached }
            let tls = AgentTLS(authority: authority, identity: identity, clientConfiguration: clientConfiguration,
                               pools: AgentClient.Pools(tls: clientConfiguration))
            cache[directory] = tls
            return tls
        }
    }

    /// Checks an agent's CSR without signing anything (400 naming the field when it is missing or not valid).
    func check(csrPEM: String?) throws {
        try certifying(csrPEM) { _ = try CertificateAuthority.verifiedCSR($0) }
    }

    /// The agent certificate for `hostID` from its CSR (400 naming the field when the CSR is not valid).
    func certify(csrPEM: String?, hostID: String, now: Date) throws -> String {
        try certifying(csrPEM) { try authority.issue(csrPEM: $0, commonName: hostID, validity: Self.agentCertificateValidity, now: now) }
    }

    private func certifying<T>(_ csrPEM: String?, _ work: (String) throws -> T) throws -> T {
        guard let csrPEM, !csrPEM.isEmpty else {
            throw ServiceError.invalid("csr: a PEM certificate signing request for the agent's TLS key is required (agents serve mutual TLS)")
        }
        do {
            return try work(csrPEM)
        } catch let error as PKIError {
            throw ServiceError.invalid("csr: \(error.description)")
        }
    }
}
