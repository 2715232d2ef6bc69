import Foundation
import Testing
@testable import WrennServer

/// The recipe and healthcheck parsers (pure): every instruction, the flags, and errors that name the line.
@Suite("builds: recipe parser")
struct BuildRecipeTests {
    @Test func parsesEveryInstruction() throws {
        let recipe = try Recipe.parse([
            "# comment", "", "RUN apt-get update", "RUN --timeout=5m pip install x", "ENV A=b c", "ENV Q=\"quoted value\"",
            "WORKDIR /srv/app", "USER wrenn-user", "COPY a.txt dir /opt/out/", "START python3 -m http.server 8000", "run echo lower",
        ])
        #expect(recipe.lines.map(\.number) == [3, 4, 5, 6, 7, 8, 9, 10, 11])
        #expect(recipe.lines.map(\.step) == [
            .run(command: "apt-get update", timeoutSeconds: nil), .run(command: "pip install x", timeoutSeconds: 300),
            .env(key: "A", value: "b c"), .env(key: "Q", value: "quoted value"), .workdir("/srv/app"), .user("wrenn-user"),
            .copy(sources: ["a.txt", "dir"], destination: "/opt/out/"), .start(command: "python3 -m http.server 8000"),
            .run(command: "echo lower", timeoutSeconds: nil),
        ])
    }

    @Test(arguments: [
        (["RUN true", "FROB x"], "recipe line 2: unknown instruction \"FROB\""),
        (["RUN"], "recipe line 1: RUN needs a command"),
        (["", "RUN --timeout=soon true"], "recipe line 2: RUN --timeout"),
        (["RUN --retries=3 true"], "recipe line 1: RUN: unknown flag"),
        (["ENV novalue"], "recipe line 1: ENV: expected KEY=VALUE"),
        (["ENV 1A=x"], "recipe line 1: ENV: \"1A\" is not a variable name"),
        (["WORKDIR relative"], "recipe line 1: WORKDIR"),
        (["USER Root!"], "recipe line 1: USER"),
        (["COPY only"], "recipe line 1: COPY: expected"),
        (["COPY ../etc/passwd /x"], "recipe line 1: COPY: source"),
        (["COPY /etc/passwd /x"], "recipe line 1: COPY: source"),
        (["START"], "recipe line 1: START needs a command"),
        (["# only a comment"], "the recipe has no steps"),
    ])
    func rejectsBadLines(_ lines: [String], _ message: String) {
        #expect {
            try Recipe.parse(lines)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test func durations() {
        #expect(Recipe.duration("30s") == 30)
        #expect(Recipe.duration("5m") == 300)
        #expect(Recipe.duration("1h") == 3600)
        #expect(Recipe.duration("1m30s") == 90)
        #expect(Recipe.duration("500ms") == 0.5)
        #expect(Recipe.duration("5") == nil)
        #expect(Recipe.duration("s") == nil)
        #expect(Recipe.duration("3d") == nil)
    }

    @Test func expansion() {
        let env = ["HOME": "/home/u", "PATH": "/usr/bin"]
        #expect(Recipe.expand("$HOME/bin:${PATH}", env: env) == "/home/u/bin:/usr/bin")
        #expect(Recipe.expand("cost $$5 and $NOPE.", env: env) == "cost $5 and .")
        #expect(Recipe.expand("trailing $", env: env) == "trailing $")
    }

    @Test func healthcheck() throws {
        let check = try Healthcheck.parse("--interval=5s --timeout=2s --start-period=1m --retries=4 curl -sf http://127.0.0.1:8888/api/status")
        #expect(check == Healthcheck(command: "curl -sf http://127.0.0.1:8888/api/status", interval: 5, timeout: 2, startPeriod: 60, retries: 4))
        #expect(try Healthcheck.parse("true") == Healthcheck(command: "true"))
        #expect(throws: Recipe.ParseError.self) { try Healthcheck.parse("--interval=5s") }
        #expect(throws: Recipe.ParseError.self) { try Healthcheck.parse("--every=5s true") }
        #expect(throws: Recipe.ParseError.self) { try Healthcheck.parse("--retries=-1 true") }
    }

    /// The shipped code-runner recipe parses; its WHEELS file pins every package (building it is
    /// `CodeRunnerTemplateTests`).
    @Test func codeRunnerRecipeParses() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("images/recipes/code-runner-beta.recipe")
        let file = try RecipeFile.parse(try String(contentsOf: url, encoding: .utf8))
        let recipe = try Recipe.parse(file.recipe)
        #expect(recipe.lines.contains { $0.step == .user("wrenn-user") })
        #expect(recipe.lines.contains { $0.text.contains("--name wrenn") })
        #expect(recipe.lines.contains { if case .start(let c) = $0.step { c.contains("port=8888") && c.contains("0.0.0.0") } else { false } })
        #expect(try Healthcheck.parse(try #require(file.healthcheck)).command == "python /home/wrenn-user/.wrenn/warm-kernel.py")
        #expect(file.context == "code-runner-beta")
        #expect(recipe.lines.contains { $0.step == .copy(sources: ["warm-kernel.py"], destination: "/home/wrenn-user/.wrenn/warm-kernel.py") })
        let folder = url.deletingLastPathComponent()
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("code-runner-beta/warm-kernel.py").path))
        let requirements = try String(contentsOf: folder.appendingPathComponent(try #require(file.wheels)), encoding: .utf8)
        let pins = requirements.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }
        #expect(pins.count > 50 && pins.allSatisfy { $0.contains("==") })
        for name in ["jupyter_server", "ipykernel", "numpy", "pandas", "matplotlib", "seaborn", "requests"] {
            #expect(pins.contains { $0.hasPrefix(name + "==") }, "\(name) is not pinned")
        }
    }

    @Test func recipeFileLines() throws {
        let file = try RecipeFile.parse("RUN a\nwheels reqs.txt\n  HEALTHCHECK --retries=2 true\nCONTEXT files\nRUN b\n\n")
        #expect(file.recipe == ["RUN a", "", "", "", "RUN b"])
        #expect(file.context == "files")
        #expect(file.wheels == "reqs.txt")
        #expect(file.healthcheck == "--retries=2 true")
        #expect(throws: RecipeFile.ParseError(description: "line 2: a second WHEELS")) { try RecipeFile.parse("WHEELS a\nWHEELS b") }
        #expect(throws: RecipeFile.ParseError(description: "line 1: HEALTHCHECK needs an argument")) { try RecipeFile.parse("HEALTHCHECK") }
    }
}
