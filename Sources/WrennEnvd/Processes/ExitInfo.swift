#if canImport(Glibc)
import Glibc
#endif

/// How a process ended.
struct ExitInfo: Sendable, Equatable {
    /// Exit status, or 128 + signal number when a signal killed it (the shell convention).
    let exitCode: Int32
    /// The signal that killed it, if any.
    let signal: Int32?
    /// True when envd killed it because its timeout expired.
    var timedOut: Bool = false

    /// Decodes a `waitpid` status word (the W* macros are not importable into Swift).
    init(waitStatus status: Int32) {
        let low = status & 0x7f
        if low == 0 {
            exitCode = (status >> 8) & 0xff
            signal = nil
        } else {
            signal = low
            exitCode = 128 + low
        }
    }

    init(exitCode: Int32, signal: Int32?, timedOut: Bool = false) {
        self.exitCode = exitCode
        self.signal = signal
        self.timedOut = timedOut
    }

    /// `SIGKILL`-style name of `signal`.
    var signalName: String? {
        signal.map(Signals.name)
    }
}

/// Signal names accepted and reported by the API.
enum Signals {
    static func name(_ number: Int32) -> String {
        switch number {
        case SIGHUP: return "SIGHUP"
        case SIGINT: return "SIGINT"
        case SIGQUIT: return "SIGQUIT"
        case SIGABRT: return "SIGABRT"
        case SIGKILL: return "SIGKILL"
        case SIGSEGV: return "SIGSEGV"
        case SIGPIPE: return "SIGPIPE"
        case SIGALRM: return "SIGALRM"
        case SIGTERM: return "SIGTERM"
        case SIGUSR1: return "SIGUSR1"
        case SIGUSR2: return "SIGUSR2"
        default: return "SIG\(number)"
        }
    }

    /// Parses `SIGTERM`/`TERM`/`15` style names; only the signals the API allows.
    static func parse(_ text: String) -> Int32? {
        switch text.uppercased() {
        case "SIGKILL", "KILL", "9": return SIGKILL
        case "SIGTERM", "TERM", "15": return SIGTERM
        case "SIGINT", "INT", "2": return SIGINT
        case "SIGHUP", "HUP", "1": return SIGHUP
        default: return nil
        }
    }
}
