import ArgumentParser
import Foundation
import WrennServer
import WrennWire

/// `wrenn template build RECIPE`: builds a platform template from a recipe file on a running control plane, as a
/// platform admin. `wrenn template wheels RECIPE --dest DIR`: downloads a recipe's `WHEELS` ahead of time (for a
/// machine without PyPI, then `build --wheelhouse DIR`). RECIPE is a path, or the name of a file in
/// `images/recipes/` (`code-runner-beta`).
struct TemplateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "Platform templates on a running control plane.",
        subcommands: [Build.self, Wheels.self]
    )

    /// The recipe file RECIPE names, parsed.
    static func load(_ recipe: String) throws -> (url: URL, file: RecipeFile) {
        let path = FileManager.default.fileExists(atPath: recipe) ? recipe : "images/recipes/\(recipe).recipe"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("no recipe file at \(recipe) or \(path)")
        }
        do {
            return (URL(fileURLWithPath: path).standardizedFileURL, try RecipeFile.parse(text))
        } catch {
            throw ValidationError("\(path): \(error)")
        }
    }

    struct Build: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "build",
            abstract: "Build a platform template from a recipe file and follow the build until it ends.",
            discussion: """
                Signs in with WRENN_ADMIN_EMAIL / WRENN_ADMIN_PASSWORD at WRENN_BASE_URL (what `wrenn dev` writes to \
                <data>/dev.env). Recipe files: RUN/ENV/WORKDIR/USER/COPY/START lines, and at most one \
                each of HEALTHCHECK, CONTEXT and WHEELS (docs/control-plane.md, "Template builds").
                """
        )

        @Argument(help: "A recipe file, or the name of one in images/recipes/ (e.g. code-runner-beta).") var recipe: String
        @Option(help: "Template name (default: the recipe file's name without .recipe).") var name: String?
        @Option(help: "Base template.") var base: String = "minimal"
        @Option(help: "vCPUs of the build capsule (and of the template).") var vcpus: Int = 2
        @Option(name: .customLong("memory-mb"), help: "Memory of the build capsule, MiB.") var memoryMB: Int = 2048
        @Option(help: "A folder uploaded with the recipe: COPY's sources (instead of the recipe file's CONTEXT).") var context: String?
        @Option(help: "Take the WHEELS from this folder (see `wrenn template wheels`) instead of PyPI.") var wheelhouse: String?
        @Option(help: "Control plane URL (default: WRENN_BASE_URL).") var url: String?

        func run() async throws {
            let env = ProcessInfo.processInfo.environment
            let (recipeURL, file) = try TemplateCommand.load(recipe)
            guard let base = url ?? env["WRENN_BASE_URL"], let email = env["WRENN_ADMIN_EMAIL"], let password = env["WRENN_ADMIN_PASSWORD"] else {
                throw ValidationError("set WRENN_BASE_URL (or --url), WRENN_ADMIN_EMAIL and WRENN_ADMIN_PASSWORD (`set -a; . <data>/dev.env; set +a`)")
            }
            let templateName = name ?? recipeURL.deletingPathExtension().lastPathComponent
            let request = CreateBuildRequest(name: templateName, baseTemplate: self.base, recipe: file.recipe, healthcheck: file.healthcheck,
                                             vcpus: vcpus, memoryMB: memoryMB)
            let archive = BuildArchive(recipeDirectory: recipeURL.deletingLastPathComponent(),
                                       context: context.map { URL(fileURLWithPath: $0) }, wheelhouse: wheelhouse.map { URL(fileURLWithPath: $0) })
            do {
                let prepared = try await archive.make(for: file) { print($0) }
                defer { if let prepared { try? FileManager.default.removeItem(at: prepared.cleanup) } }
                let build = try await TemplateBuildClient(baseURL: base, email: email, password: password)
                    .run(request, archive: prepared?.archive) { print($0) }
                if build.status != .success { throw ExitCode.failure }
            } catch let error as TemplateBuildClient.Failure {
                FileHandle.standardError.write(Data("wrenn template build: \(error)\n".utf8))
                throw ExitCode.failure
            } catch let error as BuildArchive.Failure {
                FileHandle.standardError.write(Data("wrenn template build: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }

    struct Wheels: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "wheels",
            abstract: "Download a recipe's WHEELS for the guest's Python into a folder (a wheelhouse for `build --wheelhouse`).",
            discussion: "Skips the network when the folder already holds every wheel the requirements need."
        )

        @Argument(help: "A recipe file, or the name of one in images/recipes/.") var recipe: String
        @Option(help: "The folder to fill.") var dest: String

        func run() async throws {
            let (recipeURL, file) = try TemplateCommand.load(recipe)
            guard let wheels = file.wheels else { throw ValidationError("\(recipeURL.path) has no WHEELS line") }
            let destination = URL(fileURLWithPath: dest)
            let online = BuildArchive(recipeDirectory: recipeURL.deletingLastPathComponent())
            let requirements = online.resolve(wheels)
            // Complete already? Resolving from the folder alone answers that without PyPI.
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("wrenn-wheels-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: scratch) }
            var offline = online
            offline.wheelhouse = destination
            if FileManager.default.fileExists(atPath: destination.path), (try? await offline.downloadWheels(requirements, into: scratch)) != nil {
                print("\(destination.path) already holds every wheel of \(requirements.lastPathComponent)")
                return
            }
            do {
                try await online.downloadWheels(requirements, into: destination)
            } catch let error as BuildArchive.Failure {
                FileHandle.standardError.write(Data("wrenn template wheels: \(error)\n".utf8))
                throw ExitCode.failure
            }
            print("downloaded the wheels of \(requirements.lastPathComponent) into \(destination.path)")
        }
    }
}
