import NIOCore

/// Incremental `multipart/form-data` parser: feed it body chunks as they arrive and it yields part boundaries and
/// body bytes without ever holding a whole part (a file) in memory. Only the delimiter-length tail of the input is
/// kept between calls. Pure logic, no I/O.
struct MultipartStreamParser {
    /// What the parser found.
    enum Event: Equatable {
        /// A new part began; `name` and `filename` come from its Content-Disposition.
        case partStart(name: String, filename: String?, contentType: String?)
        /// Bytes of the current part's body.
        case body(ByteBuffer)
        /// The current part ended.
        case partEnd
    }

    enum ParseError: Error, Equatable {
        case missingBoundary
        case malformed(String)
        case headersTooLarge
        case truncated
    }

    private enum State { case preamble, headers, body, done }

    private let delimiter: [UInt8]          // "\r\n--boundary"
    private var buffer: [UInt8] = []
    private var state: State = .preamble
    static let maxHeaderBytes = 16 * 1024

    /// `contentType` is the request's Content-Type header; its `boundary` parameter is required.
    init(contentType: String) throws {
        guard let boundary = Self.boundary(from: contentType), !boundary.isEmpty, boundary.utf8.count <= 200 else {
            throw ParseError.missingBoundary
        }
        delimiter = Array("\r\n--\(boundary)".utf8)
        buffer = Array("\r\n".utf8) // so the first delimiter, which has no leading CRLF, matches too
    }

    /// The `boundary` parameter of a multipart Content-Type.
    static func boundary(from contentType: String) -> String? {
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let first = parts.first, first.lowercased() == "multipart/form-data" else { return nil }
        for p in parts.dropFirst() {
            let kv = p.split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0].lowercased() == "boundary" {
                var value = String(kv[1])
                if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
                return value
            }
        }
        return nil
    }

    /// Consumes `chunk` and returns the events it completes.
    mutating func feed(_ chunk: ByteBuffer) throws -> [Event] {
        buffer.append(contentsOf: chunk.readableBytesView)
        var events: [Event] = []
        while true {
            switch state {
            case .done:
                buffer.removeAll()
                return events
            case .preamble:
                guard let at = find(delimiter, in: buffer, from: 0) else {
                    // Keep only what could be the start of the delimiter.
                    if buffer.count > delimiter.count { buffer.removeFirst(buffer.count - delimiter.count) }
                    return events
                }
                buffer.removeFirst(at + delimiter.count)
                guard try afterDelimiter(&events) else { return events }
            case .headers:
                guard let end = find(Array("\r\n\r\n".utf8), in: buffer, from: 0) else {
                    if buffer.count > Self.maxHeaderBytes { throw ParseError.headersTooLarge }
                    return events
                }
                let headerText = String(decoding: buffer[0..<end], as: UTF8.self)
                buffer.removeFirst(end + 4)
                events.append(try Self.partStart(headerText))
                state = .body
            case .body:
                if let at = find(delimiter, in: buffer, from: 0) {
                    if at > 0 { events.append(.body(ByteBuffer(bytes: buffer[0..<at]))) }
                    events.append(.partEnd)
                    buffer.removeFirst(at + delimiter.count)
                    guard try afterDelimiter(&events) else { return events }
                } else {
                    // Everything but a possible partial delimiter at the end is body.
                    let safe = buffer.count - (delimiter.count - 1)
                    if safe > 0 {
                        events.append(.body(ByteBuffer(bytes: buffer[0..<safe])))
                        buffer.removeFirst(safe)
                    }
                    return events
                }
            }
        }
    }

    /// Call when the input ended: fails unless the closing delimiter was seen.
    func finish() throws {
        guard state == .done else { throw ParseError.truncated }
    }

    /// After a delimiter: `--` closes the body, CRLF starts the next part's headers. False = need more input.
    private mutating func afterDelimiter(_ events: inout [Event]) throws -> Bool {
        guard buffer.count >= 2 else {
            // Re-insert the delimiter so the next feed sees it whole.
            buffer.insert(contentsOf: delimiter, at: 0)
            state = state == .body ? .body : .preamble
            if state == .body, case .partEnd = events.last { events.removeLast() }
            return false
        }
        if buffer[0] == UInt8(ascii: "-"), buffer[1] == UInt8(ascii: "-") {
            state = .done
            return true
        }
        // Transport padding (spaces/tabs) may precede the CRLF.
        var i = 0
        while i < buffer.count, buffer[i] == UInt8(ascii: " ") || buffer[i] == UInt8(ascii: "\t") { i += 1 }
        guard i + 1 < buffer.count else {
            buffer.insert(contentsOf: delimiter, at: 0)
            if state == .body, case .partEnd = events.last { events.removeLast() }
            return false
        }
        guard buffer[i] == UInt8(ascii: "\r"), buffer[i + 1] == UInt8(ascii: "\n") else {
            throw ParseError.malformed("expected CRLF after boundary")
        }
        buffer.removeFirst(i + 2)
        state = .headers
        return true
    }

    static func partStart(_ headers: String) throws -> Event {
        var name: String?
        var filename: String?
        var contentType: String?
        for line in headers.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if key == "content-type" { contentType = value }
            guard key == "content-disposition" else { continue }
            for param in splitParameters(value).dropFirst() {
                let kv = param.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { continue }
                var v = kv[1].trimmingCharacters(in: .whitespaces)
                if v.hasPrefix("\""), v.hasSuffix("\""), v.count >= 2 { v = String(v.dropFirst().dropLast()) }
                switch kv[0].trimmingCharacters(in: .whitespaces).lowercased() {
                case "name": name = v
                case "filename": filename = v
                default: break
                }
            }
        }
        guard let name else { throw ParseError.malformed("part without a name") }
        return .partStart(name: name, filename: filename, contentType: contentType)
    }

    /// Splits `form-data; name="a;b"; filename="x"` on semicolons outside quotes.
    static func splitParameters(_ text: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var quoted = false
        for ch in text {
            if ch == "\"" { quoted.toggle() }
            if ch == ";" && !quoted { parts.append(current); current = "" } else { current.append(ch) }
        }
        parts.append(current)
        return parts.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    private func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard needle.count <= haystack.count - start, let first = needle.first else { return nil }
        var i = start
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == first {
                var j = 1
                while j < needle.count, haystack[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}
