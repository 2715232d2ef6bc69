import Foundation
import WrennImage

/// What `wrenn template build` uploads with a recipe as the build's `archive` (the files COPY reads): the
/// context folder's files (`--context`, else the recipe file's `CONTEXT`), and the recipe file's `WHEELS` packages as `wheels/` — binary wheels for the guest's
/// Python downloaded here with `pip download`, plus pip's own wheel and the requirements file as
/// `wheels/requirements.txt`. The build capsule then installs with `pip install --no-index --find-links`, with no
/// network of its own (capsules in tests have none; in production it also pins what a template contains to what
/// the operator's machine fetched). With a `wheelhouse` folder, pip takes the wheels from it and never goes online.
public struct BuildArchive: Sendable {
    /// The guest image's Python: Debian 12's CPython 3.11 on glibc 2.36, x86_64 (`images/packages.txt`).
    public static let pythonVersion = "3.11"
    /// Wheel platforms that glibc 2.36 runs, newest first.
    public static let platforms = ["manylinux_2_36_x86_64", "manylinux_2_34_x86_64", "manylinux_2_31_x86_64", "manylinux_2_28_x86_64",
                                   "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux2014_x86_64", "manylinux2010_x86_64",
                                   "manylinux1_x86_64"]

    public struct Failure: Error, CustomStringConvertible { public var description: String }

    /// The folder relative `WHEELS` paths start from (the recipe file's).
    public var recipeDirectory: URL
    /// A folder whose whole content goes into the archive (COPY sources); overrides the recipe file's `CONTEXT`.
    public var context: URL?
    /// Wheels to take instead of PyPI (`pip download --no-index --find-links`).
    public var wheelhouse: URL?

    public init(recipeDirectory: URL, context: URL? = nil, wheelhouse: URL? = nil) {
        self.recipeDirectory = recipeDirectory; self.context = context; self.wheelhouse = wheelhouse
    }

    /// A path a recipe file's `WHEELS` or `CONTEXT` line names.
    public func resolve(_ path: String) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : recipeDirectory.appendingPathComponent(path)
    }

    /// `python3 -m pip download` of `requirements` (and pip itself) as wheels for the guest into `destination`.
    public func downloadWheels(_ requirements: URL, into destination: URL) async throws {
        guard FileManager.default.isReadableFile(atPath: requirements.path) else {
            throw Failure(description: "WHEELS: no requirements file at \(requirements.path)")
        }
        try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true)
        var arguments = ["-m", "pip", "download", "--disable-pip-version-check", "--quiet", "--only-binary=:all:",
                         "--implementation", "cp", "--python-version", Self.pythonVersion]
        arguments += Self.platforms.flatMap { ["--platform", $0] }
        if let wheelhouse { arguments += ["--no-index", "--find-links", wheelhouse.path] }
        arguments += ["--dest", destination.path, "-r", requirements.path, "pip"]
        let output: Command.Output
        do { output = try await Command("python3", arguments).run() } catch {
            throw Failure(description: "WHEELS needs python3 with pip on this machine (apt-get install python3-pip): \(error)")
        }
        guard output.status == 0 else {
            throw Failure(description: "pip download for WHEELS failed (exit \(output.status)): "
                          + output.stderrText.trimmingCharacters(in: .whitespacesAndNewlines).suffix(4000))
        }
    }

    /// Builds the archive for `file` as a tar in a temporary folder, or nil when the build needs none. The caller
    /// removes `cleanup` when done.
    public func make(for file: RecipeFile, print say: @Sendable (String) -> Void) async throws -> (archive: URL, cleanup: URL)? {
        let context = self.context ?? file.context.map(resolve)
        guard context != nil || file.wheels != nil else { return nil }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("wrenn-build-archive-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        do {
            let archive = work.appendingPathComponent("archive.tar")
            var arguments = ["-cf", archive.path]
            if let context {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: context.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                    throw Failure(description: "the build context \(context.path) is not a folder")
                }
                arguments += ["-C", context.path, "."]
            }
            if let wheels = file.wheels {
                let staged = work.appendingPathComponent("files")
                let folder = staged.appendingPathComponent("wheels")
                let requirements = resolve(wheels)
                say("downloading the WHEELS of \(requirements.lastPathComponent) for CPython \(Self.pythonVersion)"
                    + (wheelhouse.map { " from \($0.path)" } ?? ""))
                try await downloadWheels(requirements, into: folder)
                try FileManager.default.copyItem(at: requirements, to: folder.appendingPathComponent("requirements.txt"))
                arguments += ["-C", staged.path, "wheels"]
            }
            try await Command("tar", arguments).check()
            say("archive: \(FileChunks.size(archive) / 1_048_576) MiB")
            return (archive, work)
        } catch {
            try? FileManager.default.removeItem(at: work)
            throw error
        }
    }
}
