import Foundation
import Testing
import WrennWire

/// The hand-written wire types against the contract: every key a type encodes must be a property of its schema in
/// `openapi.yaml`, and every property the schema requires must be encoded.
@Suite("wire types match the spec's schemas")
struct WireSchemaTests {
    /// `components.schemas` of the bundled spec, via PyYAML (installed by the test script).
    static func schemas() throws -> [String: Any] {
        let spec = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/WrennServer/Resources/openapi.yaml")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import sys, json, yaml; json.dump(yaml.safe_load(open(sys.argv[1]))['components']['schemas'], sys.stdout)", spec.path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "python3 with PyYAML is needed (scripts/install-deps.sh --test)")
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Property names and required names of a schema, following `allOf`.
    static func properties(_ name: String, in schemas: [String: Any]) -> (all: Set<String>, required: Set<String>) {
        guard let schema = schemas[name] as? [String: Any] else { return ([], []) }
        return collect(schema, schemas)
    }

    static func collect(_ schema: [String: Any], _ schemas: [String: Any]) -> (all: Set<String>, required: Set<String>) {
        var all = Set((schema["properties"] as? [String: Any])?.keys.map { $0 } ?? [])
        var required = Set(schema["required"] as? [String] ?? [])
        for part in schema["allOf"] as? [[String: Any]] ?? [] {
            let sub: (all: Set<String>, required: Set<String>)
            if let ref = part["$ref"] as? String {
                sub = properties(String(ref.split(separator: "/").last ?? ""), in: schemas)
            } else {
                sub = collect(part, schemas)
            }
            all.formUnion(sub.all)
            required.formUnion(sub.required)
        }
        return (all, required)
    }

    static func keys(_ value: some Encodable) throws -> Set<String> {
        let data = try WireCoding.makeEncoder().encode(value)
        return Set((try JSONSerialization.jsonObject(with: data) as? [String: Any])?.keys.map { $0 } ?? [])
    }

    static let now = Date()
    static let samples: [(String, any Encodable & Sendable)] = [
        ("SignupRequest", SignupRequest(email: "a@b.c", password: "p", name: "n")),
        ("SignupResponse", SignupResponse(message: "m")),
        ("LoginRequest", LoginRequest(email: "a@b.c", password: "p")),
        ("SessionResponse", SessionResponse(userId: "u", teamId: "t", email: "e", name: "n", role: "owner", isAdmin: false)),
        ("MeResponse", MeResponse(name: "n", email: "e", hasPassword: true, providers: [])),
        ("ChangePasswordRequest", ChangePasswordRequest(currentPassword: "a", newPassword: "b", confirmPassword: "b")),
        ("CreateAPIKeyRequest", CreateAPIKeyRequest(name: "k")),
        ("APIKeyResponse", APIKeyResponse(id: "i", teamId: "t", name: "n", keyPrefix: "p", createdAt: now, lastUsed: now, key: "k")),
        ("UserSearchResult", UserSearchResult(userId: "u", email: "e")),
        ("Team", Team(id: "i", name: "n", slug: "s", createdAt: now)),
        ("TeamWithRole", TeamWithRole(team: Team(id: "i", name: "n", slug: "s", createdAt: now), role: .owner)),
        ("TeamMember", TeamMember(userId: "u", email: "e", role: .member, joinedAt: now)),
        ("TeamDetail", TeamDetail(team: Team(id: "i", name: "n", slug: "s", createdAt: now), members: [])),
        ("AuditLogEntry", AuditLogEntry(id: "i", actorType: "user", actorId: "a", actorName: "n", resourceType: "r", resourceId: "x",
                                        action: "a", scope: "team", status: "success", metadata: [:], createdAt: now)),
        ("Capsule", Capsule(id: "cl-x", status: .running, template: "minimal", vcpus: 1, memoryMB: 512, timeoutSec: 0, diskSizeMB: 5120,
                            createdAt: now, startedAt: now, lastActiveAt: now, lastUpdated: now, metadata: ["k": "v"])),
        ("CreateCapsuleRequest", CreateCapsuleRequest(template: "minimal", vcpus: 1, memoryMB: 512, diskSizeMB: 5120, timeoutSec: 0)),
        ("Template", Template(name: "t", type: "snapshot", vcpus: 1, memoryMB: 512, sizeBytes: 1, createdAt: now, platform: false, metadata: [:])),
        ("CreateSnapshotRequest", CreateSnapshotRequest(sandboxID: "cl-x", name: "n")),
        ("MetricPoint", MetricPoint(timestampUnix: 1, cpuPct: 0.5, memBytes: 2, diskBytes: 3)),
        ("CapsuleMetrics", CapsuleMetrics(sandboxID: "cl-x", range: "10m", points: [])),
        ("SSEEvent", SSEEvent(event: "capsule.create", outcome: "success", resource: .init(id: "cl-x", type: "capsule"),
                              actor: .init(type: "user", id: "u", name: "n"), metadata: [:], error: "e", sandbox: nil, timestamp: now)),
    ]

    @Test func everyEncodedKeyIsInItsSchema() throws {
        let schemas = try Self.schemas()
        for (name, sample) in Self.samples {
            let (all, required) = Self.properties(name, in: schemas)
            #expect(!all.isEmpty, "schema \(name) not found in the spec")
            let encoded = try Self.keys(sample)
            #expect(encoded.subtracting(all).isEmpty, "\(name) encodes keys the spec does not have: \(encoded.subtracting(all).sorted())")
            #expect(required.subtracting(encoded).isEmpty, "\(name) misses required keys: \(required.subtracting(encoded).sorted())")
        }
    }

    @Test func capsuleStatusesAreTheSpecsEnum() throws {
        let schemas = try Self.schemas()
        let capsule = try #require(schemas["Capsule"] as? [String: Any])
        let status = try #require((capsule["properties"] as? [String: Any])?["status"] as? [String: Any])
        let values = Set(status["enum"] as? [String] ?? [])
        #expect(values == Set(CapsuleStatus.allCases.map(\.rawValue)))
    }
}
