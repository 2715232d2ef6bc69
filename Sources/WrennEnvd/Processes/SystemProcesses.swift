import Foundation
import WrennWire

/// The guest's processes as /proc shows them (kernel threads, which have no command line, are left out).
enum SystemProcesses {
    static func scan(procRoot: String = "/proc") -> [ProcessEntry] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: procRoot) else { return [] }
        var entries: [ProcessEntry] = []
        for name in names {
            guard let pid = pid_t(name) else { continue }
            guard let raw = FileManager.default.contents(atPath: "\(procRoot)/\(name)/cmdline"), !raw.isEmpty else {
                continue
            }
            var parts = raw.split(separator: 0, omittingEmptySubsequences: false).map {
                String(decoding: $0, as: UTF8.self)
            }
            if parts.last == "" { parts.removeLast() }
            guard let cmd = parts.first else { continue }
            entries.append(ProcessEntry(pid: pid, tag: nil, cmd: cmd, args: Array(parts.dropFirst())))
        }
        return entries.sorted { $0.pid < $1.pid }
    }
}
