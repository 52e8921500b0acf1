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

struct PipelineBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Per-stage latency and end-to-end FPS of the face pipeline on a 640x480 video, and a large photo end to end.",
        discussion: """
        The test material is made from the bundled photo: a 640x480 video in which the portrait
        drifts across the frame (so the detector works every frame), and a 1350x1350 JPEG of it.
        Stages: decode (read the next frame / the file), detect, preprocess (crop, gray, resize),
        classify (the network), draw (boxes, labels, bars).
        """)

    @OptionGroup var face: FaceOptions
    @Option(help: "Frames in the test video.") var frames: Int = 300
    @Option(help: "Repetitions of the photo run.") var repeats: Int = 20
    @Option(help: "Video: search the whole frame every N frames (1: every frame).") var fullScan: Int = 10
    @Flag(help: "Print JSON.") var json = false

    struct Result: Codable {
        var video: String; var frames: Int; var facesPerFrame: Double; var stageMilliseconds: StageTimes
        var endToEndFPS: Double; var photo: String; var photoMilliseconds: Double; var photoStages: StageTimes; var threads: Int
        var cpu = CPU.description
    }

    func makeVideo(_ path: String, from photo: Image) throws {
        let w = try VideoWriter(path: path, fps: 30, width: 640, height: 480)
        let portrait = photo.resized(width: 400, height: 400)
        for i in 0..<frames {
            var canvas = Image(width: 640, height: 480, channels: 3, fill: 90)
            let ox = 20 + Int(100 * (1 + sin(Double(i) / 20))), oy = 40 + Int(20 * cos(Double(i) / 15))
            for y in 0..<400 where oy + y < 480 {
                for x in 0..<400 where ox + x < 640 {
                    for c in 0..<3 { canvas.pixels[((oy + y) * 640 + ox + x) * 3 + c] = portrait.pixels[(y * 400 + x) * 3 + c] }
                }
            }
            try w.write(canvas)
        }
        try w.close()
    }

    func run() throws {
        let analyzer = try face.analyzer()
        let names = analyzer.classifier.classNames
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("fer-bench-\(getpid())")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let photo = try Image.read(Bundled.samplePhoto, channels: 3)
        let videoPath = dir + "/faces-640x480.mp4", photoPath = dir + "/portrait-1350.jpg"
        try makeVideo(videoPath, from: photo)
        try photo.resized(width: 1350, height: 1350).write(photoPath)

        // Video: every stage of every frame.
        let reader = try VideoReader(path: videoPath)
        var times = StageTimes(), n = 0, faces = 0
        let video = VideoFaceAnalyzer(analyzer, fullScanInterval: fullScan)
        // One warm-up frame (primitive creation, caches).
        if let f = try reader.read() { var w = StageTimes(); _ = Annotator.annotate(f, video.process(f, times: &w), classNames: names) }
        let start = DispatchTime.now()
        while true {
            var t = DispatchTime.now()
            guard let frame = try reader.read() else { break }
            times.decode += milliseconds(since: t)
            let found = video.process(frame, times: &times)
            t = DispatchTime.now()
            _ = Annotator.annotate(frame, found, classNames: names)
            times.draw += milliseconds(since: t)
            faces += found.count
            n += 1
        }
        let wall = milliseconds(since: start)
        let perFrame = StageTimes(decode: times.decode / Double(n), detect: times.detect / Double(n), preprocess: times.preprocess / Double(n),
                                  classify: times.classify / Double(n), draw: times.draw / Double(n))
        // Photo: read the file, find the face, classify, draw; best of `repeats`.
        var best = Double.infinity, bestStages = StageTimes()
        for _ in 0..<repeats {
            var st = StageTimes()
            let t0 = DispatchTime.now()
            var t = t0
            let photo = try analyzer.readPhoto(photoPath)
            st.decode = milliseconds(since: t)
            let found = analyzer.analyze(photo, times: &st)
            t = DispatchTime.now()
            let s = photo.scale  // the boxes are in the original's pixels, the drawing on the decoded copy
            _ = Annotator.annotate(photo.image, found.map { f in
                var f = f
                f.box = FaceBox(x: Int(Double(f.box.x) * s), y: Int(Double(f.box.y) * s), width: Int(Double(f.box.width) * s), height: Int(Double(f.box.height) * s))
                return f
            }, classNames: names)
            st.draw = milliseconds(since: t)
            let total = milliseconds(since: t0)
            if total < best { best = total; bestStages = st }
        }
        let r = Result(video: "640x480, \(n) frames", frames: n, facesPerFrame: Double(faces) / Double(max(n, 1)), stageMilliseconds: perFrame,
                       endToEndFPS: Double(n) / (wall / 1000), photo: "1350x1350 JPEG", photoMilliseconds: best, photoStages: bestStages,
                       threads: face.threads.threads)
        if json { try printJSON(r); return }
        print("CPU: \(CPU.description)")
        print("video 640x480, \(n) frames, \(String(format: "%.2f", r.facesPerFrame)) faces/frame, detector \(face.detection.detector.rawValue), full scan every \(fullScan) frames, \(face.threads.threads) threads")
        print("stage        ms/frame")
        for (name, v) in [("decode", perFrame.decode), ("detect", perFrame.detect), ("preprocess", perFrame.preprocess),
                          ("classify", perFrame.classify), ("draw", perFrame.draw), ("total", perFrame.total)] {
            print(name.padding(toLength: 12, withPad: " ", startingAt: 0) + String(format: "%9.2f", v))
        }
        print(String(format: "end to end: %.1f FPS", r.endToEndFPS))
        print(String(format: "photo 1350x1350 JPEG end to end: %.1f ms (decode %.1f, detect %.1f, preprocess %.1f, classify %.1f, draw %.1f)",
                     best, bestStages.decode, bestStages.detect, bestStages.preprocess, bestStages.classify, bestStages.draw))
    }
}
