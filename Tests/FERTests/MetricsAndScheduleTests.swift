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

@Suite("Metrics and schedules") struct MetricsAndScheduleTests {
    @Test func classificationReportByHand() {
        // 3 classes; true/predicted pairs chosen so every figure is easy to check by hand.
        let labels = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
        let preds = [0, 0, 0, 1, 1, 2, 2, 2, 2, 0]
        let r = ClassificationReport(labels: labels, predictions: preds, classNames: ["a", "b", "c"])
        #expect(r.confusion == [[3, 1, 0], [0, 1, 1], [1, 0, 3]])
        #expect(r.accuracy == 0.7)
        // Class a: precision 3/4, recall 3/4. Class b: 1/2, 1/2. Class c: 3/4, 3/4.
        #expect(r.classes.map(\.precision) == [0.75, 0.5, 0.75])
        #expect(r.classes.map(\.recall) == [0.75, 0.5, 0.75])
        #expect(r.classes.map(\.support) == [4, 2, 4])
        #expect(abs(r.macro.f1 - (0.75 + 0.5 + 0.75) / 3) < 1e-12)
        #expect(abs(r.weighted.f1 - (0.75 * 4 + 0.5 * 2 + 0.75 * 4) / 10) < 1e-12)
        #expect(r.table.contains("confusion matrix"))
    }

    /// Temperature scaling: faces whose labels are drawn from softmax(z / 2) give back T near 2,
    /// and over-confident probabilities (T = 1) show a large calibration error that T removes.
    @Test func temperatureFitRecoversTheTemperatureTheLabelsWereDrawnAt() {
        var rng = SplitMix64(seed: 21)
        var logits: [[Float]] = [], labels: [Int] = []
        for _ in 0..<6000 {
            let z = (0..<5).map { _ in rng.uniform(-4, 4) }
            let p = TemperatureCalibration.probabilities(z, temperature: 2)
            var u = rng.unit(), label = 4
            for (c, pc) in p.enumerated() { u -= pc; if u < 0 { label = c; break } }
            // A per-face shift of the logits must not matter.
            logits.append(z.map { $0 + Float(labels.count % 7) })
            labels.append(label)
        }
        let t = TemperatureCalibration.fit(logits: logits, labels: labels)
        #expect(abs(t - 2) < 0.15, "fitted \(t)")
        let nll = { TemperatureCalibration.negativeLogLikelihood(logits: logits, labels: labels, temperature: $0) }
        #expect(nll(t) < nll(1) && nll(t) <= nll(t * 1.1) && nll(t) <= nll(t / 1.1))
        let ece = { (t: Float) in
            TemperatureCalibration.expectedCalibrationError(probabilities: logits.map { TemperatureCalibration.probabilities($0, temperature: t) }, labels: labels)
        }
        #expect(ece(1) > 0.1 && ece(t) < 0.03, "ECE \(ece(1)) at T = 1, \(ece(t)) at T = \(t)")
        // By hand: two faces at confidence 0.95, one right: |0.5 - 0.95| = 0.45; one at 0.55, right, in its own bin.
        let bins = TemperatureCalibration.reliability(probabilities: [[0.95, 0.05], [0.95, 0.05], [0.55, 0.45]], labels: [0, 1, 0], bins: 10)
        #expect(bins.count == 10 && bins[9].count == 2 && abs(bins[9].accuracy - 0.5) < 1e-9 && abs(bins[9].confidence - 0.95) < 1e-6)
        #expect(bins[5].count == 1 && bins[5].accuracy == 1 && bins.map(\.count).reduce(0, +) == 3)
        #expect(abs(TemperatureCalibration.expectedCalibrationError(bins) - (2 * 0.45 + 1 * 0.45) / 3) < 1e-6)
        #expect(Plots.reliabilityDiagram(bins, title: "t").width == 530)
        #expect(abs(TemperatureCalibration.expectedCalibrationError(probabilities: [[0.9, 0.1], [0.9, 0.1]], labels: [0, 1]) - 0.4) < 1e-6)
    }

    @Test func macroAverageSkipsClassesThatNeverOccur() {
        // Two expressions out of four, as in a photo set of neutral and happy faces; one photo
        // predicted as a third class, which then counts.
        let r = ClassificationReport(labels: [0, 0, 1, 1], predictions: [0, 1, 1, 2], classNames: ["a", "b", "c", "d"])
        #expect(r.classes[3].support == 0)
        let f1 = [r.classes[0].f1, r.classes[1].f1, r.classes[2].f1]
        #expect(abs(r.macro.f1 - f1.reduce(0, +) / 3) < 1e-12)
    }

