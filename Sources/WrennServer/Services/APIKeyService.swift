import Foundation
import WrennWire

/// Team API keys: `wrn_` + 32 hex, stored as SHA-256, shown in full only in the create response.
public struct APIKeyService: Sendable {
    static let defaultName = "Unnamed API Key"
    /// `last_used` is written at most this often per key.
    static let touchInterval: TimeInterval = 60

    let database: Database
    let clock: any WallClock
    let audit: AuditService

    public func create(_ principal: Principal, name rawName: String?) async throws -> APIKeyResponse {
        let user = try principal.requireUser()
        let team = try principal.requireTeam()
        let trimmed = rawName?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let name = trimmed.isEmpty ? Self.defaultName : trimmed
        guard name.count <= 128 else { throw ServiceError.invalid("name: must be at most 128 characters") }
        let key = "wrn_" + Secrets.randomHex(bytes: 16)
        let record = APIKeyRecord(id: PrefixedID.make(.apiKey), teamId: team, name: name, keyHash: Secrets.sha256Hex(key),
                                  keyPrefix: String(key.prefix(10)), createdBy: user, createdAt: clock.now().millis, lastUsed: nil)
        try await database.transaction { sql in
            try await APIKeyRepository.insert(record, sql)
            try await audit.record(.init(team: team, actor: principal.actor, resourceType: "api_key", resourceID: record.id,
                                         action: "create", metadata: ["name": name]), sql)
        }
        return Self.response(record, key: key)
    }

    public func list(_ principal: Principal) async throws -> [APIKeyResponse] {
        _ = try principal.requireUser()
        let team = try principal.requireTeam()
        return try await database.read { sql in try await APIKeyRepository.list(team: team, sql) }.map { Self.response($0, key: nil) }
    }

    public func delete(_ principal: Principal, id: String) async throws {
        _ = try principal.requireUser()
        let team = try principal.requireTeam()
        try await database.transaction { sql in
            guard try await APIKeyRepository.find(id: id, team: team, sql) != nil else { throw ServiceError.notFound("API key") }
            try await APIKeyRepository.delete(id: id, sql)
            try await audit.record(.init(team: team, actor: principal.actor, resourceType: "api_key", resourceID: id, action: "delete"), sql)
        }
    }

    /// Resolves an `X-API-Key` to its team's principal, or nil for an unknown key or a deleted team.
    public func authenticate(key: String) async throws -> Principal? {
        guard key.hasPrefix("wrn_"), key.count == 36 else { return nil }
        let hash = Secrets.sha256Hex(key)
        let now = clock.now()
        return try await database.read { sql -> Principal? in
            guard let record = try await APIKeyRepository.find(hash: hash, sql),
                  Secrets.constantTimeEquals(record.keyHash, hash),
                  try await TeamRepository.find(id: record.teamId, sql) != nil
            else { return nil }
            if record.lastUsed.map({ now.timeIntervalSince(Date(millis: $0)) >= Self.touchInterval }) ?? true {
                try await APIKeyRepository.touch(id: record.id, at: now.millis, sql)
            }
            return Principal(credential: .apiKey(id: record.id, name: record.name), userID: nil, email: "", name: record.name,
                             isAdmin: false, teamID: record.teamId, role: nil)
        }
    }

    static func response(_ r: APIKeyRecord, key: String?) -> APIKeyResponse {
        APIKeyResponse(id: r.id, teamId: r.teamId, name: r.name, keyPrefix: r.keyPrefix, createdAt: Date(millis: r.createdAt),
                       lastUsed: r.lastUsed.map(Date.init(millis:)), key: key)
    }
}
