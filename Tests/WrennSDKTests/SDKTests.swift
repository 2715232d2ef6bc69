import Foundation
import Testing
import WrennTestSupport

/// The official Python SDK (wrenn 0.2.0, from PyPI) as a client of a real installation: `Tests/SDK/*.py` run with
/// pytest against a control plane, host agent and capsules started here (QEMU microVMs as root with QEMU, else the
/// envd-backed runtime). A failing Python test fails this test with pytest's output.
@Suite("The official Python SDK against a real platform", .serialized)
struct SDKTests {
    @Test("SDK flows: create/run/files/streams/PTY/pause/resume/connect/snapshot/destroy", .timeLimit(.minutes(20)))
    func sdkFlows() async throws {
        let python = try await SDKPython.resolve()
        try await SDKPlatform.run { platform in
            var environment = ProcessInfo.processInfo.environment
            environment["WRENN_BASE_URL"] = platform.baseURL
            environment["WRENN_API_KEY"] = platform.apiKey
            environment["PYTHONDONTWRITEBYTECODE"] = "1"
            let started = ContinuousClock.now
            let run = try await SDKPython.run(python, ["-m", "pytest", "-v", "-x", "-p", "no:cacheprovider",
                                                       SDKPython.testDirectory + "/test_sdk_flows.py"],
                                              environment: environment)
            print("SDK tests (\(platform.runtimeName) runtime, template \(platform.template)) took \(ContinuousClock.now - started):\n\(run.output)")
            #expect(run.status == 0, "pytest failed (exit \(run.status)):\n\(run.output)")
        }
    }
}

/// The Python that runs the SDK tests: `WRENN_TEST_SDK_PYTHON` (scripts/test.sh exports the venv that
/// `scripts/install-deps.sh --test` makes), else a venv created here under `WRENN_TEST_DIR/sdk-venv`.
enum SDKPython {
    static let sdkRequirement = "wrenn==0.2.0"

    static var testDirectory: String { TestImage.repositoryDirectory + "/Tests/SDK" }

    static func resolve() async throws -> String {
        if let python = ProcessInfo.processInfo.environment["WRENN_TEST_SDK_PYTHON"], !python.isEmpty { return python }
        let venv = TestImage.dataDirectory + "/sdk-venv"
        let python = venv + "/bin/python"
        if FileManager.default.isExecutableFile(atPath: python),
           try await run(python, ["-c", "import wrenn, pytest, importlib.metadata as m; assert m.version('wrenn') == '0.2.0'"]).status == 0 {
            return python
        }
        try FileManager.default.createDirectory(atPath: TestImage.dataDirectory, withIntermediateDirectories: true)
        let base = ["python3.11", "python3"].first { name in
            (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
                .contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
        } ?? "python3"
        let created = try await run("/usr/bin/env", [base, "-m", "venv", venv])
        guard created.status == 0 else { throw SDKTestError("python venv failed: \(created.output)") }
        let installed = try await run(python, ["-m", "pip", "install", "-q", "--ignore-requires-python", sdkRequirement, "pytest"])
        guard installed.status == 0 else { throw SDKTestError("pip install \(sdkRequirement) failed: \(installed.output)") }
        return python
    }

    /// Runs `executable` with `arguments`; returns its exit status and combined stdout/stderr.
    static func run(_ executable: String, _ arguments: [String],
                    environment: [String: String]? = nil) async throws -> (status: Int32, output: String) {
        let outputPath = NSTemporaryDirectory() + "wrenn-sdk-out-" + UUID().uuidString
        FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = output
        process.standardError = output
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
        try output.close()
        return (status, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }
}

struct SDKTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
