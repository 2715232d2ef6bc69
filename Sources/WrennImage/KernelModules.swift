/// Orders kernel modules so that each one is loaded after everything it depends on.
///
/// The input is the text of `modules.dep` (as written by `depmod -b <dir> <version>`); module names are the file
/// names without directory and `.ko[.xz|.zst|.gz]` suffix, with `-` and `_` treated as the same character.
public enum KernelModules {
    /// A module and the relative path of its file inside `lib/modules/<version>/`.
    public struct Module: Equatable, Sendable {
        /// Canonical name (underscores).
        public var name: String
        /// Path relative to `lib/modules/<version>/`.
        public var path: String
    }

    /// Canonical module name of a path such as `kernel/drivers/virtio/virtio_ring.ko.xz`.
    public static func name(ofPath path: String) -> String {
        var base = path.split(separator: "/").last.map(String.init) ?? path
        for suffix in [".xz", ".zst", ".gz"] where base.hasSuffix(suffix) { base.removeLast(suffix.count) }
        if base.hasSuffix(".ko") { base.removeLast(3) }
        return base.replacingOccurrences(of: "-", with: "_")
    }

    /// Parses `modules.dep` into name → (path, dependency names).
    public static func parseDep(_ text: String) -> [String: (path: String, deps: [String])] {
        var result: [String: (path: String, deps: [String])] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let path = String(line[..<colon])
            let deps = line[line.index(after: colon)...].split(separator: " ").map { name(ofPath: String($0)) }
            result[name(ofPath: path)] = (path, deps)
        }
        return result
    }

    /// Resolves `wanted` module names to a load order (dependencies first).
    ///
    /// Names missing from `modules.dep` are returned in `builtIn` (usually built into the kernel, so nothing to load).
    public static func loadOrder(wanted: [String], depText: String) -> (order: [Module], builtIn: [String]) {
        let table = parseDep(depText)
        var order: [Module] = []
        var seen: Set<String> = []
        var builtIn: [String] = []
        func visit(_ raw: String) {
            let name = raw.replacingOccurrences(of: "-", with: "_")
            guard !seen.contains(name) else { return }
            seen.insert(name)
            guard let entry = table[name] else {
                builtIn.append(name)
                return
            }
            // modules.dep lists the full transitive closure; visiting in reverse keeps deepest-first order stable.
            for dep in entry.deps.reversed() { visit(dep) }
            order.append(Module(name: name, path: entry.path))
        }
        for name in wanted { visit(name) }
        return (order, builtIn)
    }
}
