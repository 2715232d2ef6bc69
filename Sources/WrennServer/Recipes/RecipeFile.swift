import Foundation

/// A recipe kept as a file (`images/recipes/*.recipe`): the recipe lines, plus at most one
/// `HEALTHCHECK [flags] <cmd>` line that becomes the build's healthcheck. The healthcheck line is blanked rather
/// than removed, so error messages' line numbers are the file's.
public enum RecipeFile {
    public static func parse(_ text: String) -> (recipe: [String], healthcheck: String?) {
        var healthcheck: String?
        var lines: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.uppercased().hasPrefix("HEALTHCHECK ") {
                healthcheck = String(trimmed.dropFirst("HEALTHCHECK ".count)).trimmingCharacters(in: .whitespaces)
                lines.append("")
            } else {
                lines.append(String(line))
            }
        }
        while lines.last?.trimmingCharacters(in: .whitespaces).isEmpty == true { lines.removeLast() }
        return (lines, healthcheck)
    }
}
