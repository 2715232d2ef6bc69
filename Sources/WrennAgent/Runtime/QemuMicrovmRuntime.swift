import Foundation
import Logging
import WrennImage

/// The QEMU `microvm` runtime: capsules are restored from booted-snapshot templates, guest RAM lives in a file
/// (`memory-backend-file`, `share=on`) so pause/resume only moves device state (`x-ignore-shared`).
///
/// Memory model (decided here, see docs/runtime.md): each capsule gets a sparse private copy of the template's RAM
/// file, mapped shared. Create pays one sparse copy; every pause then costs only the device state (~60 KB).
public actor QemuMicrovmRuntime: Runtime {
    /// Settings.
    public let config: RuntimeConfig
    /// The network manager (slots, namespaces).
    public let network: NetworkManager
    private let guest: any GuestAgent
    private let logger: Logger
    private var records: [String: CapsuleRecord] = [:]
    private var accelerator: AcceleratorProbe.Result?
    private var templateBuilds: [String: Task<TemplateRecord, any Error>] = [:]
    private var started = false

    /// Creates the runtime; call ``start()`` before use.
    public init(config: RuntimeConfig, guest: any GuestAgent = EnvdGuestAgent(), logger: Logger = Logger(label: "wrenn.runtime")) {
        self.config = config
        self.network = NetworkManager(config: config.network, logger: logger)
        self.guest = guest
        self.logger = logger
    }

    // MARK: start / re-adoption

    /// Loads persisted capsules (running VMs whose QEMU is alive stay running; paused ones stay paused; the rest go
    /// to `error` with their files kept), installs the blackhole route and removes stale namespaces.
    public func start() async throws {
        let fm = FileManager.default
        for dir in [config.capsulesDirectory, config.templatesDirectory, config.imagesDirectory] {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        // Work directories of operations a previous agent did not finish (template boots, snapshots, benchmarks).
        for (dir, isLeftover) in [(config.templatesDirectory, { (n: String) in n.hasPrefix(".") && (n.hasSuffix(".boot") || n.hasSuffix(".snapshot")) }),
                                  (config.capsulesDirectory, { (n: String) in n.hasPrefix(".raw-") })] {
            for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] where isLeftover(name) {
                let path = dir + "/" + name
                if let pid = QemuProcess.readPID(path + "/qemu.pid"), QemuProcess.isAlive(pid, marker: path) { kill(pid, SIGKILL) }
                logger.info("removing unfinished work directory", metadata: ["path": "\(path)"])
                try? fm.removeItem(atPath: path)
            }
        }
        for name in (try? fm.contentsOfDirectory(atPath: config.capsulesDirectory)) ?? [] {
            let layout = CapsuleLayout(root: config.capsulesDirectory, id: name)
            guard var record = try? layout.load() else { continue }
            switch record.state {
            case .running:
                if let pid = record.pid, QemuProcess.isAlive(pid, marker: layout.directory) {
                    logger.info("re-adopted running capsule", metadata: ["id": "\(record.id)", "pid": "\(pid)"])
                } else {
                    record.state = .error
                    record.lastError = "VMM was gone when the agent started"
                    record.pid = nil
                }
            case .paused, .error:
                break
            default:
                // Interrupted mid-operation: keep the files, let the caller decide (destroy or retry).
                if let pid = record.pid, QemuProcess.isAlive(pid, marker: layout.directory) {
                    record.state = .running
                } else {
                    record.state = .error
                    record.lastError = "agent stopped during \(record.state.rawValue)"
                    record.pid = nil
                }
            }
            record.updatedAt = Date().timeIntervalSince1970
            try? layout.save(record)
            records[record.id] = record
        }
        try await network.start(keeping: Set(records.values.map(\.slot)))
        for record in records.values where record.state == .running {
            try? await network.ensure(slot: record.slot, egress: record.egress ?? false)
        }
        started = true
    }

    // MARK: queries

    /// All capsules.
    public func list() async -> [CapsuleInfo] {
        records.values.sorted { $0.createdAt < $1.createdAt }.map(info(of:))
    }

    /// One capsule.
    public func info(_ id: String) async throws -> CapsuleInfo {
        guard let record = records[id] else { throw RuntimeError.notFound(id) }
        return info(of: record)
    }

    private func info(of record: CapsuleRecord) -> CapsuleInfo {
        let endpoint = network.envdEndpoint(slot: record.slot)
        return CapsuleInfo(
            id: record.id, template: record.template, state: record.state, vcpus: record.machine.vcpus,
            memoryMiB: record.machine.memoryMiB, diskMiB: record.diskMiB, slot: record.slot, envdHost: endpoint.host,
            envdPort: endpoint.port, pid: record.pid, accessToken: record.accessToken, accelerator: record.machine.accelerator, lastError: record.lastError)
    }

    /// The capsule's directory layout.
    public nonisolated func layout(of id: String) -> CapsuleLayout { CapsuleLayout(root: config.capsulesDirectory, id: id) }

    // MARK: templates

    /// Accelerator for VMs booted from `image` (probe result cached on disk).
    public func acceleratorChoice(for image: ImageLayout) async -> AcceleratorProbe.Result {
        if let accelerator { return accelerator }
        let result: AcceleratorProbe.Result
        if let forced = config.accelerator {
            result = AcceleratorProbe.Result(accelerator: forced, reason: "configured", probeSeconds: nil, key: "")
        } else {
            result = await AcceleratorProbe(image: image, dataDirectory: config.dataDirectory, bound: config.acceleratorProbeBound).detect(logger: logger)
        }
        accelerator = result
        return result
    }

    static func validName(_ name: String) -> Bool {
        name.range(of: "^[a-z0-9][a-z0-9._-]{0,63}$", options: .regularExpression) != nil
    }

    /// Returns the template a create with this request restores from, cold-booting a base template once if needed.
    ///
    /// A snapshot template named `request.template` wins; otherwise `request.template` names an image and the base
    /// template `<image>-<vcpus>c-<memory>m` is used (a restore needs the same vCPU count and memory size).
    public func template(for request: CapsuleRequest) async throws -> TemplateRecord {
        guard Self.validName(request.template) else { throw RuntimeError.invalidRequest("bad template name") }
        let named = TemplateLayout(directory: config.templatesDirectory + "/" + request.template)
        if let record = named.load() { return record }
        let image = ImageLayout(directory: config.imagesDirectory + "/" + request.template)
        guard image.isComplete else { throw RuntimeError.templateNotFound(request.template) }
        // The key names the image build, so a rebuilt image gets a fresh template (old clones keep their backing).
        // ... and the QEMU build: saved device state is only guaranteed to load into the same QEMU.
        let stamp = ((try? image.readManifest().builtAt) ?? "").filter(\.isNumber)
        let key = "\(request.template)-\(request.vcpus)c-\(request.memoryMiB)m-\(stamp)-q\(await qemuFingerprint())"
        let layout = TemplateLayout(directory: config.templatesDirectory + "/" + key)
        if let record = layout.load() { return record }
        if let running = templateBuilds[key] { return try await running.value }
        let task = Task { try await self.bootBaseTemplate(key: key, imageName: request.template, image: image, vcpus: request.vcpus, memoryMiB: request.memoryMiB) }
        templateBuilds[key] = task
        defer { templateBuilds[key] = nil }
        let record = try await task.value
        removeSupersededTemplates(prefix: "\(request.template)-\(request.vcpus)c-\(request.memoryMiB)m-", keep: key)
        return record
    }

    private var qemuFingerprintCache: String?

    /// 8 hex digits identifying the QEMU build (FNV-1a of `qemu-system-x86_64 --version`).
    func qemuFingerprint() async -> String {
        if let qemuFingerprintCache { return qemuFingerprintCache }
        let version = (try? await Command("qemu-system-x86_64", ["--version"]).run().stdoutText) ?? "unknown"
        var hash: UInt32 = 2_166_136_261
        for byte in version.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        let value = String(format: "%08x", hash)
        qemuFingerprintCache = value
        return value
    }

    /// Deletes base templates of an older build of the same image and shape that no capsule depends on.
    private func removeSupersededTemplates(prefix: String, keep: String) {
        let fm = FileManager.default
        let inUse = Set(records.values.map(\.template))
        for name in (try? fm.contentsOfDirectory(atPath: config.templatesDirectory)) ?? [] {
            guard name.hasPrefix(prefix), name != keep, !inUse.contains(name),
                  name.dropFirst(prefix.count).allSatisfy({ $0.isNumber || $0 == "-" || $0 == "q" || $0.isHexDigit }) else { continue }
            logger.info("removing superseded base template", metadata: ["template": "\(name)"])
            try? fm.removeItem(atPath: config.templatesDirectory + "/" + name)
        }
    }

    private func bootBaseTemplate(key: String, imageName: String, image: ImageLayout, vcpus: Int, memoryMiB: Int) async throws -> TemplateRecord {
        let fm = FileManager.default
        let final = TemplateLayout(directory: config.templatesDirectory + "/" + key)
        let work = TemplateLayout(directory: config.templatesDirectory + "/.\(key).boot")
        try? fm.removeItem(atPath: work.directory)
        try fm.createDirectory(atPath: work.directory, withIntermediateDirectories: true)
        let accel = await acceleratorChoice(for: image).accelerator
        let slot = try await network.allocate()
        var pid: Int32?
        let token = GuestSecrets.hex()
        // The machine is configured with the *final* paths: a restore reopens files by the names saved here.
        // The boot runs in the work directory through symlink-free renaming at the end, so paths are fixed up below.
        var machine = QemuMachine(
            accelerator: accel, vcpus: vcpus, memoryMiB: memoryMiB, memoryFile: work.memory,
            kernel: image.kernel, initramfs: image.initramfs,
            kernelCommandLine: QemuMachine.kernelCommandLine(tscKHz: HostFacts.tscKHz(), hostname: "wrenn", extra: ["wrenn.envd_token=\(token)"]),
            disk: work.disk, tap: NetworkConfig.tapName, consoleLog: work.console,
            qmpSocket: SocketPath.qmp(forDirectory: work.directory), pidFile: work.directory + "/qemu.pid")
        do {
            let started = ContinuousClock.now
            try await DiskManager.createOverlay(path: work.disk, backing: image.rootDisk, backingFormat: "raw", sizeMiB: nil)
            pid = try await QemuProcess.launch(machine, namespace: config.network.namespace(slot: slot))
            try await waitForGuest(slot: slot, pid: pid, marker: work.directory, timeout: config.coldBootTimeout, console: work.console)
            let bootSeconds = (ContinuousClock.now - started).seconds
            let endpoint = network.envdEndpoint(slot: slot)
            do { try await guest.prepareForSave(host: endpoint.host, port: endpoint.port, token: token) } catch {
                logger.warning("envd prepare failed before template save", metadata: ["error": "\(error)"])
            }
            let saveStarted = ContinuousClock.now
            let qmp = try await QMPClient.connect(path: machine.qmpSocket)
            try await Self.saveDeviceState(qmp, to: work.state)
            _ = try? await qmp.execute("quit", timeout: .seconds(5))
            await qmp.close()
            if let pid { _ = await QemuProcess.waitForExit(pid, marker: work.directory, timeout: .seconds(10)) }
            pid = nil
            let saveSeconds = (ContinuousClock.now - saveStarted).seconds
            await network.release(slot: slot)
            try? fm.removeItem(atPath: machine.qmpSocket)
            try? fm.removeItem(atPath: machine.pidFile)
            try? fm.removeItem(atPath: final.directory)
            try fm.moveItem(atPath: work.directory, toPath: final.directory)
            // qcow2 records its backing file by absolute path; the overlay itself moved with the directory.
            machine.memoryFile = final.memory
            machine.disk = final.disk
            machine.consoleLog = final.console
            machine.qmpSocket = SocketPath.qmp(forDirectory: final.directory)
            machine.pidFile = final.directory + "/qemu.pid"
            let record = TemplateRecord(
                name: key, image: imageName, kind: .base, machine: machine,
                diskVirtualMiB: try await DiskManager.virtualSizeMiB(final.disk), envdToken: token,
                createdAt: Date().timeIntervalSince1970, bootSeconds: bootSeconds, saveSeconds: saveSeconds)
            for file in [final.disk, final.memory, final.state] {
                try fm.setAttributes([.posixPermissions: 0o444], ofItemAtPath: file)
            }
            try final.save(record)
            logger.info("base template ready", metadata: ["template": "\(key)", "boot_s": "\(bootSeconds)", "save_s": "\(saveSeconds)"])
            return record
        } catch {
            if let pid { await QemuProcess.stop(pid: pid, qmpSocket: machine.qmpSocket, marker: work.directory) }
            await network.release(slot: slot)
            logger.error("base template boot failed", metadata: ["template": "\(key)", "error": "\(error)", "console": "\(Self.tail(work.console))"])
            try? fm.removeItem(atPath: work.directory)
            throw error
        }
    }

    /// Deletes a template directory. Refused (``RuntimeError/invalidState(id:state:operation:)``) while capsules
    /// created from it exist: their disks are backed by its disk.
    public func deleteTemplate(_ name: String) async throws {
        guard Self.validName(name) else { throw RuntimeError.invalidRequest("bad template name") }
        let users = records.values.filter { $0.template == name }.map(\.id).sorted()
        guard users.isEmpty else {
            throw RuntimeError.invalidState(id: name, state: "in use by \(users.joined(separator: ", "))", operation: "delete template")
        }
        let dir = config.templatesDirectory + "/" + name
        guard FileManager.default.fileExists(atPath: dir) else { return }
        try FileManager.default.removeItem(atPath: dir)
    }

    // MARK: create

    /// Creates a capsule: qcow2 overlay over the template disk + private copy of template RAM + restore + envd.
    public func create(_ request: CapsuleRequest) async throws -> CapsuleInfo {
        guard Self.validName(request.id) else { throw RuntimeError.invalidRequest("capsule id must match [a-z0-9][a-z0-9._-]{0,63}") }
        guard (1...64).contains(request.vcpus), (128...262_144).contains(request.memoryMiB), request.diskMiB >= 0 else {
            throw RuntimeError.invalidRequest("vcpus 1–64, memory 128 MiB–256 GiB")
        }
        guard records[request.id] == nil else { throw RuntimeError.alreadyExists(request.id) }
        let template = try await self.template(for: request)
        guard records[request.id] == nil else { throw RuntimeError.alreadyExists(request.id) }
        let layout = layout(of: request.id)
        let fm = FileManager.default
        let tmpl = TemplateLayout(directory: config.templatesDirectory + "/" + template.name)
        let now = Date().timeIntervalSince1970
        var machine = template.machine
        machine.memoryFile = layout.memory
        machine.disk = layout.disk
        machine.consoleLog = layout.console
        machine.qmpSocket = layout.qmp
        machine.pidFile = layout.pidFile
        machine.tap = NetworkConfig.tapName
        machine.incoming = true
        machine.tcgTranslationCacheMiB = config.tcgTranslationCacheMiB
        var record = CapsuleRecord(
            id: request.id, template: template.name, slot: 0, state: .creating, machine: machine,
            diskMiB: max(request.diskMiB, template.diskVirtualMiB), accessToken: request.accessToken ?? GuestSecrets.hex(), hostname: request.hostname ?? request.id,
            pid: nil, createdAt: now, updatedAt: now, lastError: nil, egress: request.egress ?? config.egressDefault)
        records[request.id] = record
        do {
            try? fm.removeItem(atPath: layout.directory)
            try fm.createDirectory(atPath: layout.directory, withIntermediateDirectories: true)
            // Network, overlay and RAM copy are independent: run them at once (each spawns tools).
            let clock = ContinuousClock()
            let t0 = clock.now
            let network = self.network
            // The overlay starts at the template's size, as the saved guest knows it; a bigger disk is grown after the
            // restore (block_resize while paused, then envd grows the file system), so the guest sees the change.
            let templateDiskMiB = template.diskVirtualMiB
            let growTo = record.diskMiB > templateDiskMiB ? record.diskMiB : nil
            let egress = record.egress ?? false
            async let slotResult = Self.capture { try await network.allocate(egress: egress) }
            async let overlayResult = Self.capture {
                try await DiskManager.createOverlay(path: layout.disk, backing: tmpl.disk, backingFormat: "qcow2", sizeMiB: templateDiskMiB)
            }
            async let memoryResult = Self.capture {
                try await DiskManager.sparseCopy(from: tmpl.memory, to: layout.memory)
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: layout.memory)
            }
            let (slotOutcome, overlayOutcome, memoryOutcome) = await (slotResult, overlayResult, memoryResult)
            if case .success(let slot) = slotOutcome { record.slot = slot }
            records[request.id] = record
            try layout.save(record)
            _ = try slotOutcome.get()
            try overlayOutcome.get()
            try memoryOutcome.get()
            let prepared = clock.now - t0
            let phases = try await restore(&record, stateFile: tmpl.state, savedToken: template.envdToken, hostname: request.hostname ?? request.id,
                                           growDiskToMiB: growTo)
            logger.info("capsule created", metadata: [
                "id": "\(request.id)", "template": "\(template.name)", "slot": "\(record.slot)",
                "prepare_s": "\(prepared.seconds)", "qemu_launch_s": "\(phases.launch)", "cont_s": "\(phases.running)",
                "reidentified_s": "\(phases.reidentified)", "total_s": "\((clock.now - t0).seconds)"])
            return info(of: record)
        } catch {
            logger.error("create failed", metadata: ["id": "\(request.id)", "error": "\(error)", "console": "\(Self.tail(layout.console))"])
            await QemuProcess.stop(pid: record.pid, qmpSocket: layout.qmp, marker: layout.directory)
            if record.slot > 0 { await network.release(slot: record.slot) }
            try? fm.removeItem(atPath: layout.directory)
            records[request.id] = nil
            throw error
        }
    }

    /// Launches QEMU waiting for an incoming migration, feeds it `stateFile`, continues, waits for envd,
    /// re-identifies; leaves `record` running and saved.
    @discardableResult
    private func restore(_ record: inout CapsuleRecord, stateFile: String, savedToken: String, hostname: String,
                         growDiskToMiB: Int? = nil) async throws -> RestorePhases {
        let layout = layout(of: record.id)
        record.machine.incoming = true
        let clock = ContinuousClock()
        let t0 = clock.now
        var phases = RestorePhases()
        let pid = try await QemuProcess.launch(record.machine, namespace: config.network.namespace(slot: record.slot))
        phases.launch = (clock.now - t0).seconds
        record.pid = pid
        records[record.id] = record
        try layout.save(record)
        let qmp = try await QMPClient.connect(path: layout.qmp)
        do {
            try await qmp.execute("migrate-set-capabilities", ["capabilities": .array([
                .object(["capability": .string("x-ignore-shared"), "state": .bool(true)])])])
            try await qmp.execute("migrate-incoming", ["uri": .string(MigrationURI.readFile(stateFile))])
            _ = try await qmp.waitForStatus(["paused"], timeout: .seconds(60))
            if let growDiskToMiB {
                // The guest learns the new capacity from virtio's config-change notice once it runs again.
                try await qmp.execute("block_resize", ["device": .string("root"), "size": .number(Double(growDiskToMiB) * 1_048_576)])
            }
            try await qmp.execute("cont")
            await qmp.close()
        } catch {
            await qmp.close()
            throw RuntimeError.vmm("restore: \(error)")
        }
        phases.running = (clock.now - t0).seconds
        // envd was running when the state was saved, so the re-identify call doubles as the readiness check:
        // retry while the connection fails, give up on an HTTP error, on QEMU exiting or at the deadline.
        let endpoint = network.envdEndpoint(slot: record.slot)
        let token = record.accessToken ?? savedToken
        record.accessToken = token
        let deadline = ContinuousClock.now + config.restoreTimeout
        while true {
            do {
                var identity = GuestSecrets.restoreRequest(capsuleID: record.id, hostname: hostname, accessToken: token)
                if record.egress == true, !config.guestNameservers.isEmpty { identity.nameservers = config.guestNameservers }
                if let growDiskToMiB { identity.rootDiskBytes = Int64(growDiskToMiB) * 1_048_576 }
                try await guest.restored(host: endpoint.host, port: endpoint.port, token: savedToken, request: identity)
                break
            } catch let error as RuntimeError {
                throw error
            } catch {
                if !QemuProcess.isAlive(pid, marker: layout.directory) {
                    throw RuntimeError.vmm("QEMU exited after restore; console: \(Self.tail(layout.console))")
                }
                if ContinuousClock.now > deadline {
                    throw RuntimeError.guestNotReady("envd at \(endpoint.host):\(endpoint.port) unreachable after restore: \(error)")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        phases.reidentified = (clock.now - t0).seconds
        record.state = .running
        record.lastError = nil
        record.updatedAt = Date().timeIntervalSince1970
        records[record.id] = record
        try layout.save(record)
        return phases
    }

    /// Seconds from QEMU start to each restore milestone.
    struct RestorePhases: Sendable {
        /// QEMU daemonized (pid file written).
        var launch = 0.0
        /// Device state loaded and `cont` answered.
        var running = 0.0
        /// envd answered the re-identify call.
        var reidentified = 0.0
    }

    private func waitForGuest(slot: Int, pid: Int32?, marker: String, timeout: Duration, console: String) async throws {
        let endpoint = network.envdEndpoint(slot: slot)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await guest.isHealthy(host: endpoint.host, port: endpoint.port) { return }
            if let pid, !QemuProcess.isAlive(pid, marker: marker) {
                throw RuntimeError.vmm("QEMU exited while waiting for envd; console: \(Self.tail(console))")
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw RuntimeError.guestNotReady("no answer from \(endpoint.host):\(endpoint.port) within \(timeout); console: \(Self.tail(console))")
    }

    /// Makes files durable off the request path: a paused capsule's RAM is the memory file QEMU wrote through its
    /// mapping, and flushing hundreds of MiB of dirty pages takes seconds, so the pause answers first (its device
    /// state and record are fsynced before it does). Until the flush ends only a power loss, not a crash of QEMU or
    /// the agent, could lose the pause.
    static func syncInBackground(_ paths: [String], logger: Logger) {
        Thread.detachNewThread {
            let started = ContinuousClock.now
            for path in paths {
                do { try DurableFile.sync(path) } catch {
                    logger.warning("cannot flush a capsule file", metadata: ["path": "\(path)", "error": "\(error)"])
                }
            }
            logger.debug("flushed capsule files", metadata: ["paths": "\(paths)", "seconds": "\((ContinuousClock.now - started).seconds)"])
        }
    }

    /// Stops the VM and writes its device state (RAM excluded: it stays in the shared memory file).
    static func saveDeviceState(_ qmp: QMPClient, to path: String) async throws {
        try await qmp.execute("migrate-set-parameters", ["max-bandwidth": .number(17_179_869_184)])
        try await qmp.execute("migrate-set-capabilities", ["capabilities": .array([
            .object(["capability": .string("x-ignore-shared"), "state": .bool(true)])])])
        try await qmp.execute("stop")
        try? FileManager.default.removeItem(atPath: path)
        try await qmp.execute("migrate", ["uri": .string(MigrationURI.writeFile(path))])
        try await qmp.waitForMigration()
    }

    // MARK: pause / resume

    /// Pauses: envd prepare, stop, save device state, VMM exits; memory file and overlay stay.
    /// On failure the files stay and the capsule goes to `error`.
    public func pause(_ id: String) async throws -> CapsuleInfo {
        guard var record = records[id] else { throw RuntimeError.notFound(id) }
        guard record.state == .running else { throw RuntimeError.invalidState(id: id, state: record.state.rawValue, operation: "pause") }
        let layout = layout(of: id)
        record.state = .pausing
        records[id] = record
        try? layout.save(record)
        let endpoint = network.envdEndpoint(slot: record.slot)
        do { try await guest.prepareForSave(host: endpoint.host, port: endpoint.port, token: record.accessToken ?? "") } catch {
            logger.warning("envd prepare failed before pause", metadata: ["id": "\(id)", "error": "\(error)"])
        }
        do {
            let qmp = try await QMPClient.connect(path: layout.qmp, timeout: .seconds(5))
            let pending = layout.state + ".partial"
            do {
                try await Self.saveDeviceState(qmp, to: pending)
            } catch {
                // Keep the VM usable if the save failed half-way.
                _ = try? await qmp.execute("cont")
                await qmp.close()
                throw error
            }
            _ = try? await qmp.execute("quit", timeout: .seconds(5))
            await qmp.close()
            if let pid = record.pid, !(await QemuProcess.waitForExit(pid, marker: layout.directory, timeout: .seconds(10))) {
                kill(pid, SIGKILL)
            }
            try DurableFile.sync(pending)
            try? FileManager.default.removeItem(atPath: layout.state)
            try FileManager.default.moveItem(atPath: pending, toPath: layout.state)
            try DurableFile.syncFolder(of: layout.state)
            Self.syncInBackground([layout.memory, layout.disk], logger: logger)
            record.state = .paused
            record.pid = nil
            record.lastError = nil
        } catch {
            record.state = .error
            record.lastError = "pause failed: \(error)"
            if let pid = record.pid, !QemuProcess.isAlive(pid, marker: layout.directory) { record.pid = nil }
            record.updatedAt = Date().timeIntervalSince1970
            records[id] = record
            try? layout.save(record)
            throw RuntimeError.vmm("pause \(id): \(error)")
        }
        record.updatedAt = Date().timeIntervalSince1970
        records[id] = record
        try layout.save(record)
        return info(of: record)
    }

    /// Resumes a paused capsule from its files into the same network slot. On failure the files stay and the
    /// capsule goes to `error`.
    public func resume(_ id: String) async throws -> CapsuleInfo {
        guard var record = records[id] else { throw RuntimeError.notFound(id) }
        guard record.state == .paused || (record.state == .error && record.pid == nil && FileManager.default.fileExists(atPath: layout(of: id).state)) else {
            throw RuntimeError.invalidState(id: id, state: record.state.rawValue, operation: "resume")
        }
        let layout = layout(of: id)
        record.state = .resuming
        records[id] = record
        try? layout.save(record)
        do {
            try await network.ensure(slot: record.slot, egress: record.egress ?? false)
            try await restore(&record, stateFile: layout.state, savedToken: record.accessToken ?? "", hostname: record.hostname ?? id)
            // The guest runs again, so the saved device state no longer matches the RAM file: drop it, so a
            // later failed pause can never be "resumed" from stale state.
            try? FileManager.default.removeItem(atPath: layout.state)
            return info(of: record)
        } catch {
            await QemuProcess.stop(pid: record.pid, qmpSocket: layout.qmp, marker: layout.directory)
            record.pid = nil
            record.state = .error
            record.lastError = "resume failed: \(error)"
            record.updatedAt = Date().timeIntervalSince1970
            records[id] = record
            try? layout.save(record)
            throw RuntimeError.vmm("resume \(id): \(error)")
        }
    }

    // MARK: snapshot

    /// Writes template `name` from capsule `id`: memory + device state + flattened disk. A running capsule is
    /// stopped for the copy and continues afterwards; a paused one stays paused.
    public func snapshot(_ id: String, as name: String) async throws -> TemplateInfo {
        guard Self.validName(name) else { throw RuntimeError.invalidRequest("bad template name") }
        guard var record = records[id] else { throw RuntimeError.notFound(id) }
        guard record.state == .running || record.state == .paused else {
            throw RuntimeError.invalidState(id: id, state: record.state.rawValue, operation: "snapshot")
        }
        let fm = FileManager.default
        let final = TemplateLayout(directory: config.templatesDirectory + "/" + name)
        guard !fm.fileExists(atPath: final.directory) else { throw RuntimeError.invalidRequest("template \(name) already exists") }
        let work = TemplateLayout(directory: config.templatesDirectory + "/.\(name).snapshot")
        try? fm.removeItem(atPath: work.directory)
        try fm.createDirectory(atPath: work.directory, withIntermediateDirectories: true)
        let layout = layout(of: id)
        let wasRunning = record.state == .running
        record.state = .snapshotting
        records[id] = record
        let started = ContinuousClock.now
        do {
            if wasRunning {
                let endpoint = network.envdEndpoint(slot: record.slot)
                try? await guest.prepareForSave(host: endpoint.host, port: endpoint.port, token: record.accessToken ?? "")
                let qmp = try await QMPClient.connect(path: layout.qmp, timeout: .seconds(5))
                do {
                    try await Self.saveDeviceState(qmp, to: work.state)
                    try await DiskManager.sparseCopy(from: layout.memory, to: work.memory)
                    try await DiskManager.flatten(from: layout.disk, to: work.disk)
                    try await qmp.execute("cont")
                    await qmp.close()
                } catch {
                    _ = try? await qmp.execute("cont")
                    await qmp.close()
                    throw error
                }
            } else {
                try await DiskManager.sparseCopy(from: layout.state, to: work.state)
                try await DiskManager.sparseCopy(from: layout.memory, to: work.memory)
                try await DiskManager.flatten(from: layout.disk, to: work.disk)
            }
            var machine = record.machine
            machine.memoryFile = final.memory
            machine.disk = final.disk
            machine.consoleLog = final.console
            machine.qmpSocket = SocketPath.qmp(forDirectory: final.directory)
            machine.pidFile = final.directory + "/qemu.pid"
            machine.incoming = false
            try DurableFile.sync(work.state)
            try fm.moveItem(atPath: work.directory, toPath: final.directory)
            try DurableFile.syncFolder(of: final.directory)
            Self.syncInBackground([final.memory, final.disk], logger: logger)
            let template = TemplateRecord(
                name: name, image: record.template, kind: .snapshot, machine: machine,
                diskVirtualMiB: try await DiskManager.virtualSizeMiB(final.disk), envdToken: record.accessToken ?? "",
                createdAt: Date().timeIntervalSince1970, bootSeconds: nil, saveSeconds: (ContinuousClock.now - started).seconds)
            for file in [final.disk, final.memory, final.state] {
                try fm.setAttributes([.posixPermissions: 0o444], ofItemAtPath: file)
            }
            try final.save(template)
            record.state = wasRunning ? .running : .paused
            record.updatedAt = Date().timeIntervalSince1970
            records[id] = record
            try layout.save(record)
            return TemplateInfo(name: name, image: template.image, kind: .snapshot, vcpus: machine.vcpus, memoryMiB: machine.memoryMiB)
        } catch {
            try? fm.removeItem(atPath: work.directory)
            record.state = wasRunning ? .running : .paused
            record.lastError = "snapshot failed: \(error)"
            records[id] = record
            try? layout.save(record)
            throw RuntimeError.vmm("snapshot \(id): \(error)")
        }
    }

    // MARK: destroy

    /// Stops the VMM, removes network, overlay, memory and state; succeeds for unknown ids.
    public func destroy(_ id: String) async throws {
        guard Self.validName(id) else { throw RuntimeError.invalidRequest("bad capsule id") }
        let layout = layout(of: id)
        var record = records[id] ?? (try? layout.load())
        if var current = record {
            current.state = .stopping
            records[id] = current
            record = current
        }
        let pid = record?.pid ?? QemuProcess.readPID(layout.pidFile)
        await QemuProcess.stop(pid: pid, qmpSocket: layout.qmp, marker: layout.directory)
        if let slot = record?.slot, slot > 0 { await network.release(slot: slot) }
        try? FileManager.default.removeItem(atPath: layout.directory)
        records[id] = nil
    }

    // MARK: benchmark support

    /// Raw QEMU figures for ``CapsuleBenchmark``: with overlay and RAM copy prepared beforehand (untimed), the time
    /// from QEMU start to envd health through a restore, then the time of stop + device-state save + quit.
    public func rawRestoreCycle(template: TemplateRecord) async throws -> (restore: Double, save: Double) {
        let result = try await rawRestoreCycleWithExec(template: template)
        return (result.restore, result.save)
    }

    /// Like ``rawRestoreCycle(template:)``, also timing the first `POST /exec` answered after the restore (with
    /// the template's token; no re-identify).
    public func rawRestoreCycleWithExec(template: TemplateRecord) async throws -> (restore: Double, firstExec: Double, save: Double) {
        let fm = FileManager.default
        let tmpl = TemplateLayout(directory: config.templatesDirectory + "/" + template.name)
        let dir = CapsuleLayout(root: config.capsulesDirectory, id: ".raw-" + GuestSecrets.hex(bytes: 4))
        try fm.createDirectory(atPath: dir.directory, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: dir.directory) }
        try await DiskManager.createOverlay(path: dir.disk, backing: tmpl.disk, backingFormat: "qcow2", sizeMiB: nil)
        try await DiskManager.sparseCopy(from: tmpl.memory, to: dir.memory)
        try fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: dir.memory)
        var machine = template.machine
        machine.memoryFile = dir.memory
        machine.disk = dir.disk
        machine.consoleLog = dir.console
        machine.qmpSocket = dir.qmp
        machine.pidFile = dir.pidFile
        machine.tap = NetworkConfig.tapName
        machine.incoming = true
        machine.tcgTranslationCacheMiB = config.tcgTranslationCacheMiB
        let slot = try await network.allocate()
        var pid: Int32?
        do {
            let clock = ContinuousClock()
            let t0 = clock.now
            pid = try await QemuProcess.launch(machine, namespace: config.network.namespace(slot: slot))
            let qmp = try await QMPClient.connect(path: dir.qmp)
            try await qmp.execute("migrate-set-capabilities", ["capabilities": .array([
                .object(["capability": .string("x-ignore-shared"), "state": .bool(true)])])])
            try await qmp.execute("migrate-incoming", ["uri": .string(MigrationURI.readFile(tmpl.state))])
            _ = try await qmp.waitForStatus(["paused"], timeout: .seconds(60))
            try await qmp.execute("cont")
            try await waitForGuest(slot: slot, pid: pid, marker: dir.directory, timeout: config.restoreTimeout, console: dir.console)
            let restore = (clock.now - t0).seconds
            let endpoint = network.envdEndpoint(slot: slot)
            try await CapsuleBenchmark.firstExec(host: endpoint.host, port: endpoint.port, token: template.envdToken)
            let firstExec = (clock.now - t0).seconds
            let t1 = clock.now
            try await Self.saveDeviceState(qmp, to: dir.state)
            _ = try? await qmp.execute("quit", timeout: .seconds(5))
            await qmp.close()
            if let pid { _ = await QemuProcess.waitForExit(pid, marker: dir.directory, timeout: .seconds(10)) }
            let save = (clock.now - t1).seconds
            pid = nil
            await network.release(slot: slot)
            return (restore, firstExec, save)
        } catch {
            await QemuProcess.stop(pid: pid, qmpSocket: dir.qmp, marker: dir.directory)
            await network.release(slot: slot)
            throw error
        }
    }

    static func capture<T: Sendable>(_ operation: @Sendable () async throws -> T) async -> Result<T, any Error> {
        do { return .success(try await operation()) } catch { return .failure(error) }
    }

    static func tail(_ path: String, lines: Int = 15) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "" }
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}

extension Duration {
    /// The duration in seconds as a Double.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
