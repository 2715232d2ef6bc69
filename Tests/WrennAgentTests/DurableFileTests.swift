import Foundation
import Testing
import WrennImage

/// `DurableFile`: atomic replacement with the requested mode from creation on, nothing left behind on failure.
/// (That the bytes survive a power loss rests on fsync, which a test cannot cut the power under.)
@Suite("durable file writes")
struct DurableFileTests {
    static func folder() throws -> String {
        let path = NSTemporaryDirectory() + "durable-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func writesReplacesAndKeepsTheMode() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/record.json"
        try DurableFile.write(Data("first".utf8), to: path, permissions: 0o600)
        #expect(FileManager.default.contents(atPath: path) == Data("first".utf8))
        let mode = try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber).intValue
        #expect(mode == 0o600)
        try DurableFile.write(Data("second, longer".utf8), to: path, permissions: 0o644)
        #expect(FileManager.default.contents(atPath: path) == Data("second, longer".utf8))
        let replaced = try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber).intValue
        #expect(replaced == 0o644)
        // Large enough for several write() calls' worth on any pipe-like limit; no temporary file stays behind.
        let big = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0) })
        try DurableFile.write(big, to: path)
        #expect(FileManager.default.contents(atPath: path) == big)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["record.json"])
        try DurableFile.sync(path)
    }

    @Test func failuresLeaveNothingAndSayWhy() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: DurableFile.Failure.self) { try DurableFile.write(Data("x".utf8), to: dir + "/missing/record.json") }
        // Renaming onto a folder fails after the temporary file was written: it is removed again.
        try FileManager.default.createDirectory(atPath: dir + "/taken", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: dir + "/taken/inside", contents: nil))
        #expect(throws: DurableFile.Failure.self) { try DurableFile.write(Data("x".utf8), to: dir + "/taken") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["taken"])
        #expect(throws: DurableFile.Failure.self) { try DurableFile.sync(dir + "/nothing-here") }
    }
}
