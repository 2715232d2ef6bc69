import Crypto
import Foundation
import SwiftASN1
import X509

/// The control plane's own certificate authority for host agents (mutual TLS between the control plane and
/// agents). It lives in `<data>/pki/` (`ca.pem`, `ca-key.pem` mode 0600) and is created on first use. It signs
/// each agent's certificate from the CSR the agent sends at registration (the agent's private key never leaves the
/// agent), and the control plane's own client certificate; an agent accepts calls only from a client whose
/// certificate this CA signed, and the control plane talks only to agents whose certificate it signed.
public struct CertificateAuthority: Sendable {
    /// The self-signed CA certificate.
    public let certificate: Certificate
    private let key: Certificate.PrivateKey

    /// The CA certificate, PEM.
    public var certificatePEM: String { (try? certificate.serializeAsPEM().pemString) ?? "" }

    init(certificate: Certificate, key: Certificate.PrivateKey) {
        self.certificate = certificate
        self.key = key
    }

    /// Loads the CA from `directory`, creating it (P-256, 10 years) when it is not there yet.
    public static func loadOrCreate(directory: String, now: Date = Date()) throws -> CertificateAuthority {
        let certPath = directory + "/ca.pem", keyPath = directory + "/ca-key.pem"
        let fm = FileManager.default
        if fm.fileExists(atPath: certPath), fm.fileExists(atPath: keyPath) {
            let certificate = try Certificate(pemEncoded: try String(contentsOfFile: certPath, encoding: .utf8))
            let key = try Certificate.PrivateKey(pemEncoded: try String(contentsOfFile: keyPath, encoding: .utf8))
            guard key.publicKey == certificate.publicKey else { throw PKIError("\(keyPath) does not belong to \(certPath)") }
            return CertificateAuthority(certificate: certificate, key: key)
        }
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let signingKey = P256.Signing.PrivateKey()
        let key = Certificate.PrivateKey(signingKey)
        let name = try DistinguishedName { CommonName("Wrenn control plane CA") }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(10 * 365 * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: key)
        try PEMFiles.write(signingKey.pemRepresentation, to: keyPath, mode: 0o600)
        try PEMFiles.write(try certificate.serializeAsPEM().pemString, to: certPath, mode: 0o644)
        return CertificateAuthority(certificate: certificate, key: key)
    }

    /// Signs the CSR `csrPEM` (its signature must verify) for `commonName` (the CSR's own subject is ignored: the
    /// CA decides who the certificate names). Usable for TLS server and client authentication.
    public func issue(csrPEM: String, commonName: String, validity: TimeInterval, now: Date = Date()) throws -> String {
        let csr = try Self.verifiedCSR(csrPEM)
        return try leaf(publicKey: csr.publicKey, commonName: commonName, validity: validity, now: now).serializeAsPEM().pemString
    }

    /// The CSR in `csrPEM`, when it parses and its signature verifies (nothing is signed).
    public static func verifiedCSR(_ csrPEM: String) throws -> CertificateSigningRequest {
        let csr: CertificateSigningRequest
        do { csr = try CertificateSigningRequest(pemEncoded: csrPEM) } catch { throw PKIError("csr is not a PEM certificate signing request") }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else { throw PKIError("csr signature does not verify") }
        return csr
    }

    /// A new key and a certificate for it (the control plane's own client identity).
    public func issueIdentity(commonName: String, validity: TimeInterval, now: Date = Date()) throws -> TLSIdentity {
        let signingKey = P256.Signing.PrivateKey()
        let certificate = try leaf(publicKey: Certificate.PrivateKey(signingKey).publicKey, commonName: commonName, validity: validity, now: now)
        return TLSIdentity(certificatePEM: try certificate.serializeAsPEM().pemString, privateKeyPEM: signingKey.pemRepresentation,
                           caPEM: certificatePEM)
    }

    private func leaf(publicKey: Certificate.PublicKey, commonName: String, validity: TimeInterval, now: Date) throws -> Certificate {
        try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(validity),
            issuer: certificate.subject, subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
            },
            issuerPrivateKey: key)
    }
}

/// A PKI problem, with a message fit for an API error.
public struct PKIError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Writing key and certificate files with a fixed mode (created with it: a key is never world-readable, not even briefly).
enum PEMFiles {
    static func write(_ text: String, to path: String, mode: Int) throws {
        let temporary = path + ".new"
        try? FileManager.default.removeItem(atPath: temporary)
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
            throw PKIError("cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else { throw PKIError("cannot rename \(temporary) to \(path)") }
    }
}
