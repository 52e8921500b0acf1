import ArgumentParser
import FER
import FERServing
import Foundation
import Hummingbird
#if Server
#endif

#if Server
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the model over HTTP: a JSON API, a WebSocket stream and a web page that uses the browser's camera.",
        discussion: """
        Routes: GET / (the page), POST /v1/predict (an image as the body or a multipart field;
        ?annotate=1 returns the annotated PNG, ?crop=1 classifies the image whole), GET /v1/stream
        (WebSocket: one binary image in, one JSON answer out), GET /v1/info, GET /healthz,
        GET /metrics (Prometheus). Binds 127.0.0.1 unless --host says otherwise; Ctrl-C stops it.
        Example: curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' http://127.0.0.1:8080/v1/predict
        """)

    @Option(help: "Address to listen on (0.0.0.0: every interface).") var host = ServeSettings().host
    @Option(help: "Port (0: any free port).") var port = ServeSettings().port
    @OptionGroup var face: FaceOptions
    @Option(help: "Largest request body or WebSocket message, bytes (413 above).") var maxBodyBytes = ServeSettings().maxBodyBytes
    @Option(help: "Images that may wait for the model; one more is answered 503.") var queue = ServeSettings().queueCapacity
    @Option(help: "Images whose faces are classified together, at most (1: no batching across requests).") var maxBatch = ServeSettings().maxBatchImages
    @Option(help: "Seconds an image may wait for the model before it is answered 503.") var timeout = ServeSettings().timeout
    @Option(help: "Seconds an idle connection stays open.") var idleTimeout = ServeSettings().idleTimeout
    @Option(help: "Seconds from a request's first byte to the end of its headers (408 and close after).") var headerTimeout = ServeSettings().headerTimeout
    @Option(help: "Seconds from a request's first byte to the start of its answer: upload and work (408 and close after).") var requestTimeout = ServeSettings().requestTimeout
    @Option(help: "Connections open at once, WebSockets included; one more is answered 503 and closed.") var maxConnections = ServeSettings().maxConnections

    var settings: ServeSettings {
        var s = ServeSettings()
        s.host = host
        s.port = port
        s.maxBodyBytes = maxBodyBytes
        s.maxPixels = face.maxPixels  // 413 above
        s.queueCapacity = queue
        s.maxBatchImages = maxBatch
        s.timeout = timeout
        s.idleTimeout = idleTimeout
        s.headerTimeout = headerTimeout
        s.requestTimeout = requestTimeout
        s.maxConnections = maxConnections
        return s
    }

    func validate() throws {
        if let p = settings.problem { throw ValidationError(p) }
    }

    func run() throws {
        let recognizer = try face.recognizer()
        let metrics = ServerMetrics()
        let queue = InferenceQueue(recognizer: recognizer, settings: settings, metrics: metrics)
        let info = FERServer.ModelInfo(model: BundledModels.displayName(face.model.model), classes: recognizer.classNames,
                                       detector: recognizer.detectorSettings.kind.rawValue)
        let detector = recognizer.detectorSummary
        let app = FERServer.application(queue: queue, settings: settings, metrics: metrics, info: info) { [host] port in
            print("fer serve: http://\(host):\(port)/ (model \(info.model), detector \(detector)); Ctrl-C stops")
            fflush(nil)  // every output stream: stdout is a C global Swift 6 will not touch from here
        }
        // The server runs on Swift concurrency's threads; this (synchronous) command waits for it.
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await app.runService() } catch { outcome.error = error }
            done.signal()
        }
        done.wait()
        queue.stop()
        if let e = outcome.error { throw ValidationError("the server stopped: \(e)") }
    }

    final class Outcome: @unchecked Sendable { var error: Error? }  // written by the server task before `done` is signalled, read after
}
#else
/// This fer was built without the server (scripts/demo's quick build): say how to get it.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the model over HTTP (not in this build of fer).")
    @Argument(parsing: .allUnrecognized) var arguments: [String] = []

    func run() throws {
        throw ValidationError("this fer was built without the server (scripts/demo builds it lean); build the full one with: swift build -c release")
    }
}
#endif
