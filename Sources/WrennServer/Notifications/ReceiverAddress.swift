import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where channel notifications may go. Channel URLs come from team admins and the control plane sends to them from
/// inside the operator's network, so by default a receiver must be a public address: not loopback, private
/// (RFC 1918, unique-local), link-local (cloud metadata at 169.254.169.254), CGNAT, multicast or unspecified —
/// otherwise any team could make the control plane call its own admin ports, the agents, capsules or metadata
/// services. `WRENN_CHANNELS_ALLOW_PRIVATE=1` (`ChannelSettings.allowPrivateReceivers`) lifts this for installations
/// whose receivers are internal (and for the tests' loopback receivers).
///
/// Checked twice: at create/rotate/test on the URL as written (literal addresses and `localhost` names, a 400 naming
/// the field), and before every send on what the name resolves to then. The connection resolves again, so a DNS
/// answer that changes between the two (rebinding) is not caught; redirects are never followed.
enum ReceiverAddress {
    /// Why `address` may not receive notifications, or nil when it is a public address.
    static func refusal(_ address: String) -> String? {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            let a = UInt32(bigEndian: v4.s_addr)
            let ranges: [(UInt32, UInt32, String)] = [
                (0x0000_0000, 8, "unspecified"), (0x7F00_0000, 8, "loopback"), (0x0A00_0000, 8, "private"),
                (0xAC10_0000, 12, "private"), (0xC0A8_0000, 16, "private"), (0xA9FE_0000, 16, "link-local"),
                (0x6440_0000, 10, "shared (CGNAT)"), (0xE000_0000, 4, "multicast"), (0xF000_0000, 4, "reserved"),
            ]
            for (base, bits, kind) in ranges where a >> (32 - bits) == base >> (32 - bits) { return "\(address) is a \(kind) address" }
            return nil
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, address, &v6) == 1 else { return "\(address) is not an IP address" }
        let bytes = withUnsafeBytes(of: v6) { Array($0) }
        if bytes.allSatisfy({ $0 == 0 }) { return "\(address) is the unspecified address" }
        if bytes.dropLast().allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return "\(address) is the loopback address" }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return refusal("\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])") // IPv4-mapped
        }
        if bytes[0] & 0xFE == 0xFC { return "\(address) is a unique-local (private) address" }
        if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return "\(address) is a link-local address" }
        if bytes[0] == 0xFF { return "\(address) is a multicast address" }
        return nil
    }

    /// The create-time check of a URL's host as written: a literal address or a `localhost` name that may not
    /// receive notifications.
    static func literalRefusal(host rawHost: String) -> String? {
        let host = rawHost.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        if host == "localhost" || host.hasSuffix(".localhost") { return "\(host) is a loopback name" }
        var v4 = in_addr(), v6 = in6_addr()
        guard inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1 else { return nil }
        return refusal(host)
    }

    /// The send-time check: resolves `host` and refuses when any of its addresses may not receive notifications.
    static func check(host: String) async throws {
        let addresses = try await resolve(host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")))
        guard !addresses.isEmpty else { throw ChannelDeliveryError.unreachable("\(host) does not resolve") }
        for address in addresses {
            if let why = refusal(address) {
                throw ChannelDeliveryError.misconfigured("\(host): \(why); receivers must be public unless WRENN_CHANNELS_ALLOW_PRIVATE=1")
            }
        }
    }

    /// `getaddrinfo` on a thread of its own (it blocks).
    static func resolve(_ host: String) async throws -> [String] {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                var hints = addrinfo()
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                var list: UnsafeMutablePointer<addrinfo>?
                let status = getaddrinfo(host, nil, &hints, &list)
                guard status == 0 else {
                    continuation.resume(throwing: ChannelDeliveryError.unreachable("cannot resolve \(host): \(String(cString: gai_strerror(status)))"))
                    return
                }
                defer { freeaddrinfo(list) }
                var addresses: [String] = []
                var entry = list
                while let current = entry {
                    var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                    if getnameinfo(current.pointee.ai_addr, current.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                        addresses.append(String(cString: buffer))
                    }
                    entry = current.pointee.ai_next
                }
                continuation.resume(returning: addresses)
            }
        }
    }
}
