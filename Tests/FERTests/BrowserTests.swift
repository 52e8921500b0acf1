import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOHTTP1
import Testing
@testable import FERIO
@testable import FERServing

/// The page in a real browser: Debian's headless Chromium, driven by chromedriver (WebDriver over
/// HTTP), with a fake camera that plays a y4m file made from the bundled photo. The page starts the
/// camera, streams frames over the WebSocket and shows the label; the test reads it from the page.
@Suite("fer serve: the page in a real browser", .serialized) struct BrowserTests {
    static let chromium = "/usr/bin/chromium"
    static let chromedriver = "/usr/bin/chromedriver"

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: chromedriver), "chromium-driver is not installed (scripts/test installs it)"))
    func cameraAndPhotoInHeadlessChromium() async throws {
        let dir = Paths.temporaryDirectory("browser")
        let y4m = (dir as NSString).appendingPathComponent("camera.y4m")
        try writeY4M(try Samples.image(), to: y4m, width: 640, height: 480, frames: 5)
        let screenshot = ProcessInfo.processInfo.environment["FER_SCREENSHOT"] ?? (dir as NSString).appendingPathComponent("page.png")

        try await TestServer().test(.live) { client in
            let serverPort = try #require(client.port)
            print("browser test: server on port \(serverPort)")
            let driver = try await WebDriver.start(args: [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,1000",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--use-file-for-fake-video-capture=\(y4m)",
            ], binary: Self.chromium, driver: Self.chromedriver)
            do {
                try await driver.navigate("http://127.0.0.1:\(serverPort)/")
                // The camera: start it, wait for a few answered frames.
                _ = try await driver.execute("document.getElementById('start').click(); return true;")
                let state = try await driver.waitFor("return (window.fer.frames >= 3 && window.fer.mode === 'camera') ? JSON.stringify(window.fer) : null", seconds: 90)
                let fer = try #require(try JSONSerialization.jsonObject(with: Data(state.utf8)) as? [String: Any])
                #expect(fer["emotion"] as? String == "Happy", "\(state)")
                #expect((fer["faces"] as? [Any])?.count == 1)
                #expect(fer["error"] is NSNull)
                let shown = try await driver.execute("return document.querySelector('#face0 .emotion').textContent")
                #expect(shown == "Face 1: Happy")
                let status = try await driver.execute("return document.getElementById('status').textContent")
                #expect(status.contains("FPS"), "\(status)")
                let png = try await driver.screenshot()
                try Data(png).write(to: URL(fileURLWithPath: screenshot))
                let shot = try Image.decode(png, channels: 3)
                #expect(shot.width > 800)

                // A photo: the file input posts it to /v1/predict.
                _ = try await driver.execute("document.getElementById('stop').click(); return true;")
                let input = try await driver.element("#photo")
                try await driver.sendKeys(input, Samples.photoPath)
                let photo = try await driver.waitFor("return window.fer.mode === 'photo' && window.fer.emotion ? window.fer.emotion : null", seconds: 60)
                #expect(photo == "Happy")
            } catch {
                await driver.quit()
                throw error
            }
            await driver.quit()
        }
    }
}

/// A y4m video (YUV 4:2:0) of `image` centred on a gray canvas: Chromium's fake camera plays it.
func writeY4M(_ image: Image, to path: String, width: Int, height: Int, frames: Int) throws {
    let scale = min(Double(width) / Double(image.width), Double(height) / Double(image.height))
    let w = Int(Double(image.width) * scale), h = Int(Double(image.height) * scale)
    let fitted = image.bgr.resized(width: w, height: h)
    var y = [UInt8](repeating: 128, count: width * height)
    var u = [UInt8](repeating: 128, count: width * height / 4), v = u
    let x0 = (width - w) / 2, y0 = (height - h) / 2
    for r in 0..<h {
        for c in 0..<w {
            let i = (r * w + c) * 3
            let b = Double(fitted.pixels[i]), g = Double(fitted.pixels[i + 1]), rr = Double(fitted.pixels[i + 2])
            let (row, col) = (r + y0, c + x0)
            y[row * width + col] = UInt8(max(0, min(255, 0.299 * rr + 0.587 * g + 0.114 * b)))
            if row % 2 == 0, col % 2 == 0 {
                let k = (row / 2) * (width / 2) + col / 2
                u[k] = UInt8(max(0, min(255, 128 - 0.168736 * rr - 0.331264 * g + 0.5 * b)))
                v[k] = UInt8(max(0, min(255, 128 + 0.5 * rr - 0.418688 * g - 0.081312 * b)))
            }
        }
    }
    var data = Data("YUV4MPEG2 W\(width) H\(height) F30:1 Ip A1:1 C420jpeg\n".utf8)
    for _ in 0..<frames { data.append(Data("FRAME\n".utf8)); data.append(contentsOf: y); data.append(contentsOf: u); data.append(contentsOf: v) }
    try data.write(to: URL(fileURLWithPath: path))
}

