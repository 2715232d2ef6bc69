import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import WrennWire

/// A descriptor closed when the last reference goes (so an unsent response body cannot leak it).
final class OwnedDescriptor: Sendable {
    let fd: Int32
    init(_ fd: Int32) { self.fd = fd }
    deinit { close(fd) }
}

/// The file operations behind `/files/*`. Contents always stream in bounded chunks; blocking system calls
/// run on NIO's thread pool.
struct FileService: Sendable {
    let identity: EnvdIdentity
    let limits: EnvdLimits
    /// Bytes per read from disk, and the size writes are gathered to before hitting the disk.
    static let chunkSize = 256 << 10
    static let writeBatch = 1 << 20

    private var pool: NIOThreadPool { .singleton }

    // MARK: read

    /// Opens a regular file for streaming: 404 when missing, 400 for a directory or other non-regular file.
    func openForRead(_ rawPath: String) throws(EnvdError) -> (file: OwnedDescriptor, size: Int) {
        let path = try FilePaths.normalize(rawPath)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == EISDIR { throw .invalid("read \(path): is a directory") }
            throw EnvdError.fromErrno(errno, "read", path: path)
        }
        let file = OwnedDescriptor(fd)
        var info = Glibc.stat()
        guard fstat(fd, &info) == 0 else { throw EnvdError.fromErrno(errno, "read", path: path) }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw .invalid("read \(path): is a directory")
        default: throw .invalid("read \(path): not a regular file")
        }
        return (file, Int(info.st_size))
    }

    /// The file's bytes as a response body of exactly `size` bytes.
    func body(for file: OwnedDescriptor, size: Int, settling: WriteSettling) -> ResponseBody {
        let pool = self.pool
        return ResponseBody(contentLength: size) { writer in
            var offset = 0
            while offset < size {
                let want = min(Self.chunkSize, size - offset)
                let at = offset
                let chunk: ByteBuffer = try await pool.runIfActive {
                    var buffer = ByteBufferAllocator().buffer(capacity: want)
                    let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { raw in
                        var got: Int
                        repeat {
                            got = pread(file.fd, raw.baseAddress, want, off_t(at))
                        } while got < 0 && errno == EINTR
                        return max(got, 0)
                    }
                    _ = n
                    return buffer
                }
                guard chunk.readableBytes > 0 else {
                    throw EnvdError.internalError("file shrank while being read")
                }
                offset += chunk.readableBytes
                try await writer.write(chunk)
                try await settling.settle()
            }
            try await writer.finish(nil)
        }
    }

    // MARK: write

    /// Streams `body` into a temporary file next to `rawPath`, then renames it into place. Missing parent
    /// directories are created; the file and new directories belong to `user` (default: the capsule's).
    func write(_ rawPath: String, user: String?, mode: UInt32?, body: RequestBody) async throws -> FileEntry {
        let path = try FilePaths.normalize(rawPath)
        guard path != "/" else { throw EnvdError.invalid("cannot write to /") }
        let owner = try account(for: user)
        let parent = FilePaths.parent(of: path)
        try makeDirectories(parent, owner: owner)
        var existing = Glibc.stat()
        var keepMode: UInt32?
        if lstat(path, &existing) == 0 {
            if existing.st_mode & S_IFMT == S_IFDIR { throw EnvdError.invalid("write \(path): is a directory") }
            keepMode = UInt32(existing.st_mode) & 0o7777
        }
        let temp = "\(parent == "/" ? "" : parent)/.\(FilePaths.name(of: path)).wrenn-\(String(UInt64.random(in: .min ... .max), radix: 16))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw EnvdError.fromErrno(errno, "write", path: path) }
        let file = OwnedDescriptor(fd)
        do {
            var pending = ByteBuffer()
            pending.reserveCapacity(Self.writeBatch)
            for try await var chunk in body {
                pending.writeBuffer(&chunk)
                if pending.readableBytes >= Self.writeBatch {
                    try await writeAll(pending, to: file, path: path)
                    pending.clear()
                }
            }
            if pending.readableBytes > 0 {
                try await writeAll(pending, to: file, path: path)
            }
            if getuid() == 0, !owner.isCurrentProcessUser {
                guard fchown(fd, owner.uid, owner.gid) == 0 else { throw EnvdError.fromErrno(errno, "chown", path: path) }
            }
            guard fchmod(fd, mode_t(mode ?? keepMode ?? 0o644)) == 0 else { throw EnvdError.fromErrno(errno, "chmod", path: path) }
            guard rename(temp, path) == 0 else { throw EnvdError.fromErrno(errno, "rename", path: path) }
        } catch {
            unlink(temp)
            throw error
        }
        _ = file
        var names = OwnerNames()
        return try FileEntries.entry(at: path, names: &names)
    }

    private func writeAll(_ buffer: ByteBuffer, to file: OwnedDescriptor, path: String) async throws {
        try await pool.runIfActive {
            try buffer.withUnsafeReadableBytes { raw in
                var done = 0
                while done < raw.count {
                    let n = Foundation.write(file.fd, raw.baseAddress.map { $0 + done }, raw.count - done)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw EnvdError.fromErrno(errno, "write", path: path)
                    }
                    done += n
                }
            }
        }
    }

    // MARK: directories and entries

    /// `mkdir -p` whose created directories belong to `owner`. 400 when a component is not a directory.
    func makeDirectories(_ path: String, owner: UserAccount) throws(EnvdError) {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/\(component)"
            var info = Glibc.stat()
            if lstat(current, &info) == 0 {
                if info.st_mode & S_IFMT == S_IFDIR { continue }
                if info.st_mode & S_IFMT == S_IFLNK, followingStat(current, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { continue }
                throw .invalid("\(current) exists and is not a directory")
            }
            if Glibc.mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw EnvdError.fromErrno(errno, "mkdir", path: current)
            }
            if getuid() == 0, !owner.isCurrentProcessUser {
                _ = chown(current, owner.uid, owner.gid)
            }
        }
    }

    /// Creates a directory (and parents). 409 `already_exists` when it is already a directory.
    func makeDirectory(_ rawPath: String, user: String?) throws(EnvdError) -> FileEntry {
        let path = try FilePaths.normalize(rawPath)
        var info = Glibc.stat()
        if lstat(path, &info) == 0 {
            if info.st_mode & S_IFMT == S_IFDIR { throw .alreadyExists("directory \(path) already exists") }
            throw .invalid("\(path) exists and is not a directory")
        }
        try makeDirectories(path, owner: account(for: user))
        var names = OwnerNames()
        return try FileEntries.entry(at: path, names: &names)
    }

    func statEntry(_ rawPath: String) throws(EnvdError) -> FileEntry {
        let path = try FilePaths.normalize(rawPath)
        var names = OwnerNames()
        return try FileEntries.entry(at: path, names: &names)
    }

    func list(_ rawPath: String, depth: Int?) throws(EnvdError) -> [FileEntry] {
        let path = try FilePaths.normalize(rawPath)
        let depth = depth ?? 1
        guard depth >= 0 else { throw .invalid("depth must not be negative") }
        return try FileEntries.list(path, depth: depth, limit: limits.maxListEntries)
    }

    /// Removes a file, symlink or directory tree. 404 when missing.
    func remove(_ rawPath: String) throws(EnvdError) {
        let path = try FilePaths.normalize(rawPath)
        guard path != "/" else { throw .invalid("refusing to remove /") }
        var info = Glibc.stat()
        guard lstat(path, &info) == 0 else { throw EnvdError.fromErrno(errno, "remove", path: path) }
        if info.st_mode & S_IFMT == S_IFDIR {
            do {
                try FileManager.default.removeItem(atPath: path)
            } catch {
                throw .internalError("remove \(path): \(error.localizedDescription)")
            }
        } else if unlink(path) != 0 {
            throw EnvdError.fromErrno(errno, "remove", path: path)
        }
    }

    /// Renames (or, across file systems, copies then deletes). 404 when the source is missing.
    func move(from rawSource: String, to rawDestination: String) throws(EnvdError) -> FileEntry {
        let source = try FilePaths.normalize(rawSource)
        let destination = try FilePaths.normalize(rawDestination)
        var info = Glibc.stat()
        guard lstat(source, &info) == 0 else { throw EnvdError.fromErrno(errno, "move", path: source) }
        if rename(source, destination) != 0 {
            let code = errno
            guard code == EXDEV else { throw EnvdError.fromErrno(code, "move", path: destination) }
            do {
                try FileManager.default.moveItem(atPath: source, toPath: destination)
            } catch {
                throw .internalError("move \(source) to \(destination): \(error.localizedDescription)")
            }
        }
        var names = OwnerNames()
        return try FileEntries.entry(at: destination, names: &names)
    }

    private func account(for user: String?) throws(EnvdError) -> UserAccount {
        if let name = user ?? identity.current.defaultUser, !name.isEmpty {
            return try UserAccount.lookup(name)
        }
        return UserAccount.current()
    }
}
