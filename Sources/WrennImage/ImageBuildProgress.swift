/// One progress report of an image build.
public struct ImageBuildProgress: Sendable, CustomStringConvertible {
    /// 1-based step number.
    public var step: Int
    /// Number of steps.
    public var totalSteps: Int
    /// What is happening now.
    public var message: String

    /// `[step/total] message`.
    public var description: String { "[\(step)/\(totalSteps)] \(message)" }
}
