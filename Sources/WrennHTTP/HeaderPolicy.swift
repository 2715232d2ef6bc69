import Foundation
import HTTPTypes

/// Which headers a proxy passes on: only names on the list (or starting with an allowed prefix), never a hop-by-hop
/// header or one the `Connection` header names, never a denied one. Every proxy hop (control plane → agent → envd or a
/// guest port, and back) filters both directions with one of the policies below.
public struct HeaderPolicy: Sendable {
    /// Allowed names, lowercase.
    public var names: Set<String>
    /// Allowed name prefixes, lowercase (`x-` for an app's own headers).
    public var prefixes: [String]
    /// Names refused even when a prefix allows them, lowercase.
    public var denied: Set<String>

    public init(names: Set<String>, prefixes: [String] = [], denied: Set<String> = []) {
        self.names = names
        self.prefixes = prefixes
        self.denied = denied.union(Self.hopByHop)
    }

    /// RFC 9110 §7.6.1 plus the usual non-standard ones; `Host` and the framing headers are set by each hop itself.
    public static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length",
    ]

    /// The names `Connection` lists (hop-by-hop too), lowercase.
    public static func connectionTokens(_ fields: HTTPFields) -> Set<String> {
        Set(fields[values: .connection].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
    }

    public func allows(_ name: String) -> Bool {
        let name = name.lowercased()
        guard !denied.contains(name) else { return false }
        return names.contains(name) || prefixes.contains { name.hasPrefix($0) }
    }

    /// The allowed fields of `fields`, in order.
    public func filter(_ fields: HTTPFields) -> HTTPFields {
        let named = Self.connectionTokens(fields)
        var kept = HTTPFields()
        for field in fields where allows(field.name.canonicalName) && !named.contains(field.name.canonicalName) {
            kept.append(field)
        }
        return kept
    }

    // MARK: The policies

    /// Agent → envd: what envd's API reads (the agent adds envd's own `Authorization`).
    public static let envdRequest = HeaderPolicy(names: ["content-type", "accept"])
    /// envd → agent: what the control plane may look at; it decides the public answer's headers itself.
    public static let envdResponse = HeaderPolicy(names: ["content-type", "content-disposition"])

    /// Credentials of the platform that never reach a guest app.
    public static let platformCredentials: Set<String> = [
        "authorization", "x-api-key", "x-csrf-token", "x-host-token", "x-wrenn-forwarded-authorization",
    ]

    /// A browser or client → an app on a capsule port: ordinary request headers, cookies (the control plane removes the
    /// platform's own first) and an app's own `X-…` headers, never the platform's credentials (the caller's own
    /// `Authorization` travels separately and is restored by the agent).
    public static let guestRequest = HeaderPolicy(
        names: [
            "accept", "accept-encoding", "accept-language", "cache-control", "content-type", "content-encoding",
            "content-language", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range", "range",
            "origin", "referer", "user-agent", "pragma", "dnt", "access-control-request-method",
            "access-control-request-headers", "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "sec-fetch-user",
            "forwarded", "cookie",
        ],
        prefixes: ["x-"],
        denied: platformCredentials)

    /// An app on a capsule port → the browser (its own origin, `{port}-{id}.{domain}`): ordinary response headers and
    /// an app's own `X-…` headers. `Set-Cookie` is allowed here and rewritten by the port proxy (``SetCookieGuard``).
    public static let guestResponse = HeaderPolicy(
        names: [
            "content-type", "content-encoding", "content-language", "content-disposition", "content-range", "accept-ranges",
            "cache-control", "etag", "expires", "last-modified", "location", "vary", "www-authenticate", "retry-after",
            "set-cookie", "access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods",
            "access-control-allow-headers", "access-control-expose-headers", "access-control-max-age",
            "content-security-policy", "referrer-policy", "link", "date", "age", "server-timing",
        ],
        prefixes: ["x-"],
        denied: ["strict-transport-security", "x-wrenn-forwarded-authorization"])
}

/// Guest `Set-Cookie` headers as the port proxy lets them reach a browser: host-only (a `Domain` attribute is
/// removed, so a capsule app can never set a cookie for the API's domain or a sibling), and never a cookie named like
/// the platform's own.
public enum SetCookieGuard {
    /// `value` rewritten, or nil when it must be dropped.
    public static func rewrite(_ value: String, reservedNames: Set<String>) -> String? {
        let attributes = value.split(separator: ";", omittingEmptySubsequences: false)
        guard let pair = attributes.first, let equals = pair.firstIndex(of: "=") else { return nil }
        let name = pair[..<equals].trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, !reservedNames.contains(name.lowercased()) else { return nil }
        let kept = attributes.dropFirst().filter { attribute in
            let key = attribute.split(separator: "=", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            return key != "domain"
        }
        return ([pair] + kept).joined(separator: ";")
    }

    /// `fields` with every `Set-Cookie` rewritten or dropped.
    public static func apply(to fields: inout HTTPFields, reservedNames: Set<String>) {
        let cookies = fields[values: .setCookie]
        guard !cookies.isEmpty else { return }
        fields[values: .setCookie] = cookies.compactMap { rewrite($0, reservedNames: reservedNames) }
    }
}
