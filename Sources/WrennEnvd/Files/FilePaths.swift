/// Path rules for the file API: absolute only, no NUL, `.` and `..` resolved lexically so the answer names
/// the path the caller actually reached.
enum FilePaths {
    static func normalize(_ path: String) throws(EnvdError) -> String {
        guard path.hasPrefix("/") else { throw .invalid("path must be absolute: '\(path)'") }
        guard !path.contains("\0") else { throw .invalid("path must not contain NUL") }
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..": if !parts.isEmpty { parts.removeLast() }
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    static func name(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        let name = path[path.index(after: slash)...]
        return name.isEmpty ? "/" : String(name)
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// stat(2) (following symlinks) under a name no method shadows.
func followingStat(_ path: String, _ info: inout stat) -> Int32 {
    stat(path, &info)
}
