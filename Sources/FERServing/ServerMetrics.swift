import Foundation
import Prometheus

/// What `GET /metrics` reports, in Prometheus' text format: requests by route and status, their
/// latency, faces found, errors by kind, the work queue and the batches the model ran. Each server
/// has its own registry (no process-wide bootstrap), so tests can run several.
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let queueDepth: Gauge
    let faces: Counter
    let batchFaces: ValueHistogram
    let inference: DurationHistogram
    let connections: Gauge
    let connectionsRefused: Counter

    static let latencyBuckets: [Duration] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000].map { .milliseconds($0) }

    public init() {
        queueDepth = registry.makeGauge(descriptor: .init(namespace: "fer", metricName: "queue", unitName: "images",
                                                          helpText: "Images waiting for the model."))
        faces = registry.makeCounter(descriptor: .init(namespace: "fer", metricName: "faces", unitName: "total",
                                                       helpText: "Faces found and classified."))
        batchFaces = registry.makeValueHistogram(descriptor: .init(namespace: "fer", metricName: "batch", unitName: "faces",
                                                                   helpText: "Faces classified together in one call of the model."),
                                                 buckets: [0, 1, 2, 4, 8, 16, 32, 64, 128])
        inference = registry.makeDurationHistogram(descriptor: .init(namespace: "fer", metricName: "inference_duration", unitName: "seconds",
                                                                     helpText: "Detection and classification of one batch of images."),
                                                   buckets: Self.latencyBuckets)
        connections = registry.makeGauge(descriptor: .init(namespace: "fer", metricName: "connections", unitName: "open",
                                                           helpText: "HTTP and WebSocket connections open now."))
        connectionsRefused = registry.makeCounter(descriptor: .init(namespace: "fer", metricName: "connections_refused", unitName: "total",
                                                                    helpText: "Connections refused (503) because the server had --max-connections open."))
    }

    func connectionOpened() { connections.increment() }
    func connectionClosed() { connections.decrement() }
    func connectionRefused() { connectionsRefused.increment() }

    /// A connection the server closed itself, by reason (idle, header_timeout, request_timeout, malformed).
    func connectionDropped(reason: String) {
        registry.makeCounter(descriptor: .init(namespace: "fer", metricName: "connections_closed", unitName: "total",
                                               helpText: "Connections the server closed: idle, a deadline missed, or not HTTP."),
                             labels: [("reason", reason)]).increment()
    }

    /// One answered request: its route (the pattern, not the raw path, so labels stay few) and status.
    public func request(route: String, status: Int, seconds: Double) {
        registry.makeCounter(descriptor: .init(namespace: "fer", subsystem: "http", metricName: "requests", unitName: "total",
                                               helpText: "HTTP requests answered, by route and status."),
                             labels: [("route", route), ("status", "\(status)")]).increment()
        registry.makeDurationHistogram(descriptor: .init(namespace: "fer", subsystem: "http", metricName: "request_duration", unitName: "seconds",
                                                         helpText: "Time to answer an HTTP request, by route."),
                                       labels: [("route", route)], buckets: Self.latencyBuckets)
            .record(.nanoseconds(Int64(seconds * 1e9)))
        if status == Self.clientClosedRequest { error("aborted") } else if status >= 400 { error(status >= 500 ? "server" : "client") }
    }

    /// The status recorded for a request its client abandoned before the answer (nginx's 499):
    /// neither a client error answered nor a server error.
    public static let clientClosedRequest = 499

    /// A refused request or frame, by kind (client, server, aborted, busy, timeout, websocket).
    public func error(_ kind: String) {
        registry.makeCounter(descriptor: .init(namespace: "fer", metricName: "errors", unitName: "total",
                                               helpText: "Refused requests and frames, by kind."),
                             labels: [("kind", kind)]).increment()
    }

    public var text: String { registry.emitToString() }
}
