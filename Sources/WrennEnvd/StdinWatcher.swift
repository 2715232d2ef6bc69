import Foundation

/// Sends SIGTERM to this process when standard input reaches end of file (so a parent that dies, or closes
/// the pipe, stops envd gracefully).
public enum StdinWatcher {
    /// Starts the watching thread.
    public static func start() {
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
