import FERData
import FERIO
import FERModels
import Foundation

/// Several live sources watched together (`fer live`): each round takes the newest frame of every
/// source that has one and is due, finds its faces (tracking between full scans), classifies the
/// faces of all sources in one batch, and hands the labelled frames to the caller, who shows or
/// prints them. Detection runs source by source and the faces wait for the last one, so the source
/// searched first waits longest: the order turns every round, so no source always waits.
public final class LiveSession {
    public struct Settings: Sendable {
        /// Stop once every source has given this many frames (or ended); nil: never.
        public var maxFrames: Int?
        /// Process at most this many frames per second of each source; nil: as many as it can.
        public var maxFps: Double?
        /// The tracker's smoothing (weight of the newest frame) and the full-scan interval.
        public var smoothing: Float = 0.4
        public var fullScan = 10
        public init() {}
    }

    /// One frame of one source, labelled.
    public struct Labelled {
        public var source: Int
        public var frame: LiveFrame
        public var faces: [FaceResult]
        /// Frames per second of this source (moving average), and capture-to-answer latency.
        public var fps: Double
        public var latencyMs: Double
        /// Seconds since the session started.
        public var time: Double
    }

    /// Per source: what was processed and how fast.
    public struct SourceSummary: Encodable, Sendable {
        public var source: String; public var framesRead: Int; public var framesProcessed: Int; public var framesDropped: Int
        public var fps: Double; public var latencyMsP50: Double?; public var latencyMsP99: Double?; public var reconnects: Int
        /// Per tracked face: processed frames it was in, its dominant expression and the share of
        /// those frames in each expression (as `fer video --report` gives them).
        public var faces: [FaceShares]; public var mergedTracks: Int
    }

    public struct FaceShares: Encodable, Sendable { public var track: Int; public var frames: Int; public var dominant: String; public var shares: [String: Double] }

    public let feeds: [LiveFeed]
    let analyzer: FaceAnalyzer
    let settings: Settings
    let videos: [VideoFaceAnalyzer]
    let reports: [VideoReport]
    private var processed: [Int], lastAt: [DispatchTime?], fps: [Double], latencies: [[Double]]
    private var start = DispatchTime.now()

    public init(_ feeds: [LiveFeed], analyzer: FaceAnalyzer, settings: Settings) {
        self.feeds = feeds
        self.analyzer = analyzer
        self.settings = settings
        videos = feeds.map { _ in VideoFaceAnalyzer(analyzer, tracker: FaceTracker(alpha: settings.smoothing), fullScanInterval: settings.fullScan) }
        reports = feeds.map { VideoReport(input: $0.source.description, fps: 30, classNames: analyzer.classifier.classNames, keepsTimeline: false) }
        processed = feeds.map { _ in 0 }
        lastAt = feeds.map { _ in nil }
        fps = feeds.map { _ in 0 }
        latencies = feeds.map { _ in [] }
    }

    /// Starts the feeds and runs rounds until every source has ended or given `maxFrames`,
    /// `shouldStop` says so, or `labelled` returns false (a window closed). Events of the feeds go
    /// to `event` as they happen, and once more after the feeds stopped. Stops the feeds within 2 s
    /// on the way out, whatever the sources do.
    public func run(shouldStop: () -> Bool, event: (LiveEvent) throws -> Void, labelled: ([Labelled]) throws -> Bool) throws {
        feeds.forEach { $0.start() }
        defer { LiveFeed.stop(feeds, within: 2) }
        start = DispatchTime.now()
        var round = 0
        while !shouldStop() {
            for f in feeds { for e in f.events() { try event(e) } }
            if let m = settings.maxFrames, zip(feeds, processed).allSatisfy({ $0.ended || $1 >= m }) { break }
            if feeds.allSatisfy(\.ended) { break }
            round += 1
            let frames = labelRound(round)
            if frames.isEmpty { Thread.sleep(forTimeInterval: 0.002); continue }
            guard try labelled(frames) else { break }
        }
        LiveFeed.stop(feeds, within: 2)  // all at once, one deadline
        for f in feeds { for e in f.events() { try event(e) } }
    }

    /// The newest due frame of each source, labelled: detection per source, one classifier batch.
    func labelRound(_ round: Int) -> [Labelled] {
        var batch: [(source: Int, frame: LiveFrame, boxes: [FaceBox])] = []
        var times = StageTimes()
        for k in feeds.indices {
            let i = (k + round) % feeds.count
            if let m = settings.maxFrames, processed[i] >= m { continue }
            if let m = settings.maxFps, let last = lastAt[i], seconds(since: last) < 1 / m { continue }
            guard let frame = feeds[i].take() else { continue }
            batch.append((i, frame, videos[i].boxes(frame.image, times: &times)))
        }
        guard !batch.isEmpty else { return [] }
        let crops = batch.flatMap { b in b.boxes.map { analyzer.faceInput(b.frame.image, $0) } }
        var probabilities = crops.isEmpty ? [] : analyzer.classifier.classify(faces: crops, tta: analyzer.reading.tta)[...]
        return batch.map { b in
            let i = b.source
            let faces = videos[i].results(b.boxes, probabilities: Array(probabilities.prefix(b.boxes.count)))
            probabilities = probabilities.dropFirst(b.boxes.count)
            let now = DispatchTime.now()
            let latency = Double(now.uptimeNanoseconds - b.frame.captured.uptimeNanoseconds) / 1e6
            if let last = lastAt[i] {
                let dt = max(seconds(since: last), 1e-6)
                fps[i] = fps[i] == 0 ? 1 / dt : 0.9 * fps[i] + 0.1 / dt
            }
            lastAt[i] = now
            latencies[i].append(latency)
            reports[i].add(frame: processed[i], image: b.frame.image, faces: faces)
            processed[i] += 1
            return Labelled(source: i, frame: b.frame, faces: faces, fps: fps[i], latencyMs: latency, time: seconds(since: start))
        }
    }

    /// Per source: frames, rates, latency percentiles, reconnections, and the faces it saw.
    public var summary: [SourceSummary] {
        let wall = seconds(since: start)
        return feeds.enumerated().map { i, f in
            let sorted = latencies[i].sorted()
            let pick = { (q: Double) in sorted.isEmpty ? nil : sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))] }
            return SourceSummary(source: f.source.description, framesRead: f.framesRead, framesProcessed: processed[i],
                                 framesDropped: max(0, f.framesRead - processed[i]), fps: Double(processed[i]) / max(wall, 1e-9),
                                 latencyMsP50: pick(0.5), latencyMsP99: pick(0.99), reconnects: f.reconnects,
                                 faces: reports[i].summary(wallSeconds: wall, video: nil).tracks.map {
                                     FaceShares(track: $0.id, frames: $0.frames, dominant: $0.dominant, shares: $0.shares)
                                 }, mergedTracks: videos[i].tracker.merged)
        }
    }

    /// Why each source that is a file could not be read (streams and cameras are retried until
    /// stopped, and their errors are events).
    public var failures: [String] { feeds.compactMap(\.failure) }

    private func seconds(since t: DispatchTime) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t.uptimeNanoseconds) / 1e9 }
}
