import Foundation

/// Fetches the Debian kernel package, unpacks it and extracts the PVH `vmlinux` (cached per package).
struct KernelStage {
    var cacheDirectory: String
    var package: String

    /// A prepared kernel: ELF image, module tree and the initramfs load order.
    struct Prepared {
        var vmlinux: String
        var moduleDirectory: String
        var release: String
        var debName: String
        var loadOrder: [String]
    }

    /// Resolves a metapackage such as `linux-image-cloud-amd64` to the versioned image package it depends on.
    static func versionedPackage(of package: String) async throws -> String {
        let out = try await Command("apt-cache", ["depends", package]).run()
        if out.status != 0 || out.stdoutText.isEmpty { throw ImageBuildError.noPackageCandidate(package) }
        for line in out.stdoutText.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("Depends: linux-image-") {
                return String(trimmed.dropFirst("Depends: ".count))
            }
        }
        return package
    }

    func prepare(modules wanted: [String]) async throws -> Prepared {
        let fm = FileManager.default
        let versioned = try await Self.versionedPackage(of: package)
        let dir = cacheDirectory + "/" + versioned
        let marker = dir + "/complete.json"
        if !fm.fileExists(atPath: marker) {
            try? fm.removeItem(atPath: dir)
            let tmp = dir + ".tmp"
            try? fm.removeItem(atPath: tmp)
            try fm.createDirectory(atPath: tmp + "/root", withIntermediateDirectories: true)
            let download = try await Command("apt-get", ["download", versioned], workingDirectory: tmp).run()
            guard download.status == 0 else {
                if download.stderrText.contains("Unable to locate") || download.stderrText.contains("no installation candidate") {
                    throw ImageBuildError.noPackageCandidate(versioned)
                }
                throw ImageBuildError.stepFailed("apt-get download \(versioned)", download.stderrText)
            }
            guard let deb = try fm.contentsOfDirectory(atPath: tmp).first(where: { $0.hasSuffix(".deb") }) else {
                throw ImageBuildError.stepFailed("apt-get download \(versioned)", "no .deb file was written")
            }
            try await Command("dpkg-deb", ["-x", tmp + "/" + deb, tmp + "/root"]).check()
            guard let vmlinuz = try fm.contentsOfDirectory(atPath: tmp + "/root/boot").first(where: { $0.hasPrefix("vmlinuz-") }) else {
                throw ImageBuildError.stepFailed("unpack kernel", "no boot/vmlinuz-* in \(deb)")
            }
            let release = String(vmlinuz.dropFirst("vmlinuz-".count))
            try await KernelImage.extractVmlinux(from: tmp + "/root/boot/" + vmlinuz, to: tmp + "/vmlinux")
            // Merged /usr or not, depmod wants <base>/lib/modules/<release>.
            if !fm.fileExists(atPath: tmp + "/root/lib/modules/" + release), fm.fileExists(atPath: tmp + "/root/usr/lib/modules/" + release) {
                try fm.createDirectory(atPath: tmp + "/root/lib", withIntermediateDirectories: true)
                try fm.moveItem(atPath: tmp + "/root/usr/lib/modules", toPath: tmp + "/root/lib/modules")
            }
            try await Command("depmod", ["-b", tmp + "/root", release]).check()
            try fm.moveItem(atPath: tmp + "/root/lib/modules/" + release, toPath: tmp + "/modules")
            try fm.removeItem(atPath: tmp + "/root")
            try fm.removeItem(atPath: tmp + "/" + deb)
            let info = ["release": release, "deb": deb]
            try JSONEncoder().encode(info).write(to: URL(fileURLWithPath: tmp + "/complete.json"))
            try fm.moveItem(atPath: tmp, toPath: dir)
        }
        let info = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: URL(fileURLWithPath: marker)))
        let depText = try String(contentsOfFile: dir + "/modules/modules.dep", encoding: .utf8)
        let resolved = KernelModules.loadOrder(wanted: wanted, depText: depText)
        return Prepared(
            vmlinux: dir + "/vmlinux", moduleDirectory: dir + "/modules", release: info["release"] ?? "unknown",
            debName: info["deb"] ?? versioned, loadOrder: resolved.order.map(\.path))
    }
}
