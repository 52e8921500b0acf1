import FERIO

/// What `fer serve` listens on and the limits that keep it answering under any input and load.
public struct ServeSettings: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Largest request body (and WebSocket message), bytes: 413 above it.
    public var maxBodyBytes = 16 << 20
    /// Largest image, pixels, read from its header before decoding: 413 above it.
    public var maxPixels = ImageHeader.defaultMaxPixels
    /// Images waiting for the model at most; one more is answered 503 (back-pressure).
    public var queueCapacity = 64
    /// Images whose faces go through the classifier together, at most.
    public var maxBatchImages = 16
    /// Seconds an image may wait for the model before it is answered 503.
    public var timeout = 10.0
    /// Seconds an HTTP connection may stay idle before it is closed.
    public var idleTimeout = 60.0
    /// Seconds from a request's first byte to the end of its headers: 408 and close after.
    public var headerTimeout = 10.0
    /// Seconds from a request's first byte to the start of its answer (upload and work): 408 and close after.
    public var requestTimeout = 120.0
    /// Connections open at once, WebSockets included; one more is answered 503 and closed.
    public var maxConnections = 512

    /// Pixels being decoded or waiting for the model at once: two images at the pixel limit. Uploads
    /// past it wait their turn (up to `timeout`), so decoding memory does not grow with the clients.
    public var decodeBudgetPixels: Int { 2 * maxPixels }

    public init() {}

    /// Why these settings cannot run, in words naming the flag; nil when they can.
    public var problem: String? {
        if host.isEmpty { return "--host must not be empty" }
        if !(0...65535).contains(port) { return "--port must be between 0 and 65535 (0: any free port), got \(port)" }
        if !(1024...(1 << 30)).contains(maxBodyBytes) { return "--max-body-bytes must be between 1024 and 1073741824, got \(maxBodyBytes)" }
        if !(1...1_000_000_000).contains(maxPixels) { return "--max-pixels must be between 1 and 1000000000, got \(maxPixels)" }
        if !(1...100_000).contains(queueCapacity) { return "--queue must be between 1 and 100000, got \(queueCapacity)" }
        if !(1...256).contains(maxBatchImages) { return "--max-batch must be between 1 and 256, got \(maxBatchImages)" }
        if !(timeout > 0 && timeout <= 3600) { return "--timeout must be above 0 and at most 3600 seconds, got \(timeout)" }
        if !(idleTimeout > 0 && idleTimeout <= 3600) { return "--idle-timeout must be above 0 and at most 3600 seconds, got \(idleTimeout)" }
        if !(headerTimeout > 0 && headerTimeout <= 3600) { return "--header-timeout must be above 0 and at most 3600 seconds, got \(headerTimeout)" }
        if !(requestTimeout > 0 && requestTimeout <= 3600) { return "--request-timeout must be above 0 and at most 3600 seconds, got \(requestTimeout)" }
        if requestTimeout <= timeout { return "--request-timeout (\(requestTimeout) s) must be longer than --timeout (\(timeout) s), the wait for the model it includes" }
        if !(1...1_000_000).contains(maxConnections) { return "--max-connections must be between 1 and 1000000, got \(maxConnections)" }
        return nil
    }
}
