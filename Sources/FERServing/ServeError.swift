import Foundation
import Hummingbird

/// An answer other than success, as JSON: `{"error": "what went wrong", "status": 413}`. Every
/// refusal of `fer serve` is one of these, with the status a client can act on.
public struct ServeError: HTTPResponseError, Equatable {
    public var status: HTTPResponse.Status
    public var message: String
    /// Seconds after which a client may try again (503).
    public var retryAfter: Int?
    /// The method the path takes (405).
    public var allow: String?
    /// The connection is closed after the answer (the request could not be read to its end).
    public var close = false

    public init(_ status: HTTPResponse.Status, _ message: String, retryAfter: Int? = nil, allow: String? = nil, close: Bool = false) {
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
        self.allow = allow
        self.close = close
    }

    public static func badRequest(_ m: String) -> ServeError { .init(.badRequest, m) }
    public static func tooLarge(_ m: String) -> ServeError { .init(.contentTooLarge, m) }
    public static func unsupported(_ m: String) -> ServeError { .init(.unsupportedMediaType, m) }
    public static func unprocessable(_ m: String) -> ServeError { .init(.unprocessableContent, m) }
    public static func busy(_ m: String) -> ServeError { .init(.serviceUnavailable, m, retryAfter: 1) }

    /// The JSON body, also what the WebSocket sends for a frame it cannot use.
    public var json: String {
        let body: [String: Any] = ["error": message, "status": Int(status.code)]
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let r = retryAfter { headers[.retryAfter] = "\(r)" }
        if let a = allow { headers[.allow] = a }
        if close { headers[.connection] = "close" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json)))
    }
}
