import Foundation
import Logging
import SQLKit
import WrennWire

/// Tag `hosts`: the host registry, registration and refresh tokens, heartbeats, deletion and tags.
///
/// Visibility: admins see every host; other users only their own team's BYOC hosts (anything else reads as 404).
/// Changes (token, delete, tags) need an admin, or an owner/admin of the BYOC host's team (403 otherwise).
/// Registration tokens (1 h) and refresh tokens (60 d) are stored as SHA-256; a refresh token is rotated on every use,
/// and presenting one that was already rotated revokes its whole chain and every JWT issued to the host.
public struct HostService: Sendable {
    let database: Database
    let clock: any WallClock
    let audit: AuditService
    let events: EventLog
    let directory: HostDirectory
    let tokens: HostTokens
    public let reconciler: HostReconciler
    let worker: LifecycleWorker
    let logger: Logger

    /// What a host JWT proved.
    struct AuthenticatedHost: Sendable {
        var host: HostRecord
    }

    /// Outcome of `DELETE /v1/hosts/{id}`.
    public enum DeleteOutcome: Sendable {
        case deleted
        case hasCapsules([String])
    }

    // MARK: Registry

    public func create(_ principal: Principal, _ request: CreateHostRequest) async throws -> CreateHostResponse {
        let provider = try Self.optionalText(request.provider, field: "provider")
        let zone = try Self.optionalText(request.availabilityZone, field: "availability_zone")
        var team: String?
        switch request.type {
        case "regular":
            guard principal.isAdmin else { throw ServiceError.forbidden("only platform admins can create regular hosts") }
            guard request.teamID == nil || request.teamID?.isEmpty == true else { throw ServiceError.invalid("team_id: only for byoc hosts") }
        case "byoc":
            guard let teamID = request.teamID, !teamID.isEmpty else { throw ServiceError.invalid("team_id: required for byoc hosts") }
            try await requireByocManager(principal, team: teamID)
            team = teamID
        default:
            throw ServiceError.invalid("type: must be \"regular\" or \"byoc\"")
        }
        let now = clock.now().millis
        let owner = team
        let host = HostRecord(id: PrefixedID.make(.host), type: request.type, teamId: owner, provider: provider, availabilityZone: zone,
                              arch: nil, cpuCores: nil, memoryMb: nil, diskGb: nil, address: nil, status: HostStatus.pending.rawValue,
                              lastHeartbeatAt: nil, tokenGeneration: 0, createdBy: principal.userID, createdAt: now, updatedAt: now)
        let token = try await database.transaction { sql -> String in
            try await HostRepository.insert(host, sql)
            let token = try await issueRegistrationToken(host: host.id, by: principal.userID, at: now, sql)
            try await audit.record(.init(team: owner ?? Migrations.platformTeamID, actor: principal.actor, resourceType: "host",
                                         resourceID: host.id, action: "create", scope: "admin", metadata: ["type": host.type]), sql)
            return token
        }
        return CreateHostResponse(host: Self.host(host), registrationToken: token)
    }

    /// A new registration token for a host still `pending` (409 otherwise); earlier unused tokens stop working.
    public func regenerateToken(_ principal: Principal, id: String) async throws -> CreateHostResponse {
        let host = try await manageableHost(principal, id: id)
        let now = clock.now().millis
        let token = try await database.transaction { sql -> String? in
            guard let current = try await HostRepository.find(id: host.id, sql), current.status == HostStatus.pending.rawValue else { return nil }
            try await HostRepository.voidRegistrationTokens(host: host.id, at: now, sql)
            return try await issueRegistrationToken(host: host.id, by: principal.userID, at: now, sql)
        }
        guard let token else { throw ServiceError.conflict("invalid_state", "host \(id) is \(host.status), not pending") }
        return CreateHostResponse(host: Self.host(host), registrationToken: token)
    }

