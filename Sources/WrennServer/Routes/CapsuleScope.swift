import Hummingbird

/// Where a set of per-capsule routes is mounted and who acts on the capsule named by its `:id`.
///
/// `team` is the public API (`/v1/capsules/{id}/…`: the caller's own team, by API key or session); the admin API
/// mounts the same routes under `/v1/admin/capsules/{id}/…` with a scope whose principal is the platform admin acting
/// for the capsule's team (`AdminService.actingPrincipal`), so both behave identically by construction.
struct CapsuleScope: Sendable {
    /// The path of the capsule, with its `:id` parameter.
    let prefix: String
    /// The principal the operation runs as; it throws 401/403/404 as the scope requires.
    let caller: @Sendable (Request, WrennRequestContext) async throws -> Principal

    static let team = CapsuleScope(prefix: "v1/capsules/:id") { request, context in try context.requireCaller(request) }
}
