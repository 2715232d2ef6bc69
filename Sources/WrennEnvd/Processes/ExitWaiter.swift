import Foundation

/// Waits for a child to exit without blocking Swift's cooperative pool: a small dedicated thread sits in
/// `waitpid` for each child (envd's children are few; a thread costs a 256 KiB stack, mostly untouched).
enum ExitWaiter {
    static func wait(for pid: pid_t) async -> ExitInfo {
        await withCheckedContinuation { (continuation: CheckedContinuation<ExitInfo, Never>) in
            let thread = Thread {
                var status: Int32 = 0
                while true {
                    let rc = waitpid(pid, &status, 0)
                    if rc == pid { break }
                    if rc < 0 && errno == EINTR { continue }
                    // ECHILD: someone else reaped it; report an unknown failure.
                    status = 255 << 8
                    break
                }
                continuation.resume(returning: ExitInfo(waitStatus: status))
            }
            thread.stackSize = 256 << 10
            thread.name = "wait-\(pid)"
            thread.start()
        }
    }
}