    public func list(_ principal: Principal) async throws -> [HostResource] {
        if principal.isAdmin {
            return try await database.read { sql in try await HostRepository.list(team: nil, sql) }.map(Self.host)
        }
        guard let team = principal.teamID else { return [] }
        return try await database.read { sql in try await HostRepository.list(team: team, sql) }.map(Self.host)
    }

    public func get(_ principal: Principal, id: String) async throws -> HostResource {
        Self.host(try await visibleHost(principal, id: id))
    }

    public func deletePreview(_ principal: Principal, id: String) async throws -> HostDeletePreview {
        let host = try await manageableHost(principal, id: id)
        let ids = try await database.read { sql in try await HostRepository.activeCapsuleIDs(host: host.id, sql) }
        return HostDeletePreview(host: Self.host(host), sandboxIDs: ids)
    }

    /// Deletes the host; with capsules still active only when `force`, after destroying them (their rows become
    /// `stopped`, reason `host_deleted`; an unreachable agent keeps its files, as in the original).
    public func delete(_ principal: Principal, id: String, force: Bool) async throws -> DeleteOutcome {
        let host = try await manageableHost(principal, id: id)
        let ids = try await database.read { sql in try await HostRepository.activeCapsuleIDs(host: host.id, sql) }
        if !ids.isEmpty && !force { return .hasCapsules(ids) }
        let agent = directory.client(for: host)
        for capsule in ids {
            if host.status == HostStatus.online.rawValue, let agent {
                do {
                    try await agent.destroy(capsule)
                } catch {
                    logger.warning("force delete: capsule destroy failed", metadata: ["capsule": "\(capsule)", "error": "\(error)"])
                }
            }
        }
        let now = clock.now()
        try await database.transaction { sql in
            for capsule in ids {
                guard let record = try await CapsuleRepository.find(id: capsule, sql), !["stopped", "error"].contains(record.status) else { continue }
                try await CapsuleRepository.setStatus(id: capsule, status: "stopped", error: "host_deleted", at: now.millis, sql)
                let updated = try await CapsuleRepository.find(id: capsule, sql).map(CapsuleService.capsule)
                try await events.append(EventLog.capsuleEvent("capsule.destroy", outcome: "success", capsule: updated, id: capsule,
                                                              actor: principal.actor, metadata: ["reason": "host_deleted"], at: now),
                                        team: record.teamId, sql)
            }
            try await HostRepository.delete(id: host.id, sql)
            try await audit.record(.init(team: host.teamId ?? Migrations.platformTeamID, actor: principal.actor, resourceType: "host",
                                         resourceID: host.id, action: "delete", scope: "admin",
                                         metadata: ["force": force ? "true" : "false", "capsules": "\(ids.count)"]), sql)
        }
        return .deleted
    }

    // MARK: Tags

    public func tags(_ principal: Principal, id: String) async throws -> [String] {
        let host = try await visibleHost(principal, id: id)
        return try await database.read { sql in try await HostRepository.tags(host: host.id, sql) }
    }

