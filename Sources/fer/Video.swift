import ArgumentParser
import FERDistributed
import FERIO
import FERModels
import FERTraining
import FERVision
import Foundation

struct Video: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Label the faces in videos: annotated videos and per-frame, per-face timelines.",
        discussion: """
        Faces are tracked across frames (#1, #2, ...) and their probabilities smoothed over time.
        --timeline-csv writes one row per face per frame: frame, time, track, box, expression, probabilities.
        --report writes one self-contained HTML page (no network, printable): per face a thumbnail, time on
        screen, dominant expression, share of time in each expression and the seven probabilities over
        time; faces on screen over time; the moments of strongest change (links into --out's video);
        the model and settings. --report-json writes the same summary for programs.
        With several inputs (or --shard), --out, --timeline-csv, --report and --report-json are folders:
        NAME.annotated.mp4, NAME.csv, NAME.report.html, NAME.report.json.
        """)

    @Argument(help: "Input video files.") var inputs: [String]
    @Option(help: "Annotated output video (.mp4 or .avi); a folder with several inputs.") var out: String?
    @Option(help: "Timeline CSV; a folder with several inputs.") var timelineCsv: String?
    @Option(help: "HTML report: timelines, shares, moments (self-contained); a folder with several inputs.") var report: String?
    @Option(help: "The report's summary as JSON; a folder with several inputs.") var reportJson: String?
    @OptionGroup var face: FaceOptions
    @Option(help: "Smoothing: weight of the newest frame (1 = none).") var smoothing: Float = 0.4
    @Option(help: "Process at most this many frames per video.") var maxFrames: Int?
    @Option(help: "Search the whole frame every N frames; in between only around tracked faces.") var fullScan: Int = 10
    @Option(help: ArgumentHelp("Label only shard I of N of the inputs (0-based); under mpirun or srun the rank is used.",
                               valueName: "I/N")) var shard: String?
    @Flag(help: "Print a JSON summary.") var json = false

    struct Summary: Codable {
        var input: String; var frames: Int; var faces: Int; var tracks: Int; var seconds: Double; var fps: Double
        var output: String?; var timeline: String?; var report: String?; var error: String?
    }

    var batch: Bool { inputs.count > 1 || shard != nil || launcherShard() != nil }

    func validate() throws {
        guard out != nil || timelineCsv != nil || report != nil || reportJson != nil || json else {
            throw ValidationError("give --out, --timeline-csv, --report, --report-json or --json (otherwise nothing is written)")
        }
        try validateTracking(smoothing: smoothing, fullScan: fullScan, maxFrames: maxFrames)
        _ = try parseShard(shard)
        let given = options.all.compactMap { f in f.path.map { (f.option, $0) } }
        for (i, a) in given.enumerated() {
            for b in given.dropFirst(i + 1) where AtomicFile.sameFile(a.1, b.1) { throw ValidationError("\(a.0) and \(b.0) name the same file") }
        }
    }

    /// What one run writes: the annotated video, the timeline and the reports (the options as given,
    /// or one input's files in their folders).
    struct Outputs {
        var video, csv, report, reportJson: String?
        /// Each with the option that names it.
        var all: [(option: String, path: String?)] { [("--out", video), ("--timeline-csv", csv), ("--report", report), ("--report-json", reportJson)] }
    }

    var options: Outputs { Outputs(video: out, csv: timelineCsv, report: report, reportJson: reportJson) }

    /// Where one input's outputs go: the options themselves, or with several inputs FOLDER/NAME.suffix.
    func outputs(stem: String) -> Outputs {
        func path(_ option: String?, _ suffix: String) -> String? { batch ? option.map { ($0 as NSString).appendingPathComponent(stem + suffix) } : option }
        return Outputs(video: path(out, ".annotated.mp4"), csv: path(timelineCsv, ".csv"), report: path(report, ".report.html"),
                       reportJson: path(reportJson, ".report.json"))
    }

    func run() throws {
        let (index, count) = try parseShard(shard) ?? launcherShard() ?? (0, 1)
        let mine = inputs.enumerated().filter { $0.offset % count == index }.map(\.element)
        var summaries: [Summary] = []
        let stemOf = Dictionary(zip(inputs, OutputNames.stems(inputs)), uniquingKeysWith: { a, _ in a })
        // Every output checked against every input before any work: a batch's NAME.annotated.mp4
        // or NAME.csv may itself be one of the inputs.
        for input in inputs {
            for (option, path) in outputs(stem: stemOf[input]!).all {
                if let path { try OutputNames.check(path, against: inputs, option: option) }
            }
        }
        if !batch, let out, let why = VideoWriter.problem(writingTo: out) { throw ValidationError("--out \(out) \(why)") }
        let analyzer = try face.analyzer()
        installInterruptHandler("stopping: the unfinished video is removed (again to quit now)", signals: [SIGINT, SIGTERM])
        for input in mine {
            if StopFlag.shared.isSet { throw ExitCode(130) }
            let o = outputs(stem: stemOf[input]!)
            do {
                summaries.append(try label(input, to: o, analyzer: analyzer))
            } catch {
                guard batch, !StopFlag.shared.isSet else { throw error }
                FileHandle.standardError.write(Data("error: \(input): \(error)\n".utf8))
                summaries.append(Summary(input: input, frames: 0, faces: 0, tracks: 0, seconds: 0, fps: 0, output: nil, timeline: nil, report: nil, error: "\(error)"))
            }
        }
        if json {
            if batch { try printJSON(summaries) } else if let s = summaries.first { try printJSON(s) }
        } else {
            for s in summaries where s.error == nil {
                print(String(format: "%@: %d frames, %d face detections in %d tracks, %.1f s (%.1f FPS)", s.input, s.frames, s.faces, s.tracks, s.seconds, s.fps))
                if let out = s.output { print("  video: \(out)") }
                if let csv = s.timeline { print("  timeline: \(csv)") }
                if let r = s.report { print("  report: \(r)") }
            }
        }
        if summaries.contains(where: { $0.error != nil }) { throw ExitCode(1) }
    }

    /// How a report at `from` names the video at `to`: its file name when they share a folder, else
    /// its absolute path.
    static func link(to: String, from: String) -> String {
        let a = URL(fileURLWithPath: to).standardizedFileURL, b = URL(fileURLWithPath: from).standardizedFileURL
        return a.deletingLastPathComponent() == b.deletingLastPathComponent() ? a.lastPathComponent : a.path
    }

    /// One video: its annotated copy and timeline. A damaged video (fewer frames decoded than it
    /// announces) is an error after its outputs are written.
    func label(_ input: String, to o: Outputs, analyzer: FaceAnalyzer) throws -> Summary {
        let (out, csv) = (o.video, o.csv)
        let reader = try VideoReader(path: input, maxPixels: analyzer.reading.maxPixels)
        let writer = try out.map { try VideoWriter(path: $0, fps: reader.fps, width: reader.width, height: reader.height) }
        let video = VideoFaceAnalyzer(analyzer, tracker: FaceTracker(alpha: smoothing), fullScanInterval: fullScan)
        let names = analyzer.classifier.classNames
        var times = StageTimes()
        var lines = ["frame,time_s,track,x,y,width,height,emotion,confidence," + names.map { $0.lowercased() }.joined(separator: ",")]
        let total = min(reader.frameCount ?? Int.max, maxFrames ?? Int.max)
        let bar = ProgressBar(total: total == Int.max ? 0 : total, label: "frames")
        bar.enabled = !json && total != Int.max
        var frame = 0, faceCount = 0, trackIDs = Set<Int>()
        let gathered = o.report != nil || o.reportJson != nil ? VideoReport(input: input, fps: reader.fps, classNames: names) : nil
        gathered?.settings = ["model": face.model.model ?? "default", "detector": analyzer.detector.summary, "precision": analyzer.classifier.precisionName,
                              "full scan": "every \(fullScan) frames", "smoothing": String(smoothing), "CPU": CPU.measuredOn]
        let start = Date()
        while frame < total, !StopFlag.shared.isSet, let image = try reader.read() {
            let faces = video.process(image, times: &times)
            faceCount += faces.count
            for f in faces {
                trackIDs.insert(f.track ?? 0)
                lines.append([String(frame), String(format: "%.3f", Double(frame) / reader.fps), String(f.track ?? 0), "\(f.box.x)", "\(f.box.y)",
                              "\(f.box.width)", "\(f.box.height)", f.emotion, String(format: "%.4f", f.confidence)].joined(separator: ",")
                             + "," + f.probabilities.map { String(format: "%.4f", $0) }.joined(separator: ","))
            }
            try writer?.write(Annotator.annotate(image, faces, classNames: names))
            gathered?.add(frame: frame, image: image, faces: faces)
            frame += 1
            bar.update(frame)
        }
        bar.finish()
        // Stopped (Ctrl-C, SIGTERM): the writer's temporary file goes with it, nothing half-written stays.
        if StopFlag.shared.isSet { throw ExitCode(130) }
        guard frame > 0 else { throw VideoError.cannotOpen(input, "no frame could be decoded") }
        try writer?.close()
        if let csv { try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: csv) }
        let seconds = Date().timeIntervalSince(start)
        if let gathered {
            gathered.mergedTracks = video.tracker.merged
            let summary = gathered.summary(wallSeconds: seconds, video: out.map { Self.link(to: $0, from: o.report ?? o.reportJson ?? $0) })
            if let html = o.report { try AtomicFile.write(VideoReportPage.html(summary), to: html) }
            if let json = o.reportJson { try AtomicFile.write(Data(try JSONEncoder.sorted.encode(summary)), to: json) }
        }
        // A container that announced more frames than could be decoded is damaged: say so, and fail.
        if reader.oversizedFrames > 0 {
            FileHandle.standardError.write(Data("\(input): \(reader.oversizedFrames) frames over --max-pixels (\(analyzer.reading.maxPixels)) skipped\n".utf8))
        }
        if let announced = reader.frameCount, frame + reader.oversizedFrames < min(announced, maxFrames ?? .max) - 1 {
            throw VideoError.cannotOpen(input, "decoding stopped at frame \(frame) of \(announced); the rest is unreadable (what was decoded is written)")
        }
        return Summary(input: input, frames: frame, faces: faceCount, tracks: trackIDs.count, seconds: seconds,
                       fps: Double(frame) / max(seconds, 1e-9), output: out, timeline: csv, report: o.report ?? o.reportJson, error: nil)
    }
}

/// `I/N` of --shard, checked.
func parseShard(_ text: String?) throws -> (index: Int, count: Int)? {
    guard let text else { return nil }
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, n <= 1_000_000, i >= 0, i < n else {
        throw ValidationError("--shard must be I/N with 0 <= I < N, e.g. 0/4; got '\(text)'")
    }
    return (i, n)
}

/// The tracking options of `video` and `live`, checked alike.
func validateTracking(smoothing: Float, fullScan: Int, maxFrames: Int?) throws {
    guard smoothing.isFinite, smoothing > 0, smoothing <= 1 else {
        throw ValidationError("--smoothing is the weight of the newest frame, in (0, 1]; got \(smoothing)")
    }
    guard fullScan >= 1 else { throw ValidationError("--full-scan must be at least 1, got \(fullScan)") }
    if let m = maxFrames, m < 1 { throw ValidationError("--max-frames must be at least 1, got \(m)") }
}
