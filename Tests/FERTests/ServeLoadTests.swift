import AsyncHTTPClient
import Foundation
import Histogram
import Hummingbird
import HummingbirdTesting
import NIOHTTP1
import Testing
@testable import FERIO
@testable import FERServing

/// The server under load on loopback: 50 clients post photos for 60 s (FER_LOAD_CLIENTS,
/// FER_LOAD_SECONDS, FER_LOAD_MAX_BATCH change that) and every request must succeed. It prints
/// requests/s and latency percentiles (HdrHistogram); docs/benchmarks.md records them. No timing is
/// asserted: the numbers depend on the machine and on what else runs.
@Suite("fer serve: load", .serialized) struct ServeLoadTests {
    @Test func fiftyClientsPostPhotosForAMinuteWithoutAnError() async throws {
        let env = ProcessInfo.processInfo.environment
        let seconds = Double(env["FER_LOAD_SECONDS"] ?? "") ?? 60
        let clients = Int(env["FER_LOAD_CLIENTS"] ?? "") ?? 50
        let maxBatch = Int(env["FER_LOAD_MAX_BATCH"] ?? "") ?? ServeSettings().maxBatchImages
        // A few different photos: sizes from 256 to 800 pixels, mirrored, and no-face images.
        let photo = try Samples.image()
        var mirrored = photo
        for y in 0..<photo.height {
            for x in 0..<photo.width {
                for c in 0..<3 { mirrored.pixels[(y * photo.width + x) * 3 + c] = photo.pixels[(y * photo.width + photo.width - 1 - x) * 3 + c] }
            }
        }
        let bodies: [[UInt8]] = try [
            photo.encoded(".jpg"), mirrored.encoded(".jpg"), photo.resized(width: 256, height: 256).encoded(".jpg"),
            photo.resized(width: 800, height: 800).encoded(".jpg"), photo.resized(width: 640, height: 480).encoded(".png"),
            Image(width: 320, height: 240, channels: 3, fill: 90).encoded(".jpg"),
        ]
        let server = try TestServer { $0.maxBatchImages = maxBatch; $0.queueCapacity = max(64, clients) }
        let outcome = LoadOutcome()
        try await server.test(.live) { client in
            let port = try #require(client.port)
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: clients)
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            let deadline = Date().addingTimeInterval(seconds)
            let started = Date()
            await withTaskGroup(of: Void.self) { group in
                for c in 0..<clients {
                    group.addTask {
                        var i = c
                        while Date() < deadline {
                            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/predict")
                            request.method = .POST
                            request.headers.add(name: "Content-Type", value: "image/jpeg")
                            request.body = .bytes(ByteBuffer(bytes: bodies[i % bodies.count]))
                            i += 1
                            let t = DispatchTime.now()
                            do {
                                let response = try await http.execute(request, timeout: .seconds(30))
                                let body = try await response.body.collect(upTo: 1 << 20)
                                let micros = (DispatchTime.now().uptimeNanoseconds - t.uptimeNanoseconds) / 1000
                                outcome.record(status: Int(response.status.code), micros: micros, body: Array(buffer: body))
                            } catch {
                                outcome.record(status: -1, micros: 0, body: Array("\(error)".utf8))
                            }
                        }
                    }
                }
            }
            outcome.seconds = Date().timeIntervalSince(started)
            try await http.shutdown()
        }
        let metrics = server.metrics.text
        let batches = prometheusValue(metrics, "fer_batch_faces_count"), faces = prometheusValue(metrics, "fer_batch_faces_sum")
        print(outcome.report(clients: clients, maxBatch: maxBatch) + String(format: "; model calls %.0f, %.2f faces per call", batches, batches > 0 ? faces / batches : 0))
        #expect(outcome.count > clients)
        #expect(outcome.errors == 0, "\(outcome.firstError)")
    }
}

func prometheusValue(_ text: String, _ name: String) -> Double {
    text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
}

/// Latencies (HdrHistogram, microseconds) and errors of a load run, from many tasks.
final class LoadOutcome: @unchecked Sendable {
    private let lock = NSLock()
    private var histogram = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    private(set) var count = 0
    private(set) var errors = 0
    private(set) var firstError = ""
    var seconds = 0.0

    func record(status: Int, micros: UInt64, body: [UInt8]) {
        lock.lock(); defer { lock.unlock() }
        count += 1
        if status == 200 {
            _ = histogram.record(max(1, micros))
        } else {
            errors += 1
            if firstError.isEmpty { firstError = "status \(status): \(String(decoding: body.prefix(300), as: UTF8.self))" }
        }
    }

    func report(clients: Int, maxBatch: Int) -> String {
        lock.lock(); defer { lock.unlock() }
        func ms(_ p: Double) -> String { String(format: "%.1f", Double(histogram.valueAtPercentile(p)) / 1000) }
        return String(format: "serve load: %d clients, max batch %d, %.0f s: %d requests, %.1f requests/s, %d errors; latency ms p50 %@ p90 %@ p99 %@ max %@",
                      clients, maxBatch, seconds, count, Double(count) / max(seconds, 1e-9), errors, ms(50), ms(90), ms(99), ms(100))
    }
}