    public func addTag(_ principal: Principal, id: String, tag: String) async throws {
        let host = try await manageableHost(principal, id: id)
        let tag = tag.trimmingCharacters(in: .whitespaces)
        guard TemplateRules.isSafeName(tag) else {
            throw ServiceError.invalid("tag: 1–64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        try await database.read { sql in try await HostRepository.addTag(host: host.id, tag: tag, sql) }
    }

    public func removeTag(_ principal: Principal, id: String, tag: String) async throws {
        let host = try await manageableHost(principal, id: id)
        try await database.read { sql in try await HostRepository.removeTag(host: host.id, tag: tag, sql) }
    }

    // MARK: Agent side

    /// `POST /v1/hosts/register`: one-time token → host JWT + refresh token; the host becomes `online`.
    public func register(_ request: RegisterHostRequest) async throws -> HostTokenResponse {
        let address = request.address.trimmingCharacters(in: .whitespaces)
        guard Self.isHostPort(address) else { throw ServiceError.invalid("address: must be host:port") }
        for (name, value) in [("cpu_cores", request.cpuCores), ("memory_mb", request.memoryMB), ("disk_gb", request.diskGB)] {
            if let value, value < 0 { throw ServiceError.invalid("\(name): must not be negative") }
        }
        let now = clock.now()
        // Checked before the one-time token is spent, so a bad CSR does not burn it.
        guard let tls = directory.tls else { throw ServiceError(.unavailable, "host_registry_unavailable", "this control plane has no host registry") }
        try tls.check(csrPEM: request.csr)
        let hash = Secrets.sha256Hex(request.token)
        let result = try await database.transaction { sql -> (HostRecord, String)? in
            guard let token = try await HostRepository.registrationToken(hash: hash, sql), token.usedAt == nil,
                  token.expiresAt > now.millis,
                  let host = try await HostRepository.find(id: token.hostId, sql), host.status == HostStatus.pending.rawValue,
                  try await HostRepository.useRegistrationToken(id: token.id, at: now.millis, sql)
            else { return nil }
            try await HostRepository.voidRegistrationTokens(host: host.id, at: now.millis, sql)
            try await HostRepository.markRegistered(id: host.id, arch: request.arch, cpuCores: request.cpuCores.map(Int64.init),
                                                    memoryMb: request.memoryMB.map(Int64.init), diskGb: request.diskGB.map(Int64.init),
                                                    address: address, at: now.millis, sql)
            let refresh = try await issueRefreshToken(host: host.id, family: PrefixedID.make(.hostRefreshToken), at: now.millis, sql)
            try await audit.record(.init(team: host.teamId ?? Migrations.platformTeamID, actor: .system, resourceType: "host",
                                         resourceID: host.id, action: "register", scope: "admin", metadata: ["address": address]), sql)
            guard let registered = try await HostRepository.find(id: host.id, sql) else { return nil }
            return (registered, refresh)
        }
        guard let (host, refresh) = result else { throw ServiceError.unauthorized("invalid, used or expired registration token") }
        logger.info("host registered", metadata: ["host": "\(host.id)", "address": "\(address)"])
        return HostTokenResponse(host: Self.host(host), token: tokens.issue(hostID: host.id, generation: host.tokenGeneration, now: now),
                                 refreshToken: refresh, agentToken: tokens.agentToken(hostID: host.id),
                                 certificate: try tls.certify(csrPEM: request.csr, hostID: host.id, now: now),
                                 caCertificate: tls.authority.certificatePEM)
    }

    /// `POST /v1/hosts/auth/refresh`: rotates the refresh token. A token that was already rotated is a sign of theft:
    /// its whole chain is revoked and every host JWT issued so far stops working.
    public func refresh(_ request: RefreshHostTokenRequest) async throws -> HostTokenResponse {
        enum Outcome: Sendable { case refreshed(HostRecord, String), reused(String), invalid }
        let now = clock.now()
        let hash = Secrets.sha256Hex(request.refreshToken)
        let outcome = try await database.transaction { sql -> Outcome in
            guard let token = try await HostRepository.refreshToken(hash: hash, sql) else { return .invalid }
            let rotated = token.revokedAt != nil ? false : try await HostRepository.revokeRefreshToken(id: token.id, at: now.millis, sql)
            guard rotated else {
                try await HostRepository.revokeRefreshFamily(token.familyId, at: now.millis, sql)
                try await HostRepository.bumpTokenGeneration(id: token.hostId, at: now.millis, sql)
                if let host = try await HostRepository.find(id: token.hostId, sql) {
                    try await audit.record(.init(team: host.teamId ?? Migrations.platformTeamID, actor: .system, resourceType: "host",
                                                 resourceID: host.id, action: "token_reuse", scope: "admin", status: "error"), sql)
                }
                return .reused(token.hostId)
            }
            guard token.expiresAt > now.millis, let host = try await HostRepository.find(id: token.hostId, sql) else { return .invalid }
            let next = try await issueRefreshToken(host: host.id, family: token.familyId, at: now.millis, sql)
            return .refreshed(host, next)
        }
        switch outcome {
        case .refreshed(let host, let next):
            // A renewed agent certificate when the agent asks (its CSR). Never an error here: the refresh token is
            // already rotated, and an agent that did not receive the new one would trip reuse detection next time.
            let renewed = request.csr.flatMap { csr in try? directory.tls?.certify(csrPEM: csr, hostID: host.id, now: now) }
            if request.csr != nil, renewed == nil { logger.warning("agent certificate renewal refused: bad CSR", metadata: ["host": "\(host.id)"]) }
            return HostTokenResponse(host: Self.host(host), token: tokens.issue(hostID: host.id, generation: host.tokenGeneration, now: now),
                                     refreshToken: next, agentToken: tokens.agentToken(hostID: host.id),
                                     certificate: renewed, caCertificate: renewed == nil ? nil : directory.tls?.authority.certificatePEM)
        case .reused(let host):
            logger.warning("rotated host refresh token reused: chain revoked", metadata: ["host": "\(host)"])
            throw ServiceError.unauthorized("refresh token was already used; every token of this host is revoked")
        case .invalid:
            throw ServiceError.unauthorized("invalid, expired or revoked refresh token")
        }
    }

    /// The host a JWT (`X-Host-Token`) speaks for: 401 when missing, forged, expired or revoked; 404 when the host
    /// was deleted (the agent then forgets its credentials).
    func authenticate(_ token: String?, expectedHost: String? = nil) async throws -> HostRecord {
        guard let token, !token.isEmpty, let claims = tokens.verify(token, now: clock.now()) else {
            throw ServiceError.unauthorized("invalid or missing host token")
        }
        if let expectedHost, expectedHost != claims.hostID {
            throw ServiceError.forbidden("the host token belongs to another host")
        }
        guard let host = try await database.read({ sql in try await HostRepository.find(id: claims.hostID, sql) }) else {
            throw ServiceError.notFound("host")
        }
        guard host.tokenGeneration == claims.gen else { throw ServiceError.unauthorized("host token revoked") }
        return host
    }

    /// `POST /v1/hosts/{id}/heartbeat`. A host that was `unreachable` is `online` again: `host.up`, then the
    /// reconciler restores its capsules' real states from the agent.
    public func heartbeat(token: String?, hostID: String, report: HostHeartbeat?) async throws {
        let host = try await authenticate(token, expectedHost: hostID)
        let now = clock.now()
        let cameBack = try await database.transaction { sql -> Bool in
            try await HostRepository.heartbeat(id: host.id, at: now.millis, sql)
            guard let current = try await HostRepository.find(id: host.id, sql), current.status == HostStatus.unreachable.rawValue else {
                return false
            }
            try await HostRepository.setStatus(id: host.id, status: HostStatus.online.rawValue, at: now.millis, sql)
            try await HostEvents.record(up: true, host: current, audit: audit, events: events, at: now, sql)
            return true
        }
        if cameBack {
            logger.notice("host is back online", metadata: ["host": "\(host.id)", "capsules": "\(report?.capsules.count ?? 0)"])
            let reconciler = self.reconciler
            worker.submit { _ = try? await reconciler.reconcile(hostID: host.id) }
        }
    }

    // MARK: Helpers

    func issueRegistrationToken(host: String, by user: String?, at now: Int64, _ sql: any SQLDatabase) async throws -> String {
        let token = Secrets.randomHex(bytes: 32)
        try await HostRepository.insertRegistrationToken(HostRegistrationTokenRecord(
            id: PrefixedID.make(.hostToken), hostId: host, tokenHash: Secrets.sha256Hex(token), createdBy: user, createdAt: now,
            expiresAt: now + Int64(HostTokens.registrationLifetime * 1000), usedAt: nil), sql)
        return token
    }

    func issueRefreshToken(host: String, family: String, at now: Int64, _ sql: any SQLDatabase) async throws -> String {
        let token = Secrets.randomHex(bytes: 32)
        try await HostRepository.insertRefreshToken(HostRefreshTokenRecord(
            id: PrefixedID.make(.hostRefreshToken), hostId: host, familyId: family, tokenHash: Secrets.sha256Hex(token), createdAt: now,
            expiresAt: now + Int64(HostTokens.refreshLifetime * 1000), revokedAt: nil), sql)
        return token
    }

    /// Admins, or an owner/admin of `team`; the team must have BYOC enabled. Someone else's team reads as 404.
    func requireByocManager(_ principal: Principal, team: String) async throws {
        let user = principal.userID
        let (record, membership) = try await database.read { sql -> (TeamRecord?, MembershipRecord?) in
            let record = try await TeamRepository.find(id: team, sql)
            guard let user else { return (record, nil) }
            return (record, try await TeamRepository.membership(team: team, user: user, sql))
        }
        guard let record, principal.isAdmin || membership != nil else { throw ServiceError.notFound("team") }
        if !principal.isAdmin {
            guard let role = membership.flatMap({ TeamRole(rawValue: $0.role) }), role.canManage else {
                throw ServiceError.forbidden("only the team's owners and admins can manage its BYOC hosts")
            }
        }
        guard record.isByoc != 0 else { throw ServiceError.forbidden("BYOC is not enabled for this team") }
    }

    func visibleHost(_ principal: Principal, id: String) async throws -> HostRecord {
        guard PrefixedID.parse(id, as: .host) != nil,
              let host = try await database.read({ sql in try await HostRepository.find(id: id, sql) })
        else { throw ServiceError.notFound("host") }
        if principal.isAdmin { return host }
        guard host.type == "byoc", let team = host.teamId, team == principal.teamID else { throw ServiceError.notFound("host") }
        return host
    }

    func manageableHost(_ principal: Principal, id: String) async throws -> HostRecord {
        let host = try await visibleHost(principal, id: id)
        if principal.isAdmin { return host }
        guard principal.role?.canManage == true else {
            throw ServiceError.forbidden("only the team's owners and admins can manage its BYOC hosts")
        }
        return host
    }

    static func optionalText(_ value: String?, field: String) throws -> String? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        guard value.count <= 64 else { throw ServiceError.invalid("\(field): at most 64 characters") }
        return value
    }

    static func isHostPort(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            return false
        }
        let host = text[..<colon]
        return !host.isEmpty && host.count <= 253 && !host.contains("/") && !host.contains(" ")
    }

