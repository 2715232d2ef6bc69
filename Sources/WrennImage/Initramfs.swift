import Foundation

/// Builds the initramfs: static busybox, the init script and the virtio modules in load order.
enum Initramfs {
    static func build(output: String, workDirectory tree: String, busybox: String, initScript: String,
                      moduleDirectory: String, loadOrder: [String]) async throws {
        let fm = FileManager.default
        try? fm.removeItem(atPath: tree)
        for sub in ["bin", "dev", "proc", "sys", "newroot", "modules"] {
            try fm.createDirectory(atPath: tree + "/" + sub, withIntermediateDirectories: true)
        }
        try fm.copyItem(atPath: busybox, toPath: tree + "/bin/busybox")
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: tree + "/bin/busybox")
        try fm.createSymbolicLink(atPath: tree + "/bin/sh", withDestinationPath: "busybox")
        try fm.copyItem(atPath: initScript, toPath: tree + "/init")
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: tree + "/init")
        // The kernel opens /dev/console before init runs; without it init has no output.
        try await Command("mknod", ["-m", "600", tree + "/dev/console", "c", "5", "1"]).check()
        var names: [String] = []
        for path in loadOrder {
            let name = KernelModules.name(ofPath: path) + ".ko"
            let source = moduleDirectory + "/" + path
            let target = tree + "/modules/" + name
            if path.hasSuffix(".ko") {
                try fm.copyItem(atPath: source, toPath: target)
            } else {
                let tool: [String] = path.hasSuffix(".xz") ? ["xz", "-dc"] : path.hasSuffix(".zst") ? ["zstd", "-dcq"] : ["gzip", "-dc"]
                guard Command.resolve(tool[0]) != nil else {
                    throw ImageBuildError.missingTool(tool[0], aptPackage: tool[0] == "xz" ? "xz-utils" : tool[0])
                }
                try await Command(tool[0], Array(tool.dropFirst())).run(stdinFile: source, stdoutFile: target)
            }
            names.append(name)
        }
        try (names.joined(separator: "\n") + "\n").write(toFile: tree + "/modules/load-order", atomically: true, encoding: .utf8)
        // cpio newc archive of the tree, then gzip.
        var entries: [String] = ["."]
        if let walker = fm.enumerator(atPath: tree) {
            while let item = walker.nextObject() as? String { entries.append("./" + item) }
        }
        let listFile = tree + ".list"
        try (entries.sorted().joined(separator: "\n") + "\n").write(toFile: listFile, atomically: true, encoding: .utf8)
        defer { try? fm.removeItem(atPath: listFile) }
        let cpioFile = output + ".cpio"
        try await Command("cpio", ["--quiet", "-o", "-H", "newc", "-R", "0:0"], workingDirectory: tree).run(stdinFile: listFile, stdoutFile: cpioFile)
        try await Command("gzip", ["-9", "-n", "-c"]).run(stdinFile: cpioFile, stdoutFile: output)
        try fm.removeItem(atPath: cpioFile)
    }
}
