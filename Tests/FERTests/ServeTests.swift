import AsyncHTTPClient
import FER
import Foundation
import Hummingbird
import HummingbirdTesting
import HummingbirdWSTesting
import NIOHTTP1
import NIOWebSocket
import Testing
import WSCore
@testable import FERData
@testable import FEREngine
@testable import FERIO
@testable import FERModels
@testable import FERServing
@testable import FERVision

/// A server on the bundled model, MTCNN and the given settings, for one test.
struct TestServer {
    let queue: InferenceQueue
    let metrics = ServerMetrics()
    let settings: ServeSettings

    init(_ configure: (inout ServeSettings) -> Void = { _ in }) throws {
        var s = ServeSettings()
        s.port = 0
        configure(&s)
        settings = s
        // The bundled default model through the front door, in fp32 so answers match on every CPU.
        var c = ExpressionRecognizer.Configuration()
        c.precision = .fp32
        c.detectorPrecision = .fp32
        queue = InferenceQueue(recognizer: try ExpressionRecognizer(c), settings: s, metrics: metrics)
    }

    var info: FERServer.ModelInfo { .init(model: "default", classes: queue.classNames, detector: "mtcnn") }

    var app: some ApplicationProtocol { FERServer.application(queue: queue, settings: settings, metrics: metrics, info: info) }

    /// Runs `body` against the routes in-process (no socket), then stops the model's thread.
    func test<T: Sendable>(_ setup: TestingSetup = .router, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        defer { queue.stop() }
        return try await app.test(setup) { client in try await body(client) }
    }
}

