import Foundation
import WrennWire

/// Builds `FileEntry` values from lstat, and walks directories for listings.
enum FileEntries {
    /// Describes `path` without following a final symlink. 404 when missing.
    static func entry(at path: String, names: inout OwnerNames) throws(EnvdError) -> FileEntry {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw EnvdError.fromErrno(errno, "stat", path: path) }
        return entry(path: path, info: info, names: &names)
    }

    static func entry(path: String, info: stat, names: inout OwnerNames) -> FileEntry {
        let mode = UInt32(info.st_mode)
        let type: FileEntry.Kind
        switch mode & UInt32(S_IFMT) {
        case UInt32(S_IFREG): type = .file
        case UInt32(S_IFDIR): type = .directory
        case UInt32(S_IFLNK): type = .symlink
        default: type = .unknown
        }
        var target: String?
        if type == .symlink {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(path, &buffer, buffer.count - 1)
            if n >= 0 {
                target = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        return FileEntry(
            name: FilePaths.name(of: path), path: path, type: type, size: Int64(info.st_size), mode: mode,
            permissions: permissions(mode), owner: names.user(info.st_uid), group: names.group(info.st_gid),
            modifiedAt: Int64(info.st_mtim.tv_sec), symlinkTarget: target
        )
    }

    /// `ls -l` style permission string, including setuid/setgid/sticky.
    static func permissions(_ mode: UInt32) -> String {
        let typeChar: Character
        switch mode & UInt32(S_IFMT) {
        case UInt32(S_IFDIR): typeChar = "d"
        case UInt32(S_IFLNK): typeChar = "l"
        case UInt32(S_IFCHR): typeChar = "c"
        case UInt32(S_IFBLK): typeChar = "b"
        case UInt32(S_IFIFO): typeChar = "p"
        case UInt32(S_IFSOCK): typeChar = "s"
        default: typeChar = "-"
        }
        func bit(_ mask: UInt32, _ c: Character) -> Character { mode & mask != 0 ? c : "-" }
        func exec(_ x: UInt32, _ special: UInt32, set: Character, unset: Character) -> Character {
            switch (mode & x != 0, mode & special != 0) {
            case (true, true): return set
            case (false, true): return unset
            case (true, false): return "x"
            case (false, false): return "-"
            }
        }
        return String([
            typeChar,
            bit(0o400, "r"), bit(0o200, "w"), exec(0o100, 0o4000, set: "s", unset: "S"),
            bit(0o040, "r"), bit(0o020, "w"), exec(0o010, 0o2000, set: "s", unset: "S"),
            bit(0o004, "r"), bit(0o002, "w"), exec(0o001, 0o1000, set: "t", unset: "T"),
        ])
    }

    /// Lists `root` down to `depth` levels (0 and 1 = children only). Symlinks are listed, never followed.
    static func list(_ root: String, depth: Int, limit: Int) throws(EnvdError) -> [FileEntry] {
        var info = stat()
        guard lstat(root, &info) == 0 else { throw EnvdError.fromErrno(errno, "list", path: root) }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw .invalid("list \(root): not a directory") }
        var names = OwnerNames()
        var entries: [FileEntry] = []
        try walk(root, level: 1, maxLevel: max(depth, 1), limit: limit, names: &names, into: &entries)
        return entries
    }

    private static func walk(
        _ directory: String, level: Int, maxLevel: Int, limit: Int, names: inout OwnerNames, into entries: inout [FileEntry]
    ) throws(EnvdError) {
        let children: [String]
        do {
            children = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        } catch {
            if level == 1 { throw .forbidden("list \(directory): \(error.localizedDescription)") }
            return  // unreadable subdirectory: list what we can
        }
        for child in children {
            guard entries.count < limit else { return }
            let path = directory == "/" ? "/\(child)" : "\(directory)/\(child)"
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            entries.append(entry(path: path, info: info, names: &names))
            if level < maxLevel, info.st_mode & S_IFMT == S_IFDIR {
                try walk(path, level: level + 1, maxLevel: maxLevel, limit: limit, names: &names, into: &entries)
            }
        }
    }
}