    static func host(_ r: HostRecord) -> HostResource {
        HostResource(id: r.id, type: r.type, teamID: r.teamId, provider: r.provider, availabilityZone: r.availabilityZone, arch: r.arch,
             cpuCores: r.cpuCores.map(Int.init), memoryMB: r.memoryMb.map(Int.init), diskGB: r.diskGb.map(Int.init), address: r.address,
             status: HostStatus(rawValue: r.status) ?? .offline, lastHeartbeatAt: r.lastHeartbeatAt.map(Date.init(millis:)),
             createdBy: r.createdBy, createdAt: Date(millis: r.createdAt), updatedAt: Date(millis: r.updatedAt))
    }
}

/// `host.up` / `host.down`: an audit entry and an event in the host's team log (the platform team's for regular hosts).
enum HostEvents {
    static func record(up: Bool, host: HostRecord, audit: AuditService, events: EventLog, at now: Date, _ sql: any SQLDatabase) async throws {
        let team = host.teamId ?? Migrations.platformTeamID
        try await audit.record(.init(team: team, actor: .system, resourceType: "host", resourceID: host.id,
                                     action: up ? "marked_up" : "marked_down", scope: "admin", status: up ? "success" : "error"), sql)
        try await events.append(SSEEvent(event: up ? "host.up" : "host.down", resource: .init(id: host.id, type: "host"),
                                         actor: .init(type: "system", id: nil, name: "system"),
                                         metadata: ["address": host.address ?? ""], timestamp: now), team: team, sql)
    }
}
