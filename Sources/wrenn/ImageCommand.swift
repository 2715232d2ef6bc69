import ArgumentParser
import Foundation
import Logging
import WrennImage

/// `wrenn image build [name]`: builds (or reuses) a guest image from Debian packages.
struct ImageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Guest images for capsules.",
        subcommands: [Build.self]
    )

    struct Build: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "build",
            abstract: "Build the guest image (kernel, initramfs, Debian root filesystem with envd); reuses a finished one."
        )

        @Argument(help: "Image name.") var name: String = "minimal"
        @Option(help: "Data directory (default: $WRENN_DIR or /var/lib/wrenn).") var dataDir: String?
        @Option(help: "The wrenn-envd binary to install (default: next to this binary, or $WRENN_ENVD_BINARY).") var envd: String?
        @Flag(help: "Rebuild even when a finished image matches.") var force = false

        func run() async throws {
            let logger = Logging.bootstrapped(label: "wrenn.image", level: "info")
            guard let envdBinary = envd ?? ImageBuildConfig.findEnvdBinary() else {
                throw ValidationError("wrenn-envd not found: build it (swift build -c release --static-swift-stdlib --product wrenn-envd) or pass --envd PATH")
            }
            let builder = ImageBuilder(ImageBuildConfig(dataDirectory: dataDir, envdBinary: envdBinary, force: force), logger: logger)
            let layout = try await builder.build(name: name) { progress in print(progress.description) }
            print("image \(name) ready in \(layout.directory)")
        }
    }
}