    @Test func priorCalibrationRecoversAShiftedClass() {
        // Three classes; class 1's scores were pushed down by 0.8, so half its faces lose to class 0.
        var rng = SplitMix64(seed: 3)
        var logp: [[Float]] = [], labels: [Int] = []
        for i in 0..<600 {
            let y = i % 3
            var row = (0..<3).map { _ in Float(rng.next() % 1000) / 1000 }
            row[y] += 0.6
            row[1] -= 0.8
            logp.append(row)
            labels.append(y)
        }
        let zero = PriorCalibration.correct(logp, labels, [0, 0, 0])
        let bias = PriorCalibration.fit(logProbabilities: logp, labels: labels)
        #expect(PriorCalibration.correct(logp, labels, bias) > zero)
        #expect(bias[1] - max(bias[0], bias[2]) > 0.4)
        #expect(abs(bias.reduce(0, +)) < 1e-5)
    }

    /// Several sets, mean recall: a rare class the network under-scores is answered again, where
    /// plain accuracy would give it up for the common class.
    @Test func priorCalibrationForMeanRecallOverSeveralSets() {
        var rng = SplitMix64(seed: 5)
        func set(_ n: Int, rareEvery: Int) -> PriorCalibration.Scored {
            var logp: [[Float]] = [], labels: [Int] = []
            for i in 0..<n {
                let y = i % rareEvery == 0 ? 1 : 0
                var row = (0..<2).map { _ in Float(rng.next() % 1000) / 1000 }
                row[y] += 0.3
                row[1] -= 0.5  // the rare class under-scored
                logp.append(row)
                labels.append(y)
            }
            return PriorCalibration.Scored(logProbabilities: logp, labels: labels)
        }
        let sets = [set(400, rareEvery: 10), set(300, rareEvery: 8)]
        let zero: [Float] = [0, 0]
        let recall = PriorCalibration.fit(sets, objective: .meanRecall(minimumFaces: 10))
        let accuracy = PriorCalibration.fit(sets, objective: .accuracy)
        let before = PriorCalibration.score(sets, zero, .meanRecall(minimumFaces: 10))
        #expect(PriorCalibration.score(sets, recall, .meanRecall(minimumFaces: 10)) > before + 0.05)
        #expect(recall[1] - recall[0] > accuracy[1] - accuracy[0])  // recall favours the rare class more
        #expect(PriorCalibration.score(sets, accuracy, .accuracy) >= PriorCalibration.score(sets, recall, .accuracy))
        // Classes under the minimum are left out of the mean; halves alternate faces.
        let tiny = PriorCalibration.Scored(logProbabilities: [[0, -1], [0, -1], [-1, 0]], labels: [0, 0, 1])
        #expect(PriorCalibration.meanRecall(tiny, zero, minimumFaces: 2) == 1)
        #expect(PriorCalibration.meanRecall(tiny, zero, minimumFaces: 1) == 1)
        #expect(PriorCalibration.meanRecall(tiny, [0.5, -0.5], minimumFaces: 1) == 0.5)
        #expect(tiny.half(0).labels == [0, 1] && tiny.half(1).labels == [0])
    }

    @Test func fastRecipeTrainsTheDefaultNetworkOnAWarmCosine() throws {
        let c = TrainRecipe.fast.config
        try c.validate()
        #expect(c.recipe == .fast && c.epochs == 35)
        // The network the bundled default model runs, so the recipe's figure speaks for it.
        let (_, shipped, _) = try Checkpoint.load(BundledTestModels.model("default"))
        #expect(c.modelSpec == shipped.spec)
        // One warm-up epoch up to 0.02, then a cosine that falls every step and ends at zero.
        let steps = 28_709 / c.batchSize
        let s = LearningRateSchedule(c.schedule, baseRate: c.optimizer.learningRate, epochs: c.epochs, stepsPerEpoch: steps)
        #expect(s.rate(step: 0) < 0.001)
        #expect(abs(s.rate(step: steps - 1) - 0.02) < 1e-6)
        let after = (steps..<(steps * c.epochs)).map { s.rate(step: $0) }
        #expect(zip(after, after.dropFirst()).allSatisfy { $0 >= $1 })
        #expect(after.last! < 1e-6)
        #expect(abs(s.rate(step: steps * 18) - 0.01) < 1e-4)  // half-way through the cosine
        #expect(c.optimizer.kind == .sgd && c.optimizer.nesterov && c.optimizer.weightDecay == 5e-4)
        #expect(c.mixup == nil && c.augmentation.photometric == nil && c.ferplusWeight == 0.3)
        // fast2's additions: label smoothing and a weight average with a horizon of about two epochs.
        #expect(c.labelSmoothing == 0.1 && c.ema == 0.999)
        let horizon = 1 / (1 - Double(c.ema!))
        #expect(horizon > Double(steps) && horizon < 3 * Double(steps))
    }

