import Foundation
import Testing
@testable import WrennAgent

@Suite("QMP state machine")
struct QMPStateMachineTests {
    static let greeting = #"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}"# + "\r\n"

    private func written(_ actions: [QMPStateMachine.Action]) -> [JSONValue] {
        actions.compactMap {
            if case .write(let bytes) = $0 { return try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)) }
            return nil
        }
    }

    @Test func negotiatesCapabilitiesAfterGreeting() {
        var machine = QMPStateMachine()
        #expect(machine.state == .awaitingGreeting)
        let actions = machine.receive(Array(Self.greeting.utf8))
        #expect(actions.first == .greeting(version: "7.2.0"))
        let sent = written(actions)
        #expect(sent.count == 1)
        #expect(sent[0]["execute"]?.stringValue == "qmp_capabilities")
        guard case .negotiating(let id) = machine.state else { Issue.record("not negotiating"); return }
        #expect(sent[0]["id"]?.doubleValue == Double(id))
        let ready = machine.receive(Array(#"{"return": {}, "id": \#(id)}"#.utf8) + [10])
        #expect(ready == [.ready])
        #expect(machine.state == .ready)
    }

    @Test func queuesCommandsUntilReadyThenMatchesRepliesById() {
        var machine = QMPStateMachine()
        let (first, early) = machine.submit("query-status")
        #expect(early.isEmpty)
        let greetingActions = machine.receive(Array(Self.greeting.utf8))
        guard case .negotiating(let negotiation) = machine.state else { Issue.record("not negotiating"); return }
        #expect(written(greetingActions).count == 1)
        let flushed = machine.receive(Array("{\"return\": {}, \"id\": \(negotiation)}\n".utf8))
        #expect(flushed.first == .ready)
        #expect(written(flushed).map { $0["execute"]?.stringValue } == ["query-status"])
        let (second, now) = machine.submit("stop", arguments: .object(["x": .bool(true)]))
        #expect(written(now).first?["arguments"]?["x"] == .bool(true))
        // Replies out of order, split across reads, with an event in between.
        let text = "{\"return\": {}, \"id\": \(second)}\r\n{\"timestamp\": {\"seconds\": 10, \"microseconds\": 500000}, \"event\": \"STOP\"}\r\n{\"return\": {\"status\": \"paused\", \"running\": false}, \"id\": \(first)}\r\n"
        let bytes = Array(text.utf8)
        var actions = machine.receive(bytes[..<17])
        #expect(actions.isEmpty)
        actions = machine.receive(bytes[17...])
        #expect(actions.count == 3)
        #expect(actions[0] == .success(id: second, value: .object([:])))
        #expect(actions[1] == .event(QMPEvent(name: "STOP", data: .object([:]), timestamp: 10.5)))
        guard case .success(let id, let value) = actions[2] else { Issue.record("no success"); return }
        #expect(id == first)
        #expect(value["status"]?.stringValue == "paused")
        #expect(machine.pendingIDs.isEmpty)
    }

    @Test func errorRepliesCarryClassAndDescription() {
        var machine = QMPStateMachine()
        _ = machine.receive(Array(Self.greeting.utf8))
        guard case .negotiating(let negotiation) = machine.state else { return }
        _ = machine.receive(Array("{\"return\": {}, \"id\": \(negotiation)}\n".utf8))
        let (id, _) = machine.submit("migrate", arguments: .object(["uri": .string("file:/x")]))
        let actions = machine.receive(Array("{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'uri' expects a valid migration protocol\"}, \"id\": \(id)}\n".utf8))
        #expect(actions == [.failure(id: id, error: QMPError(errorClass: "GenericError", description: "Parameter 'uri' expects a valid migration protocol"))])
    }

    @Test func garbageAndUnknownIdsAreViolations() {
        var machine = QMPStateMachine()
        guard case .protocolViolation = machine.receive(Array("not json\n".utf8)).first else { Issue.record("accepted garbage"); return }
        _ = machine.receive(Array(Self.greeting.utf8))
        guard case .protocolViolation = machine.receive(Array(Self.greeting.utf8)).first else { Issue.record("second greeting"); return }
        guard case .protocolViolation = machine.receive(Array("{\"return\": {}, \"id\": 999}\n".utf8)).first else { Issue.record("unknown id"); return }
    }

    @Test func closeFailsPendingCommands() {
        var machine = QMPStateMachine()
        let (a, _) = machine.submit("query-status")
        let (b, _) = machine.submit("stop")
        let actions = machine.close()
        #expect(actions.count == 2)
        #expect(actions.map { if case .failure(let id, _) = $0 { return id } else { return -1 } } == [a, b])
        #expect(machine.state == .closed)
    }
}