/// Just enough of the W3C WebDriver protocol to drive chromedriver.
struct WebDriver {
    let base: String
    let session: String
    let process: Process

    static func start(args: [String], binary: String, driver: String) async throws -> WebDriver {
        let port = Int.random(in: 20000..<40000)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: driver)
        p.arguments = ["--port=\(port)", "--allowed-ips=127.0.0.1"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let base = "http://127.0.0.1:\(port)"
        print("browser test: chromedriver on port \(port)")
        for _ in 0..<100 {
            if (try? await request("GET", base + "/status", nil))?["value"] != nil { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let caps: [String: Any] = ["capabilities": ["alwaysMatch": ["browserName": "chrome", "goog:chromeOptions": ["binary": binary, "args": args]]]]
        let answer = try await request("POST", base + "/session", caps)
        guard let value = answer["value"] as? [String: Any], let session = value["sessionId"] as? String else {
            p.terminate()
            throw WebDriverError("no session: \(answer)")
        }
        print("browser test: session \(session)")
        return WebDriver(base: base + "/session/" + session, session: session, process: p)
    }

    func navigate(_ url: String) async throws { _ = try await Self.request("POST", base + "/url", ["url": url]) }

    /// Runs `script` in the page and returns its result as text ("" for null).
    func execute(_ script: String) async throws -> String {
        let answer = try await Self.request("POST", base + "/execute/sync", ["script": script, "args": []])
        if let error = (answer["value"] as? [String: Any])?["error"] { throw WebDriverError("script failed: \(error) \(answer)") }
        switch answer["value"] {
        case let s as String: return s
        case let b as Bool: return b ? "true" : "false"
        case let n as NSNumber: return n.stringValue
        default: return ""
        }
    }

    /// Polls `script` until it returns a non-empty string.
    func waitFor(_ script: String, seconds: Double) async throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let v = try await execute(script)
            if !v.isEmpty { return v }
            try await Task.sleep(for: .milliseconds(250))
        }
        let state = (try? await execute("return JSON.stringify(window.fer)")) ?? "?"
        throw WebDriverError("timed out after \(seconds) s waiting for: \(script); page state: \(state)")
    }

    func element(_ css: String) async throws -> String {
        let answer = try await Self.request("POST", base + "/element", ["using": "css selector", "value": css])
        guard let v = answer["value"] as? [String: Any], let id = v.values.first as? String else { throw WebDriverError("no element \(css): \(answer)") }
        return id
    }

    func sendKeys(_ element: String, _ text: String) async throws {
        _ = try await Self.request("POST", base + "/element/\(element)/value", ["text": text])
    }

    func screenshot() async throws -> [UInt8] {
        let answer = try await Self.request("GET", base + "/screenshot", nil)
        guard let b64 = answer["value"] as? String, let data = Data(base64Encoded: b64) else { throw WebDriverError("no screenshot") }
        return Array(data)
    }

    func quit() async {
        _ = try? await Self.request("DELETE", base, nil)
        // SIGKILL and a bounded wait: Foundation's waitUntilExit spins off the main thread.
        kill(process.processIdentifier, SIGKILL)
        for _ in 0..<50 where process.isRunning { try? await Task.sleep(for: .milliseconds(100)) }
    }

    static func request(_ method: String, _ url: String, _ body: [String: Any]?) async throws -> [String: Any] {
        var r = HTTPClientRequest(url: url)
        r.method = .RAW(value: method)
        if let body {
            r.headers.add(name: "Content-Type", value: "application/json")
            r.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        }
        let response = try await HTTPClient.shared.execute(r, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return (try JSONSerialization.jsonObject(with: Data(Array(buffer: bytes))) as? [String: Any]) ?? [:]
    }
}

struct WebDriverError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
