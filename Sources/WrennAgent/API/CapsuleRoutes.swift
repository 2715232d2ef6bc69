import Foundation
import Hummingbird
import WrennHTTP
import WrennWire

/// `/v1/capsules…`: create, list, get, destroy, pause, resume, ping, snapshot, metrics.
struct CapsuleRoutes: Sendable {
    let services: AgentServices

    func register(on router: Router<AgentRequestContext>) {
        let group = router.group("/v1/capsules")
        group.post { request, context in try await create(request, context) }
        group.get { _, _ in
            var capsules: [AgentCapsule] = []
            for info in await services.runtime.list() { capsules.append(await services.capsule(info)) }
            return try JSONResponse.make(AgentCapsuleList(capsules: capsules))
        }
        group.get(":id") { _, context in
            let id = try context.parameters.require("id")
            return try JSONResponse.make(await services.capsule(try await services.runtime.info(id)))
        }
        group.delete(":id") { _, context in
            let id = try context.parameters.require("id")
            try await services.runtime.destroy(id)
            await services.book.remove(id)
            services.activity.remove(id)
            await services.metrics.remove(id)
            return Response(status: .noContent)
        }
        group.post(":id/pause") { _, context in
            let id = try context.parameters.require("id")
            try await requireNotCrashed(id)
            let info = try await services.runtime.pause(id)
            return try JSONResponse.make(await services.capsule(info))
        }
        group.post(":id/resume") { _, context in
            let id = try context.parameters.require("id")
            let info = try await services.runtime.resume(id)
            await services.book.clearCrash(id)
            services.activity.touch(id)
            return try JSONResponse.make(await services.capsule(info))
        }
        group.post(":id/ping") { _, context in
            let id = try context.parameters.require("id")
            _ = try await services.envdTarget(id)
            services.activity.touch(id)
            return Response(status: .noContent)
        }
        group.post(":id/snapshot") { request, context in
            let id = try context.parameters.require("id")
            let body = try await request.decode(as: AgentSnapshotRequest.self, context: context)
            guard TemplateCatalog.validName(body.name) else {
                throw AgentError.invalid("template name must match [a-z0-9][a-z0-9._-]{0,63}")
            }
            let catalog = TemplateCatalog(dataDirectory: services.configuration.dataDirectory, runtime: services.runtime)
            guard !catalog.exists(body.name) else { throw AgentError.conflict("template \(body.name) already exists") }
            _ = try await services.runtime.info(id)
            try await requireNotCrashed(id)
            let info = try await services.runtime.snapshot(id, as: body.name)
            let template = catalog.template(body.name)
                ?? AgentTemplate(name: info.name, type: "snapshot", vcpus: info.vcpus, memoryMB: info.memoryMiB, sizeBytes: 0, createdAt: Date())
            return try JSONResponse.make(template, status: .created)
        }
        group.get(":id/metrics") { request, context in
            let id = try context.parameters.require("id")
            let range = request.uri.queryParameters.get("range") ?? "10m"
            _ = try await services.runtime.info(id)
            guard let points = await services.metrics.points(id, range: range) else {
                throw AgentError.invalid("range must be one of 5m, 10m, 1h, 2h, 6h, 12h, 24h")
            }
            return try JSONResponse.make(AgentMetrics(range: range, points: points))
        }
    }

    private func requireNotCrashed(_ id: String) async throws {
        if let crash = await services.book.crashReason(id) {
            throw AgentError.invalidState("capsule \(id) is in error: \(crash)")
        }
    }

    private func create(_ request: Request, _ context: AgentRequestContext) async throws -> Response {
        let body = try await request.decode(as: AgentCreateCapsule.self, context: context)
        guard TemplateCatalog.validName(body.id) else { throw AgentError.invalid("id must match [a-z0-9][a-z0-9._-]{0,63}") }
        guard TemplateCatalog.validName(body.template) else { throw AgentError.invalid("bad template name") }
        guard body.vcpus > 0, body.memoryMB > 0, body.diskSizeMB >= 0, body.timeoutSec >= 0 else {
            throw AgentError.invalid("vcpus and memory_mb must be positive, disk_size_mb and timeout_sec not negative")
        }
        let minimum = Int(services.configuration.minimumIdleTimeout.components.seconds)
        let timeout = body.timeoutSec == 0 ? 0 : max(body.timeoutSec, minimum)
        let token = GuestSecrets.hex()
        let info = try await services.runtime.create(CapsuleRequest(
            id: body.id, template: body.template, vcpus: body.vcpus, memoryMiB: body.memoryMB, diskMiB: body.diskSizeMB,
            hostname: nil, accessToken: token, egress: body.egress))
        services.activity.touch(body.id)
        let version = await envdVersion(info)
        if let version { await services.facts.sawEnvd(version: version) }
        await services.book.save(AgentCapsuleRecord(
            id: body.id, template: body.template, vcpus: info.vcpus, memoryMB: info.memoryMiB, diskSizeMB: info.diskMiB,
            timeoutSec: timeout, createdAt: Date(), envdVersion: version))
        return try JSONResponse.make(await services.capsule(info), status: .created)
    }

    /// envd's `/health` version (best effort).
    private func envdVersion(_ info: CapsuleInfo) async -> String? {
        struct Health: Decodable { var version: String? }
        guard let response = try? await GuestHTTP.request(host: info.envdHost, port: info.envdPort, method: "GET", path: "/health",
                                                          timeout: .seconds(2)),
              response.status == 200 else { return nil }
        return (try? JSONDecoder().decode(Health.self, from: response.body))?.version
    }
}
