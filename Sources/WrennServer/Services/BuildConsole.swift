import Foundation
import WrennWire

/// The live console of builds that have not finished: every frame a build has produced so far (so a late viewer
/// sees it replayed) and the viewers tailing it. A build's channel opens when it is submitted and closes with its
/// final `build-status` frame; finished builds are replayed from the database instead (`BuildService.consoleFrames`).
actor BuildConsole {
    private struct Channel {
        var history: [BuildConsoleFrame] = []
        var viewers: [UUID: AsyncStream<BuildConsoleFrame>.Continuation] = [:]
    }

    private var channels: [String: Channel] = [:]

    func open(_ build: String) {
        if channels[build] == nil { channels[build] = Channel() }
    }

    /// Records `frame` and passes it to every viewer; a final `build-status` ends the viewers' streams.
    func publish(_ build: String, _ frame: BuildConsoleFrame) {
        guard var channel = channels[build] else { return }
        channel.history.append(frame)
        for viewer in channel.viewers.values { viewer.yield(frame) }
        if frame.type == "build-status", frame.status?.isFinal == true {
            for viewer in channel.viewers.values { viewer.finish() }
            channels[build] = nil
        } else {
            channels[build] = channel
        }
    }

    /// The frames so far and a stream of what follows, atomically; nil when the build is not live.
    func subscribe(_ build: String) -> (history: [BuildConsoleFrame], live: AsyncStream<BuildConsoleFrame>)? {
        guard var channel = channels[build] else { return nil }
        let (stream, continuation) = AsyncStream.makeStream(of: BuildConsoleFrame.self, bufferingPolicy: .bufferingNewest(4096))
        let id = UUID()
        channel.viewers[id] = continuation
        channels[build] = channel
        continuation.onTermination = { [weak self] _ in
            Task { await self?.drop(build, viewer: id) }
        }
        return (channel.history, stream)
    }

    private func drop(_ build: String, viewer: UUID) {
        channels[build]?.viewers[viewer] = nil
    }
}
