import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// First handler of every control-plane connection (bytes). Until a keep-alive upgrade it passes everything
/// through to the HTTP segment. `switchToUpgrade` re-arms the connection: a `SegmentEntry` and a fresh upgrade
/// segment are appended to the pipeline, the HTTP segment's decoder is removed (its unparsed bytes caught), and
/// from then on inbound bytes and events go straight to the new segment while its outbound operations come back
/// here through the entry, so the old segment's handlers (the HTTP codec and its `NIOAsyncChannel`, which cannot be
/// removed) never see WebSocket traffic. Only one switch per connection.
final class ConnectionSwitchHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = Any

    private enum State {
        case http
        /// Waiting for the old decoder's leftover bytes; reads from the socket are held meanwhile.
        case switching(entry: ChannelHandlerContext, prefix: [ByteBuffer], held: [ByteBuffer], inputClosed: Bool)
        case switched(entry: ChannelHandlerContext)
        case closed
    }

    private var state = State.http
    private(set) var context: ChannelHandlerContext?
    private var upgraded: EventLoopPromise<HTTP1WebSocketUpgradeChannel.Value?>?
    private let makeSegment: (any Channel) -> EventLoopFuture<HTTP1WebSocketUpgradeChannel.Value>
    /// How long a new connection may take to send its first complete request head (slow-header attacks); later
    /// requests are covered by Hummingbird's idle timeout.
    private let firstRequestTimeout: TimeAmount?
    private var firstRequestTimer: Scheduled<Void>?
    private var sawRequest = false
    /// The answer to a WebSocket upgrade the router refused (see ``UpgradeRefusal``), until it is written.
    private(set) var refusal: UpgradeRefusal?

    init(upgraded: EventLoopPromise<HTTP1WebSocketUpgradeChannel.Value?>, firstRequestTimeout: TimeAmount?,
         makeSegment: @escaping (any Channel) -> EventLoopFuture<HTTP1WebSocketUpgradeChannel.Value>) {
        self.upgraded = upgraded
        self.firstRequestTimeout = firstRequestTimeout
        self.makeSegment = makeSegment
    }

    /// A complete request head arrived: the first-request deadline no longer applies.
    func noteRequest() {
        sawRequest = true
        firstRequestTimer?.cancel()
        firstRequestTimer = nil
    }

    /// Keeps the answer for the upgrade request being refused.
    func refuse(_ refusal: UpgradeRefusal) { self.refusal = refusal }

    /// The kept answer, once.
    func takeRefusal() -> UpgradeRefusal? {
        defer { refusal = nil }
        return refusal
    }

    private func armFirstRequestTimer(_ context: ChannelHandlerContext) {
        guard let firstRequestTimeout, !sawRequest, firstRequestTimer == nil else { return }
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        firstRequestTimer = context.eventLoop.scheduleTask(in: firstRequestTimeout) {
            guard !bound.value.handler.sawRequest else { return }
            bound.value.context.close(promise: nil)
        }
    }

    var canSwitch: Bool {
        if case .http = state { return context != nil }
        return false
    }

    /// Moves the connection to a new upgrade segment that first reads `request` (an upgrade request the HTTP
    /// segment held back). Returns false (connection left as it was) when it cannot.
    func switchToUpgrade(request: ByteBuffer) -> Bool {
        guard canSwitch, let context else { return false }
        let pipeline = context.pipeline.syncOperations
        do {
            let decoder = try pipeline.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self)
            let entry = SegmentEntry(switchHandler: self)
            try pipeline.addHandler(entry)
            let entryContext = try pipeline.context(handler: entry)
            let catcher = LeftoverCatcher(switchHandler: self)
            try pipeline.addHandler(catcher, position: .after(decoder.handler))
            state = .switching(entry: entryContext, prefix: [request], held: [], inputClosed: false)
            let segment = makeSegment(context.channel)
            if let upgraded {
                self.upgraded = nil
                upgraded.completeWith(segment.map { Optional($0) })
            }
            pipeline.removeHandler(context: decoder).assumeIsolated().whenComplete { _ in
                self.finishSwitch()
                pipeline.removeHandler(catcher, promise: nil)
            }
            return true
        } catch {
            context.close(promise: nil)
            return false
        }
    }

    fileprivate func caughtLeftover(_ bytes: ByteBuffer) {
        guard case .switching(let entry, var prefix, let held, let inputClosed) = state else { return }
        prefix.append(bytes)
        state = .switching(entry: entry, prefix: prefix, held: held, inputClosed: inputClosed)
    }

    private func finishSwitch() {
        guard case .switching(let entry, let prefix, let held, let inputClosed) = state else { return }
        state = .switched(entry: entry)
        for bytes in prefix + held { entry.fireChannelRead(NIOAny(bytes)) }
        entry.fireChannelReadComplete()
        if inputClosed { entry.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        context?.read()
    }

    private func resolveNotUpgraded() {
        upgraded?.succeed(nil)
        upgraded = nil
    }

    // MARK: inbound (from the socket)

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { armFirstRequestTimer(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armFirstRequestTimer(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        firstRequestTimer?.cancel()
        resolveNotUpgraded()
        state = .closed
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .http: context.fireChannelRead(data)
        case .switching(let entry, let prefix, var held, let inputClosed):
            held.append(unwrapInboundIn(data))
            state = .switching(entry: entry, prefix: prefix, held: held, inputClosed: inputClosed)
        case .switched(let entry): entry.fireChannelRead(data)
        case .closed: break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        switch state {
        case .http: context.fireChannelReadComplete()
        case .switched(let entry): entry.fireChannelReadComplete()
        case .switching, .closed: break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch state {
        case .http, .closed: context.fireUserInboundEventTriggered(event)
        case .switching(let entry, let prefix, let held, _) where (event as? ChannelEvent) == .inputClosed:
            state = .switching(entry: entry, prefix: prefix, held: held, inputClosed: true)
        case .switching(let entry, _, _, _), .switched(let entry): entry.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch state {
        case .http, .closed: context.fireErrorCaught(error)
        case .switching(let entry, _, _, _), .switched(let entry): entry.fireErrorCaught(error)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        switch state {
        case .http, .closed: context.fireChannelWritabilityChanged()
        case .switching(let entry, _, _, _), .switched(let entry): entry.fireChannelWritabilityChanged()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        firstRequestTimer?.cancel()
        resolveNotUpgraded()
        let current = state
        state = .closed
        // Both segments learn that the connection is gone.
        context.fireChannelInactive()
        switch current {
        case .switching(let entry, _, _, _), .switched(let entry): entry.fireChannelInactive()
        case .http, .closed: break
        }
    }

    // MARK: outbound (from the HTTP segment; the upgrade segment's operations arrive through `SegmentEntry`)

    private var httpSegmentRetired: Bool {
        switch state {
        case .switching, .switched: true
        case .http, .closed: false
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // The server only writes after a complete request head (an answer or a 101): the first-request deadline is met.
        if !sawRequest { noteRequest() }
        if httpSegmentRetired { promise?.fail(ChannelError.ioOnClosedChannel) } else { context.write(data, promise: promise) }
    }

    func read(context: ChannelHandlerContext) {
        if !httpSegmentRetired { context.read() }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // The retired HTTP segment half-closes its output when its request loop ends; the WebSocket still uses it.
        if httpSegmentRetired, mode == .output { promise?.succeed(()) } else { context.close(mode: mode, promise: promise) }
    }
}

@available(*, unavailable)
extension ConnectionSwitchHandler: Sendable {}

/// Head of the upgrade segment: inbound traffic reaching it through the pipeline comes from the retired HTTP
/// segment (its `NIOAsyncChannel` forwards reads) and is dropped; the segment's outbound operations skip the retired
/// segment and continue at the `ConnectionSwitchHandler`.
final class SegmentEntry: ChannelDuplexHandler {
    typealias InboundIn = Any
    typealias OutboundIn = Any

    private var switchHandler: ConnectionSwitchHandler?

    init(switchHandler: ConnectionSwitchHandler) { self.switchHandler = switchHandler }

    func handlerRemoved(context: ChannelHandlerContext) { switchHandler = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    func channelReadComplete(context: ChannelHandlerContext) {}
    func channelInactive(context: ChannelHandlerContext) {}
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {}
    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
    func channelWritabilityChanged(context: ChannelHandlerContext) {}

    private var out: ChannelHandlerContext? { switchHandler?.context }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard let out else { promise?.fail(ChannelError.ioOnClosedChannel); return }
        out.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) { out?.flush() }
    func read(context: ChannelHandlerContext) { out?.read() }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard let out else { context.close(mode: mode, promise: promise); return }
        out.close(mode: mode, promise: promise)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let out else { promise?.fail(ChannelError.ioOnClosedChannel); return }
        out.triggerUserOutboundEvent(event, promise: promise)
    }
}

@available(*, unavailable)
extension SegmentEntry: Sendable {}

/// Catches the bytes the retired HTTP decoder had not parsed (it stops at an upgrade request) when it is removed.
final class LeftoverCatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private var switchHandler: ConnectionSwitchHandler?

    init(switchHandler: ConnectionSwitchHandler) { self.switchHandler = switchHandler }

    func handlerRemoved(context: ChannelHandlerContext) { switchHandler = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switchHandler?.caughtLeftover(unwrapInboundIn(data))
    }
}

@available(*, unavailable)
extension LeftoverCatcher: Sendable {}

/// In the HTTP segment (after the HTTP/1 codec): holds back a WebSocket upgrade request that is not the first of its
/// connection and, once every earlier response has been written, hands it to the `ConnectionSwitchHandler` and ends
/// the HTTP request stream so the HTTP segment's loop finishes.
final class KeepAliveUpgradeDetector: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        case passing
        case holding(HTTPRequest, ended: Bool)
        case done
    }

    private var state = State.passing
    private var responsesPending = 0
    private var switchHandler: ConnectionSwitchHandler?
    /// Writing a refused upgrade's answer in place of Hummingbird's bare 400.
    private var answering: UpgradeRefusal?

    func handlerAdded(context: ChannelHandlerContext) {
        switchHandler = try? context.pipeline.syncOperations.handler(type: ConnectionSwitchHandler.self)
    }

    func handlerRemoved(context: ChannelHandlerContext) { switchHandler = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (state, part) {
        case (.passing, .head(let request)):
            switchHandler?.noteRequest()
            // A refused upgrade comes back through the HTTP segment only to be answered: never re-arm for it.
            if Self.isWebSocketUpgrade(request), switchHandler?.canSwitch == true, switchHandler?.refusal == nil {
                state = .holding(request, ended: false)
            } else {
                responsesPending += 1
                context.fireChannelRead(data)
            }
        case (.passing, _):
            context.fireChannelRead(data)
        case (.holding(let request, _), .end):
            state = .holding(request, ended: true)
            switchIfReady(context: context)
        case (.holding, _), (.done, _):
            break
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        // Hummingbird answers a refused upgrade with a bare `400` + close; the router's own answer (status and error
        // envelope) was kept by `UpgradeRefusalRecorder` and goes out instead.
        if case .head(let head) = part, head.status == .badRequest, let refusal = switchHandler?.takeRefusal() {
            answering = refusal
            var fields = refusal.headers
            fields[.contentLength] = "\(refusal.body.readableBytes)"
            fields[.connection] = "close"
            SecurityHeaders.apply(to: &fields)
            context.write(wrapOutboundOut(.head(HTTPResponse(status: refusal.status, headerFields: fields))), promise: promise)
            return
        }
        if let refusal = answering {
            switch part {
            case .head: context.write(data, promise: promise)
            case .body: promise?.succeed(())
            case .end:
                answering = nil
                context.write(wrapOutboundOut(.body(refusal.body)), promise: nil)
                context.write(data, promise: promise)
            }
            return
        }
        context.write(data, promise: promise)
        if case .end = part {
            responsesPending -= 1
            switchIfReady(context: context)
        }
    }

    private func switchIfReady(context: ChannelHandlerContext) {
        guard case .holding(let request, ended: true) = state, responsesPending <= 0, let switchHandler else { return }
        state = .done
        guard let head = try? HTTPRequestHead(request) else {
            context.close(promise: nil)
            return
        }
        guard switchHandler.switchToUpgrade(request: Self.encode(head, allocator: context.channel.allocator)) else { return }
        // End the HTTP segment's request stream: its loop finishes and leaves the connection to the new segment.
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }

    /// What NIO's HTTP decoder treats as an upgrade (it stops parsing after it): `Connection: upgrade` and an
    /// `Upgrade` header, here restricted to WebSocket.
    static func isWebSocketUpgrade(_ request: HTTPRequest) -> Bool {
        func tokens(_ name: HTTPField.Name) -> [String] {
            request.headerFields[values: name].flatMap { $0.split(separator: ",") }
                .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        }
        return request.method == .get && tokens(.connection).contains("upgrade") && tokens(.upgrade).contains("websocket")
    }

    static func encode(_ head: HTTPRequestHead, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 512)
        buffer.writeString("\(head.method.rawValue) \(head.uri) HTTP/1.1\r\n")
        for (name, value) in head.headers { buffer.writeString("\(name): \(value)\r\n") }
        buffer.writeString("\r\n")
        return buffer
    }
}

@available(*, unavailable)
extension KeepAliveUpgradeDetector: Sendable {}
