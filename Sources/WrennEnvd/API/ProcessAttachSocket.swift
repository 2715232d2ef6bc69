import HummingbirdWebSocket
import WrennWire

/// `GET /processes/{selector}/stream` (WebSocket): replays the process's held output, then tails it live;
/// closes after `exit`. Client messages are ignored. An unknown selector gets an `error` frame.
struct ProcessAttachSocket: Sendable {
    let table: ProcessTable
    let coding = FrameCoding()

    func handle(selector: String, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        guard let process = table.find(selector) else {
            try await coding.send(ProcessStreamFrame(type: .error, data: "no process '\(selector)'"), to: outbound)
            return
        }
        let coding = self.coding
        let follower = Task {
            try await ProcessFollower.follow(process) { frame in
                try await coding.send(frame, to: outbound)
            }
        }
        // Ends when the client closes, or when the follower finishes and we return (which closes the socket).
        let watcher = Task {
            for try await _ in inbound {}
            follower.cancel()
        }
        defer { watcher.cancel() }
        try await follower.value
    }
}
