import Foundation

/// Reads the Debian mirror this machine already uses from its apt configuration.
///
/// The image builder never hard-codes a mirror: it takes the first `deb` source that serves the wanted suite
/// with the `main` component, from `/etc/apt/sources.list` (one-line format) and `/etc/apt/sources.list.d/`
/// (`*.list` one-line and `*.sources` deb822 format).
public enum AptSources {
    /// One `deb` source entry.
    public struct Entry: Equatable, Sendable {
        /// Repository URI, e.g. `http://deb.debian.org/debian`.
        public var uri: String
        /// Suites (distributions) it serves.
        public var suites: [String]
        /// Components, e.g. `main`.
        public var components: [String]
    }

    /// Parses deb822 (`.sources`) text into entries (only `Types: deb`, disabled stanzas skipped).
    public static func parseDeb822(_ text: String) -> [Entry] {
        var entries: [Entry] = []
        let stanzas = text.components(separatedBy: "\n").split(whereSeparator: { $0.trimmingCharacters(in: .whitespaces).isEmpty })
        for stanza in stanzas {
            var fields: [String: String] = [:]
            var lastKey: String?
            for rawLine in stanza {
                if rawLine.hasPrefix("#") { continue }
                if rawLine.hasPrefix(" ") || rawLine.hasPrefix("\t"), let key = lastKey {
                    fields[key, default: ""] += " " + rawLine.trimmingCharacters(in: .whitespaces)
                    continue
                }
                guard let colon = rawLine.firstIndex(of: ":") else { continue }
                let key = rawLine[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
                let value = rawLine[rawLine.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                fields[key] = value
                lastKey = key
            }
            let types = (fields["types"] ?? "").split(separator: " ").map(String.init)
            guard types.contains("deb") else { continue }
            if (fields["enabled"] ?? "yes").lowercased() == "no" { continue }
            let uris = (fields["uris"] ?? "").split(separator: " ").map(String.init)
            let suites = (fields["suites"] ?? "").split(separator: " ").map(String.init)
            let components = (fields["components"] ?? "").split(separator: " ").map(String.init)
            for uri in uris { entries.append(Entry(uri: uri, suites: suites, components: components)) }
        }
        return entries
    }

    /// Parses one-line format (`sources.list`) text into entries (only `deb` lines).
    public static func parseOneLine(_ text: String) -> [Entry] {
        var entries: [Entry] = []
        for rawLine in text.components(separatedBy: "\n") {
            var line = rawLine
            if let hash = line.firstIndex(of: "#") { line = String(line[..<hash]) }
            var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard words.first == "deb" else { continue }
            words.removeFirst()
            if let first = words.first, first.hasPrefix("[") {
                // Options like [arch=amd64 signed-by=...] may span words.
                while let word = words.first {
                    words.removeFirst()
                    if word.hasSuffix("]") { break }
                }
            }
            guard words.count >= 2 else { continue }
            entries.append(Entry(uri: words[0], suites: [words[1]], components: Array(words.dropFirst(2))))
        }
        return entries
    }

    /// Picks the mirror URI serving `suite` with component `main` from the given entries.
    public static func mirror(for suite: String, in entries: [Entry]) -> String? {
        entries.first(where: { $0.suites.contains(suite) && $0.components.contains("main") })?.uri
    }

    /// Reads every apt source file under `root` (default `/`) and returns the mirror for `suite`.
    public static func systemMirror(for suite: String, root: String = "/") -> String? {
        var entries: [Entry] = []
        let fm = FileManager.default
        let base = root.hasSuffix("/") ? root : root + "/"
        if let text = try? String(contentsOfFile: base + "etc/apt/sources.list", encoding: .utf8) {
            entries += parseOneLine(text)
        }
        let dir = base + "etc/apt/sources.list.d"
        let names = ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        for name in names {
            guard let text = try? String(contentsOfFile: dir + "/" + name, encoding: .utf8) else { continue }
            if name.hasSuffix(".sources") { entries += parseDeb822(text) }
            else if name.hasSuffix(".list") { entries += parseOneLine(text) }
        }
        return mirror(for: suite, in: entries)
    }
}
