import Foundation
import Testing
@testable import FERData
@testable import FEREngine
@testable import FEREvaluation
@testable import FERIO
@testable import FERModels
@testable import FEROptimizers
@testable import FERTraining
@testable import FERVision

@Suite("Faces in photos and videos", .serialized) struct VisionTests {
    static let photo = (Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut.png")
    static let bundledModel = BundledTestModels.model("default")

    func analyzer() throws -> FaceAnalyzer {
        DNNL.setThreads(2)
        return FaceAnalyzer(detector: try CascadeDetector(DetectorSettings(kind: .haar)), classifier: try Checkpoint.load(Self.bundledModel).0)
    }

    @Test func findsTheFaceInTheBundledPhoto() throws {
        let img = try Image.read(Self.photo, channels: 3)
        let faces = try CascadeDetector(DetectorSettings(kind: .haar)).detect(img)
        #expect(faces.count == 1)
        // Eileen Collins' face spans roughly x 170-280, y 60-175 in the 512x512 portrait.
        let f = try #require(faces.first)
        #expect(abs(f.centerX - 224) < 20 && abs(f.centerY - 115) < 20, "box \(f)")
        #expect(f.width > 70 && f.width < 140)
    }

    @Test func twoFacesLeftToRight() throws {
        let img = try Image.read(Self.photo, channels: 3)
        // Two copies side by side, the right one mirrored: two faces, in left-to-right order.
        var tiled = Image(width: 1024, height: 512, channels: 3)
        for y in 0..<512 {
            for x in 0..<512 {
                for c in 0..<3 {
                    tiled.pixels[(y * 1024 + x) * 3 + c] = img.pixels[(y * 512 + x) * 3 + c]
                    tiled.pixels[(y * 1024 + 1023 - x) * 3 + c] = img.pixels[(y * 512 + x) * 3 + c]
                }
            }
        }
        let results = try analyzer().analyze(tiled)
        #expect(results.count == 2)
        #expect(results.count == 2 && results[0].box.x < 512 && results[1].box.x > 512)
        #expect(results.allSatisfy { $0.emotion == "Happy" }, "\(results.map(\.emotion))")
    }

    @Test func noFaceInAPlainPicture() throws {
        var img = Image(width: 320, height: 240, channels: 3, fill: 120)
        img.rectangle(40, 40, 100, 60, (20, 200, 20), thickness: -1)
        #expect(try analyzer().analyze(img).isEmpty)
    }

    @Test func videoRoundTrip() throws {
        let dir = Paths.temporaryDirectory("video")
        let path = dir + "/stills.avi"
        let w = try VideoWriter(path: path, fps: 10, width: 160, height: 120)
        for i in 0..<12 { try w.write(Image(width: 160, height: 120, channels: 3, fill: UInt8(i * 20))) }
        try w.close()
        let r = try VideoReader(path: path)
        #expect(r.width == 160 && r.height == 120)
        var n = 0
        while let f = try r.read() {
            #expect(f.width == 160 && f.height == 120 && f.channels == 3)
            n += 1
        }
        #expect(n == 12)
        #expect(r.frameCount == 12)
    }

    @Test func corruptAndMissingVideos() throws {
        let dir = Paths.temporaryDirectory("badvideo")
        _ = FileManager.default.createFile(atPath: dir + "/bad.mp4", contents: Data("not a video".utf8))
        #expect(throws: VideoError.self) { _ = try VideoReader(path: dir + "/bad.mp4") }
        #expect(throws: DataError.self) { _ = try VideoReader(path: dir + "/none.mp4") }
    }

    @Test func trackerKeepsIdentityAndSmooths() {
        let names = ["a", "b"]
        let t = FaceTracker(alpha: 0.5)
        func face(_ x: Int, _ p: [Float]) -> FaceResult {
            FaceResult(box: FaceBox(x: x, y: 0, width: 50, height: 50), probabilities: p, classNames: names)
        }
        let f1 = t.update([face(0, [1, 0]), face(200, [0, 1])], classNames: names)
        let f2 = t.update([face(205, [1, 0]), face(4, [0, 1])], classNames: names)
        #expect(f1.map(\.track) == [1, 2])
        #expect(f2.map(\.track) == [2, 1])
        #expect(f2[1].probabilities == [0.5, 0.5])
    }

    @Test func predictOverAFolderWithABrokenFile() throws {
        let dir = Paths.temporaryDirectory("folder")
        try FileManager.default.copyItem(atPath: Self.photo, toPath: dir + "/a.png")
        _ = FileManager.default.createFile(atPath: dir + "/b.png", contents: Data("broken".utf8))
        try Image(width: 300, height: 200, channels: 3, fill: 200).write(dir + "/c.png")
        let r = try run(Paths.ferBinary, ["predict", dir, "--json", "--annotate", dir + "/out"])
        #expect(r.status == 1)
        let rows = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
        #expect(rows.count == 3)
        #expect((rows[0]["faces"] as! [Any]).count == 1)
        #expect(rows[1]["error"] is String)
        #expect(rows[2]["note"] as? String == "no face found")
        #expect(FileManager.default.fileExists(atPath: dir + "/out/a.annotated.png"))
    }

    @Test func videoCommandWritesVideoAndTimeline() throws {
        let dir = Paths.temporaryDirectory("vcmd")
        let img = try Image.read(Self.photo, channels: 3)
        let w = try VideoWriter(path: dir + "/in.avi", fps: 10, width: 512, height: 512)
        for _ in 0..<5 { try w.write(img) }
        try w.close()
        let r = try run(Paths.ferBinary, ["video", dir + "/in.avi", "--out", dir + "/out.avi", "--timeline-csv", dir + "/t.csv"])
        #expect(r.status == 0, "\(r.stderr)")
        let csv = try String(contentsOfFile: dir + "/t.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 6)  // header + one face in each of 5 frames
        #expect(csv.dropFirst().allSatisfy { $0.split(separator: ",")[2] == "1" })  // one track throughout
        let out = try VideoReader(path: dir + "/out.avi")
        #expect(out.frameCount == 5 && out.width == 512)
    }

    @Test func liveWithoutCameraIsAClearError() throws {
        let r = try run(Paths.ferBinary, ["live", "--camera", "97", "--headless", "--max-frames", "1"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("camera 97"))
    }
}

@Suite("MTCNN detector") struct MTCNNDetectorTests {
    @Test func findsTheAstronautWithLandmarks() throws {
        let root = Paths.packageRoot as NSString
        let d = try MTCNNDetector(weights: BundledTestModels.mtcnn)
        let img = try Image.read(root.appendingPathComponent("samples/astronaut.png"), channels: 3)
        let faces = d.faces(img)
        #expect(faces.count == 1, "\(faces.map(\.box))")
        let f = try #require(faces.first)
        #expect(abs(f.box.centerX - 224) < 20 && abs(f.box.centerY - 115) < 25, "\(f.box)")
        #expect(f.score > 0.9)
        // Eyes above the nose, nose above the mouth; left eye left of the right eye.
        let l = f.landmarks
        #expect(l.count == 5 && l[0].0 < l[1].0 && l[0].1 < l[2].1 && l[2].1 < l[3].1)
    }

    /// Frames of a 640x480 video in which the portrait drifts by a few pixels per frame.
    static func drifting(_ photo: Image, frames: Int) -> [(frame: Image, dx: Int, dy: Int)] {
        let portrait = photo.resized(width: 300, height: 300)
        return (0..<frames).map { i in
            let dx = 40 + 4 * i, dy = 60 + (i % 7)
            var canvas = Image(width: 640, height: 480, channels: 3, fill: 90)
            for y in 0..<300 { for x in 0..<300 { for c in 0..<3 { canvas.pixels[((dy + y) * 640 + dx + x) * 3 + c] = portrait.pixels[(y * 300 + x) * 3 + c] } } }
            return (canvas, dx, dy)
        }
    }

    /// Tracking (O-Net re-fitting last frame's box) follows a moving face as well as a full search.
    @Test func trackingFollowsAMovingFace() throws {
        let root = Paths.packageRoot as NSString
        let d = try MTCNNDetector(weights: BundledTestModels.mtcnn)
        let frames = Self.drifting(try Image.read(root.appendingPathComponent("samples/astronaut.png"), channels: 3), frames: 20)
        var previous = d.detect(frames[0].frame)
        #expect(previous.count == 1)
        for (frame, dx, dy) in frames.dropFirst() {
            let tracked = d.track(frame, previous: previous)
            let t = try #require(tracked.first ?? nil, "lost the face at offset \(dx), \(dy)")
            let full = try #require(d.detect(frame).first)
            #expect(t.iou(full) > 0.75, "tracked \(t), searched \(full)")
            // The face sits at about (224, 115) of the 512x512 portrait, scaled to 300.
            #expect(abs(t.centerX - (Double(dx) + 224 * 300 / 512)) < 12 && abs(t.centerY - (Double(dy) + 115 * 300 / 512)) < 15, "\(t)")
            previous = [t]
        }
        // Where there is no face, tracking says so (and the video analyzer searches again).
        #expect(d.track(Image(width: 640, height: 480, channels: 3, fill: 90), previous: previous) == [nil])
    }

    /// R-Net's and O-Net's batches are padded to few sizes (each new size costs new primitives), and
    /// a video's one tracked face runs alone, not padded to 8; a padded batch answers as a lone one.
    @Test func refinementBatchesArePaddedToFewSizes() throws {
        #expect([1, 2, 3, 4, 5, 8, 9, 17, 64, 65, 100].map(MTCNNDetector.batchBucket) == [1, 2, 4, 4, 8, 8, 16, 24, 64, 96, 128])
        let d = try MTCNNDetector(weights: BundledTestModels.mtcnn)
        let photo = try Image.read(VisionTests.photo, channels: 3)
        let crop = photo.resized(x: 120, y: 20, regionWidth: 260, regionHeight: 260, width: 48, height: 48)
        let alone = d.networks.onet(MTCNNDetector.input([crop]))
        let padded = d.networks.onet(MTCNNDetector.input([crop], batch: 8))
        #expect(abs(alone.probability[0] - padded.probability[0]) < 1e-4 && zip(alone.offsets, padded.offsets.prefix(4)).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    /// MTCNN's input is written channels-last for int8 networks (their first layer's layout, no
    /// transposition): the same values as the planes, and the same answers from every network.
    @Test func channelsLastInputGivesTheSameAnswers() throws {
        let photo = try Image.read(VisionTests.photo, channels: 3)
        let images = [photo.resized(width: 120, height: 90), photo.resized(width: 100, height: 110)]
        let planes = MTCNNDetector.input(images, width: 130), interleaved = MTCNNDetector.input(images, width: 130, channelsLast: true)
        #expect(planes.shape == [2, 3, 110, 130] && interleaved.shape == planes.shape)
        #expect(planes.plainValues() == interleaved.plainValues())
        let networks = try MTCNNNetworks(weights: BundledTestModels.mtcnn, precision: .int8)
        #expect(networks.takesChannelsLast)
        let a = networks.pnet(planes), b = networks.pnet(interleaved)
        #expect(a.probability == b.probability && a.offsets == b.offsets && a.height == 50 && a.width == 60)
        let crops = (0..<3).map { k in photo.resized(x: 100 + 10 * k, y: 30, regionWidth: 200, regionHeight: 200, width: 48, height: 48) }
        let c = networks.onet(MTCNNDetector.input(crops)), d = networks.onet(MTCNNDetector.input(crops, channelsLast: true))
        #expect(c.probability == d.probability && c.offsets == d.offsets && c.landmarks == d.landmarks)
    }
}
