import Foundation
import FERIO

/// Where `fer live` reads frames: a camera, a video file, or a network stream.
public enum LiveSource: Equatable, Sendable, CustomStringConvertible {
    case camera(Int)
    case file(String)
    case stream(String)

    /// URL schemes handed to FFmpeg.
    public static let schemes = ["rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp"]

    /// `--source`: a camera index, a stream URL, or a video file; anything else is an error that
    /// says why, before any work.
    public static func parse(_ text: String) throws -> LiveSource {
        if let i = Int(text) {
            guard i >= 0, i < 1000 else { throw LiveError.badSource(text, "a camera index is 0-999") }
            return .camera(i)
        }
        if let r = text.range(of: "://") {
            let scheme = text[..<r.lowerBound].lowercased()
            guard schemes.contains(scheme) else {
                throw LiveError.badSource(redacted(text), "unsupported scheme \(scheme):// (use \(schemes.map { $0 + "://" }.joined(separator: ", ")), a video file or a camera index)")
            }
            guard let url = URLComponents(string: text), let host = url.host, !host.isEmpty else {
                throw LiveError.badSource(redacted(text), "not a URL with a host (for example rtsp://192.168.1.20:554/stream)")
            }
            if let port = url.port, !(1...65535).contains(port) { throw LiveError.badSource(redacted(text), "port \(port) is not 1-65535") }
            return .stream(text)
        }
        try DataError.checkReadable(text)
        return .file(text)
    }

    /// How the source is named in output, logs and errors: a stream URL's password is shown as
    /// `***` (`rtsp://user:***@host/...`), never printed.
    public var description: String {
        switch self {
        case .camera(let i): return "camera \(i)"
        case .file(let p): return p
        case .stream(let u): return Self.redacted(u)
        }
    }

    /// `text` with the password of every URL in it (`scheme://user:password@`) replaced by `***`.
    public static func redacted(_ text: String) -> String {
        var out = "", rest = Substring(text)
        while let r = rest.range(of: "://") {
            out += rest[..<r.upperBound]
            rest = rest[r.upperBound...]
            // The authority ends at the first '/', '?', '#' or white space; its user part at the last '@'.
            let end = rest.firstIndex { "/?# \n\t\"'".contains($0) } ?? rest.endIndex
            let authority = rest[..<end]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                out += authority[...colon] + "***" + authority[at...]
                rest = rest[end...]
            }
        }
        return out + rest
    }

    /// A camera that is not there is an error at once (a stream that refuses is retried instead:
    /// it may come back).
    public func checkPresent() throws {
        if case .camera(let i) = self, !FileManager.default.fileExists(atPath: "/dev/video\(i)") {
            throw VideoError.cannotOpen("camera \(i)", "no /dev/video\(i); list cameras with `ls /dev/video*`")
        }
    }

    /// Files end; cameras and streams are live, and are reopened when they fail.
    public var isLive: Bool { if case .file = self { return false } else { return true } }
}

public enum LiveError: Error, CustomStringConvertible {
    case badSource(String, String)
    public var description: String {
        switch self { case .badSource(let s, let why): return "--source \(s): \(why)" }
    }
}

/// One frame as the feed captured it.
public struct LiveFrame {
    public var image: Image
    /// The feed's frame number (frames it read, counted from 0), and when it was read.
    public var index: Int
    public var captured: DispatchTime
}

/// Something that happened to a feed, for the log: an error (with the retry's delay), a reconnection, the end of a file.
public struct LiveEvent: Encodable, Sendable {
    public var source: String
    public var event: String
    public var message: String?
    public var retryIn: Double?
}

/// A source read on its own thread that keeps only the newest frame: a consumer slower than the
/// source takes the newest frame each time and never builds a backlog, so the answer's latency
/// stays flat however slow the model. A live source that fails, stalls (the read deadline) or
/// refuses is reopened with backoff (0.5 s doubling to 10 s), each failure reported as an event;
/// a file is read at its own frame rate, as a camera would deliver it, and ends.
public final class LiveFeed: @unchecked Sendable {  // state behind `lock`; the reader thread owns the VideoReader
    public let source: LiveSource
    let width, height: Int
    let openTimeout, readTimeout: Double
    /// Frames of more pixels than this are refused (a source that announces them) or skipped.
    let maxPixels: Int
    private let lock = NSLock()
    private var newest: LiveFrame?
    private var lastTaken = -1
    private var pending: [LiveEvent] = []
    private var stopping = false, finished = false, started = false
    private var readCount = 0, reconnectCount = 0
    private var failureMessage: String?
    private let done = DispatchSemaphore(value: 0)

    public init(_ source: LiveSource, width: Int = 640, height: Int = 480, openTimeout: Double = 10, readTimeout: Double = 5,
                maxPixels: Int = ImageHeader.defaultMaxPixels) {
        self.source = source
        self.maxPixels = maxPixels
        self.width = width; self.height = height
        self.openTimeout = openTimeout; self.readTimeout = readTimeout
    }

