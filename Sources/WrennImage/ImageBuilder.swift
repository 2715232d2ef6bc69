import Foundation
import Logging

/// Builds guest images: kernel + initramfs + ext4 root disk with envd, from Debian packages only.
///
/// Entry point of `wrenn image build [name]`. Builds are idempotent: a finished image whose inputs (recipe files,
/// envd binary, packages) are unchanged is reused; otherwise the image is built in a temporary directory and
/// renamed into place only when complete. Slow steps (kernel download, debootstrap) are cached under
/// `<data>/cache/` and shared by all images.
public struct ImageBuilder: Sendable {
    /// Build settings.
    public var config: ImageBuildConfig
    private let logger: Logger

    /// The user every image provides (home `/home/wrenn-user`, passwordless sudo).
    public static let defaultUser = "wrenn-user"
    static let totalSteps = 7

    /// Creates a builder.
    public init(_ config: ImageBuildConfig, logger: Logger = Logger(label: "wrenn.image")) {
        self.config = config
        self.logger = logger
    }

    /// Tools the build runs, each with the apt package that provides it.
    public static let requiredTools: [(tool: String, aptPackage: String)] = [
        ("apt-get", "apt"), ("apt-cache", "apt"), ("dpkg-deb", "dpkg"), ("debootstrap", "debootstrap"),
        ("mkfs.ext4", "e2fsprogs"), ("depmod", "kmod"), ("cpio", "cpio"), ("gzip", "gzip"),
        ("sha256sum", "coreutils"), ("chroot", "coreutils"), ("cp", "coreutils"),
    ]

    /// Path of the static busybox put into the initramfs and the guest (`busybox-static`).
    public static let busyboxCandidates = ["/bin/busybox", "/usr/bin/busybox"]

    /// Fails with ``ImageBuildError/missingTool(_:aptPackage:)`` for the first missing tool.
    public static func checkTools() throws {
        for (tool, pkg) in requiredTools where Command.resolve(tool) == nil {
            throw ImageBuildError.missingTool(tool, aptPackage: pkg)
        }
        guard staticBusybox() != nil else { throw ImageBuildError.missingTool("busybox (static)", aptPackage: "busybox-static") }
    }

    /// The statically linked busybox binary, if installed.
    static func staticBusybox() -> String? {
        for path in busyboxCandidates {
            guard let data = FileManager.default.contents(atPath: path), data.count > 64 else { continue }
            if !ELF.hasInterpreter(data) { return path }
        }
        return nil
    }

