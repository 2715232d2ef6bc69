import Foundation

/// A minimal blocking HTTP/1.1 keep-alive client for the benchmark (one connection, Content-Length bodies).
/// It runs on its own thread so it never competes with the server for Swift's cooperative threads.
final class BlockingHTTPClient {
    private let fd: Int32
    private var pending: [UInt8] = []
    private let token: String

    init(port: Int, token: String) throws {
        self.token = token
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw BenchError("connect: \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(fd) }

    /// Sends a request whose body is `bodyLength` bytes produced by `body`, returns (status, response byte count),
    /// passing response bytes to `sink` unless nil.
    func request(
        _ method: String, _ path: String, bodyLength: Int = 0, body: ((Int) -> [UInt8])? = nil,
        keepBody: Bool = true
    ) throws -> (status: Int, body: [UInt8], length: Int) {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
        head += "Content-Length: \(bodyLength)\r\nContent-Type: application/json\r\n\r\n"
        try send(Array(head.utf8))
        var sent = 0
        while sent < bodyLength, let body {
            let chunk = body(min(1 << 20, bodyLength - sent))
            try send(chunk)
            sent += chunk.count
        }
        let header = try readHeader()
        let lines = header.split(separator: "\r\n")
        guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ")[1]) else {
            throw BenchError("bad status line")
        }
        var length = 0
        for line in lines.dropFirst() where line.lowercased().hasPrefix("content-length:") {
            length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
        }
        var kept: [UInt8] = []
        var remaining = length
        while remaining > 0 {
            if pending.isEmpty { try fill() }
            let take = min(remaining, pending.count)
            if keepBody { kept += pending.prefix(take) }
            pending.removeFirst(take)
            remaining -= take
        }
        return (status, kept, length)
    }

    private func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw BenchError("send: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    private func fill() throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        let n = recv(fd, &buffer, buffer.count, 0)
        guard n > 0 else { throw BenchError("connection closed") }
        pending += buffer.prefix(n)
    }

    private func readHeader() throws -> String {
        let marker: [UInt8] = [13, 10, 13, 10]
        while true {
            if pending.count >= 4 {
                for i in 0...(pending.count - 4) where Array(pending[i..<(i + 4)]) == marker {
                    let header = String(decoding: pending[0..<i], as: UTF8.self)
                    pending.removeFirst(i + 4)
                    return header
                }
            }
            try fill()
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
