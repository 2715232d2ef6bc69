import Crypto
import Foundation

/// The credentials of host agents: HS256 host JWTs (`X-Host-Token`, 7 days) signed with the server secret, and the
/// bearer token the control plane presents to an agent, derived from the secret and the host id (never stored).
struct HostTokens: Sendable {
    static let jwtLifetime: TimeInterval = 7 * 24 * 3600
    static let refreshLifetime: TimeInterval = 60 * 24 * 3600
    static let registrationLifetime: TimeInterval = 3600

    /// What a valid host JWT says.
    struct Claims: Codable, Sendable {
        var typ: String
        var hostID: String
        var sub: String
        var gen: Int64
        var iat: Int64
        var exp: Int64
        enum CodingKeys: String, CodingKey { case typ, hostID = "host_id", sub, gen, iat, exp }
    }

    private let key: SymmetricKey
    private let agentKey: SymmetricKey

    init(secret: String) {
        // Separate keys per purpose, so a host JWT signature can never double as an agent token or vice versa.
        let master = SymmetricKey(data: Data(secret.utf8))
        key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data("wrenn host jwt".utf8), using: master)))
        agentKey = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data("wrenn agent token".utf8), using: master)))
    }

    /// A host JWT for `hostID` of token generation `gen`, valid 7 days from `now`.
    func issue(hostID: String, generation: Int64, now: Date) -> String {
        let iat = Int64(now.timeIntervalSince1970)
        let claims = Claims(typ: "host", hostID: hostID, sub: hostID, gen: generation, iat: iat, exp: iat + Int64(Self.jwtLifetime))
        let header = Self.base64URL(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let payload = Self.base64URL((try? encoder.encode(claims)) ?? Data())
        let signingInput = header + "." + payload
        return signingInput + "." + signature(signingInput)
    }

    /// The claims of a host JWT whose signature is ours and which has not expired at `now`; nil otherwise.
    func verify(_ token: String, now: Date) -> Claims? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        let signingInput = parts[0] + "." + parts[1]
        guard Secrets.constantTimeEquals(signature(String(signingInput)), String(parts[2])),
              let headerData = Self.base64URLDecode(String(parts[0])),
              let header = try? JSONDecoder().decode([String: String].self, from: headerData), header["alg"] == "HS256",
              let payload = Self.base64URLDecode(String(parts[1])),
              let claims = try? JSONDecoder().decode(Claims.self, from: payload),
              claims.typ == "host", claims.exp > Int64(now.timeIntervalSince1970)
        else { return nil }
        return claims
    }

    /// The bearer token this control plane sends to the agent of `hostID`.
    func agentToken(hostID: String) -> String {
        Secrets.hex(Array(HMAC<SHA256>.authenticationCode(for: Data(hostID.utf8), using: agentKey)))
    }

    private func signature(_ input: String) -> String {
        Self.base64URL(Data(HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: key)))
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func base64URLDecode(_ text: String) -> Data? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s)
    }
}
