import Foundation

/// A template build recipe (reference §10.2): Dockerfile-like lines, parsed once at submit so a bad line is a 400
/// naming it, never a failure halfway through a build. Pure: no I/O.
///
///     RUN [--timeout=<duration>] <shell command>    run with /bin/sh -c; fails the build on a non-zero exit
///     START <shell command>                         start a long-running process in the background (kept in the snapshot)
///     ENV KEY=VALUE                                 for later steps; `$VAR`, `${VAR}` expand, `$$` is a literal `$`
///     WORKDIR <path>                                created if missing; the working directory of later steps
///     USER <name>                                   created if missing (with passwordless sudo); runs later steps
///     COPY <src>... <dst>                           from the uploaded archive (relative paths only)
///
/// Blank lines and lines starting with `#` are skipped. Durations: `500ms`, `30s`, `5m`, `1h`, `1m30s`.
struct Recipe: Sendable, Equatable {
    enum Step: Sendable, Equatable {
        case run(command: String, timeoutSeconds: Int?)
        case start(command: String)
        case env(key: String, value: String)
        case workdir(String)
        case user(String)
        case copy(sources: [String], destination: String)
    }

    /// A parsed step and the 1-based recipe line it came from.
    struct Line: Sendable, Equatable {
        var number: Int
        var text: String
        var step: Step
    }

    struct ParseError: Error, Equatable, CustomStringConvertible {
        /// 1-based line of the recipe (0 for the healthcheck).
        var line: Int
        var message: String
        var description: String { line == 0 ? "healthcheck: \(message)" : "recipe line \(line): \(message)" }
    }

    var lines: [Line]

    static let defaultRunTimeout = 30
    static let maxRunTimeout = 3600

    /// Parses every line; the first bad one is the error.
    static func parse(_ text: [String]) throws(ParseError) -> Recipe {
        var lines: [Line] = []
        for (index, raw) in text.enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            lines.append(Line(number: index + 1, text: line, step: try parseLine(line, number: index + 1)))
        }
        guard !lines.isEmpty else { throw ParseError(line: 0 + 1, message: "the recipe has no steps") }
        return Recipe(lines: lines)
    }

    static func parseLine(_ line: String, number: Int) throws(ParseError) -> Step {
        func fail(_ message: String) -> ParseError { ParseError(line: number, message: message) }
        let keyword = String(line.prefix { !$0.isWhitespace })
        let rest = line.dropFirst(keyword.count).trimmingCharacters(in: .whitespaces)
        switch keyword.uppercased() {
        case "RUN":
            var command = rest
            var timeout: Int?
            if command.hasPrefix("--timeout=") {
                let flag = String(command.prefix { !$0.isWhitespace })
                guard let seconds = duration(String(flag.dropFirst("--timeout=".count))), seconds > 0, seconds <= Double(maxRunTimeout) else {
                    throw fail("RUN --timeout: expected a duration such as 30s, 5m or 1h (at most 1h)")
                }
                timeout = Int(seconds.rounded(.up))
                command = command.dropFirst(flag.count).trimmingCharacters(in: .whitespaces)
            } else if command.hasPrefix("--") {
                throw fail("RUN: unknown flag \(command.prefix { !$0.isWhitespace })")
            }
            guard !command.isEmpty else { throw fail("RUN needs a command") }
            return .run(command: command, timeoutSeconds: timeout)
        case "START":
            guard !rest.isEmpty else { throw fail("START needs a command") }
            return .start(command: rest)
        case "ENV":
            guard let eq = rest.firstIndex(of: "=") else { throw fail("ENV: expected KEY=VALUE") }
            let key = String(rest[..<eq])
            guard isEnvName(key) else { throw fail("ENV: \"\(key)\" is not a variable name") }
            var value = String(rest[rest.index(after: eq)...])
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            return .env(key: key, value: value)
        case "WORKDIR":
            guard rest.hasPrefix("/"), !rest.contains(where: \.isWhitespace) else { throw fail("WORKDIR: expected one absolute path") }
            return .workdir(rest)
        case "USER":
            guard isUserName(rest) else { throw fail("USER: expected a user name (lower-case letters, digits, '_' or '-')") }
            return .user(rest)
        case "COPY":
            let parts = rest.split(whereSeparator: \.isWhitespace).map(String.init)
            guard parts.count >= 2 else { throw fail("COPY: expected <src>... <dst>") }
            let sources = Array(parts.dropLast())
            for source in sources where source.hasPrefix("/") || source.split(separator: "/").contains("..") {
                throw fail("COPY: source \"\(source)\" must be a path inside the uploaded archive")
            }
            return .copy(sources: sources, destination: parts[parts.count - 1])
        case "":
            throw fail("empty instruction")
        default:
            throw fail("unknown instruction \"\(keyword)\" (expected RUN, START, ENV, WORKDIR, USER or COPY)")
        }
    }

    static func isEnvName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && CharacterSet.letters.contains(first)) else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || CharacterSet.alphanumerics.contains($0)) }
    }

    static func isUserName(_ name: String) -> Bool {
        name.range(of: "^[a-z_][a-z0-9_-]{0,31}$", options: .regularExpression) != nil
    }

    /// Seconds in a Go-style duration (`1h`, `5m`, `30s`, `500ms`, `1m30s`); nil when malformed.
    static func duration(_ text: String) -> Double? {
        guard !text.isEmpty else { return nil }
        var total = 0.0
        var rest = Substring(text)
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter }
            rest = rest.dropFirst(unit.count)
            switch unit {
            case "ms": total += value / 1000
            case "s": total += value
            case "m": total += value * 60
            case "h": total += value * 3600
            default: return nil
            }
        }
        return total
    }

    /// `value` with `$VAR` and `${VAR}` replaced from `env` (unknown names expand to nothing) and `$$` as `$`.
    static func expand(_ value: String, env: [String: String]) -> String {
        var out = ""
        var chars = Substring(value)
        while let c = chars.first {
            chars = chars.dropFirst()
            guard c == "$" else { out.append(c); continue }
            if chars.first == "$" {
                out.append("$"); chars = chars.dropFirst()
            } else if chars.first == "{", let close = chars.firstIndex(of: "}") {
                out += env[String(chars[chars.index(after: chars.startIndex)..<close])] ?? ""
                chars = chars[chars.index(after: close)...]
            } else {
                let name = chars.prefix { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
                if name.isEmpty { out.append("$") } else { out += env[String(name)] ?? ""; chars = chars.dropFirst(name.count) }
            }
        }
        return out
    }
}

