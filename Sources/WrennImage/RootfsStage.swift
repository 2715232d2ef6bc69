import Foundation

/// Runs `debootstrap` once per (suite, package set) and caches the resulting tree.
struct RootfsStage {
    var cacheDirectory: String
    var suite: String
    var mirror: String
    var packages: [String]

    /// Cache key: readable, stable for the same suite and packages.
    var key: String { "\(suite)-minbase-" + packages.sorted().joined(separator: "+") }

    func prepare() async throws -> String {
        let fm = FileManager.default
        let dir = cacheDirectory + "/" + key
        let marker = dir + ".complete"
        if fm.fileExists(atPath: marker), fm.fileExists(atPath: dir) { return dir }
        try fm.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)
        let tmp = dir + ".tmp"
        try? fm.removeItem(atPath: tmp)
        try? fm.removeItem(atPath: dir)
        let include = packages.sorted().joined(separator: ",")
        let out = try await Command("debootstrap", ["--variant=minbase", "--include=" + include, suite, tmp, mirror]).run()
        guard out.status == 0 else {
            let log = (try? String(contentsOfFile: tmp + "/debootstrap/debootstrap.log", encoding: .utf8)) ?? ""
            throw ImageBuildError.stepFailed("debootstrap", (out.stderrText + "\n" + String(log.suffix(2000))).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        // Downloaded .debs are not needed in the guest.
        let archives = tmp + "/var/cache/apt/archives"
        for name in (try? fm.contentsOfDirectory(atPath: archives)) ?? [] where name.hasSuffix(".deb") {
            try? fm.removeItem(atPath: archives + "/" + name)
        }
        try fm.moveItem(atPath: tmp, toPath: dir)
        fm.createFile(atPath: marker, contents: Data(mirror.utf8))
        return dir
    }
}
