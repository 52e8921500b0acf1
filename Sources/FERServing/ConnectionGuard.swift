import Foundation
import HTTPTypes
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The limits every connection meets before HTTP parsing: a cap on open connections, a deadline for
/// a request's headers and one for the whole request, an idle deadline from the first byte on, and
/// a 400 JSON answer (then close) for bytes that are not HTTP. Hummingbird's own pipeline gives
/// none of these to a connection whose first request never parses, so the guard sits in front of it.
///
///     socket <-> ConnectionGuard <-> HTTP decoder <-> MalformedRequestCatcher <-> Hummingbird
struct GuardedChannel: ServerChildChannel {
    typealias Value = HTTP1WebSocketUpgradeChannel.Value
    let inner: HTTP1WebSocketUpgradeChannel
    let limits: ConnectionLimits

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let guardHandler = ConnectionGuard(limits: limits)
        do {
            try channel.pipeline.syncOperations.addHandler(guardHandler, position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        let bound = NIOLoopBound(guardHandler, eventLoop: channel.eventLoop)
        return inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            // The decoder fires its errors towards the application; catch them right behind it.
            let decoder = try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try channel.pipeline.syncOperations.addHandler(MalformedRequestCatcher(guardHandler: bound.value), position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        // A connection the guard closes before its first request parses ends Hummingbird's upgrade
        // negotiation with an error that it logs at error level, one line per hostile connection.
        // Every outcome is counted in /metrics instead, so this connection's own log stays quiet.
        var quiet = logger
        quiet.logLevel = .critical
        await inner.handle(value: value, logger: quiet)
    }
}

/// The open-connection count shared by every connection of one server, and its limits.
final class ConnectionLimits: Sendable {
    let maxConnections: Int
    let idleTimeout: TimeAmount
    let headerTimeout: TimeAmount
    let requestTimeout: TimeAmount
    let metrics: ServerMetrics?
    private let open = NIOLockedValueBox(0)

    init(settings: ServeSettings, metrics: ServerMetrics?) {
        maxConnections = settings.maxConnections
        idleTimeout = .inSeconds(settings.idleTimeout)
        headerTimeout = .inSeconds(settings.headerTimeout)
        requestTimeout = .inSeconds(settings.requestTimeout)
        self.metrics = metrics
    }

    /// Counts a new connection in; false (and not counted) past the cap.
    func admit() -> Bool {
        let admitted = open.withLockedValue { n -> Bool in
            guard n < maxConnections else { return false }
            n += 1
            return true
        }
        if admitted { metrics?.connectionOpened() } else { metrics?.connectionRefused() }
        return admitted
    }

    func leave() {
        open.withLockedValue { $0 -= 1 }
        metrics?.connectionClosed()
    }
}

extension TimeAmount {
    static func inSeconds(_ s: Double) -> TimeAmount { .nanoseconds(Int64(s * 1e9)) }
}

/// Watches the raw bytes of one connection: where a request starts (first byte), where its headers
/// end (a blank line) and where the answer starts (the first byte written), and closes a connection
/// that misses a deadline, with a JSON answer where no answer has started.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData  // what reaches the socket: HTTP answers, then WebSocket frames' bytes
    typealias OutboundOut = ByteBuffer

    enum Phase {
        /// Between requests: the idle deadline runs.
        case idle
        /// A request has begun and its headers have not all arrived.
        case headers(started: NIODeadline)
        /// The headers are in; the body (if any) is arriving or the server is working on it.
        case body(started: NIODeadline)
        /// The server has started its answer.
        case answering
        /// A WebSocket: its own protocol from here on.
        case upgraded
        case closed
    }

    let limits: ConnectionLimits
    private(set) var phase = Phase.idle
    private var counted = false
    private var deadline: Scheduled<Void>?
    /// How many bytes of the blank line ending the headers (CR LF CR LF) the last bytes read match.
    private var headerEndMatched = 0
    /// After the upgrade: the header bytes of the client's frame being read, and the payload bytes
    /// left of the current frame.
    private var frameHeader: [UInt8] = []
    private var payloadLeft: UInt64 = 0

    init(limits: ConnectionLimits) { self.limits = limits }

    /// True while no answer to the current request has started: an error may still be answered.
    var mayAnswer: Bool {
        switch phase {
        case .idle, .headers, .body: return true
        case .answering, .upgraded, .closed: return false
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        guard limits.admit() else {
            refuse(context, status: "503 Service Unavailable", code: 503,
                   "the server has \(limits.maxConnections) connections open, its limit; try again shortly", reason: nil)
            return
        }
        counted = true
        armIdle(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        phase = .closed
        if counted { counted = false; limits.leave() }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        switch phase {
        case .idle, .answering:
            startRequest(context)
            scanForHeaderEnd(context, bytes)
        case .headers:
            scanForHeaderEnd(context, bytes)
        case .body:
            break
        case .upgraded:
            guard watchFrames(context, bytes) else { return }
        case .closed:
            return
        }
        context.fireChannelRead(data)
    }

    /// Reads the client's WebSocket frame headers as they pass (RFC 6455 5.2): a data frame (text,
    /// binary, continuation) restarts the idle deadline, control frames (ping, pong) do not, so a
    /// client that only answers pings is closed after `idleTimeout` like any idle connection. An
    /// unmasked client frame is a protocol error: closed with 1002 (5.1). False when closed here.
    private func watchFrames(_ context: ChannelHandlerContext, _ bytes: ByteBuffer) -> Bool {
        var view = bytes.readableBytesView[...]
        while !view.isEmpty {
            if payloadLeft > 0 {
                let skip = Int(min(payloadLeft, UInt64(view.count)))
                view = view.dropFirst(skip)
                payloadLeft -= UInt64(skip)
                continue
            }
            frameHeader.append(view.removeFirst())
            guard frameHeader.count >= 2 else { continue }
            let short = frameHeader[1] & 0x7F, masked = frameHeader[1] & 0x80 != 0
            let lengthBytes = short == 126 ? 2 : short == 127 ? 8 : 0
            guard frameHeader.count == 2 + lengthBytes + (masked ? 4 : 0) else { continue }
            guard masked else {
                closeFrame(context, code: 1002, reason: "ws_unmasked")
                return false
            }
            payloadLeft = lengthBytes == 0 ? UInt64(short) : frameHeader[2..<(2 + lengthBytes)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if frameHeader[0] & 0x0F <= 2 { armWebSocketIdle(context) }  // continuation, text, binary
            frameHeader = []
        }
        return true
    }

    /// After the upgrade: closed with 1001 (going away) after `idleTimeout` without a data frame.
    private func armWebSocketIdle(_ context: ChannelHandlerContext) {
        arm(context, after: limits.idleTimeout) { this, context in this.closeFrame(context, code: 1001, reason: "idle") }
    }

    /// Sends a close frame with `code` (a server's frames are unmasked) and closes the connection.
    private func closeFrame(_ context: ChannelHandlerContext, code: UInt16, reason: String) {
        guard !isClosed else { return }
        sendAndClose(context, context.channel.allocator.buffer(bytes: [0x88, 0x02, UInt8(code >> 8), UInt8(code & 0xFF)]), reason: reason)
    }

    /// The connection's last bytes (an HTTP answer, a close frame), then the close; counted as
    /// dropped for `reason`.
    private func sendAndClose(_ context: ChannelHandlerContext, _ last: ByteBuffer, reason: String?) {
        phase = .closed
        deadline?.cancel()
        if let reason { limits.metrics?.connectionDropped(reason: reason) }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(last)).whenComplete { _ in bound.value.close(promise: nil) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch phase {
        case .upgraded, .closed:
            break
        default:
            let status = statusCode(data)
            if status == 101 {
                phase = .upgraded
                armWebSocketIdle(context)
            } else if status.map({ $0 >= 200 }) ?? true {
                // Part of an answer (not an interim 100 Continue): the idle deadline runs from the last write.
                phase = .answering
                armIdle(context)
            }
        }
        context.write(data, promise: promise)
    }

    /// The status of an answer's first bytes ("HTTP/1.1 200 ..."), nil for other bytes.
    func statusCode(_ data: NIOAny) -> Int? {
        guard case .byteBuffer(let buffer) = unwrapOutboundIn(data),
              let start = buffer.getString(at: buffer.readerIndex, length: min(12, buffer.readableBytes)),
              start.hasPrefix("HTTP/1."), start.count == 12 else { return nil }
        return Int(start.dropFirst(9).prefix(3))
    }

    private func startRequest(_ context: ChannelHandlerContext) {
        phase = .headers(started: .now())
        headerEndMatched = 0
        let headerEnd = min(limits.headerTimeout, limits.requestTimeout)
        armTimeout(context, after: headerEnd, "the request's headers did not arrive within \(Self.describe(headerEnd)) s", reason: "header_timeout")
    }

    private func scanForHeaderEnd(_ context: ChannelHandlerContext, _ bytes: ByteBuffer) {
        guard case .headers(let started) = phase else { return }
        let blankLine: [UInt8] = [13, 10, 13, 10]
        var found = false
        for b in bytes.readableBytesView {
            headerEndMatched = b == blankLine[headerEndMatched] ? headerEndMatched + 1 : (b == 13 ? 1 : 0)
            if headerEndMatched == 4 { found = true; break }
        }
        guard found else { return }
        phase = .body(started: started)
        armTimeout(context, after: limits.requestTimeout - (.now() - started),
                   "the request did not arrive within \(Self.describe(limits.requestTimeout)) s", reason: "request_timeout")
    }

    /// A malformed request (told by the catcher behind the decoder): 400 where no answer has started.
    func malformed(_ context: ChannelHandlerContext, _ error: HTTPParserError) {
        if error == .paused {
            // llhttp pauses on HTTP/2's preface ("PRI * HTTP/2.0").
            answerAndClose(context, status: "400 Bad Request", code: 400,
                           "this server speaks HTTP/1.1 (and WebSocket), not HTTP/2", reason: "malformed")
        } else if error == .headerOverflow {
            answerAndClose(context, status: "431 Request Header Fields Too Large", code: 431,
                           "the request's headers are too large", reason: "malformed")
        } else {
            answerAndClose(context, status: "400 Bad Request", code: 400,
                           "the request is not valid HTTP/1.1 (\(error))", reason: "malformed")
        }
    }

    private func arm(_ context: ChannelHandlerContext, after delay: TimeAmount, _ action: @escaping (ConnectionGuard, ChannelHandlerContext) -> Void) {
        deadline?.cancel()
        // The deadline fires on the connection's own event loop, where its context lives.
        // Every deadline is cancelled when the connection ends, which releases the handler it holds.
        let bound = NIOLoopBound((self, context, action), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: max(delay, .zero)) { bound.value.2(bound.value.0, bound.value.1) }
    }

    /// Closed, without an answer, after `idleTimeout` without a byte.
    private func armIdle(_ context: ChannelHandlerContext) {
        arm(context, after: limits.idleTimeout) { this, context in this.close(context, reason: "idle") }
    }

    /// 408 (or closed, if an answer has started) after `delay`.
    private func armTimeout(_ context: ChannelHandlerContext, after delay: TimeAmount, _ message: String, reason: String) {
        arm(context, after: delay) { this, context in
            this.answerAndClose(context, status: "408 Request Timeout", code: 408, message, reason: reason)
        }
    }

    private func close(_ context: ChannelHandlerContext, reason: String) {
        guard !isClosed else { return }
        phase = .closed
        deadline?.cancel()
        limits.metrics?.connectionDropped(reason: reason)
        context.close(promise: nil)
    }

    private var isClosed: Bool { if case .closed = phase { return true } else { return false } }

    /// Answers with a JSON error where no answer has started, then closes.
    func answerAndClose(_ context: ChannelHandlerContext, status: String, code: Int, _ message: String, reason: String) {
        guard !isClosed else { return }
        if mayAnswer {
            refuse(context, status: status, code: code, message, reason: reason)
        } else {
            close(context, reason: reason)
        }
    }

    private func refuse(_ context: ChannelHandlerContext, status: String, code: Int, _ message: String, reason: String?) {
        let body = ServeError(.init(code: code), message).json
        var head = "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
        if code == 503 { head += "Retry-After: 1\r\n" }
        sendAndClose(context, context.channel.allocator.buffer(string: head + "\r\n" + body), reason: reason)
    }

    static func describe(_ t: TimeAmount) -> String {
        let s = Double(t.nanoseconds) / 1e9
        return s == s.rounded() ? String(Int(s)) : String(format: "%.1f", s)
    }
}

/// Sits right behind the HTTP decoder: a request whose head it cannot parse is answered 400 (431
/// for headers too large) and the connection closed. Errors in the body of a request whose head was
/// read go on to the route, which answers them (400) or counts a client that left.
final class MalformedRequestCatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    let guardHandler: ConnectionGuard
    /// A request's head has been read and its end not yet.
    private var inRequest = false

    init(guardHandler: ConnectionGuard) { self.guardHandler = guardHandler }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After a WebSocket upgrade the bytes that pass here are frames, not HTTP parts.
        if case .upgraded = guardHandler.phase {} else {
            switch unwrapInboundIn(data) {
            case .head: inRequest = true
            case .body: break
            case .end: inRequest = false
            }
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let parse = error as? HTTPParserError, !inRequest,
           let front = try? context.pipeline.syncOperations.context(handler: guardHandler) {
            guardHandler.malformed(front, parse)
            return
        }
        context.fireErrorCaught(error)
    }
}
