import Foundation
import Testing
import WrennServer
import WrennTestSupport
import WrennWire

/// Issue 7's done-means: `images/recipes/code-runner-beta.recipe` built as a platform template on a real platform
/// (QEMU capsules) through the same client `wrenn template build` uses, then the SDK's code runner
/// (`wrenn.code_runner`) running `print(1+1)` and more in capsules of it (`Tests/SDK/test_code_runner.py`).
///
/// The build capsule has no network: the recipe's WHEELS come from the wheelhouse scripts/test.sh fills before the
/// tests (`wrenn template wheels code-runner-beta --dest $WRENN_TEST_DIR/wheelhouse`), so pip never goes online here.
@Suite("code-runner-beta: built from its recipe, driven by the SDK's code runner", .serialized)
struct CodeRunnerTemplateTests {
    static let templateName = "code-runner-beta"

    /// Removes the agent's copies of the template (`<team-hash>-code-runner-beta`, as the agent names a team's
    /// snapshot template) from the QEMU agent's directory.
    static func removeBuiltTemplates() {
        let directory = SDKPlatform.qemuAgentDirectory + "/templates"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where name == templateName || name.hasSuffix("-" + templateName) {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
    }

    static var wheelhouse: String {
        let configured = ProcessInfo.processInfo.environment["WRENN_TEST_WHEELHOUSE"] ?? ""
        return configured.isEmpty ? TestImage.dataDirectory + "/wheelhouse" : configured
    }

    @Test("build code-runner-beta, then run code in it with wrenn.code_runner",
          .enabled(if: SDKPlatform.usesQEMU, "needs root, QEMU and the real envd (scripts/test.sh)"), .timeLimit(.minutes(60)))
    func buildAndRunCode() async throws {
        let python = try await SDKPython.resolve()
        guard FileManager.default.fileExists(atPath: Self.wheelhouse) else {
            Issue.record("no wheelhouse at \(Self.wheelhouse): run `wrenn template wheels code-runner-beta --dest \(Self.wheelhouse)` (scripts/test.sh does)")
            return
        }
        // The agent's directory outlives a run, the control plane's database does not: the template a previous run
        // built would make the agent refuse the snapshot's name. Removed before the agent starts, and after.
        Self.removeBuiltTemplates()
        defer { Self.removeBuiltTemplates() }

        let recipeURL = URL(fileURLWithPath: TestImage.repositoryDirectory + "/images/recipes/\(Self.templateName).recipe")
        let file = try RecipeFile.parse(try String(contentsOf: recipeURL, encoding: .utf8))
        let archive = BuildArchive(recipeDirectory: recipeURL.deletingLastPathComponent(), wheelhouse: URL(fileURLWithPath: Self.wheelhouse))
        let prepared = try #require(try await archive.make(for: file) { print($0) })
        defer { try? FileManager.default.removeItem(at: prepared.cleanup) }

        try await SDKPlatform.run { platform in
            let started = ContinuousClock.now
            let request = CreateBuildRequest(name: Self.templateName, baseTemplate: "minimal", recipe: file.recipe,
                                             healthcheck: file.healthcheck, vcpus: 2, memoryMB: 1024)
            let build = try await TemplateBuildClient(baseURL: platform.baseURL, email: platform.adminEmail, password: platform.adminPassword)
                .run(request, archive: prepared.archive) { print("build: \($0)") }
            print("code-runner-beta build took \(ContinuousClock.now - started)")
            let failedSteps = build.logs.filter { !$0.ok }.map { "\($0.cmd)\n\($0.stdout)\n\($0.stderr)" }.joined(separator: "\n")
            try #require(build.status == .success, "the build ended \(build.status.rawValue): \(build.error ?? "")\n\(failedSteps)")
            #expect(build.logs.count == build.totalSteps)

            // The SDK derives the port-proxy host from the base URL: localhost gives `8888-<id>.localhost:PORT`.
            var environment = ProcessInfo.processInfo.environment
            environment["WRENN_BASE_URL"] = platform.baseURL.replacingOccurrences(of: "127.0.0.1", with: "localhost")
            environment["WRENN_API_KEY"] = platform.apiKey
            environment["PYTHONDONTWRITEBYTECODE"] = "1"
            let run = try await SDKPython.run(python, ["-m", "pytest", "-v", "-x", "-p", "no:cacheprovider",
                                                       SDKPython.testDirectory + "/test_code_runner.py"], environment: environment)
            print("code runner tests:\n\(run.output)")
            #expect(run.status == 0, "pytest failed (exit \(run.status)):\n\(run.output)")
        }
    }
}
