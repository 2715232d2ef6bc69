import Foundation
import HummingbirdWebSocket
import Logging
import WrennWire

/// `GET /exec/stream` (WebSocket): the client's first frame starts a process, `stop` kills its group; the
/// server sends `start`, `stdout`/`stderr`, `exit` and closes. A client that goes away kills the process.
struct ExecStreamSocket: Sendable {
    let processes: ProcessManager
    var coding = FrameCoding()

    func handle(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, maxMessage: Int) async throws {
        var messages = inbound.messages(maxSize: maxMessage).makeAsyncIterator()
        var started: ManagedProcess?
        while started == nil {
            guard let message = try await messages.next() else { return }
            switch coding.decode(ExecStreamClientFrame.self, from: message) {
            case .failure(let error):
                try await coding.send(ProcessStreamFrame(type: .error, data: error.message), to: outbound)
            case .success(let frame) where frame.type == .stop:
                return
            case .success(let frame):
                guard let cmd = frame.cmd else {
                    try await coding.send(ProcessStreamFrame(type: .error, data: "start frame needs cmd"), to: outbound)
                    continue
                }
                do {
                    started = try processes.start(
                        cmd: cmd, args: frame.args ?? [], envs: frame.envs, cwd: frame.cwd, user: frame.user,
                        tag: frame.tag, timeout: frame.timeoutSec.flatMap { $0 > 0 ? .seconds($0) : nil }, kind: .stream
                    )
                } catch {
                    try await coding.send(ProcessStreamFrame(type: .error, data: error.message), to: outbound)
                }
            }
        }
        guard let process = started else { return }
        let coding = self.coding
        // Frames go out from a task; this loop keeps reading `stop`. After `exit` the server closes the socket.
        let follower = Task {
            try await ProcessFollower.follow(process) { frame in
                try await coding.send(frame, to: outbound)
            }
            try await outbound.close(.normalClosure, reason: "process exited")
        }
        defer { follower.cancel() }
        do {
            while let message = try await messages.next() {
                switch coding.decode(ExecStreamClientFrame.self, from: message) {
                case .success(let frame) where frame.type == .stop:
                    process.signal(SIGKILL)
                case .success:
                    try await coding.send(ProcessStreamFrame(type: .error, data: "process already started"), to: outbound)
                case .failure(let error):
                    try await coding.send(ProcessStreamFrame(type: .error, data: error.message), to: outbound)
                }
            }
        } catch {}
        // The socket is gone; a process still running loses its only reader, so it is stopped.
        if process.isRunning { process.signal(SIGKILL) }
        _ = try? await follower.value
    }
}
