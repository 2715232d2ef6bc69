import Foundation

/// Resident memory of a process, split by mapping (from `/proc/<pid>/smaps`).
public struct ProcessMemory: Sendable, Codable, Equatable {
    /// Total resident set (KiB).
    public var rssKiB: Int
    /// Total proportional set (KiB): shared pages divided among their users.
    public var pssKiB: Int
    /// Resident pages of mappings of `file` (KiB) — for QEMU, the guest RAM the guest actually touched.
    public var fileRssKiB: Int

    /// Resident memory beyond the given file's mapping (KiB).
    public var otherRssKiB: Int { rssKiB - fileRssKiB }

    /// Parses smaps text; `file` names the mapping to single out.
    public static func parse(smaps: String, file: String) -> ProcessMemory {
        var rss = 0, pss = 0, fileRss = 0
        var inFile = false
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.contains("-"), fields.count >= 5, !first.hasSuffix(":") {
                inFile = fields.count >= 6 && fields[5...].joined(separator: " ") == file
                continue
            }
            guard fields.count >= 2, let value = Int(fields[1]) else { continue }
            switch first {
            case "Rss:":
                rss += value
                if inFile { fileRss += value }
            case "Pss:": pss += value
            default: break
            }
        }
        return ProcessMemory(rssKiB: rss, pssKiB: pss, fileRssKiB: fileRss)
    }

    /// Reads `/proc/<pid>/smaps`.
    public static func read(pid: Int32, file: String) -> ProcessMemory? {
        guard let text = readProcFile("/proc/\(pid)/smaps") else { return nil }
        return parse(smaps: text, file: file)
    }

    /// Reads a procfs file to the end (procfs reports size 0, so size-based readers stop early).
    static func readProcFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, 65536) }
            if n > 0 { data += buffer[0..<n] } else if n < 0 && errno == EINTR { continue } else { break }
        }
        return String(decoding: data, as: UTF8.self)
    }
}
