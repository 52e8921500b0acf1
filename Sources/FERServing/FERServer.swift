import Foundation
import FERIO
import FERVision
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import NIOCore
import NIOHTTP1

/// `fer serve`: the routes, their limits and the application around them.
///
///     GET  /              the web page (photo upload and the browser's camera)
///     POST /v1/predict    an image (raw body or multipart field) -> {"faces": [...]}, ?annotate=1 -> PNG
///     GET  /v1/stream     WebSocket: binary messages are images, each answered by a JSON text message
///     GET  /v1/info       the model: classes, input, detector
///     GET  /healthz       {"status": "ok"}
///     GET  /metrics       Prometheus text format
public enum FERServer {
    public typealias Context = BasicWebSocketRequestContext

    /// What the model is, for /v1/info and the page.
    public struct ModelInfo: Codable, Sendable {
        public var model: String
        public var classes: [String]
        public var detector: String
        public init(model: String, classes: [String], detector: String) {
            self.model = model
            self.classes = classes
            self.detector = detector
        }
    }

    public static func router(queue: InferenceQueue, settings: ServeSettings, metrics: ServerMetrics, info: ModelInfo) -> Router<Context> {
        let router = Router(context: Context.self)
        router.middlewares.add(ErrorAndMetricsMiddleware(metrics: metrics, methods: methods))

        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                     body: .init(byteBuffer: ByteBuffer(string: WebPage.html)))
        }
        router.get("/healthz") { _, _ in
            try encoded(Health(status: "ok", queue: queue.depth))
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: metrics.text)))
        }
        router.get("/v1/info") { _, _ in
            try encoded(info)
        }
        // Decoded pixels are held from decode to answer; the budget bounds them across all clients.
        let budget = PixelBudget(capacity: settings.decodeBudgetPixels, maxWaiting: settings.queueCapacity, timeout: settings.timeout)
        router.post("/v1/predict") { request, _ in
            try await predict(request, queue: queue, settings: settings, budget: budget)
        }
        router.ws("/v1/stream") { inbound, outbound, _ in
            try await stream(inbound, outbound, queue: queue, settings: settings, metrics: metrics, budget: budget)
        }
        return router
    }

    /// `POST /v1/predict`: the faces of one uploaded image as JSON, or drawn (`annotate=1`), or
    /// explained (`explain=1`), or the image taken whole as a face (`crop=1`).
    static func predict(_ request: Request, queue: InferenceQueue, settings: ServeSettings, budget: PixelBudget) async throws -> Response {
        let started = DispatchTime.now()
        let bytes = try await body(of: request, limit: settings.maxBodyBytes)
        let upload = try imageBytes(bytes, contentType: request.headers[.contentType])
        let query = request.uri.queryParameters
        let annotate = try flag(query["annotate"].map(String.init), "annotate")
        let crop = try flag(query["crop"].map(String.init), "crop")
        let explain = try flag(query["explain"].map(String.init), "explain")
        if annotate && explain { throw ServeError.badRequest("annotate=1 and explain=1 each answer with an image: ask for one") }
        let header = try checkedHeader(upload, settings: settings)
        return try await budget.withPixels(header.pixels) {
            // A drawn answer is the full-size photo; labels alone need only the detector's side.
            let photo = try decode(upload, header: header, settings: settings, minSide: annotate || crop || explain ? 0 : queue.analyzer.decodeSide,
                                   minScale: queue.analyzer.decodeScale)
            let asCrop = crop || max(photo.originalWidth, photo.originalHeight) <= 96
            let answer = try await queue.answer(photo, asCrop: asCrop, explain: explain)
            if explain, !answer.explanations.isEmpty {
                // Each face's heat map, left to right in the order of the faces.
                return try png(Image.row(answer.explanations))
            }
            if annotate { return try png(Annotator.annotate(photo.image, answer.faces, classNames: queue.classNames)) }
            return try encoded(Prediction(answer.faces, photo, since: started, note: asCrop ? "classified whole, as a face crop" : nil))
        }
    }

    static func png(_ image: Image) throws -> Response {
        Response(status: .ok, headers: [.contentType: "image/png"], body: .init(byteBuffer: ByteBuffer(bytes: try image.encoded(".png"))))
    }

    /// `/v1/stream`: one message in, one message out: the page sends its next frame when this one is
    /// answered, so a slow model slows the frame rate instead of filling a queue.
    static func stream(_ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter, queue: InferenceQueue, settings: ServeSettings,
                       metrics: ServerMetrics, budget: PixelBudget) async throws {
        for try await message in inbound.messages(maxSize: settings.maxBodyBytes) {
            let started = DispatchTime.now()
            let reply: String
            do {
                guard case .binary(let buffer) = message else { throw ServeError.unsupported("send each frame as a binary message holding a JPEG, PNG, BMP or WebP image") }
                let upload = Array(buffer: buffer)
                let header = try checkedHeader(upload, settings: settings)
                reply = try await budget.withPixels(header.pixels) {
                    let photo = try decode(upload, header: header, settings: settings, minSide: queue.analyzer.decodeSide, minScale: queue.analyzer.decodeScale)
                    let faces = try await queue.analyze(photo, asCrop: false)
                    return String(decoding: try jsonData(Prediction(faces, photo, since: started)), as: UTF8.self)
                }
            } catch let e as ServeError {
                metrics.error("websocket")
                reply = e.json
            }
            try await outbound.write(.text(reply))
        }
    }

    /// Each route's method, so that another method on a known path is 405 rather than 404.
    static let methods: [String: HTTPRequest.Method] = [
        "/": .get, "/healthz": .get, "/metrics": .get, "/v1/info": .get, "/v1/predict": .post, "/v1/stream": .get,
    ]

    /// The server on `settings.host:settings.port`, HTTP/1.1 with the WebSocket upgrade.
    public static func application(queue: InferenceQueue, settings: ServeSettings, metrics: ServerMetrics, info: ModelInfo,
                                   onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let r = router(queue: queue, settings: settings, metrics: metrics, info: info)
        var http1 = HTTP1Channel.Configuration()
        http1.idleTimeout = .milliseconds(Int64(settings.idleTimeout * 1000))
        var ws = WebSocketServerConfiguration()
        ws.maxFrameSize = settings.maxBodyBytes
        let limits = ConnectionLimits(settings: settings, metrics: metrics)
        let webSocketResponder = r.buildResponder()
        let channelConfiguration = HTTP1WebSocketUpgradeChannel.Configuration(http1: http1, ws: ws)
        let server = HTTPServerBuilder { responder in
            GuardedChannel(inner: HTTP1WebSocketUpgradeChannel(responder: responder, webSocketResponder: webSocketResponder,
                                                               configuration: channelConfiguration),
                           limits: limits)
        }
        return Application(router: r, server: server,
                           configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "fer"),
                           onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? settings.port) })
    }

    /// The answer to a prediction.
    struct Prediction: Encodable {
        var faces: [FaceResult]
        var width: Int
        var height: Int
        var milliseconds: Double
        var note: String?

        init(_ faces: [FaceResult], _ photo: ScaledImage, since started: DispatchTime, note: String? = nil) {
            self.faces = faces
            width = photo.originalWidth
            height = photo.originalHeight
            milliseconds = FERVision.milliseconds(since: started)
            self.note = note
        }
    }

    struct Health: Encodable {
        var status: String
        var queue: Int
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    /// `value` as JSON; a value JSON cannot hold (NaN) is a 500, for HTTP and WebSocket alike.
    static func jsonData(_ value: some Encodable) throws -> Data {
        do { return try encoder.encode(value) } catch {
            throw ServeError(.internalServerError, "the result holds a value JSON cannot represent")
        }
    }

    static func encoded(_ value: some Encodable) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try jsonData(value))))
    }

    /// The request body, refused with 413 past `limit` (by its Content-Length before reading it).
    static func body(of request: Request, limit: Int) async throws -> [UInt8] {
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw ServeError.tooLarge("the body is \(declared) bytes; the limit is \(limit) bytes")
        }
        do {
            return Array(buffer: try await request.body.collect(upTo: limit))
        } catch let e as any HTTPResponseError where e.status == .contentTooLarge {
            throw ServeError.tooLarge("the body is over the limit of \(limit) bytes")
        }
    }

    /// The image in a body: the body itself, or the file of a multipart form (field `image` or `file`, else the first part with a filename).
    static func imageBytes(_ body: [UInt8], contentType: String?) throws -> [UInt8] {
        let type = (contentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        if type.hasPrefix("multipart/") {
            guard let boundary = Multipart.boundary(contentType: contentType ?? "") else {
                throw ServeError.badRequest("a multipart body needs Content-Type multipart/form-data with a boundary of 1 to 70 characters")
            }
            guard let parts = Multipart.parts(body, boundary: boundary) else {
                throw ServeError.badRequest("the multipart body is malformed (no closing boundary, or a part without headers)")
            }
            guard let part = parts.first(where: { $0.name == "image" || $0.name == "file" }) ?? parts.first(where: { $0.filename != nil }) else {
                throw ServeError.badRequest("the multipart form has no file: send the photo in a field named image")
            }
            guard !part.body.isEmpty else { throw ServeError.badRequest("the uploaded file is empty") }
            return part.body
        }
        // Any other content type: the bytes decide (curl --data-binary says x-www-form-urlencoded).
        guard !body.isEmpty else { throw ServeError.badRequest("the body is empty: send an image") }
        return body
    }

    /// An upload's header, checked for format and pixel count before anything is decoded.
    static func checkedHeader(_ bytes: [UInt8], settings: ServeSettings) throws -> ImageHeader {
        guard let header = ImageHeader.read(bytes) else {
            throw ServeError.unsupported("not a JPEG, PNG, BMP or WebP image (or its header is cut short)")
        }
        guard header.width > 0, header.height > 0 else {
            throw ServeError.unprocessable("the \(header.format) header says \(header.width)x\(header.height) pixels")
        }
        guard header.width <= 1 << 20, header.height <= 1 << 20, header.pixels <= settings.maxPixels else {
            throw ServeError.tooLarge("the image is \(header.width)x\(header.height) pixels; the limit is \(settings.maxPixels) pixels")
        }
        return header
    }

    /// Decodes a checked upload; a JPEG at the smallest scale that still covers `minSide` (0: whole).
    static func decode(_ bytes: [UInt8], header: ImageHeader, settings: ServeSettings, minSide: Int = 0, minScale: Double = 1) throws -> ScaledImage {
        do {
            return try ScaledImage.decode(bytes, channels: 3, minSide: minSide, minScale: minScale, maxPixels: settings.maxPixels, name: "the \(header.format) image")
        } catch {
            throw ServeError.unprocessable("\(error)")
        }
    }

    /// A query flag: absent, 0/false/no, or 1/true/yes.
    static func flag(_ value: String?, _ name: String) throws -> Bool {
        guard let v = value?.lowercased() else { return false }
        switch v {
        case "", "1", "true", "yes": return true
        case "0", "false", "no": return false
        default: throw ServeError.badRequest("?\(name)= takes 1 or 0, got \(v)")
        }
    }
}

