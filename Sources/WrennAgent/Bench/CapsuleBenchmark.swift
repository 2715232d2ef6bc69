import Foundation
import WrennWire

/// `wrenn bench capsules`: the runtime's figures measured in one run on this host.
///
/// Compares the raw QEMU operations (restore of the template files already in place; device-state save) with the
/// runtime's own create→first exec and pause/resume, and reports cold boot and host memory per idle capsule.
public struct CapsuleBenchmark: Sendable {
    /// Results, seconds unless stated.
    public struct Report: Sendable, Codable {
        /// Accelerator in use.
        public var accelerator: String
        /// Cold boot of the base template to envd health (from the template record).
        public var coldBoot: Double?
        /// Raw restore: QEMU start → migrate-incoming → cont → envd health (files prepared beforehand), median.
        public var rawRestore: Double
        /// Raw restore → first `POST /exec` answered (template token, no re-identify), median.
        public var rawRestoreToFirstExec: Double
        /// Raw save: stop + device-state migration + quit, median.
        public var rawSave: Double
        /// `create` → first `POST /exec` answered, median.
        public var createToFirstExec: Double
        /// `pause`, median.
        public var pause: Double
        /// `resume` → first exec answered, median.
        public var resumeToFirstExec: Double
        /// Idle capsule QEMU memory.
        public var memory: ProcessMemory?
        /// Iterations per figure.
        public var iterations: Int

        /// create→first exec over raw restore→first exec (goal ≤ 1.3): both end with the guest having run a
        /// command, so the ratio isolates the runtime's own work (network, disk, RAM copy, re-identify).
        public var createRatio: Double { createToFirstExec / rawRestoreToFirstExec }
        /// create→first exec over raw restore to envd health (stricter: charges the first exec to the runtime).
        public var createRatioToHealth: Double { createToFirstExec / rawRestore }
        /// (pause + resume→first exec) over (raw save + raw restore→first exec) (goal ≤ 1.5).
        public var pauseResumeRatio: Double { (pause + resumeToFirstExec) / (rawSave + rawRestoreToFirstExec) }
        /// The same over raw restore to envd health (stricter).
        public var pauseResumeRatioToHealth: Double { (pause + resumeToFirstExec) / (rawSave + rawRestore) }

        /// Human-readable table.
        public var text: String {
            func f(_ v: Double) -> String { String(format: "%.3f s", v) }
            var lines = [
                "accelerator                         \(accelerator)",
                "cold boot (template, to envd)       \(coldBoot.map(f) ?? "n/a (template existed)")",
                "raw restore (QEMU → envd health)    \(f(rawRestore))",
                "raw restore → first exec            \(f(rawRestoreToFirstExec))",
                "create → first exec                 \(f(createToFirstExec))   ratio \(String(format: "%.2f", createRatio)) vs raw→exec (goal ≤ 1.3), \(String(format: "%.2f", createRatioToHealth)) vs raw→health",
                "raw save (stop + state + quit)      \(f(rawSave))",
                "pause                               \(f(pause))",
                "resume → first exec                 \(f(resumeToFirstExec))",
                "pause+resume / raw save+restore     ratio \(String(format: "%.2f", pauseResumeRatio)) vs raw→exec (goal ≤ 1.5), \(String(format: "%.2f", pauseResumeRatioToHealth)) vs raw→health",
            ]
            if let memory {
                lines.append("idle capsule QEMU RSS / PSS         \(memory.rssKiB / 1024) MiB / \(memory.pssKiB / 1024) MiB")
                lines.append("  guest-touched RAM                 \(memory.fileRssKiB / 1024) MiB")
                lines.append("  beyond guest RAM                  \(memory.otherRssKiB / 1024) MiB (goal ≤ 30 MiB)")
            }
            lines.append("iterations                          \(iterations)")
            return lines.joined(separator: "\n")
        }
    }

    /// The runtime to measure (started).
    public var runtime: QemuMicrovmRuntime
    /// Image (or template) name.
    public var template: String
    /// Repetitions per figure.
    public var iterations: Int

    /// Creates a benchmark.
    public init(runtime: QemuMicrovmRuntime, template: String = "minimal", iterations: Int = 3) {
        self.runtime = runtime
        self.template = template
        self.iterations = max(1, iterations)
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    static func firstExec(_ info: CapsuleInfo) async throws {
        try await firstExec(host: info.envdHost, port: info.envdPort, token: info.accessToken ?? "")
    }

    static func firstExec(host: String, port: Int, token: String) async throws {
        let body = try JSONEncoder().encode(ExecRequest(cmd: "/bin/true"))
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if let response = try? await GuestHTTP.request(host: host, port: port, method: "POST", path: "/exec", body: body,
                                                          headers: ["Authorization": "Bearer \(token)"], timeout: .seconds(10)),
               response.status == 200 { return }
            if ContinuousClock.now > deadline { throw RuntimeError.guestNotReady("first exec did not answer") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Runs every measurement; capsules it creates are destroyed afterwards.
    public func run(progress: @Sendable (String) -> Void = { _ in }) async throws -> Report {
        let clock = ContinuousClock()
        let prefix = "bench-" + GuestSecrets.hex(bytes: 3)
        var created: [String] = []
        defer {
            let ids = created
            let runtime = runtime
            Task { for id in ids { try? await runtime.destroy(id) } }
        }
        progress("template: preparing \(template) (cold boot if needed)")
        let tmpl = try await runtime.template(for: CapsuleRequest(id: prefix, template: template))
        let accel = tmpl.machine.accelerator.rawValue
        var raw: [(restore: Double, firstExec: Double, save: Double)] = []
        for i in 0..<iterations {
            progress("raw restore/save \(i + 1)/\(iterations)")
            raw.append(try await runtime.rawRestoreCycleWithExec(template: tmpl))
        }
        var creates: [Double] = [], pauses: [Double] = [], resumes: [Double] = []
        var memory: ProcessMemory?
        for i in 0..<iterations {
            progress("create → first exec, pause, resume \(i + 1)/\(iterations)")
            let id = "\(prefix)-\(i)"
            var t0 = clock.now
            created.append(id)
            let info = try await runtime.create(CapsuleRequest(id: id, template: template))
            try await Self.firstExec(info)
            creates.append((clock.now - t0).seconds)
            if i == 0, let pid = info.pid {
                try await Task.sleep(for: .seconds(2))
                memory = ProcessMemory.read(pid: pid, file: runtime.layout(of: id).memory)
                if let dump = ProcessInfo.processInfo.environment["WRENN_BENCH_SMAPS"], let text = ProcessMemory.readProcFile("/proc/\(pid)/smaps") {
                    try? text.write(toFile: dump, atomically: true, encoding: .utf8)
                }
            }
            t0 = clock.now
            _ = try await runtime.pause(id)
            pauses.append((clock.now - t0).seconds)
            t0 = clock.now
            let resumed = try await runtime.resume(id)
            try await Self.firstExec(resumed)
            resumes.append((clock.now - t0).seconds)
            try await runtime.destroy(id)
            created.removeAll { $0 == id }
        }
        return Report(
            accelerator: accel, coldBoot: tmpl.bootSeconds, rawRestore: Self.median(raw.map(\.restore)),
            rawRestoreToFirstExec: Self.median(raw.map(\.firstExec)),
            rawSave: Self.median(raw.map(\.save)), createToFirstExec: Self.median(creates), pause: Self.median(pauses),
            resumeToFirstExec: Self.median(resumes), memory: memory, iterations: iterations)
    }
}
