import Foundation

/// A recipe kept as a file (`images/recipes/*.recipe`): the recipe lines, plus file-level lines that are not
/// recipe steps, each at most once:
/// - `HEALTHCHECK [flags] <cmd>`: the build's healthcheck;
/// - `CONTEXT <folder>`: a folder (relative to the recipe file) the client uploads with the recipe, what COPY reads;
/// - `WHEELS <requirements file>` (relative to the recipe file): the client downloads those Python packages as
///   wheels on its own machine and uploads them with the recipe as `wheels/` (see `BuildArchive`), so the build
///   capsule installs them with `pip --no-index` and needs no network.
/// They are blanked rather than removed, so error messages' line numbers are the file's.
public struct RecipeFile: Sendable, Equatable {
    public var recipe: [String]
    public var healthcheck: String?
    /// The `WHEELS` requirements file, as written (relative to the recipe file's folder unless absolute).
    public var wheels: String?
    /// The `CONTEXT` folder, as written (relative to the recipe file's folder unless absolute).
    public var context: String?

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    public static func parse(_ text: String) throws -> RecipeFile {
        var file = RecipeFile(recipe: [])
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            let keyword = trimmed.prefix { !$0.isWhitespace }.uppercased()
            let argument = String(trimmed.dropFirst(keyword.count)).trimmingCharacters(in: .whitespaces)
            switch keyword {
            case "HEALTHCHECK", "WHEELS", "CONTEXT":
                guard !argument.isEmpty else { throw ParseError(description: "line \(index + 1): \(keyword) needs an argument") }
                let field: WritableKeyPath<RecipeFile, String?> = switch keyword {
                case "HEALTHCHECK": \.healthcheck
                case "WHEELS": \.wheels
                default: \.context
                }
                guard file[keyPath: field] == nil else { throw ParseError(description: "line \(index + 1): a second \(keyword)") }
                file[keyPath: field] = argument
                file.recipe.append("")
            default:
                file.recipe.append(String(line))
            }
        }
        while file.recipe.last?.trimmingCharacters(in: .whitespaces).isEmpty == true { file.recipe.removeLast() }
        return file
    }
}
