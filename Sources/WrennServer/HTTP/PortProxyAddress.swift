import Foundation

/// Which capsule port a request addresses through its `Host`: `{port}-{capsule_id}.{domain}` (what the SDK's
/// `capsule.get_url(port)` builds). With `WRENN_PROXY_DOMAIN` set, `domain` must be it; unset, any domain is accepted
/// — the SDK derives it from whatever base URL the client uses (`localhost:8080`, `127.0.0.1:8080`, a LAN name), and
/// no host of the API itself starts with `{digits}-cl-`. Ports are ignored when comparing the domain (a reverse
/// proxy in front may change them); names compare case-insensitively.
struct PortProxyAddress: Equatable, Sendable {
    let port: Int
    let capsuleID: String

    enum Match: Equatable {
        /// Not a port-proxy host: the request is for the API itself.
        case none
        case target(PortProxyAddress)
        /// `{n}-{capsule}.{domain}` with `n` outside 1…65535.
        case badPort
    }

    /// The proxy domain of `config` (nil: any).
    static func domain(_ config: ServerConfig) -> String? {
        guard let domain = config.proxyDomain, !domain.isEmpty else { return nil }
        return domain
    }

    /// Classifies the `Host` (authority) `host` against `domain` (nil: any domain).
    static func match(host: String?, domain: String?) -> Match {
        guard let host = host?.lowercased(), let dot = host.firstIndex(of: "."), host.index(after: dot) < host.endIndex else { return .none }
        if let domain, hostname(String(host[host.index(after: dot)...])) != hostname(domain.lowercased()) { return .none }
        let label = host[..<dot]
        guard let dash = label.firstIndex(of: "-") else { return .none }
        let digits = label[..<dash]
        let capsule = String(label[label.index(after: dash)...])
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), capsule.hasPrefix("cl-") else { return .none }
        guard digits.count <= 5, let port = Int(digits), (1...65535).contains(port) else { return .badPort }
        return .target(PortProxyAddress(port: port, capsuleID: capsule))
    }

    /// `name` without a trailing `:port` (IPv6 literals keep their brackets).
    static func hostname(_ name: String) -> String {
        if name.hasPrefix("[") { return name.split(separator: "]", maxSplits: 1).first.map { $0 + "]" } ?? name }
        guard let colon = name.lastIndex(of: ":") else { return name }
        return String(name[..<colon])
    }
}