enum Samples {
    static let photoPath = (Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut.png")
    static let photo: [UInt8] = Array((try? Data(contentsOf: URL(fileURLWithPath: photoPath))) ?? Data())
    static let faceCrop: [UInt8] = Array((try? Data(contentsOf: URL(fileURLWithPath: (Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut-face.png")))) ?? Data())
    static func image() throws -> Image { try Image.read(photoPath, channels: 3) }
}

func json(_ body: ByteBuffer) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(Array(buffer: body))) as? [String: Any])
}

@Suite("fer serve: image headers and uploads") struct ServeParsingTests {
    @Test(arguments: [".png", ".jpg", ".bmp", ".webp"]) func headerGivesFormatAndSize(ext: String) throws {
        let image = Image(width: 37, height: 21, channels: 3, fill: 90)
        let bytes = try image.encoded(ext)
        let header = try #require(ImageHeader.read(bytes))
        #expect(header.width == 37 && header.height == 21)
        #expect(ImageHeader.formats.contains(header.format))
        // Cut inside the header: no size rather than a wrong one.
        #expect(ImageHeader.read(Array(bytes.prefix(12))) == nil)
    }

    @Test func headerRefusesWhatIsNotAnImage() {
        #expect(ImageHeader.read(Array("hello".utf8)) == nil)
        #expect(ImageHeader.read([]) == nil)
        #expect(ImageHeader.read(Array("GIF89a".utf8) + [1, 0, 1, 0]) == nil)  // OpenCV 4.6 cannot decode GIF
        #expect(ImageHeader.read([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01]) == nil)  // JPEG segment length below 2
    }

    @Test func multipartFindsTheFile() throws {
        let body = Array("--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n".utf8)
            + [0, 1, 2, 13, 10, 3] + Array("\r\n--XyZ--\r\n".utf8)
        #expect(Multipart.boundary(contentType: "multipart/form-data; boundary=\"XyZ\"") == "XyZ")
        let parts = try #require(Multipart.parts(body, boundary: "XyZ"))
        #expect(parts.count == 2)
        #expect(parts[1].name == "image" && parts[1].filename == "a.png" && parts[1].contentType == "image/png")
        #expect(parts[1].body == [0, 1, 2, 13, 10, 3])
        #expect(Multipart.parts(Array(body.prefix(60)), boundary: "XyZ") == nil)
        #expect(Multipart.boundary(contentType: "multipart/form-data") == nil)
        #expect(Multipart.boundary(contentType: "multipart/form-data; boundary=" + String(repeating: "a", count: 71)) == nil)
    }

    @Test func settingsAreValidated() {
        var s = ServeSettings()
        #expect(s.problem == nil)
        s.port = 70000
        #expect(s.problem?.contains("--port") == true)
        s = ServeSettings(); s.timeout = .nan
        #expect(s.problem?.contains("--timeout") == true)
        s = ServeSettings(); s.queueCapacity = 0
        #expect(s.problem?.contains("--queue") == true)
    }
}

@Suite("fer serve: routes", .serialized) struct ServeRouteTests {
    @Test func pageHealthInfoAndMetrics() async throws {
        try await TestServer().test { client in
            try await client.execute(uri: "/", method: .get) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType]?.hasPrefix("text/html") == true)
                let page = String(buffer: r.body)
                #expect(page.contains("getUserMedia") && page.contains("/v1/stream") && page.contains("/v1/predict"))
                // Served whole by the binary: no script, style or image from elsewhere.
                #expect(!page.contains("src=\"http") && !page.contains("href=\"http") && !page.contains("@import"))
            }
            try await client.execute(uri: "/healthz", method: .get) { r in
                #expect(r.status == .ok)
                let body = try json(r.body)
                #expect(body["status"] as? String == "ok")
            }
            try await client.execute(uri: "/v1/info", method: .get) { r in
                let body = try json(r.body)
                #expect(body["classes"] as? [String] == Emotion.names)
            }
            try await client.execute(uri: "/v1/predict", method: .post, body: ByteBuffer(bytes: Samples.photo)) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/metrics", method: .get) { r in
                let text = String(buffer: r.body)
                #expect(r.headers[.contentType]?.hasPrefix("text/plain") == true)
                #expect(text.contains("fer_http_requests_total{route=\"/v1/predict\",status=\"200\"} 1"))
                #expect(text.contains("fer_faces_total 1"))
                #expect(text.contains("fer_http_request_duration_seconds_bucket"))
                #expect(text.contains("fer_batch_faces_bucket"))
            }
        }
    }

    @Test func predictsThePhotoRawAndAsAForm() async throws {
        try await TestServer().test { client in
            func check(_ r: TestResponse) throws {
                #expect(r.status == .ok)
                let body = try json(r.body)
                let faces = try #require(body["faces"] as? [[String: Any]])
                #expect(faces.count == 1)
                #expect(faces.first?["emotion"] as? String == "Happy")
                let p = try #require(faces.first?["probabilities"] as? [String: Double])
                #expect(Set(p.keys) == Set(Emotion.names))
                #expect(abs(p.values.reduce(0, +) - 1) < 1e-3)
                let box = try #require(faces.first?["box"] as? [String: Int])
                #expect((150...220).contains(box["x"] ?? 0) && (30...100).contains(box["y"] ?? 0))
                #expect(body["width"] as? Int == 512)
            }
            try await client.execute(uri: "/v1/predict", method: .post, headers: [.contentType: "image/png"], body: ByteBuffer(bytes: Samples.photo)) { try check($0) }
            let form = Array("--b0undary\r\nContent-Disposition: form-data; name=\"image\"; filename=\"astronaut.png\"\r\nContent-Type: image/png\r\n\r\n".utf8)
                + Samples.photo + Array("\r\n--b0undary--\r\n".utf8)
            try await client.execute(uri: "/v1/predict", method: .post, headers: [.contentType: "multipart/form-data; boundary=b0undary"],
                                     body: ByteBuffer(bytes: form)) { try check($0) }
        }
    }

    /// A large JPEG is decoded at half size for the detector; the answer is in its own pixels.
    @Test func aLargeJPEGIsAnsweredInItsOwnPixels() async throws {
        let big = try Image.decode(Samples.photo, channels: 3).resized(width: 1536, height: 1536).encoded(".jpg")
        try await TestServer().test { client in
            try await client.execute(uri: "/v1/predict", method: .post, body: ByteBuffer(bytes: big)) { r in
                #expect(r.status == .ok)
                let body = try json(r.body)
                #expect(body["width"] as? Int == 1536 && body["height"] as? Int == 1536)
                let box = try #require((body["faces"] as? [[String: Any]])?.first?["box"] as? [String: Int])
                // The portrait's face, at 3x the 512-pixel sample's (150...220, 30...100).
                #expect((450...660).contains(box["x"] ?? 0) && (90...300).contains(box["y"] ?? 0), "\(box)")
            }
            try await client.execute(uri: "/v1/predict?annotate=1", method: .post, body: ByteBuffer(bytes: big)) { r in
                let image = try Image.decode(Array(buffer: r.body), channels: 3)
                #expect(image.width == 1536)  // drawn on the full-size photo
            }
        }
    }

    @Test func annotatedImageAndFaceCrops() async throws {
        try await TestServer().test { client in
            try await client.execute(uri: "/v1/predict?annotate=1", method: .post, body: ByteBuffer(bytes: Samples.photo)) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "image/png")
                let image = try Image.decode(Array(buffer: r.body), channels: 3)
                #expect(image.width == 512 && image.height == 512)
            }
            // ?explain=1: each face's Grad-CAM heat map (192 x 220 each, side by side) as a PNG.
            try await client.execute(uri: "/v1/predict?explain=1", method: .post, body: ByteBuffer(bytes: Samples.photo)) { r in
                #expect(r.status == .ok && r.headers[.contentType] == "image/png")
                let image = try Image.decode(Array(buffer: r.body), channels: 3)
                #expect(image.height == 220 && image.width > 0 && image.width % 192 == 0, "\(image.width)x\(image.height)")
            }
            try await client.execute(uri: "/v1/predict?explain=1&annotate=1", method: .post, body: ByteBuffer(bytes: Samples.photo)) { r in
                #expect(r.status == .badRequest)
            }
            // ?crop=1 classifies the image whole, as `fer predict --crop` does.
            try await client.execute(uri: "/v1/predict?crop=1", method: .post, body: ByteBuffer(bytes: Samples.faceCrop)) { r in
                let body = try json(r.body)
                #expect((body["faces"] as? [[String: Any]])?.first?["emotion"] as? String == "Happy")
                #expect((body["note"] as? String)?.contains("face crop") == true)
            }
        }
    }

    @Test func badRequestsGetJSONErrorsWithTheRightStatus() async throws {
        try await TestServer { $0.maxBodyBytes = 200_000; $0.maxPixels = 300 * 300 }.test { client in
            func expectError(_ uri: String, _ body: [UInt8], _ headers: HTTPFields = [:], _ status: HTTPResponse.Status, _ words: String) async throws {
                try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(bytes: body)) { r in
                    #expect(r.status == status, "\(uri) \(words)")
                    #expect(r.headers[.contentType] == "application/json")
                    let message = try json(r.body)["error"] as? String ?? ""
                    #expect(message.contains(words), "\(message)")
                }
            }
            try await expectError("/v1/predict", [], [:], .badRequest, "empty")
            try await expectError("/v1/predict", Array("hello".utf8), [.contentType: "text/plain"], .unsupportedMediaType, "not a JPEG")
            let png = try Image(width: 64, height: 64, channels: 3, fill: 7).encoded(".png")
            try await expectError("/v1/predict", Array(png.prefix(60)), [:], .unprocessableContent, "not a readable image")
            try await expectError("/v1/predict", [UInt8](repeating: 0, count: 200_001), [:], .contentTooLarge, "limit")
            let big = try Image(width: 400, height: 400, channels: 1, fill: 1).encoded(".png")
            try await expectError("/v1/predict", big, [:], .contentTooLarge, "400x400 pixels")
            try await expectError("/v1/predict?annotate=maybe", png, [:], .badRequest, "annotate")
            try await expectError("/v1/predict", Array("--zz\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--zz--\r\n".utf8),
                                  [.contentType: "multipart/form-data; boundary=zz"], .badRequest, "no file")
            try await expectError("/v1/predict", Array("--zz\r\nbroken".utf8), [.contentType: "multipart/form-data; boundary=zz"], .badRequest, "malformed")
            try await client.execute(uri: "/v1/predict", method: .get) { r in
                #expect(r.status == .methodNotAllowed)
                #expect(r.headers[.allow] == "POST")
            }
            try await client.execute(uri: "/v2/nothing", method: .get) { r in
                #expect(r.status == .notFound)
                let body = try json(r.body)
                #expect(body["status"] as? Int == 404)
            }
        }
    }

    @Test func aFullQueueAnswers503AndEveryJobIsAnsweredOnce() async throws {
        let server = try TestServer { $0.queueCapacity = 1; $0.maxBatchImages = 1 }
        defer { server.queue.stop() }
        let image = try Samples.image()
        let answers = Counter()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    do { _ = try await server.queue.analyze(image, asCrop: false); answers.add("ok") } catch let e as ServeError {
                        #expect(e.status == .serviceUnavailable && e.retryAfter == 1)
                        answers.add("busy")
                    } catch { answers.add("other") }
                }
            }
        }
        #expect(answers.count("ok") >= 1)
        #expect(answers.count("busy") >= 1)
        #expect(answers.count("ok") + answers.count("busy") == 40)
        #expect(server.metrics.text.contains("fer_errors_total{kind=\"busy\"}"))
    }

    @Test func anImageThatWaitsPastTheTimeoutIsRefused() async throws {
        let server = try TestServer { $0.timeout = 1e-9 }
        defer { server.queue.stop() }
        await #expect(throws: ServeError.self) { _ = try await server.queue.analyze(try Samples.image(), asCrop: false) }
        #expect(server.metrics.text.contains("fer_errors_total{kind=\"timeout\"} 1"))
    }

    @Test func webSocketAnswersEveryFrameAndSurvivesBadOnes() async throws {
        let replies = Counter()
        _ = try await TestServer().test(.live) { client in
            try await client.ws("/v1/stream") { inbound, outbound, _ in
                try await outbound.write(.binary(ByteBuffer(bytes: Samples.photo)))
                try await outbound.write(.text("not an image"))
                try await outbound.write(.binary(ByteBuffer(bytes: [1, 2, 3])))
                try await outbound.write(.binary(ByteBuffer(bytes: Samples.photo)))
                var n = 0
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message,
                          let body = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { continue }
                    if let faces = body["faces"] as? [[String: Any]] { replies.add(faces.first?["emotion"] as? String ?? "none") }
                    if body["error"] != nil { replies.add("error") }
                    n += 1
                    if n == 4 { break }
                }
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
        #expect(replies.count("Happy") == 2)
        #expect(replies.count("error") == 2)
    }

    @Test func webSocketAnswersEveryHostileFrameAndStaysOpen() async throws {
        var rng = SplitMix64(seed: 77)
        let png = try Image(width: 96, height: 80, channels: 3, fill: 60).encoded(".png")
        var frames: [[UInt8]] = []
        for i in 0..<40 {
            var f = png
            switch i % 4 {
            case 0: for _ in 0..<6 { f[Int(rng.next() % UInt64(f.count))] = UInt8(rng.next() % 256) }
            case 1: f = Array(f.prefix(Int(rng.next() % UInt64(f.count))))
            case 2: f = (0..<Int(rng.next() % 300)).map { _ in UInt8(rng.next() % 256) }
            default: f = png
            }
            frames.append(f)
        }
        let answers = Counter()
        let sent = frames
        _ = try await TestServer().test(.live) { client in
            try await client.ws("/v1/stream") { inbound, outbound, _ in
                var iterator = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                for f in sent {
                    try await outbound.write(.binary(ByteBuffer(bytes: f)))
                    guard case .text(let text) = try await iterator.next(),
                          let body = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { answers.add("none"); continue }
                    if body["faces"] != nil { answers.add("faces") }
                    if let status = body["status"] as? Int { answers.add(status < 500 ? "4xx" : "5xx") }
                }
                try await outbound.close(.normalClosure, reason: nil)
            }
        }
        #expect(answers.total == frames.count)
        #expect(answers.count("none") == 0 && answers.count("5xx") == 0)
        #expect(answers.count("faces") >= 10)
    }
}

