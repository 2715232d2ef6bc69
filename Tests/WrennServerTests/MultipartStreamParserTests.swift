import NIOCore
import Testing
@testable import WrennServer

@Suite("multipart stream parser")
struct MultipartStreamParserTests {
    static let body = "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n/home/wrenn-user/a;b.txt\r\n"
        + "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        + "line one\r\n-XyZ almost a boundary, and so is --XyZ without CRLF before it\r\n\r\n-XyZend"
        + "\r\n--XyZ--\r\nepilogue"

    static func parse(_ text: String, chunk: Int) throws -> (path: String, file: String, names: [String]) {
        var parser = try MultipartStreamParser(contentType: "multipart/form-data; boundary=\"XyZ\"")
        var events: [MultipartStreamParser.Event] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            let end = min(i + chunk, bytes.count)
            events += try parser.feed(ByteBuffer(bytes: bytes[i..<end]))
            i = end
        }
        try parser.finish()
        var current = ""
        var parts: [String: [UInt8]] = [:]
        var names: [String] = []
        for e in events {
            switch e {
            case .partStart(let name, _, _): current = name; names.append(name); parts[name] = []
            case .body(let b): parts[current, default: []] += Array(b.readableBytesView)
            case .partEnd: current = ""
            }
        }
        return (String(decoding: parts["path"] ?? [], as: UTF8.self), String(decoding: parts["file"] ?? [], as: UTF8.self), names)
    }

    @Test(arguments: [1, 2, 3, 5, 7, 13, 64, 4096])
    func partsSurviveAnyChunking(_ chunk: Int) throws {
        let result = try Self.parse(Self.body, chunk: chunk)
        #expect(result.names == ["path", "file"])
        #expect(result.path == "/home/wrenn-user/a;b.txt")
        #expect(result.file == "line one\r\n-XyZ almost a boundary, and so is --XyZ without CRLF before it\r\n\r\n-XyZend")
    }

    @Test func truncatedBodyFails() throws {
        var parser = try MultipartStreamParser(contentType: "multipart/form-data; boundary=XyZ")
        _ = try parser.feed(ByteBuffer(string: "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc"))
        #expect(throws: MultipartStreamParser.ParseError.truncated) { try parser.finish() }
    }

    @Test func rejectsMissingBoundaryAndNamelessParts() throws {
        #expect(throws: MultipartStreamParser.ParseError.missingBoundary) { try MultipartStreamParser(contentType: "application/json") }
        var parser = try MultipartStreamParser(contentType: "multipart/form-data; boundary=b")
        #expect(throws: (any Error).self) { _ = try parser.feed(ByteBuffer(string: "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--")) }
    }
}
