import Foundation
import Glibc
import HTTPTypes
import HummingbirdTesting
import Testing
@testable import FERServing
#if canImport(Glibc)
#endif

/// A plain TCP client for what an HTTP client library will not send: garbage, half a header, a body
/// a byte at a time.
final class RawConnection: @unchecked Sendable {  // used by one test at a time
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads for at most `seconds`, until the server closes the connection or `done` holds for what
    /// came; the bytes, the seconds that took, and whether the connection closed.
    func read(within seconds: Double, until done: (String) -> Bool = { _ in false }) -> (text: String, seconds: Double, closed: Bool, bytes: [UInt8]) {
        let started = Date()
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        func result(_ closed: Bool) -> (String, Double, Bool, [UInt8]) { (String(decoding: received, as: UTF8.self), Date().timeIntervalSince(started), closed, received) }
        while Date().timeIntervalSince(started) < seconds {
            var tv = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 {
                received += buffer[0..<n]
                if done(String(decoding: received, as: UTF8.self)) { return result(false) }
            } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) {
                return result(true)
            }
        }
        return result(false)
    }

    /// Everything the server sends until it closes the connection; nil when it is still open after `seconds`.
    /// The blocking reads run on a thread of their own: the in-process server answers on Swift's
    /// cooperative threads, which a test must not hold.
    func readToClose(within seconds: Double) async -> (text: String, seconds: Double)? {
        let r = await offPool { self.read(within: seconds) }
        return r.closed ? (r.text, r.seconds) : nil
    }

    /// One whole answer (headers and Content-Length bytes of body) on a connection that stays open.
    func readAnswer(within seconds: Double = 30) async -> String {
        await offPool {
            self.read(within: seconds) { text in
                guard let end = text.range(of: "\r\n\r\n"),
                      let line = text[..<end.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
                      let length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) else { return false }
                return text[end.upperBound...].utf8.count >= length
            }.text
        }
    }

    private func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in Thread.detachNewThread { c.resume(returning: body()) } }
    }
}

