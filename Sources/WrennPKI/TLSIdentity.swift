import Crypto
import Foundation
import NIOCore
import NIOSSL
import Synchronization
import SwiftASN1
import X509

/// One side's certificate, private key and the CA it trusts, as PEM, and the TLS configurations made from them.
/// An agent keeps its own in `<data>/agent/tls/` (key created there, certificate from the control plane's CA at
/// registration and refresh); the control plane's client identity lives beside its CA.
public struct TLSIdentity: Sendable, Equatable {
    public var certificatePEM: String
    public var privateKeyPEM: String
    public var caPEM: String

    public init(certificatePEM: String, privateKeyPEM: String, caPEM: String) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
        self.caPEM = caPEM
    }

    /// A fresh P-256 key and a CSR for it (what an agent sends to be certified).
    public static func makeKeyAndCSR(commonName: String) throws -> (privateKeyPEM: String, csrPEM: String) {
        let signingKey = P256.Signing.PrivateKey()
        let csr = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName(commonName) },
            privateKey: Certificate.PrivateKey(signingKey), attributes: CertificateSigningRequest.Attributes(),
            signatureAlgorithm: .ecdsaWithSHA256)
        return (signingKey.pemRepresentation, try csr.serializeAsPEM().pemString)
    }

    /// When the certificate stops being valid.
    public func notValidAfter() throws -> Date { try Certificate(pemEncoded: certificatePEM).notValidAfter }

    /// Server side of mutual TLS: presents this certificate and **requires** a client certificate signed by the CA.
    public func serverConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)))
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        configuration.certificateVerification = .noHostnameVerification
        configuration.minimumTLSVersion = .tlsv12
        configuration.shutdownTimeout = Self.shutdownTimeout
        return configuration
    }

    /// How long a closing connection waits for the peer's close_notify (NIOSSL's default of 5 s held up every
    /// agent shutdown while the control plane kept pooled connections open).
    static let shutdownTimeout: TimeAmount = .seconds(1)

    /// Client side of mutual TLS: presents this certificate and trusts only servers the CA signed. Agents are
    /// addressed by IP, so the name is not checked; the CA signature is what identifies them.
    public func clientConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { .certificate($0) }
        configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem))
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        configuration.certificateVerification = .noHostnameVerification
        configuration.minimumTLSVersion = .tlsv12
        configuration.shutdownTimeout = Self.shutdownTimeout
        return configuration
    }

    /// Saves to `directory` (`cert.pem`, `key.pem` mode 0600, `ca.pem`).
    public func save(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try PEMFiles.write(privateKeyPEM, to: directory + "/key.pem", mode: 0o600)
        try PEMFiles.write(certificatePEM, to: directory + "/cert.pem", mode: 0o644)
        try PEMFiles.write(caPEM, to: directory + "/ca.pem", mode: 0o644)
    }

    /// Loads what ``save(to:)`` wrote, or `nil` when any file is missing.
    public static func load(from directory: String) throws -> TLSIdentity? {
        let files = ["cert.pem", "key.pem", "ca.pem"].map { directory + "/" + $0 }
        guard files.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) else { return nil }
        let texts = try files.map { try String(contentsOfFile: $0, encoding: .utf8) }
        return TLSIdentity(certificatePEM: texts[0], privateKeyPEM: texts[1], caPEM: texts[2])
    }
}

/// The server side of mutual TLS with a certificate that can be renewed while serving: every handshake presents
/// the identity current at that moment (NIOSSL's per-handshake context callback), so an agent that renews its
/// certificate at a token refresh needs no restart. The trusted CA is fixed for the server's lifetime.
public final class RenewableServerIdentity: Sendable {
    private let current: Mutex<TLSIdentity>

    public init(_ identity: TLSIdentity) { self.current = Mutex(identity) }

    /// The identity presented to new connections.
    public var identity: TLSIdentity { current.withLock { $0 } }

    /// Presents `identity` from the next handshake on (it must parse; the CA must be the same).
    public func replace(with identity: TLSIdentity) throws {
        _ = try identity.serverConfiguration()
        guard identity.caPEM == self.identity.caPEM else { throw PKIError("a renewed certificate must come from the same CA") }
        current.withLock { $0 = identity }
    }

    /// The server configuration: requires client certificates of the CA, presents the current certificate.
    public func serverConfiguration() throws -> TLSConfiguration {
        var configuration = try identity.serverConfiguration()
        configuration.sslContextCallback = { [self] _, promise in
            do {
                let identity = self.identity
                var override = NIOSSLContextConfigurationOverride()
                override.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(identity.certificatePEM.utf8)).map { .certificate($0) }
                override.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.privateKeyPEM.utf8), format: .pem))
                promise.succeed(override)
            } catch {
                promise.fail(error)
            }
        }
        return configuration
    }
}
