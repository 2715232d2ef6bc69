import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import Synchronization
import Testing
import WrennWire

/// 1 MiB blocks of pseudo-random bytes, each stamped with its index, hashed as they are produced.
struct BlockStream: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let blocks: Int
    let digest: DigestBox

    struct AsyncIterator: AsyncIteratorProtocol {
        let blocks: Int
        let digest: DigestBox
        var index = 0
        let base: [UInt8]

        mutating func next() async -> ByteBuffer? {
            guard index < blocks else {
                digest.finishSending()
                return nil
            }
            var buffer = ByteBuffer(bytes: base)
            buffer.setInteger(UInt64(index), at: 0)
            digest.sent(buffer)
            index += 1
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        var generator = SplitMix(seed: 0x5eed)
        var base = [UInt8](repeating: 0, count: 1 << 20)
        base.withUnsafeMutableBytes { raw in
            for i in stride(from: 0, to: raw.count, by: 8) {
                raw.storeBytes(of: generator.next(), toByteOffset: i, as: UInt64.self)
            }
        }
        return AsyncIterator(blocks: blocks, digest: digest, base: base)
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

final class DigestBox: Sendable {
    private let state = Mutex<(hasher: SHA256, digest: SHA256.Digest?)>((SHA256(), nil))
    func sent(_ buffer: ByteBuffer) { state.withLock { $0.hasher.update(data: buffer.readableBytesView) } }
    func finishSending() { state.withLock { if $0.digest == nil { $0.digest = $0.hasher.finalize() } } }
    var digest: SHA256.Digest? { state.withLock { $0.digest } }
}

@Suite("envd large files")
struct LargeFileTests {
    @Test("a 1 GiB file is written and read back by checksum while envd stays under 64 MiB resident")
    func gigabyteRoundTrip() async throws {
        let megabytes = ProcessInfo.processInfo.environment["WRENN_ENVD_BIG_FILE_MB"].flatMap(Int.init) ?? 1024
        let envd = try await EnvdProcess.start()
        let path = "/tmp/envd-big-\(UUID().uuidString).bin"
        defer { unlink(path) }
        let peak = Mutex(0)
        let sampler = Task {
            while !Task.isCancelled {
                let rss = envd.residentBytes()
                peak.withLock { $0 = max($0, rss) }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        defer { sampler.cancel() }
        let size = Int64(megabytes) << 20

        // Upload, streamed.
        let sent = DigestBox()
        var upload = HTTPClientRequest(url: envd.baseURL + "/files/write?path=\(path)")
        upload.method = .POST
        upload.headers.add(name: "Authorization", value: "Bearer \(envd.token)")
        upload.body = .stream(BlockStream(blocks: megabytes, digest: sent), length: .known(size))
        let uploaded = try await HTTPClient.shared.execute(upload, timeout: .seconds(600))
        let answer = try await uploaded.body.collect(upTo: 1 << 20)
        #expect(uploaded.status.code == 200, "\(String(buffer: answer))")
        let entry = try JSONDecoder().decode(FileEntryResponse.self, from: Data(answer.readableBytesView)).entry
        #expect(entry.size == size)

        // Download, streamed, hashed as it arrives.
        var download = HTTPClientRequest(url: envd.baseURL + "/files/read")
        download.method = .POST
        download.headers.add(name: "Authorization", value: "Bearer \(envd.token)")
        download.body = .bytes(try .json(ReadFileRequest(path: path)))
        let response = try await HTTPClient.shared.execute(download, timeout: .seconds(600))
        #expect(response.status.code == 200)
        #expect(response.headers.first(name: "content-length") == "\(size)")
        var hasher = SHA256()
        var received: Int64 = 0
        for try await chunk in response.body {
            hasher.update(data: chunk.readableBytesView)
            received += Int64(chunk.readableBytes)
        }
        #expect(received == size)
        #expect(hasher.finalize() == sent.digest)

        sampler.cancel()
        let peakBytes = peak.withLock { $0 }
        print("envd peak RSS after download: \(peakBytes >> 20) MiB")
        #expect(peakBytes > 0)
        #expect(peakBytes < 64 << 20, "envd peak RSS \(peakBytes >> 20) MiB")
    }
}
