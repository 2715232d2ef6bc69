import Foundation

/// Facts about the host the runtime needs.
public enum HostFacts {
    /// Host TSC frequency in kHz from `/proc/cpuinfo` ("cpu MHz" × 1000), or `nil` if unknown.
    public static func tscKHz(cpuinfo: String? = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) -> Int? {
        guard let cpuinfo else { return nil }
        for line in cpuinfo.split(separator: "\n") where line.hasPrefix("cpu MHz") {
            guard let colon = line.firstIndex(of: ":"), let mhz = Double(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)) else { continue }
            return Int((mhz * 1000).rounded())
        }
        return nil
    }

    /// Whether `/dev/kvm` exists and can be opened read-write.
    public static var kvmDeviceUsable: Bool {
        let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    /// The host's DNS servers that a guest can use through NAT: `nameserver` lines of `resolvConf` that are not
    /// loopback (a local stub such as systemd-resolved's 127.0.0.53 is unreachable from a capsule), at most 3.
    public static func upstreamNameservers(resolvConf: String? = try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) -> [String] {
        guard let resolvConf else { return [] }
        var servers: [String] = []
        for line in resolvConf.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0] == "nameserver" else { continue }
            let address = String(fields[1])
            if address.hasPrefix("127.") || address == "::1" || address.contains("%") { continue }
            if servers.count < 3, !servers.contains(address) { servers.append(address) }
        }
        return servers
    }
}
