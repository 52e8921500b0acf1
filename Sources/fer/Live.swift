import ArgumentParser
import FERIO
import FERModels
import FERTraining
import FERVision
import Foundation

struct Live: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cameras, IP cameras and video files, live: boxes, labels and FPS in a window (q or Esc quits), or JSON lines with --headless.",
        discussion: """
        --source is a camera index (0 is /dev/video0), a stream URL (rtsp://, rtsps://, http(s):// MJPEG,
        rtmp://, udp://, tcp://; read through FFmpeg) or a video file (played at its own frame rate);
        repeat it to watch several at once (the window tiles them; the faces of all sources are
        classified in one batch). Each source always gives its newest frame, so a slow machine drops
        frames instead of falling behind. A stream that fails, stalls or refuses is retried with backoff
        (0.5 s doubling to 10 s) and reported, while the other sources go on. Ctrl-C prints a summary
        and exits 0.
        --headless prints one JSON line per processed frame per source:
          {"faces":[{"box":{...},"confidence":..,"emotion":"Happy","probabilities":{...},"track":1}],
           "fps":9.9,"frame":41,"latencyMs":38.2,"source":"rtsp://...","time":4.12}
        and a line per event ({"event":"error","message":...,"retryIn":1,"source":...}; "reconnected";
        "ended"), and at the end {"summary":[...]}.
        """)

    @Option(help: ArgumentHelp("A camera index, a stream URL (rtsp://, http(s)://...) or a video file; repeatable.", valueName: "source"))
    var source: [String] = []
    @Option(help: .hidden) var camera: Int?  // the old spelling of --source N
    @Option(help: "Camera capture width, pixels.") var cameraWidth: Int = 640
    @Option(help: "Camera capture height, pixels.") var cameraHeight: Int = 480
    @Flag(help: "No window: one JSON line per processed frame per source on standard output.") var headless = false
    @Option(help: "Stop once every source has given this many frames (or ended).") var maxFrames: Int?
    @Option(help: "Process at most this many frames per second of each source (default: as many as the machine can).") var maxFps: Double?
    @Option(help: "Streams: seconds to wait for a stream to open, and for each frame, before retrying.") var streamTimeout: Double = 10
    @OptionGroup var face: FaceOptions
    @Option(help: "Smoothing: weight of the newest frame (1 = none).") var smoothing: Float = 0.4
    @Option(help: "Search the whole frame every N frames; in between only around tracked faces.") var fullScan: Int = 10

    struct Line: Encodable {
        var source: String; var frame: Int; var time: Double; var fps: Double; var latencyMs: Double; var faces: [FaceResult]
    }

    var sources: [String] { source + (camera.map { ["\($0)"] } ?? []) }

    func validate() throws {
        try validateTracking(smoothing: smoothing, fullScan: fullScan, maxFrames: maxFrames)
        if let camera, !(0..<1000).contains(camera) { throw ValidationError("--camera must be a device number, 0-999; got \(camera)") }
        guard (16...8192).contains(cameraWidth), (16...8192).contains(cameraHeight) else {
            throw ValidationError("--camera-width and --camera-height must be 16-8192 pixels, got \(cameraWidth)x\(cameraHeight)")
        }
        if let f = maxFps { guard f.isFinite, f > 0, f <= 1000 else { throw ValidationError("--max-fps must be above 0 and at most 1000, got \(f)") } }
        guard streamTimeout.isFinite, streamTimeout >= 0.5, streamTimeout <= 600 else {
            throw ValidationError("--stream-timeout must be 0.5-600 seconds, got \(streamTimeout)")
        }
        guard sources.count <= 16 else { throw ValidationError("at most 16 sources at once, got \(sources.count)") }
        for s in sources { do { _ = try LiveSource.parse(s) } catch { throw ValidationError("\(error)") } }
    }

    func run() throws {
        if camera != nil { FileHandle.standardError.write(Data("note: --camera N is now --source N (it still works in this release)\n".utf8)) }
        let parsed = try (sources.isEmpty ? ["0"] : sources).map(LiveSource.parse)
        for p in parsed { try p.checkPresent() }
        installInterruptHandler("Ctrl-C: stopping (again to quit now)")
        let analyzer = try face.analyzer()
        let feeds = parsed.map { LiveFeed($0, width: cameraWidth, height: cameraHeight, openTimeout: streamTimeout, readTimeout: min(streamTimeout, 5),
                                       maxPixels: analyzer.reading.maxPixels) }
        var settings = LiveSession.Settings()
        (settings.maxFrames, settings.maxFps, settings.smoothing, settings.fullScan) = (maxFrames, maxFps, smoothing, fullScan)
        let session = LiveSession(feeds, analyzer: analyzer, settings: settings)
        var shown = [Image?](repeating: nil, count: feeds.count)
        try session.run(shouldStop: { StopFlag.shared.isSet }, event: { e in
            if headless { return try emitLine(e) }
            FileHandle.standardError.write(Data("\(e.source): \(e.event)\(e.message.map { ": \($0)" } ?? "")\(e.retryIn.map { ", retrying in \($0) s" } ?? "")\n".utf8))
        }, labelled: { frames in
            for f in frames {
                let source = feeds[f.source].source.description
                if headless {
                    try emitLine(Line(source: source, frame: f.frame.index, time: f.time, fps: f.fps, latencyMs: f.latencyMs, faces: f.faces))
                } else {
                    shown[f.source] = Annotator.annotate(f.frame.image, f.faces, classNames: analyzer.classifier.classNames, fps: f.fps)
                }
            }
            if headless { return true }
            guard Display.show("fer live (q quits)", Image.tiled(shown.compactMap { $0 })) else {
                throw VideoError.cannotOpen("display", "no window can be opened here; use --headless")
            }
            return Display.key(waiting: 1).map { $0 != Int(Character("q").asciiValue!) && $0 != 27 } ?? true
        })
        if !headless { Display.closeAll() }
        let summary = session.summary
        if headless { try emitLine(["summary": summary]) }
        for s in summary {
            FileHandle.standardError.write(Data(String(format: "%@: %d frames processed of %d read (%.1f FPS), latency p50 %@ ms, p99 %@ ms, %d reconnects\n",
                                                       s.source, s.framesProcessed, s.framesRead, s.fps, s.latencyMsP50.map { String(format: "%.1f", $0) } ?? "-",
                                                       s.latencyMsP99.map { String(format: "%.1f", $0) } ?? "-", s.reconnects).utf8))
            for f in s.faces {
                let shares = f.shares.filter { $0.value > 0 }.sorted { $0.value > $1.value }.map { String(format: "%@ %.0f%%", $0.key, 100 * $0.value) }
                FileHandle.standardError.write(Data("  face #\(f.track): mostly \(f.dominant) over \(f.frames) frames (\(shares.joined(separator: ", ")))\n".utf8))
            }
        }
        // A file that could not be read is a failure, as in `fer video`.
        if !session.failures.isEmpty {
            FileHandle.standardError.write(Data("error: \(session.failures.count) of \(feeds.count) sources could not be read: \(session.failures.joined(separator: "; "))\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// One JSON line on standard output, flushed at once (a reader follows it live).
func emitLine<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    print(String(decoding: try enc.encode(value), as: UTF8.self))
    fflush(nil)  // every output stream (stdout itself is a C global)
}