    /// Builds (or reuses) image `name` and returns its layout.
    public func build(name: String = "minimal", progress: @Sendable (ImageBuildProgress) -> Void = { _ in }) async throws -> ImageLayout {
        let started = Date()
        let fm = FileManager.default
        func report(_ step: Int, _ message: String) {
            progress(ImageBuildProgress(step: step, totalSteps: Self.totalSteps, message: message))
            logger.info("image build", metadata: ["step": "\(step)", "message": "\(message)"])
        }
        guard name.range(of: "^[a-z0-9][a-z0-9._-]{0,62}$", options: .regularExpression) != nil else {
            throw ImageBuildError.stepFailed("validate name", "image name must match [a-z0-9][a-z0-9._-]*")
        }
        report(1, "checking tools and inputs")
        try Self.checkTools()
        guard fm.fileExists(atPath: config.envdBinary) else { throw ImageBuildError.missingEnvd(config.envdBinary) }
        let recipe = config.recipeDirectory
        for file in ImageRecipe.files where !fm.fileExists(atPath: recipe + "/" + file) {
            throw ImageBuildError.missingRecipe(recipe + "/" + file)
        }
        let packages = try ImageRecipe.readList(recipe + "/packages.txt")
        let modules = try ImageRecipe.readList(recipe + "/modules.txt")
        let recipeHash = try await sha256(ofFiles: ImageRecipe.files.map { recipe + "/" + $0 }, extra: "\(config.rootDiskMiB) \(config.suite) \(config.kernelPackage)")
        let envdHash = try await sha256(ofFiles: [config.envdBinary], extra: "")
        let layout = ImageLayout(dataDirectory: config.dataDirectory, name: name)
        if !config.force, layout.isComplete, let existing = try? layout.readManifest(),
           existing.recipeSHA256 == recipeHash, existing.envdSHA256 == envdHash {
            report(Self.totalSteps, "image \(name) is up to date (\(layout.directory))")
            return layout
        }
        guard let mirror = AptSources.systemMirror(for: config.suite) else { throw ImageBuildError.noMirror(suite: config.suite) }

        let cache = config.dataDirectory + "/cache"
        try fm.createDirectory(atPath: cache, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: config.dataDirectory + "/images", withIntermediateDirectories: true)

        report(2, "kernel: fetching \(config.kernelPackage) with apt")
        let kernel = try await KernelStage(cacheDirectory: cache + "/kernel", package: config.kernelPackage).prepare(modules: modules)

        report(3, "root filesystem: debootstrap \(config.suite) minbase + \(packages.joined(separator: ",")) from \(mirror) (cached after the first run)")
        let baseRoot = try await RootfsStage(cacheDirectory: cache + "/rootfs", suite: config.suite, mirror: mirror, packages: packages).prepare()

        let work = config.dataDirectory + "/images/.\(name).build-\(ProcessInfo.processInfo.processIdentifier)"
        try? fm.removeItem(atPath: work)
        try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        var succeeded = false
        defer { if !succeeded { try? fm.removeItem(atPath: work) } }
        let staged = ImageLayout(directory: work)

        report(4, "initramfs: busybox + \(kernel.loadOrder.count) modules (\(kernel.loadOrder.joined(separator: " ")))")
        guard let busybox = Self.staticBusybox() else { throw ImageBuildError.missingTool("busybox (static)", aptPackage: "busybox-static") }
        try await Initramfs.build(
            output: staged.initramfs, workDirectory: work + "/initramfs-tree", busybox: busybox,
            initScript: recipe + "/initramfs-init.sh", moduleDirectory: kernel.moduleDirectory, loadOrder: kernel.loadOrder)
        try fm.copyItem(atPath: kernel.vmlinux, toPath: staged.kernel)

        report(5, "root filesystem: user \(Self.defaultUser), init, envd")
        let root = work + "/rootfs"
        try await Command("cp", ["-a", "--reflink=auto", baseRoot, root]).check()
        try await GuestCustomizer(root: root, recipe: recipe, busybox: busybox, envd: config.envdBinary, user: Self.defaultUser).apply()

        report(6, "root disk: mkfs.ext4 \(config.rootDiskMiB) MiB")
        try await Command("mkfs.ext4", ["-q", "-F", "-L", "wrennroot", "-E", "root_owner=0:0", "-d", root, staged.rootDisk, "\(config.rootDiskMiB)M"]).check()
        try fm.removeItem(atPath: root)
        try? fm.removeItem(atPath: work + "/initramfs-tree")
        // Images are shared read-only bases of every capsule disk.
        try fm.setAttributes([.posixPermissions: 0o444], ofItemAtPath: staged.rootDisk)

        report(7, "finishing image \(name)")
        let manifest = ImageManifest(
            name: name, kernelRelease: kernel.release, kernelDeb: kernel.debName, suite: config.suite, mirror: mirror,
            packages: packages, envdSHA256: envdHash, recipeSHA256: recipeHash, rootDiskMiB: config.rootDiskMiB,
            defaultUser: Self.defaultUser, builtAt: ISO8601DateFormatter().string(from: Date()),
            buildSeconds: Date().timeIntervalSince(started))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(manifest).write(to: URL(fileURLWithPath: staged.manifest))
        // Swap in atomically-ish: old image (if any) is moved aside first, then removed.
        let old = config.dataDirectory + "/images/.\(name).old-\(ProcessInfo.processInfo.processIdentifier)"
        if fm.fileExists(atPath: layout.directory) { try fm.moveItem(atPath: layout.directory, toPath: old) }
        try fm.moveItem(atPath: work, toPath: layout.directory)
        succeeded = true
        try? fm.removeItem(atPath: old)
        report(7, String(format: "image %@ ready in %.1f s (%@)", name, Date().timeIntervalSince(started), layout.directory))
        return layout
    }

    private func sha256(ofFiles files: [String], extra: String) async throws -> String {
        let out = try await Command("sha256sum", files).check()
        let sums = out.stdoutText.split(separator: "\n").map { $0.split(separator: " ").first.map(String.init) ?? "" }
        let combined = (sums + [extra]).joined(separator: "\n")
        let final = try await Command("sha256sum", []).check(stdin: Data(combined.utf8))
        return final.stdoutText.split(separator: " ").first.map(String.init) ?? ""
    }
}

/// The recipe files of `images/`.
enum ImageRecipe {
    static let files = ["initramfs-init.sh", "rc.sh", "inittab", "start-envd.sh", "packages.txt", "modules.txt"]

    /// Non-comment, non-empty lines of a list file.
    static func readList(_ path: String) throws -> [String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }
}

/// Minimal ELF inspection.
enum ELF {
    /// Whether a 64-bit little-endian ELF has a PT_INTERP program header (i.e. is dynamically linked).
    static func hasInterpreter(_ data: Data) -> Bool {
        let bytes = [UInt8](data.prefix(64))
        guard bytes.count == 64, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[4] == 2 else { return true }
        func u(_ at: Int, _ n: Int) -> Int {
            var v = 0
            for i in 0..<n { v |= Int(data[data.startIndex + at + i]) << (8 * i) }
            return v
        }
        let phoff = u(0x20, 8), phentsize = u(0x36, 2), phnum = u(0x38, 2)
        for i in 0..<phnum {
            let at = phoff + i * phentsize
            guard at + 4 <= data.count else { break }
            if u(at, 4) == 3 { return true }
        }
        return false
    }
}
