import ArgumentParser
import Foundation
import WrennServer
import WrennWire

/// `wrenn template build RECIPE`: builds a platform template from a recipe file on a running control plane, as a
/// platform admin. RECIPE is a path, or the name of a file in `images/recipes/` (`code-runner-beta`).
struct TemplateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "Platform templates on a running control plane.",
        subcommands: [Build.self]
    )

    struct Build: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "build",
            abstract: "Build a platform template from a recipe file and follow the build until it ends.",
            discussion: """
                Signs in with WRENN_ADMIN_EMAIL / WRENN_ADMIN_PASSWORD at WRENN_BASE_URL (what `wrenn dev` writes to \
                <data>/dev.env). Recipe files: RUN/ENV/WORKDIR/USER/COPY/START lines and one optional HEALTHCHECK line.
                """
        )

        @Argument(help: "A recipe file, or the name of one in images/recipes/ (e.g. code-runner-beta).") var recipe: String
        @Option(help: "Template name (default: the recipe file's name without .recipe).") var name: String?
        @Option(help: "Base template.") var base: String = "minimal"
        @Option(help: "vCPUs of the build capsule (and of the template).") var vcpus: Int = 2
        @Option(name: .customLong("memory-mb"), help: "Memory of the build capsule, MiB.") var memoryMB: Int = 2048
        @Option(help: "Control plane URL (default: WRENN_BASE_URL).") var url: String?

        func run() async throws {
            let env = ProcessInfo.processInfo.environment
            let path = FileManager.default.fileExists(atPath: recipe) ? recipe : "images/recipes/\(recipe).recipe"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationError("no recipe file at \(recipe) or \(path)")
            }
            guard let base = url ?? env["WRENN_BASE_URL"], let email = env["WRENN_ADMIN_EMAIL"], let password = env["WRENN_ADMIN_PASSWORD"] else {
                throw ValidationError("set WRENN_BASE_URL (or --url), WRENN_ADMIN_EMAIL and WRENN_ADMIN_PASSWORD (`set -a; . <data>/dev.env; set +a`)")
            }
            let file = RecipeFile.parse(text)
            let templateName = name ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            let request = CreateBuildRequest(name: templateName, baseTemplate: self.base, recipe: file.recipe, healthcheck: file.healthcheck,
                                             vcpus: vcpus, memoryMB: memoryMB)
            do {
                let build = try await TemplateBuildClient(baseURL: base, email: email, password: password).run(request) { print($0) }
                if build.status != .success { throw ExitCode.failure }
            } catch let error as TemplateBuildClient.Failure {
                FileHandle.standardError.write(Data("wrenn template build: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }
}