/// Seeded hostile uploads against the routes: every one is answered, with 200 or a 4xx and a JSON
/// error, never a 5xx or a crash.
@Suite("fer serve: fuzzing", .serialized) struct ServeFuzzTests {
    @Test func hostileUploadsNeverGet5xx() async throws {
        var rng = SplitMix64(seed: 2026)
        let png = try Image(width: 160, height: 120, channels: 3, fill: 128).encoded(".png")
        let jpeg = try Samples.image().resized(width: 160, height: 160).encoded(".jpg")
        let types = ["image/png", "image/jpeg", "text/plain", "application/json", "multipart/form-data; boundary=q", "multipart/form-data",
                     "multipart/form-data; boundary=", "", "image/webp; charset=\u{1}", "application/octet-stream"]
        var generated: [(String, [UInt8], String)] = []
        for i in 0..<240 {
            let base = i % 2 == 0 ? png : jpeg
            var body = base
            switch i % 6 {
            case 0: for _ in 0..<(1 + Int(rng.next() % 8)) { body[Int(rng.next() % UInt64(body.count))] = UInt8(rng.next() % 256) }
            case 1: body = Array(body.prefix(Int(rng.next() % UInt64(body.count))))
            case 2: body = (0..<Int(rng.next() % 512)).map { _ in UInt8(rng.next() % 256) }
            case 3: body = Array("--q\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n".utf8) + Array(body.prefix(Int(rng.next() % UInt64(body.count))))
                    + (rng.next() % 2 == 0 ? Array("\r\n--q--\r\n".utf8) : [])
            case 4:  // header fields that claim huge or zero sizes
                if body.count > 24, i % 2 == 0 { for k in 16..<24 { body[k] = UInt8(rng.next() % 256) } }
                else if body.count > 200 { for k in 150..<170 { body[k] = 0xFF } }
            default: body.insert(contentsOf: (0..<Int(rng.next() % 16)).map { _ in UInt8(rng.next() % 256) }, at: 0)
            }
            let query = ["", "?annotate=1", "?crop=1", "?annotate=x", "?crop=0&annotate=0", "?explain=1"][Int(rng.next() % 6)]
            generated.append(("/v1/predict" + query, body, types[Int(rng.next() % UInt64(types.count))]))
        }
        let cases = generated
        let statuses = Counter()
        try await TestServer { $0.maxPixels = 4_000_000 }.test { client in
            for (uri, body, type) in cases {
                let headers: HTTPFields = type.isEmpty ? [:] : [.contentType: type]
                try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(bytes: body)) { r in
                    statuses.add("\(r.status.code)")
                    #expect(r.status.code < 500, "\(uri) \(type) \(body.count) bytes -> \(r.status)")
                    if r.status != .ok {
                        #expect(r.headers[.contentType] == "application/json")
                        #expect((try? json(r.body)["error"] as? String)?.isEmpty == false)
                    }
                }
            }
        }
        print("serve fuzz: \(cases.count) cases, statuses \(statuses.summary)")
        #expect(statuses.total == cases.count)
    }
}