/// `[--interval=3s] [--timeout=10s] [--start-period=0s] [--retries=0] <cmd>`: run until it exits 0; failures
/// within the start period are not counted; `retries` 0 means unlimited (bounded by `maxWait`).
struct Healthcheck: Sendable, Equatable {
    var command: String
    var interval: Double = 3
    var timeout: Double = 10
    var startPeriod: Double = 0
    var retries: Int = 0
    /// Upper bound of the whole check, however many retries are allowed.
    static let maxWait: Double = 600

    static func parse(_ text: String) throws(Recipe.ParseError) -> Healthcheck {
        func fail(_ message: String) -> Recipe.ParseError { Recipe.ParseError(line: 0, message: message) }
        var check = Healthcheck(command: "")
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        while rest.hasPrefix("--") {
            let flag = rest.prefix { !$0.isWhitespace }
            rest = rest.dropFirst(flag.count).drop { $0.isWhitespace }
            let parts = flag.dropFirst(2).split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw fail("expected --flag=value, got \(flag)") }
            switch parts[0] {
            case "retries":
                guard let n = Int(parts[1]), n >= 0 else { throw fail("--retries: expected a whole number") }
                check.retries = n
            case "interval", "timeout", "start-period":
                guard let seconds = Recipe.duration(parts[1]) else { throw fail("--\(parts[0]): expected a duration such as 3s") }
                if parts[0] == "interval" { check.interval = max(seconds, 0.1) }
                if parts[0] == "timeout" { check.timeout = max(seconds, 1) }
                if parts[0] == "start-period" { check.startPeriod = seconds }
            default:
                throw fail("unknown flag --\(parts[0]) (expected --interval, --timeout, --start-period, --retries)")
            }
        }
        check.command = String(rest)
        guard !check.command.isEmpty else { throw fail("needs a command") }
        return check
    }
}
