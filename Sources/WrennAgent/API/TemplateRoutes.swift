import Hummingbird
import WrennHTTP
import WrennWire

/// `GET /v1/templates`, `DELETE /v1/templates/{name}`, `GET /v1/host`.
struct TemplateRoutes: Sendable {
    let services: AgentServices

    func register(on router: Router<AgentRequestContext>) {
        let catalog = TemplateCatalog(dataDirectory: services.configuration.dataDirectory, runtime: services.runtime)
        router.get("/v1/templates") { _, _ in
            try JSONResponse.make(catalog.list())
        }
        router.delete("/v1/templates/:name") { _, context in
            let name = try context.parameters.require("name")
            guard TemplateCatalog.validName(name) else { throw AgentError.invalid("bad template name") }
            switch catalog.kind(name) {
            case nil: throw AgentError.notFound("template \(name) not found")
            case "snapshot":
                do {
                    try await services.runtime.deleteTemplate(name)
                } catch RuntimeError.invalidState(_, let state, _) {
                    // Capsules' disks are backed by it.
                    throw AgentError.conflict("template \(name) is \(state)")
                }
                return Response(status: .noContent)
            default: throw AgentError.conflict("template \(name) is a base template and cannot be deleted")
            }
        }
        router.get("/v1/host") { _, _ in
            try JSONResponse.make(await services.facts.facts())
        }
    }
}
