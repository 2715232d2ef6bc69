import Foundation
import Logging

/// Figures from one `runEnvdBenchmark` run.
public struct EnvdBenchmarkResult: Sendable, CustomStringConvertible {
    /// Foreground exec of `/bin/true`: request → answer on one keep-alive connection.
    public var execRoundTripP50Ms: Double
    /// 99th percentile of the same.
    public var execRoundTripP99Ms: Double
    /// Number of execs measured.
    public var execIterations: Int
    /// Streamed upload (`POST /files/write`) throughput, MB/s (10^6 bytes).
    public var fileWriteMBps: Double
    /// Streamed download (`POST /files/read`) throughput, MB/s.
    public var fileReadMBps: Double
    /// Size of the file moved each way, bytes.
    public var fileBytes: Int

    /// Human-readable report.
    public var description: String {
        String(
            format: "envd exec round trip (n=%d): p50 %.2f ms, p99 %.2f ms\nenvd file write: %.1f MB/s, read: %.1f MB/s (%d MiB each way)",
            execIterations, execRoundTripP50Ms, execRoundTripP99Ms, fileWriteMBps, fileReadMBps, fileBytes >> 20
        )
    }
}

/// Starts envd in this process on a loopback port and measures exec round trips and file streaming.
/// Prints the figures (through `report`) and returns them. The lead wires this to `wrenn bench envd`.
///
/// - Parameters:
///   - execIterations: number of `/bin/true` execs timed (after 10 warm-up runs).
///   - fileMegabytes: size of the file written then read back.
///   - directory: where the file goes (deleted afterwards).
public func runEnvdBenchmark(
    execIterations: Int = 300,
    fileMegabytes: Int = 256,
    directory: String = NSTemporaryDirectory(),
    logger: Logger = Logger(label: "wrenn.envd.bench"),
    report: @Sendable (String) -> Void = { print($0) }
) async throws -> EnvdBenchmarkResult {
    var quiet = logger
    quiet.logLevel = .warning
    let token = "bench-" + String(UInt64.random(in: .min ... .max), radix: 16)
    let (ports, portContinuation) = AsyncStream<Int>.makeStream()
    let server = EnvdServer(
        configuration: EnvdConfiguration(host: "127.0.0.1", port: 0, accessToken: token),
        logger: quiet
    ) { port in
        portContinuation.yield(port)
        portContinuation.finish()
    }
    let serverTask = Task { try await server.run() }
    defer { serverTask.cancel() }
    var iterator = ports.makeAsyncIterator()
    guard let port = await iterator.next() else { throw BenchError("envd did not start") }

    let path = (directory.hasSuffix("/") ? directory : directory + "/") + "wrenn-envd-bench-\(UInt32.random(in: .min ... .max)).bin"
    defer { unlink(path) }
    let fileBytes = fileMegabytes << 20
    let result: EnvdBenchmarkResult = try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do {
                let client = try BlockingHTTPClient(port: port, token: token)
                let exec = Array(#"{"cmd":"/bin/true"}"#.utf8)
                var samples: [Double] = []
                for i in 0..<(execIterations + 10) {
                    let start = DispatchTime.now().uptimeNanoseconds
                    let reply = try client.request("POST", "/exec", bodyLength: exec.count, body: { _ in exec })
                    guard reply.status == 200 else { throw BenchError("exec answered \(reply.status)") }
                    if i >= 10 { samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6) }
                }
                samples.sort()
                func percentile(_ p: Double) -> Double {
                    samples[min(samples.count - 1, Int((Double(samples.count) * p).rounded(.up)) - 1)]
                }

                var block = [UInt8](repeating: 0, count: 1 << 20)
                for i in block.indices { block[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
                let escaped = path.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? path
                var start = DispatchTime.now().uptimeNanoseconds
                let write = try client.request(
                    "POST", "/files/write?path=\(escaped)", bodyLength: fileBytes,
                    body: { count in count == block.count ? block : Array(block.prefix(count)) }
                )
                guard write.status == 200 else { throw BenchError("write answered \(write.status)") }
                let writeSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9

                let readBody = Array(#"{"path":"\#(path)"}"#.utf8)
                start = DispatchTime.now().uptimeNanoseconds
                let read = try client.request("POST", "/files/read", bodyLength: readBody.count, body: { _ in readBody }, keepBody: false)
                guard read.status == 200, read.length == fileBytes else { throw BenchError("read answered \(read.status), \(read.length) bytes") }
                let readSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9

                continuation.resume(returning: EnvdBenchmarkResult(
                    execRoundTripP50Ms: percentile(0.50), execRoundTripP99Ms: percentile(0.99), execIterations: samples.count,
                    fileWriteMBps: Double(fileBytes) / 1e6 / writeSeconds, fileReadMBps: Double(fileBytes) / 1e6 / readSeconds,
                    fileBytes: fileBytes
                ))
            } catch {
                continuation.resume(throwing: error)
            }
        }
        thread.start()
    }
    report(result.description)
    return result
}
