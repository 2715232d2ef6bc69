import SQLKit

/// SQL for `mail_outbox`: every mail the control plane produced, and whether it was delivered.
enum MailOutboxRepository {
    static func insert(id: String, to: String, subject: String, body: String, status: String, error: String?, at: Int64,
                       _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO mail_outbox (id, to_address, subject, body, status, error, created_at)
            VALUES (\(bind: id), \(bind: to), \(bind: subject), \(bind: body), \(bind: status), \(bind: error), \(bind: at))
            """).run()
    }
}
