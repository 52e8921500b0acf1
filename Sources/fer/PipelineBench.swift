import ArgumentParser
import FER
import FEREngine
import FERIO
import FERVision
import Foundation

struct PipelineBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Per-stage latency and end-to-end FPS of the face pipeline on 640x480 video, a large photo, and a folder of different photos.",
        discussion: """
        The test material is made from the bundled photo: 640x480 videos in which one portrait, or
        five smaller ones, drift across the frame (so the detector works every frame), and a
        1350x1350 JPEG of it. With --photos DIR every image under DIR is read and analysed once, in
        one process: real variety (sizes, faces, content), as a photo service sees it.
        Stages: decode (read the next frame / the file), detect, preprocess (crop, gray, resize),
        classify (the network), draw (boxes, labels, bars). Video figures are the best of --passes
        passes and the photo the best of --repeats runs, since other work on the machine only ever
        slows a run down.
        """)

    @OptionGroup var face: FaceOptions
    @Option(help: "Frames in each test video.") var frames: Int = 300
    @Option(help: "Passes over each video (the best counts).") var passes: Int = 3
    @Option(help: "Repetitions of the photo run.") var repeats: Int = 20
    @Option(help: "Video: search the whole frame every N frames (1: every frame).") var fullScan: Int = 10
    @Option(help: "A folder of photos (searched recursively) to time one by one.") var photos: String?
    @Flag(help: "Run facenet-pytorch's MTCNN on the same photos and print the detection ratio (benchmarks/peer_mtcnn.py).") var peer = false
    @Option(help: "Python with torch and facenet-pytorch installed (--peer).") var python: String = "python3"
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard frames >= 10, frames <= 100_000 else { throw ValidationError("--frames must be between 10 and 100000, got \(frames)") }
        guard passes >= 1, passes <= 100 else { throw ValidationError("--passes must be between 1 and 100, got \(passes)") }
        guard repeats >= 1, repeats <= 10_000 else { throw ValidationError("--repeats must be between 1 and 10000, got \(repeats)") }
        guard fullScan >= 1 else { throw ValidationError("--full-scan must be at least 1, got \(fullScan)") }
    }

    struct VideoResult: Codable {
        var video: String; var frames: Int; var facesPerFrame: Double; var stageMilliseconds: StageTimes; var endToEndFPS: Double
    }

    struct PhotoSetResult: Codable {
        var folder: String; var photos: Int; var failed: Int; var faces: Int
        var meanMilliseconds: Double; var medianMilliseconds: Double; var p90Milliseconds: Double; var maxMilliseconds: Double
        var stageMilliseconds: StageTimes
    }

    /// The peer's detection time on the same photos, and ours over it.
    struct PeerResult: Codable {
        var engine: String; var photos: String; var peerMilliseconds: Double; var ourMilliseconds: Double; var speedup: Double
    }

    /// What benchmarks/peer_mtcnn.py prints.
    struct PeerLine: Codable { var engine: String; var meanDetectMilliseconds: Double }

    struct Result: Codable {
        var videos: [VideoResult]
        var photo: String; var photoMilliseconds: Double; var photoStages: StageTimes
        var photoSet: PhotoSetResult?
        var precision: String; var detectorPrecision: String?; var threads: Int
        /// The oneDNN implementations each stage ran, as "primitive: implementation".
        var kernels: [String: [String]]
        var peers: [PeerResult] = []
        var cpu = CPU.measuredOn
    }

    /// A 640x480 video of `count` copies of `photo` (side `side`) drifting across a gray frame.
    func makeVideo(_ path: String, from photo: Image, count: Int) throws {
        let w = try VideoWriter(path: path, fps: 30, width: 640, height: 480)
        let side = count == 1 ? 400 : 170
        // Five faces: tiles of the head (detected boxes ~65 pixels), as a group on a webcam.
        let source = count == 1 ? photo : photo.cropped(FaceBox(x: photo.width * 28 / 100, y: photo.height * 2 / 100, width: photo.width * 44 / 100, height: photo.width * 44 / 100))
        let portrait = source.resized(width: side, height: side)
        for i in 0..<frames {
            var canvas = Image(width: 640, height: 480, channels: 3, fill: 90)
            for k in 0..<count {
                let t = Double(i) + Double(k) * 17
                let ox = count == 1 ? 20 + Int(100 * (1 + sin(t / 20))) : 10 + (k % 3) * 205 + Int(20 * (1 + sin(t / 20)))
                let oy = count == 1 ? 40 + Int(20 * cos(t / 15)) : 15 + (k / 3) * 245 + Int(15 * (1 + cos(t / 15)))
                for y in 0..<side where oy + y < 480 {
                    for x in 0..<side where ox + x < 640 {
                        for c in 0..<3 { canvas.pixels[((oy + y) * 640 + ox + x) * 3 + c] = portrait.pixels[(y * side + x) * 3 + c] }
                    }
                }
            }
            try w.write(canvas)
        }
        try w.close()
    }

    /// One pass over a video: every stage of every frame.
    func timeVideo(_ path: String, _ analyzer: FaceAnalyzer, names: [String]) throws -> VideoResult {
        let reader = try VideoReader(path: path)
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
        let wall = milliseconds(since: start), d = Double(max(n, 1))
        return VideoResult(video: "", frames: n, facesPerFrame: Double(faces) / d,
                           stageMilliseconds: StageTimes(decode: times.decode / d, detect: times.detect / d, preprocess: times.preprocess / d,
                                                         classify: times.classify / d, draw: times.draw / d),
                           endToEndFPS: Double(n) / (wall / 1000))
    }

    /// Read, find, classify and draw one photo file; the boxes are drawn on the decoded copy.
    func timePhoto(_ path: String, _ analyzer: FaceAnalyzer, names: [String]) throws -> (ms: Double, stages: StageTimes, faces: Int) {
        var st = StageTimes()
        let t0 = DispatchTime.now()
        var t = t0
        let photo = try analyzer.readPhoto(path)
        st.decode = milliseconds(since: t)
        t = DispatchTime.now()
        let (found, boxes) = analyzer.find(photo)
        st.detect = milliseconds(since: t)
        let faces = analyzer.classify(found.image, boxes, times: &st)  // in the decoded copy's pixels, to draw on it
        t = DispatchTime.now()
        _ = Annotator.annotate(found.image, faces, classNames: names)
        st.draw = milliseconds(since: t)
        return (milliseconds(since: t0), st, faces.count)
    }

    /// Every photo under `root`, sorted.
    func photoFiles(_ root: String) throws -> [String] {
        let exts: Set<String> = ["jpg", "jpeg", "png", "bmp", "webp"]
        guard let e = FileManager.default.enumerator(atPath: root) else { throw DataError.unreadable(root, reason: "not a readable folder") }
        let files = e.compactMap { $0 as? String }.filter { exts.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
            .map { (root as NSString).appendingPathComponent($0) }
        guard !files.isEmpty else { throw DataError.unreadable(root, reason: "no photos (jpg, png, bmp, webp) in it") }
        return files
    }

    /// facenet-pytorch's mean detection time over `files` (best of `repeats` runs each), or nil
    /// with a warning naming what to install. Where oneDNN's kernels are capped at AVX2, PyTorch's
    /// are too (ATEN_CPU_CAPABILITY), so that both run the same instruction set.
    func peerDetect(_ files: [String], repeats: Int, dir: String) -> PeerLine? {
        let list = dir + "/peer-photos-\(files.count).txt"
        var env = ProcessInfo.processInfo.environment
        if CPUFeatures.kernelCap != nil, CPUFeatures.kernelISA.hasPrefix("avx2") { env["ATEN_CPU_CAPABILITY"] = "avx2" }
        let written = (try? Data(files.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: list))) != nil
        guard written, let r: PeerLine = PeerProcess.script("peer_mtcnn.py", ["--list", list, "--repeats", String(repeats),
                                                                              "--min-face", String(face.detection.minSize), "--threads", String(face.threads.threads)],
                                                            python: python, environment: env, quiet: true) else {
            FileHandle.standardError.write(Data("warning: the MTCNN peer did not run (it needs: \(python) -m pip install torch torchvision && \(python) -m pip install facenet-pytorch --no-deps)\n".utf8))
            return nil
        }
        return r
    }

    func timePhotoSet(_ root: String, _ analyzer: FaceAnalyzer, names: [String]) throws -> PhotoSetResult {
        let files = try photoFiles(root)
        var ms: [Double] = [], total = StageTimes(), failed = 0, faces = 0
        let bar = ProgressBar(total: files.count, label: "photos")
        bar.enabled = !json
        for (i, f) in files.enumerated() {
            do {
                let r = try timePhoto(f, analyzer, names: names)
                ms.append(r.ms)
                total = total + r.stages
                faces += r.faces
            } catch { failed += 1 }
            bar.update(i + 1)
        }
        bar.finish()
        let sorted = ms.sorted(), n = Double(max(ms.count, 1))
        func q(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(p * Double(sorted.count)))] }
        return PhotoSetResult(folder: root, photos: ms.count, failed: failed, faces: faces, meanMilliseconds: ms.reduce(0, +) / n,
                              medianMilliseconds: q(0.5), p90Milliseconds: q(0.9), maxMilliseconds: sorted.last ?? 0,
                              stageMilliseconds: StageTimes(decode: total.decode / n, detect: total.detect / n, preprocess: total.preprocess / n,
                                                            classify: total.classify / n, draw: total.draw / n))
    }

    func run() throws {
        let analyzer = try face.analyzer()
        let names = analyzer.classifier.classNames
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("fer-bench-\(getpid())")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let photo = try Image.read(Checkout.samplePhoto, channels: 3)
        var videos: [VideoResult] = []
        for count in [1, 5] {
            let path = dir + "/faces\(count)-640x480.mp4"
            try makeVideo(path, from: photo, count: count)
            var best: VideoResult?
            for _ in 0..<passes {
                let r = try timeVideo(path, analyzer, names: names)
                if best == nil || r.endToEndFPS > best!.endToEndFPS { best = r }
            }
            if var b = best {
                b.video = "640x480, \(count) face\(count == 1 ? "" : "s") drifting, \(b.frames) frames"
                videos.append(b)
            }
        }
        let photoPath = dir + "/portrait-1350.jpg"
        try photo.resized(width: 1350, height: 1350).write(photoPath)
        var best = Double.infinity, bestStages = StageTimes()
        for _ in 0..<repeats {
            let r = try timePhoto(photoPath, analyzer, names: names)
            if r.ms < best { best = r.ms; bestStages = r.stages }
        }
        let set = try photos.map { try timePhotoSet($0, analyzer, names: names) }
        // Which kernels the figures came from: the photo's stages once more, recorded (video
        // frames run the same networks; tracking runs O-Net alone).
        let sample = try analyzer.readPhoto(photoPath)
        let (found, detectKernels) = KernelLog.recording { analyzer.find(sample) }
        var unused = StageTimes()
        let classifyKernels = KernelLog.recording { analyzer.classify(found.photo.image, found.boxes, times: &unused) }.kernels
        var peers: [PeerResult] = []
        if peer, let p = peerDetect([photoPath], repeats: repeats, dir: dir) {
            peers.append(PeerResult(engine: p.engine, photos: "1350x1350 JPEG", peerMilliseconds: p.meanDetectMilliseconds,
                                    ourMilliseconds: bestStages.detect, speedup: p.meanDetectMilliseconds / bestStages.detect))
        }
        if peer, let set, let root = photos, let p = peerDetect(try photoFiles(root), repeats: 1, dir: dir) {
            let ours = set.stageMilliseconds.detect
            peers.append(PeerResult(engine: p.engine, photos: "\(set.photos) photos in \(root)", peerMilliseconds: p.meanDetectMilliseconds,
                                    ourMilliseconds: ours, speedup: p.meanDetectMilliseconds / ours))
        }
        let r = Result(videos: videos, photo: "1350x1350 JPEG", photoMilliseconds: best, photoStages: bestStages, photoSet: set,
                       precision: analyzer.classifier.precisionName,
                       detectorPrecision: face.detection.detector.hasPrecision ? analyzer.detector.settings.precision.rawValue : nil,
                       threads: face.threads.threads, kernels: ["detect": detectKernels, "classify": classifyKernels], peers: peers)
        if json { try printJSON(r); return }
        printTable(r, detector: analyzer.detector.summary)
    }

    /// The result for people: the videos, the photo, the photo set, the peers, the kernels.
    func printTable(_ r: Result, detector: String) {
        let (videos, best, bestStages, set, peers) = (r.videos, r.photoMilliseconds, r.photoStages, r.photoSet, r.peers)
        print("CPU: \(CPU.measuredOn)")
        print("detector \(detector), classifier \(r.precision), full scan every \(fullScan) frames, \(face.threads.threads) threads; video: best of \(passes) passes")
        print("video                                             decode  detect  preproc classify  draw   total ms    FPS")
        for v in videos {
            let s = v.stageMilliseconds
            print(v.video.padding(toLength: 48, withPad: " ", startingAt: 0)
                  + String(format: "%7.2f %7.2f %7.2f %7.2f %7.2f %8.2f %7.1f", s.decode, s.detect, s.preprocess, s.classify, s.draw, s.total, v.endToEndFPS))
        }
        print(String(format: "photo 1350x1350 JPEG end to end: %.1f ms, best of %d (decode %.1f, detect %.1f, preprocess %.1f, classify %.1f, draw %.1f)",
                     best, repeats, bestStages.decode, bestStages.detect, bestStages.preprocess, bestStages.classify, bestStages.draw))
        if let p = set {
            let s = p.stageMilliseconds
            print(String(format: "%d photos in %@, each once: mean %.1f ms, median %.1f, p90 %.1f, max %.1f (mean decode %.1f, detect %.1f, classify %.1f); %d faces, %d unreadable",
                         p.photos, p.folder, p.meanMilliseconds, p.medianMilliseconds, p.p90Milliseconds, p.maxMilliseconds, s.decode, s.detect, s.classify, p.faces, p.failed))
        }
        for p in peers {
            print(String(format: "detect, %@: %.1f ms, %@ %.1f ms: %.2fx", p.photos, p.ourMilliseconds, p.engine, p.peerMilliseconds, p.speedup))
        }
        for stage in ["detect", "classify"] { print("oneDNN kernels, \(stage): \(r.kernels[stage, default: []].joined(separator: ", "))") }
    }
}
