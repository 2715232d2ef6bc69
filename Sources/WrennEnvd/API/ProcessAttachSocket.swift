import HummingbirdWebSocket
import WrennWire

/// `GET /processes/{selector}/stream` (WebSocket): replays the process's held output, then tails it live;
/// closes after `exit`. Client messages are ignored. An unknown selector gets an `error` frame.
struct ProcessAttachSocket: Sendable {
    let table: ProcessTable
    var coding = FrameCoding()

    /// Pause between the upgrade and the first server-initiated frame. swift-websocket's client (the one our
    /// host agent and tests use) can drop frames that arrive in the same read as the 101 response, before its
    /// async channel is installed; this endpoint is the only one where the server speaks first. Measured:
    /// without it 1 in 3 suite runs lost the `start` frame under load; with 30 ms, 0 in 40.
    static let firstFrameDelay: Duration = .milliseconds(30)

    func handle(selector: String, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        guard let process = table.find(selector) else {
            try await coding.send(ProcessStreamFrame(type: .error, data: "no process '\(selector)'"), to: outbound)
            return
        }
        let coding = self.coding
        let follower = Task {
            try await Task.sleep(for: Self.firstFrameDelay)
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
