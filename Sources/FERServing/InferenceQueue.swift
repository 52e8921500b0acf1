import FER
import FERIO
import FERModels
import FERVision
import Foundation
import Prometheus

/// The one thread that runs the model, fed by a bounded queue. Requests decode their images on
/// their own tasks and wait here; the thread takes every waiting image (up to `maxBatch`), finds the
/// faces in each, and classifies the faces of all of them in one call, so concurrent requests share
/// the network's batch. The engine's layers keep per-shape buffers, so one thread owns them.
public final class InferenceQueue: @unchecked Sendable {  // jobs behind `condition`; the analyzer only on the inference thread
    public typealias Completion = @Sendable (Result<Answer, ServeError>) -> Void

    /// The faces of one image and, when asked for, each face's Grad-CAM explanation drawn.
    public struct Answer: Sendable {
        public var faces: [FaceResult]
        public var explanations: [Image] = []
    }

    struct Job {
        /// As decoded (a large JPEG at a fraction of its size); results are in the original's pixels.
        var photo: ScaledImage
        var asCrop: Bool
        var explain: Bool
        var deadline: DispatchTime
        var done: Completion
    }

    let analyzer: FaceAnalyzer
    public let capacity: Int
    public let maxBatch: Int
    let timeout: Double
    let metrics: ServerMetrics?
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var stopped = false

    /// Runs `recognizer`'s model and detector (the server is an app of the front door, and
    /// batches the faces of several requests through the recognizer's analyzer on its own thread).
    public init(recognizer: ExpressionRecognizer, settings: ServeSettings, metrics: ServerMetrics? = nil) {
        self.analyzer = recognizer.analyzer
        self.capacity = settings.queueCapacity
        self.maxBatch = settings.maxBatchImages
        self.timeout = settings.timeout
        self.metrics = metrics
        let thread = Thread { [weak self] in self?.loop() }
        thread.name = "fer-inference"
        thread.start()
    }

    /// The order of the probabilities in every result.
    public var classNames: [String] { analyzer.classifier.classNames }

    /// Images waiting now.
    public var depth: Int { condition.lock(); defer { condition.unlock() }; return jobs.count }

    /// The faces in `image` (or `image` itself as a face crop). Throws 503 when the queue is full or
    /// the image waited longer than the timeout.
    public func analyze(_ image: Image, asCrop: Bool) async throws -> [FaceResult] {
        try await analyze(ScaledImage(image: image, originalWidth: image.width, originalHeight: image.height), asCrop: asCrop)
    }

    /// The faces in a photo decoded at reduced size (`ScaledImage`), boxes in the original's pixels.
    public func analyze(_ photo: ScaledImage, asCrop: Bool) async throws -> [FaceResult] {
        try await answer(photo, asCrop: asCrop, explain: false).faces
    }

    /// The faces, and with `explain` each face's Grad-CAM explanation drawn (computed on the
    /// inference thread, which owns the network's layers: one backward pass through the head per face).
    public func answer(_ photo: ScaledImage, asCrop: Bool, explain: Bool) async throws -> Answer {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<Answer, ServeError>, Never>) in
            submit(photo, asCrop: asCrop, explain: explain) { c.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Queues `photo`; `done` is called once, on the inference thread or at once if refused.
    public func submit(_ photo: ScaledImage, asCrop: Bool, explain: Bool = false, done: @escaping Completion) {
        condition.lock()
        guard !stopped, jobs.count < capacity else {
            let full = !stopped
            condition.unlock()
            metrics?.error("busy")
            done(.failure(.busy(full ? "the server is busy: \(capacity) images are waiting; try again shortly" : "the server is shutting down")))
            return
        }
        jobs.append(Job(photo: photo, asCrop: asCrop, explain: explain, deadline: .now() + timeout, done: done))
        metrics?.queueDepth.set(Double(jobs.count))
        condition.signal()
        condition.unlock()
    }

    public func stop() {
        condition.lock()
        stopped = true
        let left = jobs
        jobs = []
        condition.broadcast()
        condition.unlock()
        for j in left { j.done(.failure(.busy("the server is shutting down"))) }
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if stopped { condition.unlock(); return }
            let batch = Array(jobs.prefix(maxBatch))
            jobs.removeFirst(batch.count)
            metrics?.queueDepth.set(Double(jobs.count))
            condition.unlock()
            run(batch)
        }
    }

    /// Detects the faces of every image, then classifies all their crops in one call.
    private func run(_ batch: [Job]) {
        let started = DispatchTime.now()
        var live: [Job] = []
        for job in batch {
            if DispatchTime.now() > job.deadline {
                metrics?.error("timeout")
                job.done(.failure(.busy("the image waited more than \(timeout) s for the model; the server is overloaded")))
            } else {
                live.append(job)
            }
        }
        guard !live.isEmpty else { return }
        // A crop is its own single face; a photo's faces are what the detector finds (`find`: in
        // the copy of the photo they are cut from).
        let found = live.map { job in
            job.asCrop ? (photo: job.photo, boxes: [FaceBox(x: 0, y: 0, width: job.photo.image.width, height: job.photo.image.height)])
                : analyzer.find(job.photo)
        }
        let inputs = zip(live, found).flatMap { job, f in
            job.asCrop ? [f.photo.image.faceInput(side: analyzer.classifier.sourceSide)] : f.boxes.map { analyzer.faceInput(f.photo.image, $0) }
        }
        let probabilities = inputs.isEmpty ? [] : analyzer.classifier.classify(faces: inputs, tta: analyzer.reading.tta)
        metrics?.batchFaces.record(Double(inputs.count))
        metrics?.faces.increment(by: Int64(inputs.count))
        metrics?.inference.record(.nanoseconds(Int64(milliseconds(since: started) * 1e6)))
        var next = 0
        for (job, f) in zip(live, found) {
            let first = next
            let faces = f.boxes.map { box in
                defer { next += 1 }
                return FaceAnalyzer.inOriginal(FaceResult(box: box, probabilities: probabilities[next], classNames: classNames), f.photo)
            }
            let explanations = job.explain ? inputs[first..<next].compactMap { face in
                analyzer.classifier.explain(face: face).map { Annotator.explanation($0, face: face, className: classNames[$0.classIndex]) }
            } : []
            job.done(.success(Answer(faces: faces, explanations: explanations)))
        }
    }
}
