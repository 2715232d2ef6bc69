import Foundation
import Testing
import WrennImage
import WrennWire
@testable import WrennAgent

/// Runs real QEMU microVMs (TCG here) in real network namespaces. Needs root and qemu-system-x86; the image is
/// built on first use (debootstrap cached under the test data directory).
@Suite("QEMU runtime (integration)", .serialized)
struct RuntimeIntegrationTests {
    static var canRun: Bool { TestSupport.isRoot && Command.resolve("qemu-system-x86_64") != nil }

    /// This suite's own prefix, pool and data directory (images shared). `start()` removes namespaces of its prefix
    /// that it does not own and re-adopts records in its data directory, so every suite that runs a runtime must
    /// use a prefix, pool and data directory of its own (a real agent uses `wrenn-` and 10.200.0.0/16).
    static func makeRuntime() throws -> QemuMicrovmRuntime {
        let network = try #require(NetworkConfig(namePrefix: "wt-", pool: "10.201.0.0/16"))
        return QemuMicrovmRuntime(config: RuntimeConfig(
            dataDirectory: TestSupport.dataDirectory + "/runtime-tests", network: network,
            imagesDirectory: TestSupport.dataDirectory + "/images"))
    }

    struct ExecResult: Decodable {
        var stdout: String
        var exitCode: Int
        enum CodingKeys: String, CodingKey { case stdout, exitCode = "exit_code" }
    }

    /// Runs `script` with `/bin/sh -c` through envd's `POST /exec` (same body for the real envd and the stand-in).
    static func exec(_ info: CapsuleInfo, _ script: String, background: Bool = false) async throws -> ExecResult {
        let body = try JSONEncoder().encode(ExecRequest(cmd: "/bin/sh", args: ["-c", script], background: background ? true : nil))
        let response = try await GuestHTTP.request(host: info.envdHost, port: info.envdPort, method: "POST", path: "/exec", body: body,
                                                   headers: ["Authorization": "Bearer \(info.accessToken ?? "")"], timeout: .seconds(30))
        if background {
            #expect(response.status == 202)
            return ExecResult(stdout: "", exitCode: 0)
        }
        #expect(response.status == 200, "exec answered \(response.status): \(String(decoding: response.body, as: UTF8.self))")
        return try JSONDecoder().decode(ExecResult.self, from: response.body)
    }

    static func background(_ info: CapsuleInfo, _ script: String) async throws {
        _ = try await exec(info, script, background: true)
    }

    static func counter(_ info: CapsuleInfo) async throws -> Int {
        Int(try await exec(info, "cat /tmp/counter").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    static func leftovers(prefix: String, dirs: [String]) async throws -> [String] {
        var found: [String] = []
        let namespaces = try await Command("ip", ["netns", "list"]).check().stdoutText
        found += namespaces.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix + "ns-") }
        let links = try await Command("ip", ["-o", "link", "show"]).check().stdoutText
        found += links.split(separator: "\n").compactMap { line in
            let name = line.split(separator: " ").dropFirst().first.map(String.init) ?? ""
            return name.hasPrefix(prefix + "v") ? name : nil
        }
        let ps = try await Command("ps", ["-eo", "args"]).check().stdoutText
        for dir in dirs {
            found += ps.split(separator: "\n").map(String.init).filter { $0.contains("qemu-system") && $0.contains(dir) }
            if FileManager.default.fileExists(atPath: dir) { found.append(dir) }
        }
        return found
    }

