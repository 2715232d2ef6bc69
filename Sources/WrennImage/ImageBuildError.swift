/// Why an image build failed, phrased for the person running `wrenn image build`.
public enum ImageBuildError: Error, CustomStringConvertible {
    /// A required tool is not installed; names the apt package that provides it.
    case missingTool(String, aptPackage: String)
    /// No apt source on this machine serves the wanted suite.
    case noMirror(suite: String)
    /// The envd binary to install does not exist.
    case missingEnvd(String)
    /// The recipe folder (`images/`) could not be found.
    case missingRecipe(String)
    /// Apt knows no installable candidate for a package (usually: run `apt-get update`).
    case noPackageCandidate(String)
    /// Any other step failed.
    case stepFailed(String, String)

    /// A one-line explanation with the fix.
    public var description: String {
        switch self {
        case .missingTool(let tool, let pkg):
            return "required tool `\(tool)` is missing: install it with `apt-get install \(pkg)`"
        case .noMirror(let suite):
            return "no apt source serves suite `\(suite)` with component main (checked /etc/apt/sources.list and sources.list.d)"
        case .missingEnvd(let path):
            return "envd binary not found at \(path) (build it with `swift build -c release --static-swift-stdlib --product wrenn-envd`)"
        case .missingRecipe(let path):
            return "image recipe folder not found (\(path)); set WRENN_IMAGE_RECIPES to the repository's images/ folder"
        case .noPackageCandidate(let pkg):
            return "apt has no candidate for `\(pkg)`; run `apt-get update` first"
        case .stepFailed(let step, let why):
            return "\(step) failed: \(why)"
        }
    }
}
