import Foundation
import Testing
@testable import FEREngine
@testable import FERIO
@testable import FERModels
@testable import FERVision

/// Networks are made on one thread and run on whichever asks: a task hops threads at every await,
/// a server's requests and a live session's sources run on threads of their own. oneDNN's own
/// scratch memory (its "library" mode, as Debian builds it) belongs to the thread that made a
/// primitive, so a primitive run on another thread used that thread's buffer: too small, or none
/// (garbage boxes of 1e22 pixels, a CI run ended by a trap in MTCNN's crop). These run networks
/// away from where they were made, and several at once, and want a lone run's answers.
@Suite("Threads") struct ThreadTests {
    /// What the threads share: made before they start, or written under `lock`.
    final class Shared<T>: @unchecked Sendable {
        var value: T
        let lock = NSLock()
        init(_ value: T) { self.value = value }
    }

    /// `body` on `count` new threads at once (threads that never made a primitive); their results in order.
    static func onNewThreads<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
        let results = Shared([T?](repeating: nil, count: count)), done = DispatchGroup()
        for i in 0..<count {
            done.enter()
            Thread.detachNewThread {
                let r = body(i)
                results.lock.lock(); results.value[i] = r; results.lock.unlock()
                done.leave()
            }
        }
        done.wait()
        return results.value.map { $0! }
    }

    static func boxes(_ faces: [MTCNNDetector.Face]) -> [[Int]] { faces.map { [$0.box.x, $0.box.y, $0.box.width, $0.box.height] } }

    @Test func aDetectorMadeOnOneThreadFindsTheSameFacesOnAnother() throws {
        DNNL.setThreads(2)
        let image = try Image.read(VisionTests.photo, channels: 3)
        for precision in [Precision.fp32] + (Precision.int8.isNative && MTCNNNetworks.hasInt8Ranges(BundledTestModels.mtcnn) ? [.int8] : []) {
            var settings = DetectorSettings()
            settings.precision = precision
            let detector = Shared(try MTCNNDetector(weights: BundledTestModels.mtcnn, settings: settings))
            let here = Self.boxes(detector.value.faces(image))
            #expect(!here.isEmpty)
            // One thread at a time, each new: every primitive runs where it was not made.
            for _ in 0..<3 {
                let there = Self.onNewThreads(1) { _ in Self.boxes(detector.value.faces(image)) }[0]
                #expect(there == here, "\(precision): \(there) on a new thread, \(here) where the detector was made")
            }
        }
    }

    @Test func networksRunningAtOnceGiveALoneRunsAnswers() throws {
        DNNL.setThreads(1)
        defer { DNNL.setThreads(2) }
        let image = try Image.read(VisionTests.photo, channels: 3)
        let (model, _, _) = try Checkpoint.load(VisionTests.bundledModel)
        let faces: Shared<[[UInt8]]> = Shared((0..<8).map { (f: Int) -> [UInt8] in (0..<(48 * 48)).map { (i: Int) -> UInt8 in UInt8((i * 37 + f * 11) % 256) } })
        let alone = Self.boxes(try MTCNNDetector(weights: BundledTestModels.mtcnn).faces(image))
        let aloneLogits = model.classify(faces: faces.value)
        // Four threads, each with networks it did not make (made here), all running at once.
        let detectors = Shared(try (0..<4).map { _ in try MTCNNDetector(weights: BundledTestModels.mtcnn) })
        let models = Shared(try (0..<4).map { _ in try Checkpoint.load(VisionTests.bundledModel).0 })
        let results = Self.onNewThreads(4) { i in
            (0..<4).map { _ in (Self.boxes(detectors.value[i].faces(image)), models.value[i].classify(faces: faces.value)) }
        }
        for (i, rounds) in results.enumerated() {
            for (boxes, logits) in rounds {
                #expect(boxes == alone, "thread \(i): \(boxes), alone \(alone)")
                #expect(logits == aloneLogits, "thread \(i): the classifier's outputs differ from a lone run's")
            }
        }
    }

    /// Should a network ever answer garbage again, its boxes are dropped, not trapped on (the trap
    /// was `Int(-1.08e22)` in the crop).
    @Test func aGarbageBoxIsDroppedNotCut() {
        typealias C = MTCNNDetector.Candidate
        #expect(C(x1: 10, y1: 20, x2: 60, y2: 70, score: 0.9).isPlausible)
        #expect(!C(x1: -1.08e22, y1: 20, x2: 60, y2: 70, score: 0.9).isPlausible)
        #expect(!C(x1: 10, y1: .nan, x2: 60, y2: 70, score: 0.9).isPlausible)
        #expect(!C(x1: 10, y1: 20, x2: .infinity, y2: 70, score: 0.9).isPlausible)
        #expect(!C(x1: 10, y1: 20, x2: 60, y2: 70, score: 0.9, landmarks: [(30, .nan)]).isPlausible)
    }
}
