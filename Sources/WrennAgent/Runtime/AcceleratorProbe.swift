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
        [qemuBinary, "-machine", "microvm", "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-smp", "1", "-m", "256M",
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
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devNull) }
        let stderrLog = dataDirectory + "/accelerator-probe.stderr"
        let errFD = open(stderrLog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer { if errFD >= 0 { close(errFD) } }
        let started = ContinuousClock.now
        let pid: pid_t
        do {
            pid = try Command(argv[0], Array(argv.dropFirst())).spawn(stdin: devNull, stdout: devNull, stderr: errFD >= 0 ? errFD : devNull)
        } catch {
            return Result(accelerator: .tcg, reason: "KVM probe could not start: \(error)", probeSeconds: nil, key: key)
        }
        func booted() -> Bool {
            (try? String(contentsOfFile: log, encoding: .utf8))?.contains("WRENN-PROBE-OK") ?? false
        }
        var exitStatus: Int32?
        while exitStatus == nil, ContinuousClock.now - started < bound, !booted() {
            try? await Task.sleep(for: .milliseconds(50))
            exitStatus = Command.poll(pid)
        }
        let ok = booted()
        if exitStatus == nil {
            kill(pid, SIGKILL)
            exitStatus = Command.waitStatus(pid)
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        if ok {
            return Result(accelerator: .kvm, reason: "KVM boot probe reached the initramfs", probeSeconds: seconds, key: key)
        }
        let tail = ((try? String(contentsOfFile: stderrLog, encoding: .utf8)) ?? "").split(separator: "\n").suffix(2).joined(separator: " | ")
        let why = seconds < bound.seconds ? "QEMU exited (status \(exitStatus ?? -1)) before the initramfs ran" : "the initramfs did not run within \(bound)"
        return Result(accelerator: .tcg, reason: "KVM boot probe failed: \(why)" + (tail.isEmpty ? "" : " [\(tail)]"), probeSeconds: seconds, key: key)
    }
}
