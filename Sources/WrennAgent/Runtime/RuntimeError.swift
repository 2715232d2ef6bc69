/// Failures of the capsule runtime.
public enum RuntimeError: Error, CustomStringConvertible, Equatable {
    /// No capsule with this id on this host.
    case notFound(String)
    /// The operation is not allowed in the capsule's current state.
    case invalidState(id: String, state: String, operation: String)
    /// A capsule with this id already exists.
    case alreadyExists(String)
    /// The slot pool is exhausted.
    case noFreeSlot
    /// The template or image does not exist.
    case templateNotFound(String)
    /// envd did not answer in time.
    case guestNotReady(String)
    /// envd answered something unexpected.
    case guestProtocol(String)
    /// QEMU failed (launch, QMP, migration).
    case vmm(String)
    /// Invalid request (bad id, sizes).
    case invalidRequest(String)

    /// A one-line explanation.
    public var description: String {
        switch self {
        case .notFound(let id): return "capsule \(id) not found"
        case .invalidState(let id, let state, let op): return "cannot \(op) capsule \(id) in state \(state)"
        case .alreadyExists(let id): return "capsule \(id) already exists"
        case .noFreeSlot: return "no free network slot"
        case .templateNotFound(let name): return "template or image \(name) not found"
        case .guestNotReady(let why): return "envd not ready: \(why)"
        case .guestProtocol(let why): return "envd protocol: \(why)"
        case .vmm(let why): return "VMM: \(why)"
        case .invalidRequest(let why): return "invalid request: \(why)"
        }
    }
}