    @Test(.enabled(if: canRun, "needs root and qemu-system-x86"), .timeLimit(.minutes(10)))
    func lifecycleCreateExecPauseResumeSnapshotCloneDestroy() async throws {
        _ = try await TestSupport.image()
        var runtime = try Self.makeRuntime()
        try await runtime.start()
        let accel = await runtime.acceleratorChoice(for: try await TestSupport.image())
        print("accelerator: \(accel.accelerator.rawValue) (\(accel.reason))")
        let suffix = String(UUID().uuidString.prefix(8)).lowercased()
        let idA = "cl-it-a-\(suffix)", idB = "cl-it-b-\(suffix)", snap = "it-snap-\(suffix)"
        let clock = ContinuousClock()

        var t0 = clock.now
        let a = try await runtime.create(CapsuleRequest(id: idA, template: TestSupport.imageName, memoryMiB: 512, diskMiB: 3072))
        print("create A (incl. any template cold boot): \(clock.now - t0)")
        #expect(a.state == .running)
        #expect(a.diskMiB == 5120)  // max(requested 3072, template 5120)
        let rootMiB = Int(try await Self.exec(a, "df -Pm / | awk 'NR==2 {print $2}'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(rootMiB > 4500, "guest root filesystem is \(rootMiB) MiB")
        #expect(try await Self.exec(a, "echo hello").stdout == "hello\n")
        #expect(try await Self.exec(a, "id -un wrenn-user && sudo -n -u wrenn-user sudo -n true && echo sudo-ok").stdout == "wrenn-user\nsudo-ok\n")
        try await Self.background(a, "i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.1; done")
        _ = try await Self.exec(a, "echo from-a > /home/wrenn-user/shared.txt && sync")
        let sampler = MetricsSampler(runtime: runtime)
        await sampler.sampleOnce()
        try await Task.sleep(for: .milliseconds(500))
        await sampler.sampleOnce()
        let samples = await sampler.metrics(of: idA).raw
        #expect(samples.count == 2)
        #expect((samples.last?.memoryBytes ?? 0) > 10_000_000 && (samples.last?.diskBytes ?? 0) > 0)
        #expect((samples.last?.cpuPercent ?? -1) >= 0)
        try await Task.sleep(for: .seconds(1))
        let before = try await Self.counter(a)
        #expect(before > 0)

        // Agent restart: a new runtime over the same data directory re-adopts the running VM and removes a
        // stale namespace of its prefix.
        _ = try await Command("ip", ["netns", "add", "wt-ns-200"]).check()
        runtime = try Self.makeRuntime()
        try await runtime.start()
        let adopted = try await runtime.info(idA)
        #expect(adopted.state == .running)
        #expect(adopted.pid == a.pid)
        #expect(try await Self.exec(adopted, "echo adopted").stdout == "adopted\n")
        #expect(!(try await Command("ip", ["netns", "list"]).check().stdoutText.contains("wt-ns-200")))

        t0 = clock.now
        let paused = try await runtime.pause(idA)
        print("pause: \(clock.now - t0)")
        #expect(paused.state == .paused)
        #expect(paused.pid == nil)
        let layout = runtime.layout(of: idA)
        #expect(FileManager.default.fileExists(atPath: layout.state))
        #expect(FileManager.default.fileExists(atPath: layout.memory))
        // Another agent restart while paused: the capsule is re-adopted as paused, its slot kept.
        runtime = try Self.makeRuntime()
        try await runtime.start()
        #expect(try await runtime.info(idA).state == .paused)
        #expect(try await runtime.info(idA).slot == a.slot)

        // A failed resume keeps every file and leaves the capsule in error; fixing the cause makes it resumable.
        let good = layout.state + ".good"
        try FileManager.default.moveItem(atPath: layout.state, toPath: good)
        try Data("not a migration stream".utf8).write(to: URL(fileURLWithPath: layout.state))
        await #expect(throws: RuntimeError.self) { try await runtime.resume(idA) }
        let failed = try await runtime.info(idA)
        #expect(failed.state == .error)
        #expect(failed.pid == nil)
        #expect(FileManager.default.fileExists(atPath: layout.memory) && FileManager.default.fileExists(atPath: layout.disk))
        try FileManager.default.removeItem(atPath: layout.state)
        try FileManager.default.moveItem(atPath: good, toPath: layout.state)

        t0 = clock.now
        let resumed = try await runtime.resume(idA)
        print("resume: \(clock.now - t0)")
        #expect(resumed.state == .running)
        #expect(resumed.slot == a.slot)
        let after = try await Self.counter(resumed)
        #expect(after >= before, "counter restarted: \(before) -> \(after)")
        try await Task.sleep(for: .seconds(1))
        let later = try await Self.counter(resumed)
        #expect(later > after, "counter stopped: \(after) -> \(later)")

        t0 = clock.now
        let template = try await runtime.snapshot(idA, as: snap)
        print("snapshot: \(clock.now - t0)")
        #expect(template.kind == .snapshot)
        // The source keeps running after the live snapshot, disk writes included (block devices re-activated).
        #expect(try await Self.exec(resumed, "echo after > /home/wrenn-user/after.txt && sync && cat /home/wrenn-user/after.txt").stdout == "after\n")

        // Two creates at once from the snapshot: distinct slots, both see A's file.
        t0 = clock.now
        let idC = "cl-it-c-\(suffix)"
        let rt = runtime
        async let createB = rt.create(CapsuleRequest(id: idB, template: snap))
        async let createC = rt.create(CapsuleRequest(id: idC, template: snap))
        let (b, c) = try await (createB, createC)
        print("create B and C concurrently from snapshot: \(clock.now - t0)")
        #expect(c.slot != b.slot && c.slot != a.slot)
        #expect(try await Self.exec(c, "cat /home/wrenn-user/shared.txt").stdout == "from-a\n")
        // A failed pause (the state file cannot be written) keeps every file and leaves the capsule in error.
        let layoutC = runtime.layout(of: idC)
        try await Command("chattr", ["+i", layoutC.directory]).check()  // even root cannot create files in it now
        await #expect(throws: RuntimeError.self) { try await runtime.pause(idC) }
        try await Command("chattr", ["-i", layoutC.directory]).check()
        #expect(try await runtime.info(idC).state == .error)
        #expect(FileManager.default.fileExists(atPath: layoutC.memory) && FileManager.default.fileExists(atPath: layoutC.disk))
        try await runtime.destroy(idC)
        #expect(b.slot != a.slot)
        #expect(try await Self.exec(b, "cat /home/wrenn-user/shared.txt").stdout == "from-a\n")
        #expect(try await Self.exec(b, "hostname").stdout == "\(idB)\n")
        // Re-identify rotated the token: A's token does not open B.
        #expect(b.accessToken != nil && b.accessToken != a.accessToken)
        let wrong = try await GuestHTTP.request(host: b.envdHost, port: b.envdPort, method: "POST", path: "/exec",
                                                body: Data(#"{"cmd":"/bin/true"}"#.utf8), headers: ["Authorization": "Bearer \(a.accessToken ?? "")"])
        #expect(wrong.status == 401)
        #expect(await runtime.list().map(\.id).sorted() == [idA, idB].sorted())

        await #expect(throws: RuntimeError.self) { try await runtime.deleteTemplate(snap) }  // B's disk is backed by it
        try await runtime.destroy(idA)
        try await runtime.destroy(idB)
        try await runtime.destroy(idA)  // idempotent
        try await runtime.deleteTemplate(snap)
        let left = try await Self.leftovers(prefix: "wt-", dirs: [runtime.layout(of: idA).directory, runtime.layout(of: idB).directory])
        #expect(left.isEmpty, "left behind: \(left)")
        #expect(await runtime.list().isEmpty)
    }

    /// A disk bigger than the template's: the overlay is grown while the restored VM is paused and envd grows the
    /// root file system online, so the guest really has the space (it kept the template's 5 GiB before); the size
    /// survives a pause and resume.
    @Test(.enabled(if: canRun, "needs root and qemu-system-x86"), .timeLimit(.minutes(10)))
    func biggerDiskGrowsTheGuestFilesystem() async throws {
        _ = try await TestSupport.image()
        let runtime = try Self.makeRuntime()
        try await runtime.start()
        let id = "cl-it-disk-\(String(UUID().uuidString.prefix(8)).lowercased())"
        let capsule = try await runtime.create(CapsuleRequest(id: id, template: TestSupport.imageName, memoryMiB: 512, diskMiB: 8192))
        do {
            #expect(capsule.diskMiB == 8192)
            func rootMiB(_ info: CapsuleInfo) async throws -> Int {
                Int(try await Self.exec(info, "df -Pm / | awk 'NR==2 {print $2}'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            }
            let grown = try await rootMiB(capsule)
            #expect(grown > 7500, "guest root filesystem is \(grown) MiB")
            // More than the template's 5 GiB fits (sparse: fallocate reserves blocks without writing them).
            let big = try await Self.exec(capsule, "fallocate -l 6G /var/tmp/big && du -m /var/tmp/big | cut -f1")
            #expect(big.stdout.hasPrefix("614"), "\(big)")
            _ = try await runtime.pause(id)
            let resumed = try await runtime.resume(id)
            #expect(try await rootMiB(resumed) == grown)
        } catch {
            try? await runtime.destroy(id)
            throw error
        }
        try await runtime.destroy(id)
    }

    @Test(.enabled(if: canRun, "needs root and qemu-system-x86"), .timeLimit(.minutes(10)))
    func benchmarkPrintsFigures() async throws {
        _ = try await TestSupport.image()
        let runtime = try Self.makeRuntime()
        try await runtime.start()
        let iterations = Int(ProcessInfo.processInfo.environment["WRENN_BENCH_ITERATIONS"] ?? "") ?? 1
        let report = try await CapsuleBenchmark(runtime: runtime, template: TestSupport.imageName, iterations: iterations).run { print("bench: \($0)") }
        print(report.text)
        #expect(report.rawRestore > 0 && report.createToFirstExec > 0 && report.pause > 0)
        #expect(report.memory != nil)
        #expect(await runtime.list().isEmpty)
        let left = try await Self.leftovers(prefix: "wt-", dirs: [])
        #expect(left.isEmpty, "left behind: \(left)")
    }
}
