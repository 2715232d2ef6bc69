import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import WrennWire

/// `wrenn bench api`: what the control plane costs on top of the host agent, measured over real HTTP on one host.
///
/// - create → first exec through the API (POST capsule, poll until `running`, first `exec` answered) against the
///   agent alone (its synchronous create, then exec through its envd proxy): p50/p99 and the ratio of the p50s;
/// - exec round trip through the control plane against the agent direct, interleaved on one capsule (goal: ≤ +3 ms
///   at p50);
/// - `GET /v1/capsules` throughput with `concurrency` keep-alive connections for `duration`.
///
/// Figures only: nothing here asserts a time.
public struct APIBenchmark: Sendable {
    public var controlPlaneURL: String
    public var apiKey: String
    /// The agent for the direct figures (nil: only the API figures).
    public var agentURL: String?
    public var agentToken: String?
    public var template = "minimal"
    public var creates = 10
    public var execs = 300
    public var concurrency = 64
    public var duration: Duration = .seconds(5)
    /// How often the API create is polled for `running`.
    public var pollInterval: Duration = .milliseconds(5)

    public init(controlPlaneURL: String, apiKey: String, agentURL: String? = nil, agentToken: String? = nil) {
        self.controlPlaneURL = controlPlaneURL.hasSuffix("/") ? String(controlPlaneURL.dropLast()) : controlPlaneURL
        self.apiKey = apiKey
        self.agentURL = agentURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.agentToken = agentToken
    }

    /// Results in seconds (throughput in requests per second).
    public struct Report: Sendable, Codable {
        public var apiCreate: BenchStats.Summary
        public var agentCreate: BenchStats.Summary?
        public var apiExec: BenchStats.Summary
        public var agentExec: BenchStats.Summary?
        public var listThroughput: Double
        public var listLatency: BenchStats.Summary
        public var concurrency: Int

        public init(apiCreate: BenchStats.Summary, agentCreate: BenchStats.Summary?, apiExec: BenchStats.Summary,
                    agentExec: BenchStats.Summary?, listThroughput: Double, listLatency: BenchStats.Summary, concurrency: Int) {
            self.apiCreate = apiCreate; self.agentCreate = agentCreate; self.apiExec = apiExec; self.agentExec = agentExec
            self.listThroughput = listThroughput; self.listLatency = listLatency; self.concurrency = concurrency
        }

        /// API create→first exec p50 over the agent's.
        public var createRatio: Double? { agentCreate.map { apiCreate.p50 / $0.p50 } }
        /// Control plane exec p50 minus the agent's (seconds).
        public var execOverhead: Double? { agentExec.map { apiExec.p50 - $0.p50 } }

