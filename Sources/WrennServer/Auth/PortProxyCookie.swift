import Crypto
import Foundation

/// The browser credential of the port proxy: a page opened once as `…/?wrenn_api_key=<key>` is redirected to the
/// same URL without the key and gets this cookie instead. It holds no key, only an HMAC (keyed from the server
/// secret) over the capsule, port, team and expiry, so it opens nothing but that one `{port}-{capsule}` origin for
/// 12 hours: it is host-only (no `Domain`), HttpOnly, SameSite=Lax, Secure unless the public URL is plain http,
/// and the proxy strips it before forwarding, so the capsule's app never sees it.
struct PortProxyCookie: Sendable {
    static let name = "wrenn_proxy_token"
    static let queryParameter = "wrenn_api_key"
    static let lifetime: TimeInterval = 12 * 3600
    private let key: SymmetricKey

    init(secret: String) {
        let master = SymmetricKey(data: Data(secret.utf8))
        key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data("wrenn port proxy cookie".utf8), using: master)))
    }

    /// `v1.<expiry unix>.<team id>.<hmac>`.
    func issue(team: String, for address: PortProxyAddress, now: Date) -> String {
        let expiry = Int64(now.timeIntervalSince1970 + Self.lifetime)
        return "v1.\(expiry).\(team).\(mac(team: team, address: address, expiry: expiry))"
    }

    /// The team a cookie value stands for, if it was issued for `address` and has not expired.
    func verify(_ value: String, for address: PortProxyAddress, now: Date) -> String? {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4, parts[0] == "v1", let expiry = Int64(parts[1]), Double(expiry) > now.timeIntervalSince1970 else { return nil }
        guard Secrets.constantTimeEquals(parts[3], mac(team: parts[2], address: address, expiry: expiry)) else { return nil }
        return parts[2]
    }

    private func mac(team: String, address: PortProxyAddress, expiry: Int64) -> String {
        Secrets.hmacHex("\(address.capsuleID)|\(address.port)|\(team)|\(expiry)", key: key)
    }
}
