import Hummingbird
import WrennWire

/// `GET /v1/capsules/stats` and `GET /v1/capsules/usage` (API key or session; the caller's team only). The constant
/// segments win over `/v1/capsules/{id}` in Hummingbird's trie whatever the registration order.
struct CapsuleStatsRoutes {
    let services: ControlPlaneServices

    func register(on router: Router<WrennRequestContext>) {
        let capsules = router.group("v1/capsules")
        capsules.get("stats") { request, context in
            let principal = try context.requireCaller(request)
            return try JSONResponse.make(try await services.stats.stats(principal, range: request.uri.queryParameters.get("range")))
        }
        capsules.get("usage") { request, context in
            let principal = try context.requireCaller(request)
            let query = request.uri.queryParameters
            return try JSONResponse.make(try await services.stats.usage(principal, from: query.get("from"), to: query.get("to")))
        }
    }
}
