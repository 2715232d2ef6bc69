import Foundation
import Testing
import WrennWire

@Suite("envd exec stream")
struct ExecStreamTests {
    @Test("start, stdout/stderr frames, exit, then the server closes")
    func streamsAndCloses() async throws {
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)
        let frames = FrameBox()
        try await withTimeout(30) {
            try await client.webSocket("/exec/stream") { reader, writer in
                try await writer.send(ExecStreamClientFrame(type: .start, cmd: "/bin/sh", args: ["-c", "echo out; echo err >&2; exit 4"]))
                while let frame = try await reader.next(ProcessStreamFrame.self) {
                    frames.append(frame)
                }
            }
        }
        let all = frames.all
        #expect(all.first?.type == .start)
        #expect(all.first?.pid != nil)
        #expect(all.filter { $0.type == .stdout }.compactMap(\.data).joined() == "out\n")
        #expect(all.filter { $0.type == .stderr }.compactMap(\.data).joined() == "err\n")
        #expect(all.last?.type == .exit)
        #expect(all.last?.exitCode == 4)
    }

    @Test("a malformed frame gets an error frame and the socket stays usable; stop kills the process")
    func malformedThenStop() async throws {
        let envd = try await EnvdProcess.start()
        let client = EnvdClient(envd)
        let frames = FrameBox()
        try await withTimeout(30) {
            try await client.webSocket("/exec/stream") { reader, writer in
                try await writer.write(.text("{not json"))
                let error = try await reader.next(ProcessStreamFrame.self)
                #expect(error?.type == .error)
                try await writer.send(ExecStreamClientFrame(type: .start, cmd: "sleep", args: ["300"]))
                let start = try await reader.next(ProcessStreamFrame.self)
                #expect(start?.type == .start)
                try await writer.send(ExecStreamClientFrame(type: .stop))
                while let frame = try await reader.next(ProcessStreamFrame.self) {
                    frames.append(frame)
                }
            }
        }
        #expect(frames.all.last?.type == .exit)
        #expect(frames.all.last?.signal == "SIGKILL")
    }
}
