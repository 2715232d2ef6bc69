/// QEMU 7.2 has no `file:` migration URI, so state goes through `exec:` — which QEMU runs with `/bin/sh -c`.
/// Paths are therefore single-quoted here so no data-directory name can be interpreted by the shell.
public enum MigrationURI {
    /// Quotes `text` for a POSIX shell (`'…'`, embedded quotes as `'\''`).
    public static func shellQuote(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// URI that streams the state file into an incoming migration.
    public static func readFile(_ path: String) -> String { "exec:cat " + shellQuote(path) }

    /// URI that writes the outgoing migration stream to `path`.
    public static func writeFile(_ path: String) -> String { "exec:cat > " + shellQuote(path) }
}
