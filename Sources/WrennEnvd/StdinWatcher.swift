import Foundation

/// Sends SIGTERM to this process when standard input reaches end of file or the parent process goes away
/// (so a supervisor that dies, or closes the pipe, stops envd gracefully). The parent check matters because
/// a sibling started by the same parent may have inherited the pipe's write end and keep it open.
public enum StdinWatcher {
    /// Starts the watching threads.
    public static func start() {
        let parent = getppid()
        let parentWatch = Thread {
            while getppid() == parent {
                usleep(500_000)
            }
            kill(getpid(), SIGTERM)
        }
        parentWatch.stackSize = 64 << 10
        parentWatch.start()
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 512)
            while true {
                let n = read(0, &buffer, buffer.count)
                if n > 0 { continue }
                if n < 0 && errno == EINTR { continue }
                break
            }
            kill(getpid(), SIGTERM)
        }
        thread.stackSize = 64 << 10
        thread.start()
    }
}
