import Foundation

/// Unix socket paths are limited to 107 bytes; capsule and template directories under a deep data directory can
/// exceed that. Sockets then live in `/run/wrenn/` under a name derived from the directory (stable across agent
/// restarts, so a re-adopted VM's QMP socket is found again).
public enum SocketPath {
    /// Longest path used as-is.
    public static let limit = 100

    /// The QMP socket path for a capsule or template directory.
    public static func qmp(forDirectory directory: String) -> String {
        let direct = directory + "/qmp.sock"
        if direct.utf8.count <= limit { return direct }
        try? FileManager.default.createDirectory(atPath: "/run/wrenn", withIntermediateDirectories: true)
        return "/run/wrenn/\(fnv1a64(directory)).qmp"
    }

    /// FNV-1a 64-bit hash as 16 hex digits.
    static func fnv1a64(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return String(format: "%016llx", hash)
    }
}
