import Foundation

/// Settings of an image build: where data lives, what goes into the guest.
public struct ImageBuildConfig: Sendable {
    /// The data directory (`WRENN_DIR`, default `/var/lib/wrenn`): images, caches and capsules live under it.
    public var dataDirectory: String
    /// Path of the `wrenn-envd` binary to install at `/usr/local/bin/wrenn-envd` in the guest.
    public var envdBinary: String
    /// Folder holding the guest recipe files (`initramfs-init.sh`, `rc.sh`, `inittab`, `packages.txt`, ...).
    public var recipeDirectory: String
    /// Debian suite of the root filesystem.
    public var suite: String
    /// Apt package of the guest kernel (a metapackage is resolved to the versioned image package).
    public var kernelPackage: String
    /// Size of the ext4 root disk in MiB (a sparse file, so size costs nothing until used). Default 5120 = the
    /// API's default disk size, so default capsules need no filesystem growth.
    public var rootDiskMiB: Int
    /// Rebuild even if a finished image with the same inputs exists.
    public var force: Bool

    /// Creates a configuration; unspecified values come from the environment or defaults.
    public init(
        dataDirectory: String? = nil,
        envdBinary: String,
        recipeDirectory: String? = nil,
        suite: String = "bookworm",
        kernelPackage: String = "linux-image-cloud-amd64",
        rootDiskMiB: Int = 5120,
        force: Bool = false
    ) {
        self.dataDirectory = dataDirectory ?? ImageBuildConfig.defaultDataDirectory()
        self.envdBinary = envdBinary
        self.recipeDirectory = recipeDirectory ?? ImageBuildConfig.findRecipeDirectory() ?? "images"
        self.suite = suite
        self.kernelPackage = kernelPackage
        self.rootDiskMiB = rootDiskMiB
        self.force = force
    }

    /// `WRENN_DIR` from the environment, else `/var/lib/wrenn`.
    public static func defaultDataDirectory() -> String {
        ProcessInfo.processInfo.environment["WRENN_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/lib/wrenn"
    }

    /// Finds the envd binary to bake in: `WRENN_ENVD_BINARY`, else `wrenn-envd` next to the running executable
    /// (`.build/<config>/`), else the release build under the repository, else `wrenn-envd` in `PATH`.
    public static func findEnvdBinary() -> String? {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["WRENN_ENVD_BINARY"], !env.isEmpty { return env }
        let executableDir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath().deletingLastPathComponent().path
        var candidates = [executableDir + "/wrenn-envd"]
        if let recipes = findRecipeDirectory() {
            let repo = URL(fileURLWithPath: recipes).deletingLastPathComponent().path
            candidates.append(repo + "/.build/release/wrenn-envd")
        }
        for candidate in candidates where fm.isExecutableFile(atPath: candidate) { return candidate }
        return Command.resolve("wrenn-envd")
    }

    /// Finds the recipe folder: `WRENN_IMAGE_RECIPES`, else an `images/` folder holding `initramfs-init.sh`
    /// in the current directory or in a parent of the running executable (the repository checkout).
    public static func findRecipeDirectory() -> String? {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["WRENN_IMAGE_RECIPES"], !env.isEmpty { return env }
        var candidates = [fm.currentDirectoryPath]
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<8 {
            candidates.append(dir.path)
            dir = dir.deletingLastPathComponent()
        }
        var source = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { source = source.deletingLastPathComponent() }
        candidates.append(source.path)
        for base in candidates {
            let images = base + "/images"
            if fm.fileExists(atPath: images + "/initramfs-init.sh") { return images }
        }
        return nil
    }
}
