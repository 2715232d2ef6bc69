import Foundation
import Logging
import WrennImage

/// Chooses KVM or TCG by actually booting the guest kernel under KVM, within a time bound.
///
/// Nested KVM can exist yet be unusable (the lab host: 15 s to the first printk, then an emulation failure), so
/// the presence of `/dev/kvm` is not enough. The probe boots the image's kernel + initramfs with `wrenn.probe=1`
/// (the initramfs prints `WRENN-PROBE-OK` and powers off) and accepts KVM only if that happens within the bound.
/// The verdict is cached in `<data>/accelerator.json` keyed by kernel and QEMU binary.
public struct AcceleratorProbe: Sendable {
    /// The verdict and why.
    public struct Result: Codable, Sendable, Equatable {
        /// Chosen accelerator.
        public var accelerator: QemuMachine.Accelerator
        /// Why it was chosen.
        public var reason: String
        /// Seconds the KVM probe took (nil if not run).
        public var probeSeconds: Double?
        /// Cache key (kernel path + size, QEMU path + size).
        public var key: String
    }

    /// Image whose kernel/initramfs to boot.
    public var image: ImageLayout
    /// Directory for the probe's console log and the cached verdict.
    public var dataDirectory: String
    /// Bound on the KVM boot.
    public var bound: Duration = .seconds(8)
    /// QEMU binary.
    public var qemuBinary: String = "qemu-system-x86_64"

    /// Creates a probe.
    public init(image: ImageLayout, dataDirectory: String, bound: Duration = .seconds(8)) {
        self.image = image
        self.dataDirectory = dataDirectory
        self.bound = bound
    }

    private func cacheKey() -> String {
        func sig(_ path: String) -> String {
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int).flatMap { $0 } ?? 0
            return "\(path):\(size)"
        }
        return [sig(image.kernel), sig(Command.resolve(qemuBinary) ?? qemuBinary)].joined(separator: "|")
    }

    /// Returns the cached verdict or runs the probe. `WRENN_ACCEL=tcg|kvm` forces a choice.
    public func detect(logger: Logger = Logger(label: "wrenn.accel")) async -> Result {
        let key = cacheKey()
        if let forced = ProcessInfo.processInfo.environment["WRENN_ACCEL"], let accel = QemuMachine.Accelerator(rawValue: forced) {
            return Result(accelerator: accel, reason: "forced by WRENN_ACCEL", probeSeconds: nil, key: key)
        }
        let cacheFile = dataDirectory + "/accelerator.json"
        if let data = FileManager.default.contents(atPath: cacheFile),
           let cached = try? JSONDecoder().decode(Result.self, from: data), cached.key == key {
            return cached
        }
        let result = await probe(key: key)
        logger.info("accelerator chosen", metadata: ["accelerator": "\(result.accelerator.rawValue)", "reason": "\(result.reason)"])
        try? FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        if let data = try? JSONEncoder().encode(result) { try? data.write(to: URL(fileURLWithPath: cacheFile)) }
        return result
    }

    /// The argv of the KVM probe boot.
    public func probeArgv(consoleLog: String) -> [String] {
        [qemuBinary, "-machine", "microvm", "-accel", "kvm", "-cpu", "host", "-smp", "1", "-m", "256M",
         "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
         "-kernel", image.kernel, "-initrd", image.initramfs,
         "-append", "console=ttyS0 reboot=t panic=-1 wrenn.probe=1" + (HostFacts.tscKHz().map { " tsc_early_khz=\($0)" } ?? ""),
         "-chardev", "file,id=console,path=\(consoleLog)", "-serial", "chardev:console"]
    }

    private func probe(key: String) async -> Result {
        guard HostFacts.kvmDeviceUsable else {
            return Result(accelerator: .tcg, reason: "/dev/kvm is missing or not accessible", probeSeconds: nil, key: key)
        }
        let log = dataDirectory + "/accelerator-probe.log"
        try? FileManager.default.removeItem(atPath: log)
        let argv = probeArgv(consoleLog: log)
        let process = Process()
        guard let path = Command.resolve(argv[0]) else {
            return Result(accelerator: .tcg, reason: "\(argv[0]) not found", probeSeconds: nil, key: key)
        }
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = Array(argv.dropFirst())
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let started = ContinuousClock.now
        do { try process.run() } catch {
            return Result(accelerator: .tcg, reason: "KVM probe could not start: \(error)", probeSeconds: nil, key: key)
        }
        func booted() -> Bool {
            (try? String(contentsOfFile: log, encoding: .utf8))?.contains("WRENN-PROBE-OK") ?? false
        }
        while process.isRunning, ContinuousClock.now - started < bound, !booted() {
            try? await Task.sleep(for: .milliseconds(50))
        }
        let ok = booted()
        if process.isRunning {
            process.terminate()
            try? await Task.sleep(for: .milliseconds(200))
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        if ok {
            return Result(accelerator: .kvm, reason: "KVM boot probe reached the initramfs", probeSeconds: seconds, key: key)
        }
        return Result(accelerator: .tcg, reason: "KVM boot probe did not reach the initramfs within \(bound)", probeSeconds: seconds, key: key)
    }
}