    /// The record attempt's recipe: fast's network, optimiser, targets and weight average, longer,
    /// with mixup.
    @Test func longRecipeIsTheFastOneLongerAndAveraged() throws {
        let c = TrainRecipe.long.config, fast = TrainRecipe.fast.config
        try c.validate()
        #expect(c.recipe == .long && c.epochs == 120 && c.schedule.warmupEpochs == 2)
        #expect(c.modelSpec == fast.modelSpec && c.optimizer == fast.optimizer && c.ferplusWeight == fast.ferplusWeight)
        #expect(c.mixup == 0.2 && c.ema == fast.ema && c.labelSmoothing == fast.labelSmoothing)
        let steps = Double(28_709 / c.batchSize)
        let s = LearningRateSchedule(c.schedule, baseRate: c.optimizer.learningRate, epochs: c.epochs, stepsPerEpoch: Int(steps))
        #expect(abs(s.rate(step: Int(steps) * 2 - 1) - 0.02) < 1e-6)
        #expect(s.rate(step: Int(steps) * 120 - 1) < 1e-6)
    }

    @Test func cosineWithWarmup() {
        var c = ScheduleConfig()
        c.kind = .cosine
        c.warmupEpochs = 1
        let s = LearningRateSchedule(c, baseRate: 0.1, epochs: 11, stepsPerEpoch: 10)
        #expect(abs(s.rate(step: 0) - 0.01) < 1e-7)          // warm-up starts at lr/steps
        #expect(abs(s.rate(step: 9) - 0.1) < 1e-7)           // and reaches lr
        #expect(abs(s.rate(step: 60) - 0.05) < 1e-6)         // half-way through the cosine
        #expect(s.rate(step: 109) < 1e-3)
    }

    @Test func stepAndPlateau() {
        var c = ScheduleConfig()
        c.kind = .step
        c.stepEpochs = 2
        c.gamma = 0.5
        let s = LearningRateSchedule(c, baseRate: 1, epochs: 6, stepsPerEpoch: 4)
        #expect([0, 7, 8, 16].map { s.rate(step: $0) } == [1, 1, 0.5, 0.25])
        c.kind = .plateau
        c.patience = 2
        let p = LearningRateSchedule(c, baseRate: 1, epochs: 6, stepsPerEpoch: 4)
        for acc in [0.5, 0.6, 0.6, 0.59] { p.epochEnded(validationAccuracy: acc) }
        #expect(p.rate(step: 0) == 0.5)
        p.epochEnded(validationAccuracy: 0.7)
        #expect(p.rate(step: 0) == 0.5)
    }

    @Test func gradientClipping() {
        let p = Parameter("p", shape: [2], decays: false, values: [0, 0])
        p.grads[0] = 3; p.grads[1] = 4
        #expect(clipGradients([p], maxNorm: 1) == 5)
        #expect(abs(p.grads[0] - 0.6) < 1e-6 && abs(p.grads[1] - 0.8) < 1e-6)
    }

    @Test func softTargetsAndWeights() {
        // With soft targets the loss is the cross-entropy against the distribution.
        let z = Tensor(shape: [1, 2], values: [0, 0])
        let r = SoftmaxCrossEntropy()(z, .distributions([0.25, 0.75]))
        #expect(abs(r.loss - Float(0.693147)) < 1e-5)
        let g = r.gradient.plainValues()
        #expect(abs(g[0] - 0.25) < 1e-5 && abs(g[1] + 0.25) < 1e-5)
    }
}

