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
}
