import Foundation

/// Turns a debootstrap tree into a Wrenn guest: default user, init, envd.
struct GuestCustomizer {
    var root: String
    var recipe: String
    var busybox: String
    var envd: String
    var user: String

    func apply() async throws {
        let fm = FileManager.default
        // Default user with passwordless sudo (the SDK expects both).
        let passwd = (try? String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)) ?? ""
        if !passwd.split(separator: "\n").contains(where: { $0.hasPrefix(user + ":") }) {
            try await Command("chroot", [root, "useradd", "--create-home", "--home-dir", "/home/" + user,
                                         "--shell", "/bin/bash", "--user-group", "--groups", "sudo", user]).check()
        }
        try fm.createDirectory(atPath: root + "/etc/sudoers.d", withIntermediateDirectories: true)
        try write("\(user) ALL=(ALL:ALL) NOPASSWD:ALL\n", to: "/etc/sudoers.d/\(user)", mode: 0o440)

        // busybox init as PID 1 (reaps orphans, respawns envd), our rc and envd launcher.
        let lib = "/usr/local/lib/wrenn"
        try fm.createDirectory(atPath: root + lib + "/bin", withIntermediateDirectories: true)
        try install(busybox, at: lib + "/bin/busybox", mode: 0o755)
        try? fm.removeItem(atPath: root + lib + "/bin/init")
        try fm.createSymbolicLink(atPath: root + lib + "/bin/init", withDestinationPath: "busybox")
        try install(recipe + "/rc.sh", at: lib + "/rc.sh", mode: 0o755)
        try install(recipe + "/start-envd.sh", at: lib + "/start-envd.sh", mode: 0o755)
        try install(recipe + "/inittab", at: "/etc/inittab", mode: 0o644)
        try fm.createDirectory(atPath: root + "/usr/local/bin", withIntermediateDirectories: true)
        try install(envd, at: "/usr/local/bin/wrenn-envd", mode: 0o755)
        // Release builds carry ~90 MB of debug info; the guest needs none of it.
        if Command.resolve("strip") != nil, Self.isELF(envd) {
            try await Command("strip", ["--strip-unneeded", root + "/usr/local/bin/wrenn-envd"]).check()
        }

        try write("wrenn\n", to: "/etc/hostname", mode: 0o644)
        try write("127.0.0.1\tlocalhost\n127.0.1.1\twrenn\n::1\tlocalhost ip6-localhost ip6-loopback\n", to: "/etc/hosts", mode: 0o644)
        try write("", to: "/etc/resolv.conf", mode: 0o644)
        try fm.createDirectory(atPath: root + "/var/log", withIntermediateDirectories: true)
    }

    static func isELF(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)).map { Array($0) == [0x7f, 0x45, 0x4c, 0x46] } ?? false
    }

    private func install(_ source: String, at path: String, mode: Int) throws {
        let fm = FileManager.default
        try? fm.removeItem(atPath: root + path)
        try fm.copyItem(atPath: source, toPath: root + path)
        try fm.setAttributes([.posixPermissions: mode, .ownerAccountID: 0, .groupOwnerAccountID: 0], ofItemAtPath: root + path)
    }

    private func write(_ text: String, to path: String, mode: Int) throws {
        let fm = FileManager.default
        try? fm.removeItem(atPath: root + path)
        guard fm.createFile(atPath: root + path, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
            throw ImageBuildError.stepFailed("write \(path)", "could not create file")
        }
    }
}
