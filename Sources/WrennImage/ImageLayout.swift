import Foundation

/// File names of a finished guest image directory (`<data>/images/<name>/`).
public struct ImageLayout: Sendable, Equatable {
    /// The image directory.
    public var directory: String

    /// Creates the layout of image `name` under data directory `dataDirectory`.
    public init(dataDirectory: String, name: String) {
        self.directory = dataDirectory + "/images/" + name
    }

    /// Creates the layout for an existing image directory.
    public init(directory: String) {
        self.directory = directory
    }

    /// Uncompressed PVH-bootable ELF kernel.
    public var kernel: String { directory + "/vmlinux" }
    /// gzip'd newc initramfs.
    public var initramfs: String { directory + "/initramfs.cpio.gz" }
    /// ext4 root disk (read-only base of every capsule overlay).
    public var rootDisk: String { directory + "/rootfs.ext4" }
    /// JSON ``ImageManifest``; present only in a finished image.
    public var manifest: String { directory + "/image.json" }

    /// Whether the directory holds a finished image.
    public var isComplete: Bool {
        let fm = FileManager.default
        return [kernel, initramfs, rootDisk, manifest].allSatisfy { fm.fileExists(atPath: $0) }
    }

    /// Reads the manifest.
    public func readManifest() throws -> ImageManifest {
        try JSONDecoder().decode(ImageManifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifest)))
    }
}

/// What a finished image was built from (written as `image.json`).
public struct ImageManifest: Codable, Sendable, Equatable {
    /// Image (template) name, e.g. `minimal`.
    public var name: String
    /// Kernel release, e.g. `6.1.0-57-cloud-amd64`.
    public var kernelRelease: String
    /// The `.deb` the kernel came from.
    public var kernelDeb: String
    /// Debian suite of the root filesystem.
    public var suite: String
    /// Mirror the root filesystem was fetched from.
    public var mirror: String
    /// Packages added to minbase.
    public var packages: [String]
    /// SHA-256 of the installed envd binary.
    public var envdSHA256: String
    /// SHA-256 over the recipe files; a change forces a rebuild.
    public var recipeSHA256: String
    /// Root disk size in MiB.
    public var rootDiskMiB: Int
    /// Guest user with passwordless sudo.
    public var defaultUser: String
    /// Build time (ISO 8601).
    public var builtAt: String
    /// Build duration in seconds.
    public var buildSeconds: Double
}
