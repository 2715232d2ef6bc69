import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Files that must survive a crash of the machine, not only of the process: capsule and template records, spooled
/// events, host credentials, the control plane's secrets. `Data.write(options: .atomic)` renames a temporary file
/// into place but never fsyncs, so after a power loss the rename can be on disk while the content is not (an empty
/// or torn record: a capsule the agent no longer knows). Here the content is fsynced before the rename, and the
/// folder after it, so the path holds either the old bytes or the new ones.
public enum DurableFile {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Writes `data` to `path` durably and atomically; the file gets `permissions` from its creation on (a secret is
    /// never readable by others, not even briefly).
    public static func write(_ data: Data, to path: String, permissions: mode_t = 0o644) throws {
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
        guard fd >= 0 else { throw failure("cannot create", temporary) }
        do {
            try data.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = Glibc.write(fd, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw failure("cannot write", temporary)
                    }
                    offset += written
                }
            }
            guard fchmod(fd, permissions) == 0 else { throw failure("cannot chmod", temporary) } // despite the umask
            guard fsync(fd) == 0 else { throw failure("cannot fsync", temporary) }
            close(fd)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let error = failure("cannot rename onto \(path):", temporary)
            unlink(temporary)
            throw error
        }
        try syncFolder(of: path)
    }

    /// fsyncs a file written by someone else (QEMU's device state, a copied memory file).
    public static func sync(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure("cannot fsync", path) }
    }

    /// fsyncs the folder holding `path`, so a rename or a new file in it is on disk.
    public static func syncFolder(of path: String) throws {
        try sync((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent)
    }

    private static func failure(_ what: String, _ path: String) -> Failure {
        Failure(description: "\(what) \(path): \(String(cString: strerror(errno)))")
    }
}