    /// Starts the reader thread.
    public func start() {
        started = true
        let t = Thread { [self] in self.readLoop(); self.done.signal() }
        t.name = "fer live \(source)"
        t.start()
    }

    /// The newest frame not handed out before, if any.
    public func take() -> LiveFrame? {
        lock.lock(); defer { lock.unlock() }
        guard let f = newest, f.index > lastTaken else { return nil }
        lastTaken = f.index
        return f
    }

    /// Events since the last call.
    public func events() -> [LiveEvent] {
        lock.lock(); defer { lock.unlock() }
        defer { pending = [] }
        return pending
    }

    /// True once a file has ended (and its last frame was taken) or the feed was stopped.
    public var ended: Bool { lock.lock(); defer { lock.unlock() }; return finished && (newest.map { $0.index <= lastTaken } ?? true) }
    /// Frames read from the source, and times it was reopened after a failure.
    public var framesRead: Int { lock.lock(); defer { lock.unlock() }; return readCount }
    public var reconnects: Int { lock.lock(); defer { lock.unlock() }; return reconnectCount }
    /// Why a file could not be read (it cannot be opened, or a read failed), if so: a file is not
    /// retried, and the command says so in its exit status.
    public var failure: String? { lock.lock(); defer { lock.unlock() }; return failureMessage }

    /// A file source failing: reported once, remembered, and the reader stops.
    private func fail(_ error: Error) {
        report("error", "\(error)")
        lock.lock(); failureMessage = "\(error)"; lock.unlock()
    }

    /// Stops the reader and waits for it (at most its open and read deadlines); again, returns at once.
    public func stop() { Self.stop([self], within: readTimeout + openTimeout + 1) }

    /// Asks every feed to stop at once, then waits for them all under one deadline: a reader stuck
    /// in a stream's open (FFmpeg answers only at its own deadline) is left to end with the process,
    /// so Ctrl-C takes `seconds` at most however many sources hang.
    public static func stop(_ feeds: [LiveFeed], within seconds: Double) {
        let waiting = feeds.filter { f in
            f.lock.lock(); defer { f.lock.unlock() }
            let first = !f.stopping
            f.stopping = true
            return first && f.started
        }
        let deadline = DispatchTime.now() + seconds
        for f in waiting { _ = f.done.wait(timeout: deadline) }
    }

    private var shouldStop: Bool { lock.lock(); defer { lock.unlock() }; return stopping }

    private func report(_ event: String, _ message: String? = nil, retryIn: Double? = nil) {
        lock.lock(); pending.append(LiveEvent(source: source.description, event: event, message: message, retryIn: retryIn)); lock.unlock()
    }

    private func open() throws -> VideoReader {
        switch source {
        case .camera(let i): return try VideoReader(camera: i, width: width, height: height)
        case .file(let p): return try VideoReader(path: p, maxPixels: maxPixels)
        case .stream(let u): return try VideoReader(url: u, openTimeout: openTimeout, readTimeout: readTimeout, maxPixels: maxPixels)
        }
    }

    /// Sleeps up to `seconds`, waking early when stopped.
    private func pause(_ seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while !shouldStop, Date() < end { Thread.sleep(forTimeInterval: 0.05) }
    }

    private func readLoop() {
        defer { lock.lock(); finished = true; lock.unlock() }
        var backoff = 0.5, failed = false
        while !shouldStop {
            let reader: VideoReader
            do {
                reader = try open()
            } catch {
                guard source.isLive else { fail(error); return }
                report("error", "\(error)", retryIn: backoff)
                failed = true
                pause(backoff)
                backoff = min(backoff * 2, 10)
                continue
            }
            if failed {
                lock.lock(); reconnectCount += 1; lock.unlock()
                report("reconnected")
                failed = false
            }
            backoff = 0.5
            let started = Date()
            var n = 0
            while !shouldStop {
                let image: Image?
                do { image = try reader.read() } catch {
                    guard source.isLive else { fail(error); return }  // a file read again would start over
                    image = nil; report("error", "\(error)", retryIn: backoff); failed = true; break
                }
                guard let image else {
                    guard source.isLive else { report("ended"); return }
                    report("error", "\(source): the stream ended or stalled", retryIn: backoff)
                    failed = true
                    break
                }
                if !source.isLive {  // a file at its own pace, like a camera
                    let due = started.addingTimeInterval(Double(n) / reader.fps)
                    let wait = due.timeIntervalSinceNow
                    if wait > 0 { pause(wait) }  // wakes when stopped (a file may claim 0.001 frames a second)
                }
                lock.lock()
                newest = LiveFrame(image: image, index: readCount, captured: .now())
                readCount += 1
                lock.unlock()
                n += 1
            }
            if failed { pause(backoff); backoff = min(backoff * 2, 10) }
        }
    }
}