        public var text: String {
            func ms(_ v: Double) -> String { String(format: "%.2f ms", v * 1000) }
            func row(_ s: BenchStats.Summary) -> String { "p50 \(ms(s.p50))  p99 \(ms(s.p99))  (n=\(s.count))" }
            var lines = ["create → first exec, API          \(row(apiCreate))"]
            if let agentCreate, let createRatio {
                lines.append("create → first exec, agent alone  \(row(agentCreate))")
                lines.append("  ratio API / agent (p50)         \(String(format: "%.2f", createRatio))")
            }
            lines.append("exec round trip, API              \(row(apiExec))")
            if let agentExec, let execOverhead {
                lines.append("exec round trip, agent direct     \(row(agentExec))")
                lines.append("  control-plane overhead (p50)    +\(ms(execOverhead)) (goal ≤ +3 ms)")
            }
            lines.append("GET /v1/capsules, \(concurrency) connections  \(String(format: "%.0f", listThroughput)) req/s  \(row(listLatency))")
            return lines.joined(separator: "\n")
        }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    public func run(progress: @Sendable (String) -> Void = { _ in }) async throws -> Report {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, decompression: .disabled)
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, concurrency))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let report = try await measure(http, progress: progress)
            try await http.shutdown()
            return report
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    private func measure(_ http: HTTPClient, progress: @Sendable (String) -> Void) async throws -> Report {
        let clock = ContinuousClock()
        let api = Endpoint(http: http, base: controlPlaneURL, headers: [("X-API-Key", apiKey)])
        let agent = agentURL.map { Endpoint(http: http, base: $0, headers: [("Authorization", "Bearer \(agentToken ?? "")")]) }
        let exec = #"{"cmd":"/bin/true"}"#
        let tag = (0..<3).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()

        // create → first exec, through the API; the first round is a warm-up (it may cold-boot the template).
        var apiCreates: [Double] = []
        for i in -1..<creates {
            progress(i < 0 ? "warm-up (template, connections)" : "API create → first exec \(i + 1)/\(creates)")
            let t0 = clock.now
            let created = try await api.json(.POST, "/v1/capsules", body: #"{"template":"\#(template)"}"#, expect: 202)
            guard let id = created["id"] as? String else { throw Failure("create answered without an id") }
            while true {
                let capsule = try await api.json(.GET, "/v1/capsules/\(id)", expect: 200)
                let status = capsule["status"] as? String
                if status == "running" { break }
                if status == "error" || status == "stopped" { throw Failure("capsule \(id) went \(status ?? "?")") }
                if clock.now - t0 > .seconds(120) { throw Failure("capsule \(id) did not start") }
                try await Task.sleep(for: pollInterval)
            }
            _ = try await api.send(.POST, "/v1/capsules/\(id)/exec", body: exec, expect: 200)
            if i >= 0 { apiCreates.append((clock.now - t0).seconds) }
            _ = try await api.send(.DELETE, "/v1/capsules/\(id)", expect: 202)
            try await waitGone(api, id)
        }

        // create → first exec, the agent alone.
        var agentCreates: [Double] = []
        if let agent {
            for i in 0..<creates {
                progress("agent create → first exec \(i + 1)/\(creates)")
                let id = "bench-api-\(tag)-\(i)"
                let body = try String(decoding: WireCoding.makeEncoder().encode(AgentCreateCapsule(
                    id: id, template: template, vcpus: 1, memoryMB: 512, diskSizeMB: 5120, timeoutSec: 0)), as: UTF8.self)
                let t0 = clock.now
                _ = try await agent.send(.POST, "/v1/capsules", body: body, expect: 201)
                _ = try await agent.send(.POST, "/v1/capsules/\(id)/envd/exec", body: exec, expect: 200)
                agentCreates.append((clock.now - t0).seconds)
                _ = try await agent.send(.DELETE, "/v1/capsules/\(id)", expect: 204)
            }
        }

        // exec round trip, interleaved on one capsule.
        progress("exec round trips (\(execs) each)")
        let created = try await api.json(.POST, "/v1/capsules", body: #"{"template":"\#(template)"}"#, expect: 202)
        guard let id = created["id"] as? String else { throw Failure("create answered without an id") }
        defer { Task { _ = try? await api.send(.DELETE, "/v1/capsules/\(id)", expect: 202) } }
        let startDeadline = clock.now + .seconds(120)
        while (try await api.json(.GET, "/v1/capsules/\(id)", expect: 200))["status"] as? String != "running" {
            if clock.now > startDeadline { throw Failure("capsule \(id) did not start") }
            try await Task.sleep(for: .milliseconds(20))
        }
        for _ in 0..<20 {
            _ = try await api.send(.POST, "/v1/capsules/\(id)/exec", body: exec, expect: 200)
            _ = try await agent?.send(.POST, "/v1/capsules/\(id)/envd/exec", body: exec, expect: 200)
        }
        var apiExecs: [Double] = [], agentExecs: [Double] = []
        for _ in 0..<execs {
            var t0 = clock.now
            _ = try await api.send(.POST, "/v1/capsules/\(id)/exec", body: exec, expect: 200)
            apiExecs.append((clock.now - t0).seconds)
            if let agent {
                t0 = clock.now
                _ = try await agent.send(.POST, "/v1/capsules/\(id)/envd/exec", body: exec, expect: 200)
                agentExecs.append((clock.now - t0).seconds)
            }
        }

        // GET /v1/capsules at `concurrency` connections.
        progress("GET /v1/capsules, \(concurrency) connections for \(duration)")
        let end = clock.now + duration
        let started = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var mine: [Double] = []
                    while clock.now < end {
                        let t0 = clock.now
                        _ = try await api.send(.GET, "/v1/capsules", expect: 200)
                        mine.append((clock.now - t0).seconds)
                    }
                    return mine
                }
            }
            var all: [Double] = []
            for try await part in group { all += part }
            return all
        }
        let elapsed = (clock.now - started).seconds

        return Report(
            apiCreate: BenchStats.summary(apiCreates), agentCreate: agent == nil ? nil : BenchStats.summary(agentCreates),
            apiExec: BenchStats.summary(apiExecs), agentExec: agent == nil ? nil : BenchStats.summary(agentExecs),
            listThroughput: Double(latencies.count) / elapsed, listLatency: BenchStats.summary(latencies), concurrency: concurrency)
    }

    /// Waits until a destroyed capsule is gone or `stopped`, so the next create does not compete with its teardown.
    private func waitGone(_ api: Endpoint, _ id: String) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let (status, body) = try await api.raw(.GET, "/v1/capsules/\(id)")
            if status == 404 { return }
            let state = ((try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any])?["status"] as? String
            if state == "stopped" || state == "error" { return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// One base URL with its credentials.
    struct Endpoint: Sendable {
        let http: HTTPClient
        let base: String
        let headers: [(String, String)]

        func raw(_ method: HTTPMethod, _ path: String, body: String? = nil) async throws -> (UInt, ByteBuffer) {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: body))
            }
            let response = try await http.execute(request, timeout: .seconds(300))
            return (response.status.code, try await response.body.collect(upTo: 16 << 20))
        }

        func send(_ method: HTTPMethod, _ path: String, body: String? = nil, expect: UInt) async throws -> ByteBuffer {
            let (status, buffer) = try await raw(method, path, body: body)
            guard status == expect else {
                throw Failure("\(method) \(base)\(path) answered \(status): \(String(buffer: buffer).prefix(300))")
            }
            return buffer
        }

        func json(_ method: HTTPMethod, _ path: String, body: String? = nil, expect: UInt) async throws -> [String: Any] {
            let buffer = try await send(method, path, body: body, expect: expect)
            return ((try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any]) ?? [:]
        }
    }
}

/// Percentiles of benchmark samples.
public enum BenchStats {
    /// p50, p99 and mean of a sample (seconds), and its size.
    public struct Summary: Sendable, Codable, Equatable {
        public var p50: Double
        public var p99: Double
        public var mean: Double
        public var count: Int

        public init(p50: Double, p99: Double, mean: Double, count: Int) {
            self.p50 = p50; self.p99 = p99; self.mean = mean; self.count = count
        }
    }

    /// Nearest-rank percentile (`p` in 0…100): the smallest sample with at least p % of the samples at or below it.
    public static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    public static func summary(_ values: [Double]) -> Summary {
        Summary(p50: percentile(values, 50), p99: percentile(values, 99),
                mean: values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count), count: values.count)
    }
}

fileprivate extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
