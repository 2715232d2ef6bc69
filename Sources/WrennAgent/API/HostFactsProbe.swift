import Foundation
import WrennImage
import WrennWire

/// Gathers `GET /v1/host`: machine size from `/proc` and `statvfs`, accelerator and versions from the runtime,
/// the default image and QEMU. Computed once (the accelerator probe may boot a VM the first time) and cached.
actor HostFactsProbe {
    private let dataDirectory: String
    private let runtime: any Runtime
    private var cached: AgentHostFacts?
    private var computing: Task<AgentHostFacts, Never>?
    /// envd version seen most recently on a capsule (envd reports it on `/health`).
    private var envdVersion: String?

    init(dataDirectory: String, runtime: any Runtime) {
        self.dataDirectory = dataDirectory
        self.runtime = runtime
    }

    /// Records the envd version a capsule reported.
    func sawEnvd(version: String) {
        envdVersion = version
        cached?.envdVersion = version
    }

    /// The facts; concurrent first callers share one computation (the accelerator probe must run once).
    func facts() async -> AgentHostFacts {
        if let cached { return cached }
        if let computing { return await computing.value }
        let task = Task { await self.compute() }
        computing = task
        var facts = await task.value
        if let envdVersion { facts.envdVersion = envdVersion }
        cached = facts
        computing = nil
        return facts
    }

    private func compute() async -> AgentHostFacts {
        var facts = AgentHostFacts(
            arch: Self.arch(), cpuCores: ProcessInfo.processInfo.activeProcessorCount,
            memoryMB: Int(ProcessInfo.processInfo.physicalMemory / (1 << 20)), diskGB: Self.diskGB(dataDirectory),
            accelerator: HostFacts.kvmDeviceUsable ? "kvm" : "tcg", kernelVersion: "unknown", vmmVersion: "unknown",
            agentVersion: AgentServerConfiguration.agentVersion, envdVersion: envdVersion ?? "unknown")
        let image = TemplateCatalog(dataDirectory: dataDirectory, runtime: runtime).image("minimal")
        if image.isComplete, let manifest = try? image.readManifest() {
            facts.kernelVersion = manifest.kernelRelease
        }
        if let qemu = runtime as? QemuMicrovmRuntime {
            if image.isComplete || qemu.config.accelerator != nil {
                facts.accelerator = await qemu.acceleratorChoice(for: image).accelerator.rawValue
            }
            if let output = try? await Command("qemu-system-x86_64", ["--version"]).run() {
                facts.vmmVersion = Self.qemuVersion(output.stdoutText) ?? "unknown"
            }
        }
        return facts
    }

    /// `QEMU emulator version 7.2.15 (Debian …)` → `qemu-7.2.15`.
    static func qemuVersion(_ text: String) -> String? {
        guard let range = text.range(of: "version ") else { return nil }
        let version = text[range.upperBound...].prefix { !$0.isWhitespace }
        return version.isEmpty ? nil : "qemu-" + version
    }

    static func arch() -> String {
        var name = utsname()
        uname(&name)
        return withUnsafeBytes(of: &name.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    static func diskGB(_ path: String) -> Int {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 || statvfs("/", &stats) == 0 else { return 0 }
        return Int(UInt64(stats.f_blocks) * UInt64(stats.f_frsize) / (1 << 30))
    }
}
