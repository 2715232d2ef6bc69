import Foundation
import WrennImage

/// qcow2 overlays and memory-file copies (copy-on-write disks; no device-mapper on these hosts).
public enum DiskManager {
    /// Creates a qcow2 overlay at `path` backed by `backing` (`raw` or `qcow2`), of `sizeMiB` (nil = backing size).
    public static func createOverlay(path: String, backing: String, backingFormat: String, sizeMiB: Int?) async throws {
        var args = ["create", "-q", "-f", "qcow2", "-b", backing, "-F", backingFormat, path]
        if let sizeMiB { args.append("\(sizeMiB)M") }
        try await Command("qemu-img", args).check()
    }

    /// Virtual size in MiB of a disk image.
    public static func virtualSizeMiB(_ path: String) async throws -> Int {
        let out = try await Command("qemu-img", ["info", "-U", "--output=json", path]).check()
        let info = try JSONDecoder().decode(JSONValue.self, from: out.stdout)
        guard let bytes = info["virtual-size"]?.doubleValue else { throw RuntimeError.vmm("qemu-img info: no virtual-size for \(path)") }
        return Int(bytes / 1_048_576)
    }

    /// Bytes actually allocated on the host for a file.
    public static func allocatedBytes(_ path: String) -> Int64 {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return Int64(info.st_blocks) * 512
    }

    /// Writes `to` as a standalone qcow2 with the whole chain of `from` folded in (for snapshot templates).
    public static func flatten(from: String, to: String) async throws {
        try await Command("qemu-img", ["convert", "-U", "-O", "qcow2", from, to]).check()
    }

    /// Copies a (sparse) file keeping holes.
    public static func sparseCopy(from: String, to: String) async throws {
        try await Command("cp", ["--sparse=always", "--reflink=auto", from, to]).check()
    }
}
