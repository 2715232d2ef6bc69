import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import WrennWire

@Suite("envd files")
struct FileTests {
    static func write(_ client: EnvdClient, _ path: String, _ bytes: [UInt8], user: String? = nil) async throws -> EnvdClient.Reply {
        let query = "path=\(path.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? path)" + (user.map { "&user=\($0)" } ?? "")
        return try await client.request(.POST, "/files/write?\(query)", body: ByteBuffer(bytes: bytes))
    }

    @Test("write creates parents, read returns the bytes, list/stat/mkdir/move/remove behave")
    func roundTripAndOperations() async throws {
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)
        let root = "/tmp/envd-files-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let content = Array("hello\u{0}\u{ff}".utf8) + [0xfe, 0x00]

        let written = try await Self.write(client, "\(root)/a/b/data.bin", content)
        #expect(written.status == 200)
        let entry = try written.decode(FileEntryResponse.self).entry
        #expect(entry.size == Int64(content.count))
        #expect(entry.type == .file)
        #expect(entry.permissions == "-rw-r--r--")

        let read = try await client.post("/files/read", json: ReadFileRequest(path: "\(root)/a/b/data.bin"))
        #expect(read.status == 200)
        #expect(Array(read.body.readableBytesView) == content)

        #expect(try await client.post("/files/read", json: ReadFileRequest(path: "\(root)/missing")).status == 404)
        #expect(try await client.post("/files/read", json: ReadFileRequest(path: "\(root)/a")).status == 400)
        #expect(try await client.post("/files/read", json: ReadFileRequest(path: "relative/path")).status == 400)

        let symlink = "\(root)/a/link"
        try FileManager.default.createSymbolicLink(atPath: symlink, withDestinationPath: "b/data.bin")
        let list = try await client.post("/files/list", json: ListDirRequest(path: root, depth: 3)).decode(ListDirResponse.self)
        #expect(list.entries.map(\.path) == ["\(root)/a", "\(root)/a/b", "\(root)/a/b/data.bin", "\(root)/a/link"])
        let link = try #require(list.entries.last)
        #expect(link.type == .symlink)
        #expect(link.symlinkTarget == "b/data.bin")
        #expect(list.entries.first?.permissions.hasPrefix("d") == true)
        #expect(list.entries.first?.owner == (getuid() == 0 ? "root" : list.entries.first?.owner))
        let shallow = try await client.post("/files/list", json: ListDirRequest(path: root, depth: 0)).decode(ListDirResponse.self)
        #expect(shallow.entries.map(\.name) == ["a"])
        #expect(try await client.post("/files/list", json: ListDirRequest(path: "\(root)/nope")).status == 404)

        let stat = try await client.post("/files/stat", json: StatRequest(path: "\(root)/a/b/../b/data.bin")).decode(FileEntryResponse.self)
        #expect(stat.entry.path == "\(root)/a/b/data.bin")

        let mkdir = try await client.post("/files/mkdir", json: MakeDirRequest(path: "\(root)/new/deep"))
        #expect(mkdir.status == 200)
        #expect(try mkdir.decode(MakeDirResponse.self).entry.type == .directory)
        let again = try await client.post("/files/mkdir", json: MakeDirRequest(path: "\(root)/new/deep"))
        #expect(again.status == 409)
        #expect(try again.decode(ErrorEnvelope.self).error.code == "already_exists")

        let moved = try await client.post("/files/move", json: MoveRequest(source: "\(root)/a/b/data.bin", destination: "\(root)/new/data.bin"))
        #expect(moved.status == 200)
        #expect(FileManager.default.fileExists(atPath: "\(root)/new/data.bin"))
        #expect(try await client.post("/files/move", json: MoveRequest(source: "\(root)/gone", destination: "\(root)/x")).status == 404)

        #expect(try await client.post("/files/remove", json: RemoveRequest(path: "\(root)/new")).status == 204)
        #expect(!FileManager.default.fileExists(atPath: "\(root)/new"))
        #expect(try await client.post("/files/remove", json: RemoveRequest(path: "\(root)/new")).status == 404)
    }

    @Test("written files belong to the target user")
    func ownership() async throws {
        guard getuid() == 0 else { return }
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)
        let root = "/tmp/envd-owner-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let entry = try await Self.write(client, "\(root)/sub/owned.txt", Array("x".utf8), user: "nobody").decode(FileEntryResponse.self).entry
        #expect(entry.owner == "nobody")
        let parent = try await client.post("/files/stat", json: StatRequest(path: "\(root)/sub")).decode(FileEntryResponse.self).entry
        #expect(parent.owner == "nobody")
    }

    @Test("metrics report CPU, memory and disk")
    func metrics() async throws {
        let envd = try await EnvdProcess.start()
        let metrics = try await EnvdClient(envd).get("/metrics").decode(EnvdMetrics.self)
        #expect(metrics.cpuCount >= 1)
        #expect((0...100).contains(metrics.cpuUsedPct))
        #expect(metrics.memTotal > 0 && metrics.memUsed > 0 && metrics.memUsed <= metrics.memTotal)
        #expect(metrics.diskTotal > 0 && metrics.diskUsed <= metrics.diskTotal)
    }
}
