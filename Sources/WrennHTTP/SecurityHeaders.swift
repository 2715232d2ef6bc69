import HTTPTypes
import Hummingbird

/// Headers that keep a browser from running or framing anything an API answer contains: `X-Content-Type-Options:
/// nosniff` and a Content-Security-Policy that allows nothing (`default-src 'none'; frame-ancestors 'none'`), plus
/// `Referrer-Policy: no-referrer` and `X-Frame-Options: DENY` for older browsers.
///
/// The hook for pages served beside the API (the dashboard's static files): a response that already carries a
/// `Content-Security-Policy` keeps it (and whatever else it set); only `nosniff` is added. `skip` exempts requests the
/// middleware must not touch at all (the capsule port proxy, whose answers are the guest app's own origin).
public struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    let skip: @Sendable (Request) -> Bool

    public init(skip: @escaping @Sendable (Request) -> Bool = { _ in false }) {
        self.skip = skip
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if skip(request) { return try await next(request, context) }
        var response = try await next(request, context)
        SecurityHeaders.apply(to: &response.headers)
        return response
    }
}

/// The headers of ``SecurityHeadersMiddleware`` (also put on answers written outside a router).
public enum SecurityHeaders {
    public static let apiPolicy = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

    /// Adds the headers to `headers`, keeping a policy that is already there.
    public static func apply(to headers: inout HTTPFields) {
        headers[.xContentTypeOptions] = "nosniff"
        guard headers[.contentSecurityPolicy] == nil else { return }
        headers[.contentSecurityPolicy] = apiPolicy
        if headers[.referrerPolicy] == nil { headers[.referrerPolicy] = "no-referrer" }
        if headers[.xFrameOptions] == nil { headers[.xFrameOptions] = "DENY" }
    }
}

extension HTTPField.Name {
    public static let referrerPolicy = Self("Referrer-Policy")!
    public static let xFrameOptions = Self("X-Frame-Options")!
}
