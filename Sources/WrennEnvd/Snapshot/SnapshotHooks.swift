import CWrennSpawn
import Foundation
import Logging
import WrennWire

/// What envd does around a pause/snapshot (`prepare`) and after a restore (`restored`).
struct SnapshotHooks: Sendable {
    let identity: EnvdIdentity
    let resolvConfPath: String
    let logger: Logger

    /// Flushes file systems so the disk image is consistent; optionally drops clean caches (smaller memory file).
    func prepare(dropCaches: Bool) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                wrenn_sync_all()
                if dropCaches {
                    let fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC)
                    if fd >= 0 {
                        _ = Foundation.write(fd, "3", 1)
                        close(fd)
                    }
                }
                continuation.resume()
            }
            thread.start()
        }
    }

    /// Re-identifies a clone: new id, token, defaults, host name; reseeds the RNG; sets the clock.
    func restored(_ request: EnvdRestoreRequest) throws(EnvdError) -> EnvdRestoreResponse {
        if let user = request.defaultUser, !user.isEmpty {
            _ = try UserAccount.lookup(user)
        }
        if let token = request.accessToken, token.isEmpty {
            throw .invalid("access_token must not be empty")
        }
        let resolver = try request.nameservers.map { servers throws(EnvdError) in try Self.resolvConf(servers) }
        var entropy: [UInt8] = []
        if let text = request.entropy {
            guard let data = Data(base64Encoded: text) else { throw .invalid("entropy must be base64") }
            entropy = Array(data)
        }

        var hostnameSet = false
        if let name = request.hostname, !name.isEmpty {
            guard name.utf8.count <= 64 else { throw .invalid("hostname longer than 64 bytes") }
            guard sethostname(name, name.utf8.count) == 0 else {
                throw .internalError("sethostname: \(String(cString: strerror(errno)))")
            }
            hostnameSet = true
        }

        var clockSet = false
        if let ms = request.timestampMs {
            var now = timespec(tv_sec: Int(ms / 1000), tv_nsec: Int(ms % 1000) * 1_000_000)
            guard clock_settime(CLOCK_REALTIME, &now) == 0 else {
                throw .internalError("clock_settime: \(String(cString: strerror(errno)))")
            }
            clockSet = true
        }

        let reseeded = reseed(extra: entropy)

        if let resolver {
            // Atomic replace: a reader never sees a half-written file.
            let temporary = resolvConfPath + ".wrenn-new"
            do {
                try Data(resolver.utf8).write(to: URL(fileURLWithPath: temporary))
                guard rename(temporary, resolvConfPath) == 0 else { throw EnvdError.internalError("rename: \(String(cString: strerror(errno)))") }
            } catch {
                unlink(temporary)
                throw .internalError("writing \(resolvConfPath): \(error)")
            }
        }

        identity.update { value in
            if let id = request.capsuleId { value.capsuleID = id }
            if let token = request.accessToken { value.accessToken = token }
            if let user = request.defaultUser { value.defaultUser = user.isEmpty ? nil : user }
            if let env = request.defaultEnv { value.defaultEnv = env }
        }
        let current = identity.current
        logger.info(
            "re-identified after restore",
            metadata: ["capsule_id": "\(current.capsuleID ?? "-")", "clock_set": "\(clockSet)", "hostname_set": "\(hostnameSet)"]
        )
        return EnvdRestoreResponse(capsuleId: current.capsuleID, clockSet: clockSet, rngReseeded: reseeded, hostnameSet: hostnameSet)
    }

    /// Grows the root file system into a disk the host made bigger than the template's (`block_resize` before the
    /// guest continued): waits until the kernel sees at least `bytes` on the root device, then `resize2fs` online.
    /// Nothing to do when the file system already fills it. A disk that does not grow, or a resize that fails, is an
    /// error: the caller asked for that much disk.
    func growRootFilesystem(toBytes bytes: Int64, processes: ProcessManager) async throws(EnvdError) {
        guard let device = Self.rootDevice() else { throw .internalError("cannot find the root file system's block device") }
        let name = (device as NSString).lastPathComponent
        let deadline = ContinuousClock.now + .seconds(15)
        while (Self.blockDeviceBytes(name) ?? 0) < bytes {
            guard ContinuousClock.now < deadline else {
                throw .internalError("\(device) is \(Self.blockDeviceBytes(name) ?? 0) bytes, not the \(bytes) the disk was grown to")
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        let started = ContinuousClock.now
        let result = try await processes.runForeground(ExecRequest(cmd: "/sbin/resize2fs", args: [device], timeoutSec: 120, user: "root"))
        guard result.exitCode == 0 else {
            throw .internalError("resize2fs \(device) failed (exit \(result.exitCode)): \(result.stderr)")
        }
        logger.info("grew the root file system", metadata: ["device": "\(device)", "bytes": "\(bytes)",
                                                             "seconds": "\((ContinuousClock.now - started).components.seconds)"])
    }

    /// The block device mounted at `/` (`/dev/vda`), from the mount table.
    static func rootDevice(mounts: String? = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) -> String? {
        for line in (mounts ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, fields[1] == "/", fields[0].hasPrefix("/dev/") { return String(fields[0]) }
        }
        return nil
    }

    /// The size the kernel sees for block device `name` (`/sys/class/block/<name>/size` counts 512-byte sectors).
    static func blockDeviceBytes(_ name: String) -> Int64? {
        guard let text = try? String(contentsOfFile: "/sys/class/block/\(name)/size", encoding: .utf8),
              let sectors = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        return sectors * 512
    }

    /// The resolv.conf text for `servers`: IPv4/IPv6 literals only (nothing else can reach the file), 1–3 of them.
    static func resolvConf(_ servers: [String]) throws(EnvdError) -> String {
        guard (1...3).contains(servers.count) else { throw .invalid("nameservers must list 1 to 3 addresses") }
        var text = "# written by wrenn-envd on restore\n"
        for server in servers {
            var v4 = in_addr()
            var v6 = in6_addr()
            guard inet_pton(AF_INET, server, &v4) == 1 || inet_pton(AF_INET6, server, &v6) == 1 else {
                throw .invalid("nameservers: \(server.debugDescription) is not an IP address")
            }
            text += "nameserver \(server)\n"
        }
        return text
    }

    /// Mixes the host's entropy plus fresh local noise (clocks, pid, a new random block) into the kernel pool.
    /// Clones restored from one snapshot share RNG state; only this makes their futures diverge.
    private func reseed(extra: [UInt8]) -> Bool {
        var bytes = extra
        var mono = timespec()
        clock_gettime(CLOCK_MONOTONIC, &mono)
        var real = timespec()
        clock_gettime(CLOCK_REALTIME, &real)
        for value in [UInt64(bitPattern: Int64(mono.tv_nsec)), UInt64(bitPattern: Int64(real.tv_sec)),
                      UInt64(bitPattern: Int64(real.tv_nsec)), UInt64(getpid())] {
            withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) }
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<8 {
            withUnsafeBytes(of: generator.next()) { bytes.append(contentsOf: $0) }
        }
        let fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) } == bytes.count
    }
}
