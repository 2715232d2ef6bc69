import Foundation
import WrennImage
import WrennTestSupport

/// Shared setup for the integration tests: one data directory and one built image for the whole run
/// (`WrennTestSupport.TestImage`, which the SDK suite shares).
enum TestSupport {
    /// Data directory of the tests (`WRENN_TEST_DIR`, default `/var/lib/wrenn-test`); caches survive runs.
    static var dataDirectory: String { TestImage.dataDirectory }

    /// The repository's `images/` folder.
    static var recipeDirectory: String { TestImage.recipeDirectory }

    /// The envd baked into the test image: `WRENN_TEST_ENVD` if set, else the Python stand-in fixture.
    static var envdBinary: String { TestImage.envdBinary }

    /// Name of the test image: `test-minimal` with the Python stand-in envd, `test-envd` with `WRENN_TEST_ENVD`.
    static var imageName: String { TestImage.name }

    /// Whether we can run VMs and touch network namespaces.
    static var isRoot: Bool { TestImage.isRoot }

    /// Builds the test image once per process (cached on disk across runs).
    static func image() async throws -> ImageLayout { try await TestImage.image() }
}
