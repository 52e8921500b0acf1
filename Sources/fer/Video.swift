import ArgumentParser
import FERData
import FEREngine
import FEREvaluation
import FERIO
import FERModels
import FEROptimizers
import FERTraining
import FERVision
import Foundation

struct Video: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Label the faces in a video: an annotated video and a per-frame, per-face timeline.",
        discussion: """
        Faces are tracked across frames (#1, #2, ...) and their probabilities smoothed over time.
        --csv writes one row per face per frame: frame, time, track, box, expression, probabilities.
        """)

    @Argument(help: "Input video file.") var input: String
    @Option(help: "Annotated output video (.mp4 or .avi).") var out: String?
    @Option(help: "Timeline CSV.") var csv: String?
    @OptionGroup var face: FaceOptions
    @Option(help: "Smoothing: weight of the newest frame (1 = none).") var smoothing: Float = 0.4
    @Option(help: "Process at most this many frames.") var maxFrames: Int?
    @Option(help: "Search the whole frame every N frames; in between only around tracked faces.") var fullScan: Int = 10
    @Flag(help: "Print a JSON summary.") var json = false

    struct Summary: Codable { var input: String; var frames: Int; var faces: Int; var tracks: Int; var seconds: Double; var fps: Double; var output: String?; var timeline: String? }

    func validate() throws {
        guard out != nil || csv != nil || json else { throw ValidationError("give --out, --csv or --json (otherwise nothing is written)") }
        try validateTracking(smoothing: smoothing, fullScan: fullScan, maxFrames: maxFrames)
        for (flag, path) in [("--out", out), ("--csv", csv)] {
            if let path, AtomicFile.sameFile(path, input) { throw ValidationError("\(flag) \(path) is the input video; refusing to overwrite it") }
        }
        if let out, let csv, AtomicFile.sameFile(out, csv) { throw ValidationError("--out and --csv name the same file") }
    }

    func run() throws {
        let analyzer = try face.analyzer()
        let reader = try VideoReader(path: input)
        let writer = try out.map { try VideoWriter(path: $0, fps: reader.fps, width: reader.width, height: reader.height) }
        let video = VideoFaceAnalyzer(analyzer, tracker: FaceTracker(alpha: smoothing), fullScanInterval: fullScan)
        let names = analyzer.classifier.classNames
        var times = StageTimes()
        var lines = ["frame,time_s,track,x,y,width,height,emotion,confidence," + names.map { $0.lowercased() }.joined(separator: ",")]
        let total = min(reader.frameCount ?? Int.max, maxFrames ?? Int.max)
        let bar = ProgressBar(total: total == Int.max ? 0 : total, label: "frames")
        bar.enabled = !json && total != Int.max
        var frame = 0, faceCount = 0, trackIDs = Set<Int>()
        let start = Date()
        while frame < total, let image = try reader.read() {
            let faces = video.process(image, times: &times)
            faceCount += faces.count
            for f in faces {
                trackIDs.insert(f.track ?? 0)
                lines.append([String(frame), String(format: "%.3f", Double(frame) / reader.fps), String(f.track ?? 0), "\(f.box.x)", "\(f.box.y)",
                              "\(f.box.width)", "\(f.box.height)", f.emotion, String(format: "%.4f", f.confidence)].joined(separator: ",")
                             + "," + f.probabilities.map { String(format: "%.4f", $0) }.joined(separator: ","))
            }
            try writer?.write(Annotator.annotate(image, faces, classNames: names))
            frame += 1
            bar.update(frame)
        }
        bar.finish()
        guard frame > 0 else { throw VideoError.cannotOpen(input, "no frame could be decoded") }
        try writer?.close()
        if let csv { try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: csv) }
        let seconds = Date().timeIntervalSince(start)
        let s = Summary(input: input, frames: frame, faces: faceCount, tracks: trackIDs.count, seconds: seconds,
                        fps: Double(frame) / max(seconds, 1e-9), output: out, timeline: csv)
        if json { try printJSON(s) } else {
            print(String(format: "%d frames, %d face detections in %d tracks, %.1f s (%.1f FPS)", s.frames, s.faces, s.tracks, s.seconds, s.fps))
            if let out { print("video: \(out)") }
            if let csv { print("timeline: \(csv)") }
        }
        // A container that announced more frames than could be decoded is damaged: say so, and fail.
        if let announced = reader.frameCount, frame < min(announced, maxFrames ?? .max) - 1 {
            FileHandle.standardError.write(Data("warning: \(input): decoding stopped at frame \(frame) of \(announced); the rest is unreadable\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// The tracking options of `video` and `live`, checked alike.
func validateTracking(smoothing: Float, fullScan: Int, maxFrames: Int?) throws {
    guard smoothing.isFinite, smoothing > 0, smoothing <= 1 else {
        throw ValidationError("--smoothing is the weight of the newest frame, in (0, 1]; got \(smoothing)")
    }
    guard fullScan >= 1 else { throw ValidationError("--full-scan must be at least 1, got \(fullScan)") }
    if let m = maxFrames, m < 1 { throw ValidationError("--max-frames must be at least 1, got \(m)") }
}

struct Live: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The camera, live: boxes, labels and FPS in a window (q or Esc quits), or JSON lines with --headless.")

    @Option(help: "Camera index (/dev/videoN).") var camera: Int = 0
    @Option var width: Int = 640
    @Option var height: Int = 480
    @Flag(help: "No window: one JSON line per frame on standard output.") var headless = false
    @Option(help: "Stop after this many frames.") var maxFrames: Int?
    @OptionGroup var face: FaceOptions
    @Option(help: "Smoothing: weight of the newest frame (1 = none).") var smoothing: Float = 0.4
    @Option(help: "Search the whole frame every N frames; in between only around tracked faces.") var fullScan: Int = 10

    struct Line: Encodable { var frame: Int; var time: Double; var fps: Double; var faces: [FaceResult] }

    func validate() throws {
        try validateTracking(smoothing: smoothing, fullScan: fullScan, maxFrames: maxFrames)
        guard camera >= 0, camera < 1000 else { throw ValidationError("--camera must be a device number, 0-999; got \(camera)") }
        guard (16...8192).contains(width), (16...8192).contains(height) else {
            throw ValidationError("--width and --height must be 16-8192 pixels, got \(width)x\(height)")
        }
    }

    func run() throws {
        installInterruptHandler()
        let analyzer = try face.analyzer()
        let reader = try VideoReader(camera: camera, width: width, height: height)
        let video = VideoFaceAnalyzer(analyzer, tracker: FaceTracker(alpha: smoothing), fullScanInterval: fullScan)
        let names = analyzer.classifier.classNames
        var times = StageTimes()
        let start = Date()
        var frame = 0, fps = 0.0, last = Date()
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        while !StopFlag.shared.isSet, frame < (maxFrames ?? Int.max), let image = try reader.read() {
            let faces = video.process(image, times: &times)
            let now = Date()
            let dt = now.timeIntervalSince(last)
            last = now
            fps = fps == 0 ? 1 / max(dt, 1e-6) : 0.9 * fps + 0.1 / max(dt, 1e-6)
            if headless {
                let line = Line(frame: frame, time: now.timeIntervalSince(start), fps: fps, faces: faces)
                print(String(decoding: try enc.encode(line), as: UTF8.self))
                fflush(stdout)
            } else {
                guard Display.show("fer live (q quits)", Annotator.annotate(image, faces, classNames: names, fps: fps)) else {
                    throw VideoError.cannotOpen("display", "no window can be opened here; use --headless")
                }
                if let k = Display.key(waiting: 1), k == Int(Character("q").asciiValue!) || k == 27 { break }
            }
            frame += 1
        }
        if !headless { Display.closeAll() }
    }
}
