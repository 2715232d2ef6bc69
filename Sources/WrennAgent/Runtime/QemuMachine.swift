/// Everything that determines one QEMU microvm invocation; ``argv`` renders it (pure, unit-tested).
///
/// A restore must use the same device configuration as the save, so a capsule keeps its ``QemuMachine`` (in
/// its record) and only toggles ``incoming``.
public struct QemuMachine: Sendable, Codable, Equatable {
    /// Which accelerator QEMU uses.
    public enum Accelerator: String, Sendable, Codable {
        case kvm, tcg
    }

    /// QEMU binary (`qemu-system-x86_64`).
    public var qemuBinary: String = "qemu-system-x86_64"
    /// Accelerator.
    public var accelerator: Accelerator
    /// TCG translation-cache size in MiB (`-accel tcg,tb-size=`), or `nil` for QEMU's default (1 GiB reserved,
    /// filled on demand). Not part of the saved device state, so a clone may use another value than its template.
    public var tcgTranslationCacheMiB: Int?
    /// vCPUs.
    public var vcpus: Int
    /// Guest RAM in MiB.
    public var memoryMiB: Int
    /// File backing guest RAM.
    public var memoryFile: String
    /// Map the RAM file shared (writes go to the file; needed for `x-ignore-shared` save/restore).
    public var memoryShared: Bool = true
    /// PVH ELF kernel.
    public var kernel: String
    /// initramfs.
    public var initramfs: String
    /// Kernel command line.
    public var kernelCommandLine: String
    /// Root disk (qcow2).
    public var disk: String
    /// TAP device name inside the capsule's namespace, or `nil` for no network.
    public var tap: String?
    /// Guest MAC.
    public var mac: String = SlotAddressing.guestMAC
    /// Serial console log file.
    public var consoleLog: String
    /// QMP unix socket.
    public var qmpSocket: String
    /// PID file written by QEMU.
    public var pidFile: String
    /// Start waiting for an incoming migration (`-incoming defer -S`) instead of booting.
    public var incoming: Bool = false
    /// Detach from the launching process (so the VM outlives an agent restart).
    public var daemonize: Bool = true

    /// The argv (first element is the binary).
    public var argv: [String] {
        var args: [String] = [qemuBinary,
            "-machine", "microvm,memory-backend=mem0",
            "-accel", accelerator == .tcg && tcgTranslationCacheMiB != nil ? "tcg,tb-size=\(tcgTranslationCacheMiB ?? 0)" : accelerator.rawValue,
            "-cpu", accelerator == .kvm ? "host,-arch-capabilities" : "max",
            "-smp", "\(vcpus)",
            "-m", "\(memoryMiB)M",
            "-object", "memory-backend-file,id=mem0,size=\(memoryMiB)M,mem-path=\(memoryFile),share=\(memoryShared ? "on" : "off")",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", kernel, "-initrd", initramfs, "-append", kernelCommandLine,
            "-chardev", "file,id=console,path=\(consoleLog)", "-serial", "chardev:console",
            "-drive", "id=root,file=\(disk),format=qcow2,if=none,cache=writeback,discard=unmap",
            "-device", "virtio-blk-device,drive=root",
        ]
        if let tap {
            args += ["-netdev", "tap,id=net0,ifname=\(tap),script=no,downscript=no",
                     "-device", "virtio-net-device,netdev=net0,mac=\(mac)"]
        }
        args += ["-qmp", "unix:\(qmpSocket),server=on,wait=off", "-pidfile", pidFile]
        if daemonize { args.append("-daemonize") }
        if incoming { args += ["-incoming", "defer", "-S"] }
        return args
    }

    /// The kernel command line for a capsule guest.
    ///
    /// `tsc_early_khz` is required under TCG on microvm: without it PIT calibration can fail and the boot hangs.
    public static func kernelCommandLine(tscKHz: Int?, hostname: String, extra: [String] = []) -> String {
        var parts = ["console=ttyS0", "reboot=t", "panic=-1", "quiet", "loglevel=4"]
        if let tscKHz { parts.append("tsc_early_khz=\(tscKHz)") }
        parts += ["wrenn.hostname=\(hostname)",
                  "wrenn.ip=\(SlotAddressing.guestAddress)/\(SlotAddressing.guestPrefix)",
                  "wrenn.gw=\(SlotAddressing.tapAddress)"]
        return (parts + extra).joined(separator: " ")
    }
}