/// Issue 34: a measurement that sees the rare expressions: recall with its 95% interval, and
/// person-disjoint folds of photo sets.
@Suite("Recall intervals and person-disjoint folds") struct RareExpressionMeasurementTests {
    @Test func pooledReportsAreTheReportOfAllExamples() throws {
        // Two folds' reports (one with an unanswered example, -1) pool into the report of both
        // folds' examples together; the mean over chosen classes counts only those.
        let names = ["a", "b", "c"]
        let l1 = [0, 0, 1, 2], p1 = [0, 1, 1, -1], l2 = [0, 2, 2, 1, 1], p2 = [2, 2, 2, 1, 0]
        let one = ClassificationReport(labels: l1, predictions: p1, classNames: names)
        let two = ClassificationReport(labels: l2, predictions: p2, classNames: names)
        let pooled = try ClassificationReport.pooled([one, two])
        let direct = ClassificationReport(labels: l1 + l2, predictions: p1 + p2, classNames: names)
        #expect(pooled.confusion == direct.confusion && pooled.accuracy == direct.accuracy)
        #expect(pooled.classes.map(\.support) == [3, 3, 3] && pooled.classes.map(\.recall) == direct.classes.map(\.recall))
        #expect(pooled.classes[2].recall == 2.0 / 3, "the unanswered example stays wrong")
        let ab = try #require(pooled.meanRecall(over: ["A", "b"]))
        #expect(abs(ab.value - (1.0 / 3 + 2.0 / 3) / 2) < 1e-12)
        let other = ClassificationReport(labels: [0], predictions: [0], classNames: ["x", "y", "z"])
        #expect(throws: DataError.self) { try ClassificationReport.pooled([one, other], names: ["f1.json", "f2.json"]) }
        #expect(throws: DataError.self) { try ClassificationReport.pooled([]) }
    }

    @Test func logitAdjustedLossShiftsTheLogitsByTheLogPrior() throws {
        // Offsets tau * log(share): shares 1/4 and 3/4 (a prior given as counts), a missing class
        // takes the smallest share's offset.
        let b = SoftmaxCrossEntropy.logitAdjustment(prior: [1, 3, 0], tau: 2)
        #expect(abs(b[0] - 2 * Float(-1.3862944)) < 1e-5 && abs(b[1] - 2 * Float(-0.28768207)) < 1e-6 && b[2] == b[0])
        // The loss and gradient are plain cross-entropy's at z + b.
        let z: [Float] = [0.3, -1.2, 0.5, 2.0, 0.1, -0.4], offsets: [Float] = [-1.5, 0.2, 0.7]
        let adjusted = SoftmaxCrossEntropy(logitOffsets: offsets)(Tensor(shape: [2, 3], values: z), .labels([0, 2]))
        let shifted = (0..<6).map { z[$0] + offsets[$0 % 3] }
        let plain = SoftmaxCrossEntropy()(Tensor(shape: [2, 3], values: shifted), .labels([0, 2]))
        #expect(abs(adjusted.loss - plain.loss) < 1e-6)
        #expect(zip(adjusted.gradient.plainValues(), plain.gradient.plainValues()).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(abs(adjusted.loss - SoftmaxCrossEntropy()(Tensor(shape: [2, 3], values: z), .labels([0, 2])).loss) > 0.1)
    }

    @Test func classPriorCountsEachPartByItsDraw() throws {
        // Part a: 4 faces, 3 of class 0; part b: 2 faces, both class 1, one with a soft target.
        // Drawn 2:6 per epoch: a's faces count 0.5 each, b's 3 each.
        let targets: [Float] = [1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0.5, 0.5]
        let faces = FaceDataset(side: 1, images: [UInt8](repeating: 0, count: 6), labels: [0, 0, 0, 1, 1, 1], targets: targets, classNames: ["x", "y"])
        let data = Trainer.TrainingData(train: faces, parts: [("a", 0..<4), ("b", 4..<6)], validations: [])
        let mix = MixedSampling(parts: [.init(name: "a", start: 0, count: 4, weight: 1), .init(name: "b", start: 4, count: 2, weight: 3)], epochSize: 8)
        let prior = data.classPrior(mix)
        // Class 0: 3 * 0.5 + 0.5 * 3 = 3; class 1: 1 * 0.5 + 1.5 * 3 = 5; of 8.
        #expect(abs(prior[0] - 3.0 / 8) < 1e-6 && abs(prior[1] - 5.0 / 8) < 1e-6, "\(prior)")
        // Without a mix every face counts once: 3.5 / 6 and 2.5 / 6.
        let once = data.classPrior(nil)
        #expect(abs(once[0] - 3.5 / 6) < 1e-6 && abs(once[1] - 2.5 / 6) < 1e-6, "\(once)")
    }