extension TestServer {
    /// Runs `body` against the server on a real socket (its port).
    func live<T: Sendable>(_ body: @escaping @Sendable (Int) async throws -> T) async throws -> T {
        try await test(.live) { client in try await body(try #require(client.port)) }
    }
}

extension RawConnection {
    /// Opens a WebSocket on /v1/stream; the server's 101 answer.
    func upgrade() async -> String {
        send("GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        return await withCheckedContinuation { c in Thread.detachNewThread { c.resume(returning: self.read(within: 10) { $0.contains("\r\n\r\n") }.text) } }
    }

    /// A client frame: `opcode`, `payload`, masked (as RFC 6455 requires of clients) or not.
    func frame(_ opcode: UInt8, _ payload: [UInt8] = [], masked: Bool = true) {
        let key: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        send([0x80 | opcode, (masked ? 0x80 : 0) | UInt8(payload.count)] + (masked ? key : [])
             + payload.enumerated().map { masked ? $0.element ^ key[$0.offset % 4] : $0.element })
    }

    /// Bytes until the server closes (nil: still open after `seconds`), read off the cooperative pool.
    func bytesToClose(within seconds: Double) async -> [UInt8]? {
        await withCheckedContinuation { c in Thread.detachNewThread { let r = self.read(within: seconds); c.resume(returning: r.closed ? r.bytes : nil) } }
    }
}

/// Issue 37: a WebSocket is held open by data, not by pings, and a client that breaks the protocol
/// is closed as RFC 6455 says.
@Suite("fer serve: WebSocket deadlines and protocol", .serialized) struct ServeWebSocketTests {
    /// `body` on a WebSocket opened to a live server made with `settings` (its 101 answer checked).
    func onWebSocket(_ settings: (inout ServeSettings) -> Void = { _ in },
                     _ body: @escaping @Sendable (RawConnection) async throws -> Void) async throws {
        try await TestServer(settings).live { port in
            let c = try RawConnection(port: port)
            #expect(await c.upgrade().hasPrefix("HTTP/1.1 101"))
            try await body(c)
        }
    }

    @Test func pingsAloneDoNotHoldAConnection() async throws {
        try await onWebSocket({ $0.idleTimeout = 1 }) { c in
            let started = Date()
            var closed: [UInt8]?
            while closed == nil && Date().timeIntervalSince(started) < 8 {
                c.frame(0x9)  // ping
                closed = await c.bytesToClose(within: 0.3)
            }
            let bytes = try #require(closed, "a client sending pings alone held its WebSocket for 8 s")
            #expect(Date().timeIntervalSince(started) < 4)
            #expect(bytes.suffix(4) == [0x88, 0x02, 0x03, 0xE9], "a close frame with 1001 (going away): \(bytes.suffix(8))")
        }
    }

    @Test func dataFramesKeepItOpenAndSilenceClosesIt() async throws {
        try await onWebSocket({ $0.idleTimeout = 1 }) { c in
            let started = Date()
            while Date().timeIntervalSince(started) < 3 {
                c.frame(0x2, Array("not an image".utf8))  // answered with an error message, and data all the same
                #expect(await c.bytesToClose(within: 0.5) == nil, "closed while data frames were arriving")
            }
            #expect(await c.bytesToClose(within: 5) != nil, "a silent WebSocket stayed open")
        }
    }

    @Test func anUnmaskedClientFrameClosesWith1002() async throws {
        try await onWebSocket { c in
            c.frame(0x2, [1, 2, 3], masked: false)
            let bytes = try #require(await c.bytesToClose(within: 10), "the connection stayed open after an unmasked frame")
            #expect(bytes.suffix(4) == [0x88, 0x02, 0x03, 0xEA], "a close frame with 1002 (protocol error): \(bytes)")
        }
    }
}

func metricValue(_ text: String, _ series: String) -> Double? {
    text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
}

@Suite("fer serve: connections (deadlines, cap, malformed requests)", .serialized) struct ServeConnectionTests {
    @Test func requestsThatAreNotHTTPGetA400JSONAnswerAndTheConnectionCloses() async throws {
        try await TestServer { $0.idleTimeout = 30 }.live { port in
            let cases: [(String, [UInt8], String)] = [
                ("garbage", Array("GARBAGE\r\n\r\n".utf8), "400 Bad Request"),
                ("an unknown method", Array("FOO / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), "400 Bad Request"),
                ("a negative Content-Length", Array("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n".utf8), "400 Bad Request"),
                ("HTTP/2's preface", Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8), "400 Bad Request"),
                ("a 100 KB header", Array("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 100_000))\r\n\r\n".utf8),
                 "431 Request Header Fields Too Large"),
            ]
            for (name, bytes, status) in cases {
                let c = try RawConnection(port: port)
                c.send(bytes)
                let answer = try #require(await c.readToClose(within: 30), "\(name): the connection stayed open")
                #expect(answer.text.hasPrefix("HTTP/1.1 \(status)\r\n"), "\(name): \(answer.text.prefix(80))")
                #expect(answer.text.contains("Content-Type: application/json"), "\(name)")
                let body = try #require(answer.text.components(separatedBy: "\r\n\r\n").last)
                let object = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], "\(name): \(body)")
                #expect((object["error"] as? String)?.isEmpty == false, "\(name)")
            }
            // A bad chunk size inside a body: 400 too, from the route.
            let c = try RawConnection(port: port)
            c.send("POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n")
            let answer = try #require(await c.readToClose(within: 30))
            #expect(answer.text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(answer.text.prefix(80))")
            #expect(answer.text.contains("chunk size"))
        }
    }

    @Test func slowAndSilentClientsAreCutOffAtTheirDeadlines() async throws {
        let server = try TestServer { $0.idleTimeout = 1; $0.headerTimeout = 1; $0.requestTimeout = 2; $0.timeout = 1 }
        try await server.live { port in
            // Nothing at all: closed at the idle deadline, without an answer.
            let silent = try RawConnection(port: port)
            let closed = try #require(await silent.readToClose(within: 15), "a silent connection stayed open")
            #expect(closed.text.isEmpty && closed.seconds > 0.5 && closed.seconds < 10, "\(closed)")
            // Half a header: 408 at the header deadline.
            let half = try RawConnection(port: port)
            half.send("GET /healthz HTTP/1.1\r\nHo")
            let timedOut = try #require(await half.readToClose(within: 30), "half a header held the connection")
            #expect(timedOut.text.hasPrefix("HTTP/1.1 408 Request Timeout\r\n") && timedOut.text.contains("headers"), "\(timedOut.text)")
            // A header a byte at a time, each byte within the idle deadline: the header deadline still holds.
            let header = try RawConnection(port: port)
            let headerStarted = Date()
            var headerCut = false
            for byte in Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: yes\r\n".utf8) {
                header.send([byte])
                if let end = await header.readToClose(within: 0.3) {
                    #expect(end.text.hasPrefix("HTTP/1.1 408"))
                    headerCut = true
                    break
                }
            }
            #expect(headerCut && Date().timeIntervalSince(headerStarted) < 10, "a header sent a byte at a time was not cut off")
            // A body a byte at a time: 408 at the whole-request deadline.
            let dribble = try RawConnection(port: port)
            dribble.send("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
            let started = Date()
            var answer: (text: String, seconds: Double)?
            while answer == nil && Date().timeIntervalSince(started) < 20 {
                dribble.send("a")
                answer = await dribble.readToClose(within: 0.4)
            }
            let cut = try #require(answer, "a dribbled body held the connection for 20 s")
            #expect(cut.text.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"), "\(cut.text)")
            #expect(Date().timeIntervalSince(started) < 10)
            // A kept-alive connection serves a second request, then closes when idle.
            let keep = try RawConnection(port: port)
            keep.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await keep.readAnswer().hasPrefix("HTTP/1.1 200 OK"))
            keep.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await keep.readAnswer().hasPrefix("HTTP/1.1 200 OK"))
            #expect(await keep.readToClose(within: 15) != nil, "an idle kept-alive connection stayed open")
        }
        let text = server.metrics.text
        for reason in ["idle", "header_timeout", "request_timeout"] {
            #expect((metricValue(text, "fer_connections_closed_total{reason=\"\(reason)\"}") ?? 0) >= 1, "\(reason)")
        }
        #expect(metricValue(text, "fer_errors_total{kind=\"server\"}") == nil, "a client's fault was counted as the server's")
    }

