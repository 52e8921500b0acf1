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

    /// Per source: what was processed and how fast.
    struct SourceSummary: Encodable {
        var source: String; var framesRead: Int; var framesProcessed: Int; var framesDropped: Int
        var fps: Double; var latencyMsP50: Double?; var latencyMsP99: Double?; var reconnects: Int
        /// Per tracked face: processed frames it was in, its dominant expression and the share of
        /// those frames in each expression (as `fer video --report` gives them).
        var faces: [FaceShares]; var mergedTracks: Int
    }

    struct FaceShares: Encodable { var track: Int; var frames: Int; var dominant: String; var shares: [String: Double] }

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
        let names = analyzer.classifier.classNames
        let feeds = parsed.map { LiveFeed($0, width: cameraWidth, height: cameraHeight, openTimeout: streamTimeout, readTimeout: min(streamTimeout, 5),
                                       maxPixels: analyzer.maxPixels) }
        let videos = feeds.map { _ in VideoFaceAnalyzer(analyzer, tracker: FaceTracker(alpha: smoothing), fullScanInterval: fullScan) }
        let reports = feeds.map { VideoReport(input: $0.source.description, fps: 30, classNames: names, keepsTimeline: false) }
        feeds.forEach { $0.start() }
        defer { LiveFeed.stop(feeds, within: 2) }

        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        func emit<T: Encodable>(_ value: T) throws {
            print(String(decoding: try enc.encode(value), as: UTF8.self))
            fflush(nil)  // every output stream (stdout itself is a C global)
        }
        let start = DispatchTime.now()
        var processed = [Int](repeating: 0, count: feeds.count), lastAt = [DispatchTime?](repeating: nil, count: feeds.count)
        var fps = [Double](repeating: 0, count: feeds.count), latencies = [[Double]](repeating: [], count: feeds.count)
        var shown = [Image?](repeating: nil, count: feeds.count)
        var times = StageTimes()
        var round = 0
        while !StopFlag.shared.isSet {
            for f in feeds {
                for e in f.events() {
                    if headless { try emit(e) } else { FileHandle.standardError.write(Data("\(e.source): \(e.event)\(e.message.map { ": \($0)" } ?? "")\(e.retryIn.map { ", retrying in \($0) s" } ?? "")\n".utf8)) }
                }
            }
            if let m = maxFrames, zip(feeds, processed).allSatisfy({ $0.ended || $1 >= m }) { break }
            if feeds.allSatisfy(\.ended) { break }
            // The newest frame of every source that has one and is due (--max-fps).
            // Detection runs source by source and the faces wait for the last one, so the source
            // searched first waits longest: the order turns every round, so no source always waits.
            var batch: [(source: Int, frame: LiveFrame, boxes: [FaceBox])] = []
            round += 1
            for k in feeds.indices {
                let i = (k + round) % feeds.count, f = feeds[i]
                if let m = maxFrames, processed[i] >= m { continue }
                if let m = maxFps, let last = lastAt[i], Double(DispatchTime.now().uptimeNanoseconds - last.uptimeNanoseconds) / 1e9 < 1 / m { continue }
                guard let frame = f.take() else { continue }
                batch.append((i, frame, videos[i].boxes(frame.image, times: &times)))
            }
            guard !batch.isEmpty else { Thread.sleep(forTimeInterval: 0.002); continue }
            // One classifier call for the faces of every source.
            let crops = batch.flatMap { b in b.boxes.map { analyzer.faceInput(b.frame.image, $0) } }
            var probabilities = crops.isEmpty ? [] : analyzer.classifier.classify(faces: crops, tta: face.tta)[...]
            for b in batch {
                let i = b.source
                let faces = videos[i].results(b.boxes, probabilities: Array(probabilities.prefix(b.boxes.count)))
                probabilities = probabilities.dropFirst(b.boxes.count)
                let now = DispatchTime.now()
                let latency = Double(now.uptimeNanoseconds - b.frame.captured.uptimeNanoseconds) / 1e6
                if let last = lastAt[i] {
                    let dt = max(Double(now.uptimeNanoseconds - last.uptimeNanoseconds) / 1e9, 1e-6)
                    fps[i] = fps[i] == 0 ? 1 / dt : 0.9 * fps[i] + 0.1 / dt
                }
                lastAt[i] = now
                latencies[i].append(latency)
                reports[i].add(frame: processed[i], image: b.frame.image, faces: faces)
                processed[i] += 1
                if headless {
                    try emit(Line(source: feeds[i].source.description, frame: b.frame.index, time: Double(now.uptimeNanoseconds - start.uptimeNanoseconds) / 1e9,
                                  fps: fps[i], latencyMs: latency, faces: faces))
                } else {
                    shown[i] = Annotator.annotate(b.frame.image, faces, classNames: names, fps: fps[i])
                }
            }
            if !headless {
                guard Display.show("fer live (q quits)", Image.tiled(shown.compactMap { $0 })) else {
                    throw VideoError.cannotOpen("display", "no window can be opened here; use --headless")
                }
                if let k = Display.key(waiting: 1), k == Int(Character("q").asciiValue!) || k == 27 { break }
            }
        }
        if !headless { Display.closeAll() }
        LiveFeed.stop(feeds, within: 2)  // all at once, one deadline: Ctrl-C ends within 2 s whatever the sources do
        for f in feeds { for e in f.events() where headless { try emit(e) } }
        let summary = feeds.enumerated().map { i, f in
            let sorted = latencies[i].sorted()
            let pick = { (q: Double) in sorted.isEmpty ? nil : sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))] }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            return SourceSummary(source: f.source.description, framesRead: f.framesRead, framesProcessed: processed[i],
                                 framesDropped: max(0, f.framesRead - processed[i]), fps: Double(processed[i]) / max(seconds, 1e-9),
                                 latencyMsP50: pick(0.5), latencyMsP99: pick(0.99), reconnects: f.reconnects,
                                 faces: reports[i].summary(wallSeconds: seconds, video: nil).tracks.map {
                                     FaceShares(track: $0.id, frames: $0.frames, dominant: $0.dominant, shares: $0.shares)
                                 }, mergedTracks: videos[i].tracker.merged)
        }
        if headless { try emit(["summary": summary]) }
        for s in summary {
            FileHandle.standardError.write(Data(String(format: "%@: %d frames processed of %d read (%.1f FPS), latency p50 %@ ms, p99 %@ ms, %d reconnects\n",
                                                       s.source, s.framesProcessed, s.framesRead, s.fps, s.latencyMsP50.map { String(format: "%.1f", $0) } ?? "-",
                                                       s.latencyMsP99.map { String(format: "%.1f", $0) } ?? "-", s.reconnects).utf8))
            for f in s.faces {
                let shares = f.shares.filter { $0.value > 0 }.sorted { $0.value > $1.value }.map { String(format: "%@ %.0f%%", $0.key, 100 * $0.value) }
                FileHandle.standardError.write(Data("  face #\(f.track): mostly \(f.dominant) over \(f.frames) frames (\(shares.joined(separator: ", ")))\n".utf8))
            }
        }
        // A file that could not be read is a failure, as in `fer video` (streams and cameras are
        // retried until stopped, and their errors are events).
        let unreadable = feeds.filter { $0.failure != nil }
        if !unreadable.isEmpty {
            FileHandle.standardError.write(Data("error: \(unreadable.count) of \(feeds.count) sources could not be read: \(unreadable.map { $0.failure! }.joined(separator: "; "))\n".utf8))
            throw ExitCode(1)
        }
    }
}