/// A thread-safe tally for tests.
final class Counter: @unchecked Sendable {  // every access holds `lock`
    private var counts: [String: Int] = [:]
    private let lock = NSLock()
    func add(_ key: String) { lock.lock(); counts[key, default: 0] += 1; lock.unlock() }
    func count(_ key: String) -> Int { lock.lock(); defer { lock.unlock() }; return counts[key] ?? 0 }
    var total: Int { lock.lock(); defer { lock.unlock() }; return counts.values.reduce(0, +) }
    var summary: String { lock.lock(); defer { lock.unlock() }; return counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") }
}

@Suite("fer serve: the command", .serialized) struct ServeCommandTests {
    @Test func servesUntilCtrlCThenExitsCleanly() async throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Paths.ferBinary)
        p.arguments = ["serve", "--port", "0", "--model", "fast"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        // The first line names the address: "fer serve: http://127.0.0.1:PORT/ (...)".
        var line = ""
        while !line.contains("\n"), let byte = try out.fileHandleForReading.read(upToCount: 1), !byte.isEmpty {
            line += String(decoding: byte, as: UTF8.self)
        }
        let url = try #require(line.split(separator: " ").first { $0.hasPrefix("http://") }.map(String.init), "\(line)")
        #expect(url.hasPrefix("http://127.0.0.1:"))
        #expect(line.contains("model fast"))
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url + "healthz"), timeout: .seconds(30))
        #expect(response.status == .ok)
        kill(p.processIdentifier, SIGINT)
        for _ in 0..<100 where p.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!p.isRunning)
        #expect(p.terminationStatus == 0)
    }

    @Test func badSettingsAreOneErrorLine() throws {
        for (args, words) in [(["--port", "70000"], "--port"), (["--max-batch", "0"], "--max-batch"), (["--timeout", "-1"], "--timeout"),
                              (["--queue", "0"], "--queue"), (["--scale-factor", "1.2"], "--scale-factor")] {
            let r = try run(Paths.ferBinary, ["serve"] + args)
            #expect(r.status == 1, "\(args)")
            #expect(r.stderr.hasPrefix("error:") && r.stderr.contains(words), "\(args): \(r.stderr)")
        }
    }
}
