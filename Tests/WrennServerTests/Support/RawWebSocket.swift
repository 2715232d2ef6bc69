import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking WebSocket client over a plain TCP socket, for the one thing the library client cannot do: send
/// a `Host` header that differs from the address it connects to (the port proxy is selected by `Host`, and
/// `{port}-{capsule}.localhost` does not resolve here). Text frames only; enough for an echo test.
final class RawWebSocket: @unchecked Sendable {
    private let fd: Int32
    private var buffer: [UInt8] = []

    /// Connects to `127.0.0.1:port`, sends the upgrade for `path` with `host` and `headers`, and returns the status
    /// line and the socket (nil socket unless the answer was 101).
    static func connect(port: Int, host: String, path: String, headers: [String: String]) throws -> (status: String, socket: RawWebSocket?) {
        let answer = try handshake(port: port, host: host, path: path, headers: headers)
        return (answer.statusLine, answer.socket)
    }

    /// The answer to an upgrade request: status, headers (names lowercased), the body of a refusal (by its
    /// `Content-Length`), and the socket when it was 101.
    struct Handshake: Sendable {
        var statusLine: String
        var headers: [String: String]
        var body: [UInt8]
        var socket: RawWebSocket?

        var status: Int { Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0 }
        var text: String { String(decoding: body, as: UTF8.self) }
        /// The error envelope's code, if the body is one.
        var errorCode: String? {
            ((try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]).flatMap { $0["error"] as? [String: Any] }?["code"] as? String
        }
    }

    static func handshake(port: Int, host: String, path: String, headers: [String: String]) throws -> Handshake {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawWebSocketError("socket failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw RawWebSocketError("connect failed") }
        let socket = RawWebSocket(fd: fd)
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        try socket.write(Array(request.utf8))
        var head: [UInt8] = []
        while !(head.count >= 4 && head.suffix(4) == [13, 10, 13, 10]) { head.append(try socket.read(1)[0]) }
        let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n")
        let status = lines.first ?? ""
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        if status.contains(" 101 ") { return Handshake(statusLine: status, headers: fields, body: [], socket: socket) }
        let length = fields["content-length"].flatMap(Int.init) ?? 0
        let body = length > 0 ? try socket.read(length) : []
        return Handshake(statusLine: status, headers: fields, body: body, socket: nil)
    }

    private init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    /// Sends one masked text frame.
    func send(text: String) throws {
        let payload = Array(text.utf8)
        var frame: [UInt8] = [0x81]
        if payload.count < 126 { frame.append(0x80 | UInt8(payload.count)) } else {
            frame.append(0x80 | 126); frame.append(UInt8(payload.count >> 8)); frame.append(UInt8(payload.count & 0xff))
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try write(frame)
    }

    /// Reads one unmasked frame from the server: its opcode and payload.
    func receive() throws -> (opcode: UInt8, payload: [UInt8]) {
        let header = try read(2)
        var length = Int(header[1] & 0x7f)
        if length == 126 { let ext = try read(2); length = Int(ext[0]) << 8 | Int(ext[1]) }
        else if length == 127 { length = try read(8).reduce(0) { $0 << 8 | Int($1) } }
        return (header[0] & 0x0f, length > 0 ? try read(length) : [])
    }

    private func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw RawWebSocketError("write failed") }
            offset += n
        }
    }

    private func read(_ count: Int) throws -> [UInt8] {
        while buffer.count < count {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw RawWebSocketError("connection closed") }
            buffer += chunk[0..<n]
        }
        let out = Array(buffer[0..<count])
        buffer.removeFirst(count)
        return out
    }
}

struct RawWebSocketError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
