import Foundation
import WrennImage

/// Shared setup for the integration tests: one data directory and one built image for the whole run.
enum TestSupport {
    /// Data directory of the tests (`WRENN_TEST_DIR`, default `/var/lib/wrenn-test`); caches survive runs.
    static var dataDirectory: String {
        ProcessInfo.processInfo.environment["WRENN_TEST_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/lib/wrenn-test"
    }

    /// The repository's `images/` folder.
    static var recipeDirectory: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url = url.deletingLastPathComponent() }
        return url.path + "/images"
    }

    /// The envd baked into the test image: `WRENN_TEST_ENVD` if set, else the Python stand-in fixture.
    static var envdBinary: String {
        if let env = ProcessInfo.processInfo.environment["WRENN_TEST_ENVD"], !env.isEmpty { return env }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/fake-envd.py"
    }

    /// Name of the test image: `test-minimal` with the Python stand-in envd, `test-envd` with `WRENN_TEST_ENVD`.
    static var imageName: String {
        (ProcessInfo.processInfo.environment["WRENN_TEST_ENVD"] ?? "").isEmpty ? "test-minimal" : "test-envd"
    }

    /// Whether we can run VMs and touch network namespaces.
    static var isRoot: Bool { getuid() == 0 }

    private static let imageTask = Task<ImageLayout, any Error> {
        if let dir = ProcessInfo.processInfo.environment["WRENN_TEST_IMAGE_DIR"], !dir.isEmpty {
            return ImageLayout(directory: dir)
        }
        let config = ImageBuildConfig(dataDirectory: dataDirectory, envdBinary: envdBinary, recipeDirectory: recipeDirectory)
        return try await ImageBuilder(config).build(name: imageName) { print("image: \($0)") }
    }

    /// Builds the test image once per process (cached on disk across runs).
    static func image() async throws -> ImageLayout { try await imageTask.value }
}
