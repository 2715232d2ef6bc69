import Foundation
import HummingbirdWebSocket
import NIOCore
import WrennHTTP
import WrennWire

/// JSON text frames in and out of WebSockets (and NDJSON lines).
struct FrameCoding: Sendable {
    private let encoder = WireCoding.makeEncoder()

    func text<T: Encodable>(_ frame: T) -> String {
        guard let data = try? encoder.encode(frame) else { return #"{"type":"error","data":"encoding failed"}"# }
        return String(decoding: data, as: UTF8.self)
    }

    func line<T: Encodable>(_ frame: T) -> ByteBuffer {
        var buffer = ByteBuffer()
        if let data = try? encoder.encode(frame) {
            buffer.writeBytes(data)
        }
        buffer.writeInteger(UInt8(ascii: "\n"))
        return buffer
    }

    /// Paces WebSocket writes (nil: unpaced, for rare control frames).
    var settling: WriteSettling?

    func send<T: Encodable>(_ frame: T, to outbound: WebSocketOutboundWriter) async throws {
        try await outbound.writeTextMessage(text(frame))
        try await settling?.settle()
    }

    /// Decodes a client message; the error text explains what was wrong.
    func decode<T: Decodable>(_ type: T.Type, from message: WebSocketMessage) -> Result<T, FrameError> {
        let data: Data
        switch message {
        case .text(let string): data = Data(string.utf8)
        case .binary(let buffer): data = Data(buffer.readableBytesView)
        }
        do {
            return .success(try JSONDecoder().decode(T.self, from: data))
        } catch let error as DecodingError {
            return .failure(FrameError(message: "malformed frame: \(ErrorEnvelopeMiddleware<EnvdRequestContext>.describe(error))"))
        } catch {
            return .failure(FrameError(message: "malformed frame: \(error)"))
        }
    }

    /// A data frame for a chunk: UTF-8 text when valid, else base64.
    static func dataFrame(_ chunk: OutputChunk, dropped: Int) -> ProcessStreamFrame {
        let kind: ProcessStreamFrame.Kind = chunk.channel == .stderr ? .stderr : .stdout
        if let text = String(validating: chunk.bytes.readableBytesView, as: UTF8.self) {
            return ProcessStreamFrame(type: kind, data: text, dropped: dropped > 0 ? dropped : nil)
        }
        return ProcessStreamFrame(
            type: kind, data: Data(chunk.bytes.readableBytesView).base64EncodedString(), encoding: .base64,
            dropped: dropped > 0 ? dropped : nil
        )
    }

    static func exitFrame(_ exit: ExitInfo) -> ProcessStreamFrame {
        ProcessStreamFrame(
            type: .exit, exitCode: exit.exitCode, signal: exit.signalName, timedOut: exit.timedOut ? true : nil
        )
    }
}

/// A client frame that could not be used.
struct FrameError: Error {
    let message: String
}