    @Test func wilsonIntervalsOnKnownCases() throws {
        // Wilson's interval, 95%: 50 of 100 -> 0.4038-0.5962; 0 of 10 -> 0-0.2775; 10 of 10 -> 0.7225-1.
        let half = try #require(ClassificationReport.wilson(50, of: 100))
        #expect(abs(half[0] - 0.4038) < 1e-3 && abs(half[1] - 0.5962) < 1e-3, "\(half)")
        let none = try #require(ClassificationReport.wilson(0, of: 10))
        #expect(abs(none[0]) < 1e-9 && abs(none[1] - 0.2775) < 1e-3, "\(none)")
        let all = try #require(ClassificationReport.wilson(10, of: 10))
        #expect(abs(all[0] - 0.7225) < 1e-3 && abs(all[1] - 1) < 1e-9, "\(all)")
        #expect(ClassificationReport.wilson(0, of: 0) == nil)
    }

    @Test func reportCarriesRecallIntervalsAndTheMeanRecall() throws {
        // Class 0: 8 of 10 right; class 1: 1 of 4; class 2: no examples.
        let labels = Array(repeating: 0, count: 10) + Array(repeating: 1, count: 4)
        let predictions = Array(repeating: 0, count: 8) + [1, 1] + [1, 0, 0, 0]
        let r = ClassificationReport(labels: labels, predictions: predictions, classNames: ["a", "b", "c"])
        #expect(r.classes[0].recallInterval == ClassificationReport.wilson(8, of: 10))
        #expect(r.classes[1].recallInterval == ClassificationReport.wilson(1, of: 4))
        #expect(r.classes[2].recallInterval == nil)
        let m = try #require(r.meanRecall)
        #expect(abs(m.value - (0.8 + 0.25) / 2) < 1e-12)
        let sd = (0.8 * 0.2 / 10 + 0.25 * 0.75 / 4).squareRoot() / 2
        #expect(abs(m.interval[0] - (m.value - 1.959964 * sd)) < 1e-9 && abs(m.interval[1] - (m.value + 1.959964 * sd)) < 1e-9)
        #expect(r.table.contains("recall 95% CI") && r.table.contains("mean recall over the 2 classes with examples: 0.525"))
    }

    @Test func peopleAreNamedByTheirFileNames() {
        #expect(PersonFolds.person(of: "/x/happy/Tim_Henman_0001.jpg") == "Tim_Henman")
        #expect(PersonFolds.person(of: "anna-2.png") == "anna")
        #expect(PersonFolds.person(of: "Dwarakish12.jpg") == "Dwarakish")
        #expect(PersonFolds.person(of: "facial-expressions_2868584k.jpg") == "facial-expressions_2868584k")
        #expect(PersonFolds.person(of: "0042.jpg") == "0042")
    }

    @Test func foldsArePersonDisjointCoverEveryPhotoOnceAndSpreadTheRareExpressions() {
        // 60 people with 1-4 photos each; one expression (label 1) rare: 12 people show it.
        var rng = SplitMix64(seed: 9)
        var photos: [(path: String, label: Int)] = []
        for person in 0..<60 {
            let label = person < 12 ? 1 : Int(rng.next() % 2) * 2
            for k in 0..<(1 + Int(rng.next() % 4)) { photos.append(("/d/p\(person)_\(String(format: "%04d", k)).jpg", label)) }
        }
        let fold = PersonFolds.assign(photos, folds: 4, seed: 3)
        #expect(fold == PersonFolds.assign(photos, folds: 4, seed: 3))  // a seed repeats
        var foldOf: [String: Int] = [:]
        for (p, f) in zip(photos, fold) {
            let who = PersonFolds.person(of: p.path)
            #expect(foldOf[who, default: f] == f, "\(who) in two folds")
            foldOf[who] = f
        }
        let rarePeople = (0..<4).map { f in Set(photos.indices.filter { fold[$0] == f && photos[$0].label == 1 }.map { PersonFolds.person(of: photos[$0].path) }).count }
        #expect(rarePeople.allSatisfy { $0 == 3 }, "the 12 people with the rare expression spread 3 a fold: \(rarePeople)")
    }
}
