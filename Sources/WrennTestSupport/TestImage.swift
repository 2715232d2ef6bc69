import Foundation
import WrennImage

/// The guest image the QEMU test suites boot, shared by every test target: one data directory and one image build
/// per test process (cached on disk across runs).
public enum TestImage {
    /// Data directory of the tests (`WRENN_TEST_DIR`, default `/var/lib/wrenn-test`); caches survive runs.
    public static var dataDirectory: String {
        ProcessInfo.processInfo.environment["WRENN_TEST_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/lib/wrenn-test"
    }

    /// The repository's root folder.
    public static var repositoryDirectory: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url = url.deletingLastPathComponent() }
        return url.path
    }

    /// The repository's `images/` folder.
    public static var recipeDirectory: String { repositoryDirectory + "/images" }

    /// The envd baked into the test image: `WRENN_TEST_ENVD` if set, else the Python stand-in fixture.
    public static var envdBinary: String {
        if let env = ProcessInfo.processInfo.environment["WRENN_TEST_ENVD"], !env.isEmpty { return env }
        return repositoryDirectory + "/Tests/WrennAgentTests/Fixtures/fake-envd.py"
    }

    /// Name of the test image: `test-minimal` with the Python stand-in envd, `test-envd` with `WRENN_TEST_ENVD`.
    public static var name: String {
        (ProcessInfo.processInfo.environment["WRENN_TEST_ENVD"] ?? "").isEmpty ? "test-minimal" : "test-envd"
    }

    /// Whether we can run VMs and touch network namespaces.
    public static var isRoot: Bool { getuid() == 0 }

    /// Whether the QEMU suites can run here: root, and `qemu-system-x86_64` on `PATH`.
    public static var canRunQEMU: Bool {
        guard isRoot else { return false }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/qemu-system-x86_64") }
    }

    private static let buildTask = Task<ImageLayout, any Error> {
        if let dir = ProcessInfo.processInfo.environment["WRENN_TEST_IMAGE_DIR"], !dir.isEmpty {
            return ImageLayout(directory: dir)
        }
        let config = ImageBuildConfig(dataDirectory: dataDirectory, envdBinary: envdBinary, recipeDirectory: recipeDirectory)
        return try await ImageBuilder(config).build(name: name) { print("image: \($0)") }
    }

    /// Builds the test image once per process (cached on disk across runs).
    public static func image() async throws -> ImageLayout { try await buildTask.value }
}
