import Foundation
import FERIO

/// What happened in a video, face by face, gathered frame by frame as `fer video` labels it:
/// each track's time on screen, dominant expression, share of time in each expression, the seven
/// probabilities over time (smoothed as the labels are), a thumbnail; faces on screen over time;
/// the moments of strongest change. Written as JSON (`Summary`) or a self-contained HTML page
/// (`VideoReportPage`).
public final class VideoReport {
    public struct Track: Codable, Sendable {
        public var id: Int
        public var firstSeconds, lastSeconds, secondsOnScreen: Double
        public var frames: Int
        public var dominant: String
        /// Share of the track's frames in which each expression was the label; they add to 1.
        public var shares: [String: Double]
        /// The face at its most confident frame, a PNG as a data URI.
        public var thumbnail: String
        /// [seconds, p(class 0), ..., p(class 6)] at most every `timelineStep` seconds.
        public var timeline: [[Double]]
    }

    /// A moment where one face's expression changed most (L1 distance of its probabilities half a
    /// second apart).
    public struct Moment: Codable, Sendable {
        public var track: Int
        public var seconds: Double
        public var from, to: String
        public var change: Double
    }

    public struct Summary: Codable, Sendable {
        public var input: String
        public var frames: Int
        public var fps, seconds: Double
        public var classNames: [String]
        public var tracks: [Track]
        /// [seconds, faces] at each change of the count.
        public var facesOnScreen: [[Double]]
        public var moments: [Moment]
        /// Model, detector, precision and the other settings the labels came from.
        public var settings: [String: String]
        public var wallSeconds: Double
        /// The annotated video beside the report, if one was written (for links to moments).
        public var video: String?
        /// Tracks that were lost for a few frames and came back (kept one number).
        public var mergedTracks: Int
    }

    struct Gathered {
        var first = 0, last = 0, frames = 0
        var labels: [Int]
        var series: [(frame: Int, p: [Float])] = []
        var bestConfidence: Float = -1
        var thumbnail: Image?
    }

    public let input: String
    public let fps: Double
    public let classNames: [String]
    /// Whether probabilities over time and thumbnails are kept (a live camera that runs for days
    /// keeps only the counts).
    public let keepsTimeline: Bool
    public var settings: [String: String] = [:]
    public var mergedTracks = 0
    private var tracks: [Int: Gathered] = [:]
    private var counts: [(frame: Int, faces: Int)] = []
    private var frames = 0

    public init(input: String, fps: Double, classNames: [String], keepsTimeline: Bool = true) {
        self.input = input
        self.fps = fps > 0 ? fps : 30
        self.classNames = classNames
        self.keepsTimeline = keepsTimeline
    }

    /// One labelled frame (its faces as `VideoFaceAnalyzer.process` gives them).
    public func add(frame: Int, image: Image, faces: [FaceResult]) {
        frames = max(frames, frame + 1)
        if counts.last?.faces != faces.count { counts.append((frame, faces.count)) }
        for f in faces {
            // Changed in place (the default subscript's modify): a copy out and back would copy the
            // whole series every frame, quadratic over a long video.
            record(f, frame: frame, image: image, into: &tracks[f.track ?? 0, default: Gathered(first: frame, labels: [Int](repeating: 0, count: classNames.count))])
        }
    }

    private func record(_ f: FaceResult, frame: Int, image: Image, into g: inout Gathered) {
        g.last = frame
        g.frames += 1
        let top = f.probabilities.indices.max { f.probabilities[$0] < f.probabilities[$1] } ?? 0
        if top < g.labels.count { g.labels[top] += 1 }
        if keepsTimeline { g.series.append((frame, f.probabilities)) }
        if keepsTimeline, f.confidence > g.bestConfidence + 0.01 || g.thumbnail == nil {  // a new best face: rare after the first frames
            g.bestConfidence = f.confidence
            g.thumbnail = image.cropped(f.box).resized(width: 72, height: 72)
        }
    }

    /// The summary; `timelinePoints` bounds each timeline's length (a long video is thinned evenly).
    public func summary(wallSeconds: Double, video: String?, timelinePoints: Int = 600) -> Summary {
        let seconds = Double(frames) / fps
        let list = tracks.keys.sorted().map { id -> Track in
            let g = tracks[id]!
            let total = max(1, g.labels.reduce(0, +))
            let shares = Dictionary(uniqueKeysWithValues: zip(classNames, g.labels.map { Double($0) / Double(total) }))
            let dominant = classNames[g.labels.indices.max { g.labels[$0] < g.labels[$1] } ?? 0]
            let step = max(1, g.series.count / timelinePoints)
            let timeline = stride(from: 0, to: g.series.count, by: step).map { i in [Double(g.series[i].frame) / fps] + g.series[i].p.map { Double($0) } }
            let png = (try? g.thumbnail?.encoded(".png")) ?? nil
            return Track(id: id, firstSeconds: Double(g.first) / fps, lastSeconds: Double(g.last) / fps, secondsOnScreen: Double(g.frames) / fps,
                         frames: g.frames, dominant: dominant, shares: shares,
                         thumbnail: png.map { "data:image/png;base64," + Data($0).base64EncodedString() } ?? "", timeline: timeline)
        }
        return Summary(input: input, frames: frames, fps: fps, seconds: seconds, classNames: classNames, tracks: list,
                       facesOnScreen: counts.map { [Double($0.frame) / fps, Double($0.faces)] }, moments: moments(), settings: settings,
                       wallSeconds: wallSeconds, video: video, mergedTracks: mergedTracks)
    }

    /// The `count` strongest changes over all tracks, at least 2 s apart within a track.
    func moments(count: Int = 6) -> [Moment] {
        let lag = max(1, Int((fps / 2).rounded()))
        var candidates: [Moment] = []
        for (id, g) in tracks {
            var picked: [Moment] = []
            let changes = g.series.indices.dropFirst(lag).map { i -> (Int, Double) in
                (i, zip(g.series[i].p, g.series[i - lag].p).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) })
            }.sorted { $0.1 > $1.1 }
            for (i, change) in changes where change > 0.3 {
                let t = Double(g.series[i].frame) / fps
                guard !picked.contains(where: { abs($0.seconds - t) < 2 }) else { continue }
                func label(_ p: [Float]) -> String { classNames[p.indices.max { p[$0] < p[$1] } ?? 0] }
                picked.append(Moment(track: id, seconds: t, from: label(g.series[i - lag].p), to: label(g.series[i].p), change: change))
                if picked.count == count { break }
            }
            candidates += picked
        }
        return Array(candidates.sorted { $0.change > $1.change }.prefix(count)).sorted { $0.seconds < $1.seconds }
    }
}
