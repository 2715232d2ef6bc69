import Foundation

/// The QEMU Machine Protocol (QMP) client logic, with no I/O: bytes in, actions out.
///
/// Lifecycle: wait for the greeting, send `qmp_capabilities`, then become ready. Commands submitted before the
/// handshake finishes are queued and flushed once ready. Every command carries a numeric `id`; replies are matched
/// by it. Asynchronous events (`{"event": ...}`) are surfaced as they arrive. Messages are newline-delimited JSON.
public struct QMPStateMachine: Sendable {
    /// Handshake progress.
    public enum State: Sendable, Equatable {
        case awaitingGreeting
        case negotiating(id: Int)
        case ready
        case closed
    }

    /// What the I/O layer must do after feeding input or submitting a command.
    public enum Action: Sendable, Equatable {
        /// Send these bytes to QEMU.
        case write([UInt8])
        /// The greeting arrived (QEMU version as reported).
        case greeting(version: String)
        /// Capabilities were negotiated; commands may flow.
        case ready
        /// Command `id` succeeded with this `return` value.
        case success(id: Int, value: JSONValue)
        /// Command `id` failed with QMP error class and description.
        case failure(id: Int, error: QMPError)
        /// An asynchronous event.
        case event(QMPEvent)
        /// The peer sent something that is not valid QMP; the connection should be dropped.
        case protocolViolation(String)
    }

    /// Current handshake state.
    public private(set) var state: State = .awaitingGreeting
    private var buffer: [UInt8] = []
    private var nextID = 1
    private var queued: [[UInt8]] = []
    private var inFlight: Set<Int> = []

    /// A fresh machine waiting for the greeting.
    public init() {}

    /// Ids of commands sent or queued and not yet answered.
    public var pendingIDs: Set<Int> { inFlight }

    /// Encodes a command line `{"execute": name, "arguments": ..., "id": n}`.
    static func encode(_ command: String, arguments: JSONValue?, id: Int) -> [UInt8] {
        var object: [String: JSONValue] = ["execute": .string(command), "id": .number(Double(id))]
        if let arguments { object["arguments"] = arguments }
        return Array(JSONValue.object(object).description.utf8) + [UInt8(ascii: "\n")]
    }

    /// Submits a command; returns its id and the actions (a write now, or nothing while the handshake is pending).
    public mutating func submit(_ command: String, arguments: JSONValue? = nil) -> (id: Int, actions: [Action]) {
        let id = nextID
        nextID += 1
        inFlight.insert(id)
        let bytes = Self.encode(command, arguments: arguments, id: id)
        if state == .ready { return (id, [.write(bytes)]) }
        queued.append(bytes)
        return (id, [])
    }

    /// Feeds bytes read from the socket.
    public mutating func receive(_ bytes: some Sequence<UInt8>) -> [Action] {
        buffer.append(contentsOf: bytes)
        var actions: [Action] = []
        while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
            let line = Array(buffer[..<newline])
            buffer.removeSubrange(...newline)
            let trimmed = line.filter { $0 != UInt8(ascii: "\r") }
            if trimmed.allSatisfy({ $0 == UInt8(ascii: " ") }) { continue }
            actions += handle(line: trimmed)
        }
        return actions
    }

    /// Marks the connection closed; every pending command fails.
    public mutating func close() -> [Action] {
        state = .closed
        let failed = inFlight.sorted().map { Action.failure(id: $0, error: QMPError(errorClass: "ConnectionClosed", description: "QMP connection closed")) }
        inFlight.removeAll()
        queued.removeAll()
        return failed
    }

    private mutating func handle(line: [UInt8]) -> [Action] {
        guard let message = try? JSONDecoder().decode(JSONValue.self, from: Data(line)), case .object(let fields) = message else {
            return [.protocolViolation("not a JSON object: \(String(decoding: line, as: UTF8.self))")]
        }
        if let greeting = fields["QMP"] {
            guard state == .awaitingGreeting else { return [.protocolViolation("unexpected second greeting")] }
            let qemu = greeting["version"]?["qemu"]
            let version = [qemu?["major"], qemu?["minor"], qemu?["micro"]].compactMap { $0?.doubleValue.map { String(Int($0)) } }.joined(separator: ".")
            let id = nextID
            nextID += 1
            state = .negotiating(id: id)
            return [.greeting(version: version), .write(Self.encode("qmp_capabilities", arguments: nil, id: id))]
        }
        if let name = fields["event"]?.stringValue {
            var timestamp: Double?
            if let ts = fields["timestamp"], let s = ts["seconds"]?.doubleValue, let us = ts["microseconds"]?.doubleValue {
                timestamp = s + us / 1_000_000
            }
            return [.event(QMPEvent(name: name, data: fields["data"] ?? .object([:]), timestamp: timestamp))]
        }
        guard let idValue = fields["id"]?.doubleValue else {
            return [.protocolViolation("reply without id: \(message)")]
        }
        let id = Int(idValue)
        if case .negotiating(let negotiationID) = state, id == negotiationID {
            if let error = fields["error"] {
                return [.protocolViolation("qmp_capabilities failed: \(error)")]
            }
            state = .ready
            var actions: [Action] = [.ready]
            for bytes in queued { actions.append(.write(bytes)) }
            queued.removeAll()
            return actions
        }
        guard inFlight.remove(id) != nil else { return [.protocolViolation("reply for unknown id \(id)")] }
        if let error = fields["error"] {
            return [.failure(id: id, error: QMPError(errorClass: error["class"]?.stringValue ?? "Unknown", description: error["desc"]?.stringValue ?? "\(error)"))]
        }
        return [.success(id: id, value: fields["return"] ?? .object([:]))]
    }
}

/// An error reply from QEMU (or a local failure of the QMP connection).
public struct QMPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// QMP error class, e.g. `GenericError`, or `ConnectionClosed` / `Timeout` for local failures.
    public var errorClass: String
    /// Human-readable description.
    public var description: String
}

/// An asynchronous QMP event such as `STOP`, `RESUME`, `MIGRATION`, `SHUTDOWN`.
public struct QMPEvent: Sendable, Equatable {
    /// Event name.
    public var name: String
    /// Event payload (`data`).
    public var data: JSONValue
    /// Seconds since the epoch, as QEMU reported.
    public var timestamp: Double?
}
