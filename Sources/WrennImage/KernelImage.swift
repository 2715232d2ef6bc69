import Foundation

/// Extracts the uncompressed `vmlinux` (an ELF with a PVH entry note) from a Debian `vmlinuz` bzImage.
///
/// QEMU's microvm boots the ELF directly through PVH, skipping the in-guest decompressor.
public enum KernelImage {
    /// Compression formats a bzImage payload can use, with the tool that unpacks it.
    public enum Compression: String, Sendable {
        case gzip, xz, zstd, lzma, lz4, bzip2

        /// argv that decompresses stdin to stdout.
        var decompressor: [String] {
            switch self {
            case .gzip: return ["gzip", "-dc"]
            case .xz: return ["xz", "-dc"]
            case .zstd: return ["zstd", "-dcq"]
            case .lzma: return ["xz", "--format=lzma", "-dc"]
            case .lz4: return ["lz4", "-dc"]
            case .bzip2: return ["bzip2", "-dc"]
            }
        }

        /// The Debian package that ships the decompressor.
        var aptPackage: String {
            switch self {
            case .gzip: return "gzip"
            case .xz, .lzma: return "xz-utils"
            case .zstd: return "zstd"
            case .lz4: return "lz4"
            case .bzip2: return "bzip2"
            }
        }
    }

    /// Where the compressed payload sits inside a bzImage and how it is compressed.
    public struct Payload: Equatable, Sendable {
        /// Byte offset of the payload in the file.
        public var offset: Int
        /// Payload length in bytes.
        public var length: Int
        /// Detected compression.
        public var compression: Compression
    }

    /// Errors reading a kernel image.
    public enum Failure: Error, CustomStringConvertible {
        case notBzImage
        case unknownCompression
        case notELF

        public var description: String {
            switch self {
            case .notBzImage: return "kernel image is not a bzImage (no HdrS header)"
            case .unknownCompression: return "kernel payload compression not recognised"
            case .notELF: return "decompressed kernel is not an ELF file"
            }
        }
    }

    private static func le32(_ data: Data, _ at: Int) -> Int {
        let b = [UInt8](data[data.startIndex + at ..< data.startIndex + at + 4])
        return Int(b[0]) | Int(b[1]) << 8 | Int(b[2]) << 16 | Int(b[3]) << 24
    }

    /// Locates the payload using the boot protocol header (`setup_sects`, `payload_offset`, `payload_length`).
    public static func locatePayload(_ bzImage: Data) throws -> Payload {
        guard bzImage.count > 0x250 else { throw Failure.notBzImage }
        let magic = bzImage[bzImage.startIndex + 0x202 ..< bzImage.startIndex + 0x206]
        guard Array(magic) == Array("HdrS".utf8) else { throw Failure.notBzImage }
        var setupSects = Int(bzImage[bzImage.startIndex + 0x1f1])
        if setupSects == 0 { setupSects = 4 }
        let protectedStart = (setupSects + 1) * 512
        let offset = protectedStart + le32(bzImage, 0x248)
        let length = le32(bzImage, 0x24c)
        guard offset + length <= bzImage.count, length > 0 else { throw Failure.notBzImage }
        let head = [UInt8](bzImage[bzImage.startIndex + offset ..< bzImage.startIndex + offset + 6])
        let compression: Compression
        switch true {
        case head.starts(with: [0x1f, 0x8b]): compression = .gzip
        case head.starts(with: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]): compression = .xz
        case head.starts(with: [0x28, 0xb5, 0x2f, 0xfd]): compression = .zstd
        case head.starts(with: [0x5d, 0x00, 0x00]): compression = .lzma
        case head.starts(with: [0x02, 0x21, 0x4c, 0x18]): compression = .lz4
        case head.starts(with: Array("BZh".utf8)): compression = .bzip2
        default: throw Failure.unknownCompression
        }
        return Payload(offset: offset, length: length, compression: compression)
    }

    /// Writes the uncompressed ELF kernel of `vmlinuzPath` to `vmlinuxPath`.
    public static func extractVmlinux(from vmlinuzPath: String, to vmlinuxPath: String) async throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: vmlinuzPath))
        let payload = try locatePayload(data)
        let payloadPath = vmlinuxPath + ".payload"
        try data[data.startIndex + payload.offset ..< data.startIndex + payload.offset + payload.length]
            .write(to: URL(fileURLWithPath: payloadPath))
        defer { try? FileManager.default.removeItem(atPath: payloadPath) }
        let argv = payload.compression.decompressor
        guard Command.resolve(argv[0]) != nil else {
            throw ImageBuildError.missingTool(argv[0], aptPackage: payload.compression.aptPackage)
        }
        // Decompressors may complain about trailing data (the payload length can include padding); accept the
        // output as long as it is an ELF file.
        do {
            try await Command(argv[0], Array(argv.dropFirst())).run(stdinFile: payloadPath, stdoutFile: vmlinuxPath)
        } catch CommandError.failed {
            // fall through to the ELF check
        }
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: vmlinuxPath))
        let head = try handle.read(upToCount: 4) ?? Data()
        try handle.close()
        guard Array(head) == [0x7f, 0x45, 0x4c, 0x46] else { throw Failure.notELF }
    }
}
