import Foundation
import HummingbirdWebSocket
import NIOCore
import Synchronization
import WrennWire

/// `GET /pty` (WebSocket): `start` or `connect`, then `input`/`resize`/`kill`. The server sends `started`,
/// `output` (base64), `exit`, `error` and periodic `ping`. Closing the socket leaves the session running.
struct PTYSocket: Sendable {
    let ptys: PTYManager
    let pingInterval: Duration
    var coding = FrameCoding()

    func handle(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, maxMessage: Int) async throws {
        var messages = inbound.messages(maxSize: maxMessage).makeAsyncIterator()
        var attached: (session: PTYSession, cursor: UInt64)?
        while attached == nil {
            guard let message = try await messages.next() else { return }
            switch coding.decode(PTYClientFrame.self, from: message) {
            case .failure(let error):
                try await sendError(error.message, fatal: false, outbound)
            case .success(let frame):
                switch frame.type {
                case .start:
                    do {
                        let session = try ptys.start(frame)
                        attached = (session, 0)
                    } catch {
                        try await sendError(error.message, fatal: false, outbound)
                    }
                case .connect:
                    guard let tag = frame.tag, let session = ptys.find(tag) else {
                        try await sendError("no PTY session '\(frame.tag ?? "")'", fatal: true, outbound)
                        return
                    }
                    attached = (session, session.resumeCursor())
                case .ping, .pong:
                    continue
                default:
                    try await sendError("first frame must be start or connect", fatal: false, outbound)
                }
            }
        }
        guard let (session, startCursor) = attached else { return }
        try await coding.send(PTYServerFrame(type: .started, tag: session.tag, pid: session.process.pid), to: outbound)

        let cursor = CursorBox(startCursor)
        let coding = self.coding
        let interval = pingInterval
        // Output (replay from the cursor, then live) and pings run beside the input loop below. After `exit`
        // the server closes the socket, which also ends the input loop.
        let output = Task {
            var position = startCursor
            while !Task.isCancelled {
                let batch = await session.log.read(after: position)
                if Task.isCancelled { break }
                var payload = ByteBuffer()
                for chunk in batch.chunks {
                    var bytes = chunk.bytes
                    payload.writeBuffer(&bytes)
                }
                if payload.readableBytes > 0 || batch.dropped > 0 {
                    try await coding.send(
                        PTYServerFrame(
                            type: .output, data: Data(payload.readableBytesView).base64EncodedString(),
                            dropped: batch.dropped > 0 ? batch.dropped : nil
                        ),
                        to: outbound
                    )
                }
                position = batch.next
                cursor.set(position)
                if let exit = batch.exit {
                    try await coding.send(PTYServerFrame(type: .exit, exitCode: exit.exitCode), to: outbound)
                    try await outbound.close(.normalClosure, reason: "process exited")
                    return
                }
            }
        }
        let pinger = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                try await coding.send(PTYServerFrame(type: .ping), to: outbound)
            }
        }
        defer {
            output.cancel()
            pinger.cancel()
        }
        do {
            while let message = try await messages.next() {
                await apply(message, session: session, outbound: outbound)
            }
        } catch {}
        // Disconnected (or closed after exit): remember how far this client got so a reconnect replays the rest.
        if session.log.exit == nil {
            session.detached(at: cursor.get())
        }
    }

    private func apply(_ message: WebSocketMessage, session: PTYSession, outbound: WebSocketOutboundWriter) async {
        switch coding.decode(PTYClientFrame.self, from: message) {
        case .failure(let error):
            try? await sendError(error.message, fatal: false, outbound)
        case .success(let frame):
            switch frame.type {
            case .input:
                guard let text = frame.data, let bytes = Data(base64Encoded: text) else {
                    try? await sendError("input data must be base64", fatal: false, outbound)
                    return
                }
                session.write(ByteBuffer(bytes: bytes))
            case .resize:
                do {
                    try session.resize(rows: frame.rows ?? 0, cols: frame.cols ?? 0)
                } catch {
                    try? await sendError(error.message, fatal: false, outbound)
                }
            case .kill:
                session.kill()
            case .ping, .pong:
                break
            case .start, .connect:
                try? await sendError("session already attached", fatal: false, outbound)
            }
        }
    }

    private func sendError(_ message: String, fatal: Bool, _ outbound: WebSocketOutboundWriter) async throws {
        try await coding.send(PTYServerFrame(type: .error, data: message, fatal: fatal ? true : nil), to: outbound)
    }
}

/// A read position shared between a socket's output task and its input loop.
final class CursorBox: Sendable {
    private let value: Mutex<UInt64>
    init(_ start: UInt64) { value = Mutex(start) }
    func get() -> UInt64 { value.withLock { $0 } }
    func set(_ new: UInt64) { value.withLock { $0 = new } }
}
