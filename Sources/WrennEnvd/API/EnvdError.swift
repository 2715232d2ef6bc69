import Foundation
import Hummingbird
import WrennHTTP

/// envd's failures are the edge's one error type, answered as `{"error":{"code","message"}}` with their status.
typealias EnvdError = APIError

extension APIError {
    /// Maps an errno from a file system call on `path` to the right answer.
    static func fromErrno(_ code: Int32, _ what: String, path: String) -> EnvdError {
        let text = String(cString: strerror(code))
        switch code {
        case ENOENT: return .notFound("\(what) \(path): no such file or directory")
        case ENOTDIR: return .invalid("\(what) \(path): a path component is not a directory")
        case EISDIR: return .invalid("\(what) \(path): is a directory")
        case EEXIST: return .conflict("\(what) \(path): already exists")
        case EACCES, EPERM: return .forbidden("\(what) \(path): \(text)")
        case ENOTEMPTY: return .conflict("\(what) \(path): directory not empty")
        case ENOSPC, EDQUOT: return .init(.init(code: 507, reasonPhrase: "Insufficient Storage"), "insufficient_storage", "\(what) \(path): \(text)")
        case ENAMETOOLONG, EINVAL, ELOOP: return .invalid("\(what) \(path): \(text)")
        default: return .internalError("\(what) \(path): \(text)")
        }
    }
}