    @Test func connectionsPastTheCapAreRefusedWith503AndCounted() async throws {
        let server = try TestServer { $0.maxConnections = 3 }
        try await server.live { port in
            // The test framework's own client may hold one of the three: fill up to the cap.
            var open: [RawConnection] = []
            while (metricValue(server.metrics.text, "fer_connections_open") ?? 0) < 3 && open.count < 3 {
                open.append(try RawConnection(port: port))
                try await Task.sleep(nanoseconds: 200_000_000)
            }
            #expect(metricValue(server.metrics.text, "fer_connections_open") == 3)
            let refused = try RawConnection(port: port)
            let answer = try #require(await refused.readToClose(within: 30), "the connection past the cap stayed open")
            #expect(answer.text.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n") && answer.text.contains("Retry-After: 1"), "\(answer.text)")
            // One closes: a new client is served again.
            open.removeLast()
            try await Task.sleep(nanoseconds: 300_000_000)
            let next = try RawConnection(port: port)
            next.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let served = try #require(await next.readToClose(within: 30))
            #expect(served.text.hasPrefix("HTTP/1.1 200 OK"))
            _ = open
        }
        #expect(metricValue(server.metrics.text, "fer_connections_refused_total") == 1)
    }

    @Test func aClientThatLeavesMidUploadIsNotAServerError() async throws {
        let server = try TestServer()
        try await server.live { port in
            let c = try RawConnection(port: port)
            c.send("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "a", count: 5000))
            try await Task.sleep(nanoseconds: 300_000_000)
        }
        let text = server.metrics.text
        #expect(metricValue(text, "fer_errors_total{kind=\"aborted\"}") == 1, "\(text)")
        #expect(metricValue(text, "fer_errors_total{kind=\"server\"}") == nil)
    }
}

@Suite("fer serve: the decoding budget") struct PixelBudgetTests {
    final class Probe: @unchecked Sendable {  // every access holds `lock`
        private let lock = NSLock()
        private var now = 0
        private(set) var peak = 0
        func enter(_ n: Int) { lock.lock(); now += n; peak = max(peak, now); lock.unlock() }
        func leave(_ n: Int) { lock.lock(); now -= n; lock.unlock() }
    }

    @Test func pixelsHeldAtOnceNeverPassTheCapacity() async throws {
        let budget = PixelBudget(capacity: 100, maxWaiting: 64, timeout: 600)  // a bound, not a wait: a busy machine is slow
        let probe = Probe()
        let sizes = [60, 60, 10, 90, 30, 30, 30, 100, 5, 5, 70, 40]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for size in sizes {
                group.addTask {
                    try await budget.withPixels(size) {
                        probe.enter(size)
                        try await Task.sleep(nanoseconds: 20_000_000)
                        probe.leave(size)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(probe.peak <= 100)
        #expect(probe.peak > 60, "small images should pass side by side")
        #expect(await budget.inUse == 0)
    }

    @Test func tooManyWaitingOrWaitingTooLongIs503() async throws {
        let budget = PixelBudget(capacity: 10, maxWaiting: 1, timeout: 0.3)
        let holder = Task { try await budget.withPixels(10) { try await Task.sleep(nanoseconds: 1_500_000_000) } }
        try await Task.sleep(nanoseconds: 100_000_000)
        let waiter = Task { try await budget.withPixels(5) { 1 } }
        try await Task.sleep(nanoseconds: 50_000_000)
        // The one waiting place is taken: refused at once.
        await #expect(throws: ServeError.self) { try await budget.withPixels(5) { 1 } }
        // The waiter gives up after the timeout, with 503.
        do {
            _ = try await waiter.value
            Issue.record("the waiter should have timed out")
        } catch let e as ServeError {
            #expect(e.status == .serviceUnavailable && e.message.contains("waited"))
        }
        try await holder.value
        #expect(try await budget.withPixels(10) { 7 } == 7)
    }
}