/// Every answer is counted by route and status, and every error leaves as JSON with its status:
/// the server's own errors, the framework's (404, 405, 413) and anything unexpected (500).
struct ErrorAndMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics
    let methods: [String: HTTPRequest.Method]

    /// The connection ended under the request: the input closed before the body did.
    static func clientLeft(_ error: Error) -> Bool {
        if let e = error as? HTTPParserError { return e == .invalidEOFState }
        if let e = error as? ChannelError { return e == .ioOnClosedChannel || e == .inputClosed || e == .eof }
        return false
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = DispatchTime.now()
        func record(_ status: HTTPResponse.Status) {
            metrics.request(route: context.endpointPath ?? "unmatched", status: status.code, seconds: milliseconds(since: started) / 1000)
        }
        do {
            let response = try await next(request, context)
            record(response.status)
            return response
        } catch let e as ServeError {
            record(e.status)
            throw e
        } catch where Self.clientLeft(error) {
            // The client closed the connection mid-upload: nobody to answer, and not the server's fault.
            record(.init(code: ServerMetrics.clientClosedRequest))
            throw error
        } catch let e as HTTPParserError {
            // A body the decoder cannot read (a bad chunk size, say): the client's error.
            record(.badRequest)
            throw ServeError(.badRequest, "the request body is not valid HTTP/1.1 (\(e))", close: true)
        } catch let e as any HTTPResponseError {
            if e.status == .notFound, let allowed = methods[request.uri.path], allowed != request.method {
                record(.methodNotAllowed)
                throw ServeError(.methodNotAllowed, "\(request.uri.path) takes \(allowed.rawValue), not \(request.method.rawValue)", allow: allowed.rawValue)
            }
            record(e.status)
            throw ServeError(e.status, e.status.reasonPhrase.lowercased())
        } catch {
            record(.internalServerError)
            throw ServeError(.internalServerError, "internal error: \(error)")
        }
    }
}
