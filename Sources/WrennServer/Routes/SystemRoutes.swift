import Foundation
import Hummingbird
import NIOCore
import Metrics
import Prometheus

/// Health, the contract itself, and Prometheus metrics.
struct SystemRoutes {
    let services: ControlPlaneServices
    let registry: PrometheusCollectorRegistry

    struct Health: Encodable { var status: String; var version: String; var database: String }

    func register(on router: Router<WrennRequestContext>) {
        router.get("health") { _, _ in
            try JSONResponse.make(Health(status: "ok", version: WrennVersion.current, database: services.database.kind.rawValue))
        }
        router.get("openapi.yaml") { _, _ in
            guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
                  let data = try? Data(contentsOf: url) else {
                throw ServiceError(.internalError, "internal_error", "the bundled openapi.yaml is missing")
            }
            return Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.get("metrics") { _, _ in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
    }
}

/// Counts requests and their durations by method and status class through swift-metrics, with the Prometheus
/// factory over the control plane's registry (so `/metrics` shows them without a process-global bootstrap).
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = WrennRequestContext
    let factory: PrometheusMetricsFactory

    init(registry: PrometheusCollectorRegistry) {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = ["wrenn_http_request_duration_seconds": [.milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2), .seconds(10)]]
        self.factory = factory
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let dimensions = [("method", request.method.rawValue), ("status", "\(response.status.code / 100)xx")]
        Counter(label: "wrenn_http_requests_total", dimensions: dimensions, factory: factory).increment()
        Metrics.Timer(label: "wrenn_http_request_duration_seconds", dimensions: dimensions, factory: factory)
            .recordNanoseconds((ContinuousClock.now - start).nanoseconds)
        return response
    }
}

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}

/// The version every Wrenn program reports.
public enum WrennVersion {
    public static let current = "0.2.0"
}
