/// The error body every Wrenn API answer uses: `{"error":{"code","message"}}`.
public struct ErrorEnvelope: Codable, Sendable, Equatable {
    /// The inner error object.
    public struct Body: Codable, Sendable, Equatable {
        /// Machine-readable code such as `invalid_request` or `not_found`.
        public var code: String
        /// Human-readable explanation.
        public var message: String

        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }

    public var error: Body

    public init(code: String, message: String) {
        self.error = Body(code: code, message: message)
    }
}
