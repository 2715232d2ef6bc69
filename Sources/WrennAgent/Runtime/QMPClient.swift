import Foundation
import Logging
import NIOCore
import NIOPosix

/// A QMP connection to one QEMU process over its unix socket: a thin I/O shell around ``QMPStateMachine``.
public actor QMPClient {
    private var machine = QMPStateMachine()
    private let channel: any Channel
    private var waiters: [Int: CheckedContinuation<JSONValue, any Error>] = [:]
    private var readyWaiters: [CheckedContinuation<Void, any Error>] = []
    private var isReady = false
    private var closedError: QMPError?
    private var eventLog: [QMPEvent] = []
    private let logger: Logger
    /// QEMU version from the greeting.
    public private(set) var qemuVersion: String?

    private init(channel: any Channel, logger: Logger) {
        self.channel = channel
        self.logger = logger
    }

    /// Connects to the QMP socket at `path`, retrying until `timeout` while QEMU creates it, and negotiates.
    public static func connect(path: String, timeout: Duration = .seconds(10), logger: Logger = Logger(label: "wrenn.qmp")) async throws -> QMPClient {
        let deadline = ContinuousClock.now + timeout
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            do {
                let (stream, continuation) = AsyncStream<[UInt8]>.makeStream()
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(ByteStreamHandler(continuation: continuation))
                        }
                    }
                    .connect(unixDomainSocketPath: path).get()
                let client = QMPClient(channel: channel, logger: logger)
                Task { await client.pump(stream) }
                do {
                    try await client.waitReady(deadline: deadline)
                } catch {
                    await client.close()
                    throw error
                }
                return client
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        throw QMPError(errorClass: "ConnectFailed", description: "QMP socket \(path): \(lastError.map { "\($0)" } ?? "timeout")")
    }

    private func pump(_ stream: AsyncStream<[UInt8]>) async {
        for await chunk in stream { apply(machine.receive(chunk)) }
        closedError = QMPError(errorClass: "ConnectionClosed", description: "QMP connection closed")
        apply(machine.close())
        for waiter in readyWaiters { waiter.resume(throwing: closedError ?? QMPError(errorClass: "ConnectionClosed", description: "closed")) }
        readyWaiters.removeAll()
    }

    private func apply(_ actions: [QMPStateMachine.Action]) {
        for action in actions {
            switch action {
            case .write(let bytes):
                channel.writeAndFlush(channel.allocator.buffer(bytes: bytes), promise: nil)
            case .greeting(let version):
                qemuVersion = version
            case .ready:
                isReady = true
                for waiter in readyWaiters { waiter.resume() }
                readyWaiters.removeAll()
            case .success(let id, let value):
                waiters.removeValue(forKey: id)?.resume(returning: value)
            case .failure(let id, let error):
                waiters.removeValue(forKey: id)?.resume(throwing: error)
            case .event(let event):
                logger.debug("qmp event", metadata: ["event": "\(event.name)"])
                eventLog.append(event)
                if eventLog.count > 256 { eventLog.removeFirst(eventLog.count - 256) }
            case .protocolViolation(let why):
                logger.warning("qmp protocol violation", metadata: ["reason": "\(why)"])
                channel.close(promise: nil)
            }
        }
    }

    private func waitReady(deadline: ContinuousClock.Instant) async throws {
        if isReady { return }
        if let closedError { throw closedError }
        let timer = Task { [weak self] in
            try await Task.sleep(until: deadline)
            await self?.failReadyWaiters()
        }
        defer { timer.cancel() }
        try await withCheckedThrowingContinuation { readyWaiters.append($0) }
    }

    private func failReadyWaiters() {
        for waiter in readyWaiters { waiter.resume(throwing: QMPError(errorClass: "Timeout", description: "no QMP greeting")) }
        readyWaiters.removeAll()
    }

    /// Runs a QMP command and returns its `return` value; throws ``QMPError`` on an error reply or timeout.
    @discardableResult
    public func execute(_ command: String, _ arguments: [String: JSONValue]? = nil, timeout: Duration = .seconds(30)) async throws -> JSONValue {
        if let closedError { throw closedError }
        let (id, actions) = machine.submit(command, arguments: arguments.map { .object($0) })
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            await self?.expire(id, command: command)
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            waiters[id] = continuation
            apply(actions)
        }
    }

    private func expire(_ id: Int, command: String) {
        waiters.removeValue(forKey: id)?.resume(throwing: QMPError(errorClass: "Timeout", description: "no reply to \(command)"))
    }

    /// Events received so far (most recent last, bounded).
    public var events: [QMPEvent] { eventLog }

    /// Polls `query-status` until the VM reports `status` (e.g. `paused`, `running`, `postmigrate`).
    public func waitForStatus(_ wanted: Set<String>, timeout: Duration = .seconds(30)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            let status = try await execute("query-status")["status"]?.stringValue ?? "unknown"
            if wanted.contains(status) { return status }
            if ContinuousClock.now > deadline { throw QMPError(errorClass: "Timeout", description: "VM status stayed \(status)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Polls `query-migrate` until it completes; throws if it fails.
    public func waitForMigration(timeout: Duration = .seconds(120)) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            let info = try await execute("query-migrate")
            let status = info["status"]?.stringValue ?? "none"
            switch status {
            case "completed": return
            case "failed", "cancelled":
                throw QMPError(errorClass: "MigrationFailed", description: info["error-desc"]?.stringValue ?? status)
            default:
                if ContinuousClock.now > deadline { throw QMPError(errorClass: "Timeout", description: "migration still \(status)") }
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    /// Closes the socket.
    public func close() async {
        try? await channel.close()
    }
}
