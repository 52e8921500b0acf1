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

@Suite("Training", .serialized) struct TrainingTests {
    init() { DNNL.setThreads(2) }

    /// Random faces with arbitrary labels: a network must be able to memorise a small batch.
    @Test func overfitsASmallBatch() {
        var rng = SplitMix64(seed: 3)
        let batch = Batch(images: (0..<(32 * 24 * 24)).map { _ in rng.unit() }, labels: (0..<32).map { $0 % 7 }, size: 24)
        let net = ModelSpec(preset: .cnn, width: 16, inputSize: 24, dropout: 0).build(seed: 2)
        var cfg = OptimizerConfig()
        cfg.learningRate = 3e-3
        let opt = cfg.make(net.parameters)
        let loss = SoftmaxCrossEntropy()
        var last = (loss: Float(0), correct: 0)
        for _ in 0..<60 { last = trainStep(net, batch, loss: loss, optimizer: opt) }
        #expect(last.correct == 32, "memorised \(last.correct)/32, loss \(last.loss)")
        // And in inference mode (running batch-norm statistics), too.
        let probs = LogSoftmax.shared.probabilities(net.forward(batch.tensor(), mode: .inference))
        #expect(countCorrect(probs, batch.labels) >= 30)
    }

    @Test func mlpOverfitsToo() {
        var rng = SplitMix64(seed: 4)
        let batch = Batch(images: (0..<(16 * 48 * 48)).map { _ in rng.unit() }, labels: (0..<16).map { $0 % 7 }, size: 48)
        let net = ModelSpec(preset: .mlp, width: 128, dropout: 0).build(seed: 2)
        var cfg = OptimizerConfig()
        cfg.kind = .sgd; cfg.learningRate = 0.05; cfg.nesterov = true
        let opt = cfg.make(net.parameters)
        var correct = 0
        for _ in 0..<80 { correct = trainStep(net, batch, loss: SoftmaxCrossEntropy(), optimizer: opt).correct }
        #expect(correct == 16)
    }

    func tinyConfig(_ data: String) -> TrainConfig {
        var c = TrainConfig()
        c.data = data
        c.preset = .cnn
        c.width = 8
        c.inputSize = 24
        c.epochs = 2
        c.batchSize = 16
        c.limit = 96
        c.validationLimit = 32
        return c
    }

    func syntheticCSV() -> String {
        let dir = Paths.temporaryDirectory("csv")
        var rng = SplitMix64(seed: 9)
        var rows: [(String, String, String)] = []
        for i in 0..<160 {
            let label = i % 7
            // Class-dependent brightness so there is something to learn.
            let px = (0..<2304).map { _ in String(min(255, label * 30 + Int(rng.unit() * 60))) }.joined(separator: " ")
            rows.append((String(label), px, i < 128 ? "Training" : "PublicTest"))
        }
        writeCSV(dir + "/synthetic.csv", rows: rows)
        return dir + "/synthetic.csv"
    }

    @Test func sameSeedSameWeights() throws {
        let csv = syntheticCSV()
        func train(_ out: String) throws -> [Float] {
            let t = Trainer(config: tinyConfig(csv), outDir: out)
            t.showProgress = false
            t.say = { _ in }
            _ = try t.run()
            let (m, _, _) = try Checkpoint.load(out + "/last.safetensors")
            return m.network.parameters.flatMap { Array($0.values) }
        }
        let a = try train(Paths.temporaryDirectory("seedA")), b = try train(Paths.temporaryDirectory("seedB"))
        #expect(a == b)
        var other = tinyConfig(csv)
        other.seed = 2
        let t = Trainer(config: other, outDir: Paths.temporaryDirectory("seedC"))
        t.showProgress = false; t.say = { _ in }
        _ = try t.run()
        let c = try Checkpoint.load(t.bestPath.replacingOccurrences(of: "best", with: "last")).0.network.parameters.flatMap { Array($0.values) }
        #expect(a != c)
    }

    /// Distillation: the targets are the stated blend of labels and the teacher's softened answers,
    /// a student trained on them follows its teacher, and the recipe survives in the checkpoint.
    @Test func distillationBlendsTheTeachersAnswers() throws {
        let csv = syntheticCSV()
        let teacherRun = Paths.temporaryDirectory("teacher")
        var tc = tinyConfig(csv)
        tc.epochs = 10
        tc.optimizer.learningRate = 5e-3
        let t = Trainer(config: tc, outDir: teacherRun)
        t.showProgress = false; t.say = { _ in }
        _ = try t.run()
        let teacher = teacherRun + "/best.safetensors"

        let train = try Trainer.datasets(tc).train
        let soft = try Distillation.teacherProbabilities(train, teachers: [teacher], temperature: 2)
        let sharp = try Distillation.teacherProbabilities(train, teachers: [teacher], temperature: 1)
        let k = train.classNames.count
        for i in 0..<train.count {
            let row = soft[(i * k)..<((i + 1) * k)], sharpRow = sharp[(i * k)..<((i + 1) * k)]
            #expect(abs(row.reduce(0, +) - 1) < 1e-4)
            #expect((row.max() ?? 0) <= (sharpRow.max() ?? 0) + 1e-6)  // T = 2 is softer than T = 1
        }
        // The same teacher twice is the same as once (an ensemble averages).
        #expect(try Distillation.teacherProbabilities(train, teachers: [teacher, teacher], temperature: 2).elementsEqual(soft) { abs($0 - $1) < 1e-5 })
        // A flip-view teacher's answer is the mean of its answers on the face and on its mirror image.
        let s = train.side
        var mirrored = train
        mirrored.images = train.images.indices.map { p in
            let (i, y, x) = (p / (s * s), p % (s * s) / s, p % s)
            return train.images[i * s * s + y * s + (s - 1 - x)]
        }
        let mirrorSoft = try Distillation.teacherProbabilities(mirrored, teachers: [teacher], temperature: 2)
        let flip = try Distillation.teacherProbabilities(train, teachers: [teacher], temperature: 2, tta: .flip)
        #expect(flip.indices.allSatisfy { abs(flip[$0] - (soft[$0] + mirrorSoft[$0]) / 2) < 1e-5 })
        #expect(!flip.elementsEqual(soft) { abs($0 - $1) < 1e-4 }, "the mirror view changed nothing: the test would pass without it")
        let blended = Distillation.blend(train, teacher: soft, weight: 0.25)
        for j in [0, 1, 7, 50] { #expect(abs(blended[j] - (0.75 * (train.labels[j / k] == j % k ? 1 : 0) + 0.25 * soft[j])) < 1e-6) }

        // A student trained only on the teacher's answers (weight 1) agrees with it on most faces.
        var sc = tc
        sc.seed = 9
        sc.teachers = [teacher]; sc.teacherWeight = 1; sc.teacherTemperature = 1
        let studentRun = Paths.temporaryDirectory("student")
        let st = Trainer(config: sc, outDir: studentRun)
        st.showProgress = false; st.say = { _ in }
        _ = try st.run()
        let (student, card, _) = try Checkpoint.load(studentRun + "/last.safetensors")
        #expect(card.training?.teachers == [teacher])
        let teacherAnswers = try Checkpoint.load(teacher).0.classify(train).map(argmax)
        let studentAnswers = student.classify(train).map(argmax)
        let agree = zip(teacherAnswers, studentAnswers).filter { $0 == $1 }.count
        #expect(Set(teacherAnswers).count >= 3, "the teacher learnt nothing: \(teacherAnswers)")
        #expect(agree * 10 >= train.count * 7, "student agrees with its teacher on \(agree) of \(train.count)")

        var bad = tinyConfig(csv)
        bad.teacherWeight = 0.5
        #expect(throws: TrainingError.self) { try bad.validate() }
        bad.teacherWeight = nil; bad.teacherTTA = .flip
        #expect(throws: TrainingError.self) { try bad.validate() }
        bad.teachers = ["/nonexistent.safetensors"]
        #expect(throws: (any Error).self) { _ = try Trainer.datasets(bad) }
    }

    /// Model soups: the soup is the element-wise mean; the greedy soup keeps what helps and leaves
    /// out what hurts; fresh batch-norm statistics repair statistics that do not fit the weights.
    @Test func modelSoupAveragesWeightsAndKeepsWhatHelps() throws {
        let csv = syntheticCSV()
        var tc = tinyConfig(csv)
        tc.epochs = 10
        tc.optimizer.learningRate = 5e-3
        let runA = Paths.temporaryDirectory("soup-a"), runB = Paths.temporaryDirectory("soup-b")
        let a = Trainer(config: tc, outDir: runA)
        a.showProgress = false; a.say = { _ in }
        _ = try a.run()
        var fine = tc
        fine.initFrom = runA + "/best.safetensors"; fine.epochs = 3; fine.seed = 5; fine.optimizer.learningRate = 1e-3
        let b = Trainer(config: fine, outDir: runB)
        b.showProgress = false; b.say = { _ in }
        _ = try b.run()

        // A saboteur: model A with its last layer's weights times -5; in a soup with A and B it turns the answers round.
        let (bad, badCard, _) = try Checkpoint.load(runA + "/best.safetensors")
        let last = try #require(bad.network.parameters.last { $0.name.hasSuffix("weight") && $0.value.shape.count == 2 })
        for i in 0..<last.count { last.values[i] *= -5 }
        last.changed()
        let badPath = Paths.temporaryDirectory("soup-bad") + "/bad.safetensors"
        try Checkpoint.save(bad, card: badCard, to: badPath)

        let ingredients = try ModelSoup.load([runA + "/best.safetensors", runB + "/best.safetensors", badPath])
        let soup = try ModelSoup.average(Array(ingredients.prefix(2)))
        let pa = ingredients[0].model.network.parameters + ingredients[0].model.network.buffers
        let pb = ingredients[1].model.network.parameters + ingredients[1].model.network.buffers
        let ps = soup.network.parameters + soup.network.buffers
        var differs = false
        for j in ps.indices {
            for i in 0..<ps[j].count { #expect(abs(ps[j].values[i] - (pa[j].values[i] + pb[j].values[i]) / 2) < 1e-6) }
            differs = differs || (0..<ps[j].count).contains { pa[j].values[$0] != pb[j].values[$0] }
        }
        #expect(differs, "the two ingredients are the same network: the test would pass without averaging")

        // Weights: 3 to 1 is the point a quarter of the way from A to B.
        let tilted = try ModelSoup.average(Array(ingredients.prefix(2)), weights: [3, 1])
        let pt = tilted.network.parameters + tilted.network.buffers
        for j in pt.indices {
            for i in 0..<pt[j].count {
                let expected: Float = 0.75 * pa[j].values[i] + 0.25 * pb[j].values[i]
                #expect(abs(pt[j].values[i] - expected) < 1e-5)
            }
        }
        for bad: [Float] in [[1], [1, -1], [0, 0], [1, .nan]] {
            #expect(throws: ModelSoup.SoupError.self) { _ = try ModelSoup.average(Array(ingredients.prefix(2)), weights: bad) }
        }

        let validation = try Trainer.datasets(tc).validation
        let (greedy, steps) = try ModelSoup.greedy(ingredients, validation: validation)
        #expect(steps.count == 3)
        #expect(steps.first { $0.path == badPath }?.kept == false, "the saboteur was kept: \(steps)")
        #expect(steps.allSatisfy { $0.soup <= Trainer.evaluate(greedy, validation).accuracy + 1e-9 || !$0.kept })
        #expect(Trainer.evaluate(greedy, validation).accuracy >= steps.map(\.alone).max() ?? 1)

        // Statistics that do not fit the weights ruin the network; measuring them afresh repairs it.
        let (model, _, _) = try Checkpoint.load(runA + "/best.safetensors")
        let train = try Trainer.datasets(tc).train
        let before = Trainer.evaluate(model, train).accuracy
        for b in model.network.buffers {
            for c in 0..<b.count { b.values[c] = b.name.hasSuffix("running_var") ? b.values[c] * 50 : b.values[c] + 3 }
            b.changed()
        }
        let broken = Trainer.evaluate(model, train).accuracy
        ModelSoup.refreshBatchNorm(model, on: train, augmentation: .none, batches: 100, batchSize: 32)
        let repaired = Trainer.evaluate(model, train).accuracy
        #expect(broken < before - 0.2, "the broken statistics did not hurt (\(before) -> \(broken))")
        #expect(repaired > before - 0.1, "accuracy \(before), broken \(broken), repaired \(repaired)")

        // Different architectures are a clear error, not a crash.
        var other = tc
        other.width = 4; other.epochs = 1
        let runC = Paths.temporaryDirectory("soup-c")
        let c = Trainer(config: other, outDir: runC)
        c.showProgress = false; c.say = { _ in }
        _ = try c.run()
        #expect(throws: ModelSoup.SoupError.self) { _ = try ModelSoup.load([runA + "/best.safetensors", runC + "/best.safetensors"]) }
    }

    /// A network that answers Happy whatever it sees, on 6 Happy and 2 Sad faces: accuracy 6/8, mean
    /// recall over the two classes (1 + 0) / 2.
    @Test func meanRecallCountsEachClassOnce() throws {
        let model = Classifier(spec: ModelSpec(preset: .cnn, width: 4, inputSize: 24, classes: 7, dropout: 0), sourceSide: 24)
        let params = model.network.parameters, weight = params[params.count - 2], bias = params[params.count - 1]
        for i in 0..<weight.count { weight.values[i] = 0 }
        for c in 0..<7 { bias.values[c] = c == Emotion.happy.rawValue ? 10 : 0 }
        weight.changed(); bias.changed()
        var rng = SplitMix64(seed: 5)
        let labels = [Int](repeating: Emotion.happy.rawValue, count: 6) + [Emotion.sad.rawValue, Emotion.sad.rawValue]
        let data = FaceDataset(side: 24, images: (0..<(8 * 24 * 24)).map { _ in UInt8(rng.unit() * 255) }, labels: labels)
        let f = Trainer.evaluate(model, data)
        #expect(abs(f.accuracy - 0.75) < 1e-12 && abs(f.meanRecall - 0.5) < 1e-12, "\(f)")
    }

    /// `selectBy: .recall`: the best epoch is the one with the highest mean recall, whatever its
    /// accuracy; the figure is logged per epoch and stored in best.json.
    @Test func selectionByMeanRecall() throws {
        var cfg = tinyConfig(syntheticCSV())
        cfg.epochs = 4
        cfg.selectBy = .recall
        let out = Paths.temporaryDirectory("by-recall")
        let t = Trainer(config: cfg, outDir: out)
        t.showProgress = false
        var lines: [String] = []
        t.say = { lines.append($0) }
        let outcome = try t.run()
        #expect(lines.contains { $0.hasPrefix("best epoch: by the validation recall (mean over classes) of") }, "\(lines)")
        let recalls = outcome.history.compactMap(\.validationMeanRecall)
        #expect(recalls.count == 4)
        let best = recalls.indices.max { recalls[$0] < recalls[$1] || (recalls[$0] == recalls[$1] && $0 > $1) }!
        #expect(outcome.bestEpoch == best + 1 && outcome.bestValidationFigure == recalls[best], "\(recalls), best epoch \(outcome.bestEpoch)")
        let card = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/best.json"))) as? [String: Any]
        #expect((card?["metrics"] as? [String: Double])?["validation_mean_recall"] == recalls[best])
        #expect((card?["training"] as? [String: Any])?["selectBy"] as? String == "recall")
    }

    @Test func resumeContinuesExactly() throws {
        let csv = syntheticCSV()
        var cfg = tinyConfig(csv)
        cfg.epochs = 3
        let straight = Paths.temporaryDirectory("straight"), split = Paths.temporaryDirectory("split")
        let t1 = Trainer(config: cfg, outDir: straight)
        t1.showProgress = false; t1.say = { _ in }
        _ = try t1.run()
        // The same run stopped after one epoch, then resumed.
        var short = cfg
        short.epochs = 1
        let t2 = Trainer(config: short, outDir: split)
        t2.showProgress = false; t2.say = { _ in }
        _ = try t2.run()
        // Resume with the full recipe (a user would resume an interrupted run; epochs is the only change).
        let t3 = Trainer(config: cfg, outDir: split)
        t3.showProgress = false; t3.say = { _ in }
        let outcome = try t3.run(resume: true)
        #expect(outcome.epochsCompleted == 3)
        #expect(outcome.history.count == 3)
        let a = try Checkpoint.load(straight + "/last.safetensors").0.network.parameters.flatMap { Array($0.values) }
        let b = try Checkpoint.load(split + "/last.safetensors").0.network.parameters.flatMap { Array($0.values) }
        #expect(a == b)
    }

    /// The moving average after one step is the stated blend: decay min(d, (1 + t) / (10 + t)).
    @Test func weightAverageBlendsEachStepAfterItsWarmUp() {
        let trained = Classifier(spec: ModelSpec(preset: .cnn, width: 8, inputSize: 24), seed: 5)
        let average = WeightAverage(of: trained, decay: 0.99)
        let start = trained.network.parameters.map { Array($0.values) }
        for p in trained.network.parameters { for i in 0..<p.count { p.values[i] = 1 }; p.changed() }
        average.update(step: 0)                 // decay 1/10
        #expect(WeightAverage.decay(0.99, atStep: 0) == 0.1)
        #expect(WeightAverage.decay(0.99, atStep: 10_000) == 0.99)
        for (p, w0) in zip(average.model.network.parameters, start) {
            for i in stride(from: 0, to: p.count, by: max(1, p.count / 7)) {
                #expect(abs(p.values[i] - (0.1 * w0[i] + 0.9)) < 1e-6, "\(p.name)[\(i)]")
            }
        }
        average.update(step: 1)                 // decay 2/11, towards 1 again
        let w = average.model.network.parameters[0]
        #expect(abs(w.values[0] - ((2.0 / 11) * (0.1 * start[0][0] + 0.9) + 9.0 / 11)) < 1e-6)
    }

    /// --ema: best.safetensors holds the average (not the trained weights), and a resumed run's
    /// average continues exactly; a checkpoint without one cannot be resumed with --ema.
    @Test func averagedRunSavesTheAverageAndResumesExactly() throws {
        let csv = syntheticCSV()
        var cfg = tinyConfig(csv)
        cfg.epochs = 3
        cfg.ema = 0.9
        func train(_ c: TrainConfig, _ out: String, resume: Bool = false) throws {
            let t = Trainer(config: c, outDir: out)
            t.showProgress = false; t.say = { _ in }
            _ = try t.run(resume: resume)
        }
        let straight = Paths.temporaryDirectory("emaStraight"), split = Paths.temporaryDirectory("emaSplit")
        try train(cfg, straight)
        var short = cfg
        short.epochs = 1
        try train(short, split)
        // After one epoch (necessarily the best so far) best.safetensors is the average of last.safetensors.
        let last = try SafeTensors.read(split + "/last.safetensors"), best = try Checkpoint.load(split + "/best.safetensors").0
        let trained = try Checkpoint.load(split + "/last.safetensors").0
        for p in best.network.parameters + best.network.buffers {
            #expect(Array(p.values) == last[WeightAverage.prefix + p.name]?.values, "\(p.name)")
        }
        #expect(best.network.parameters.flatMap { Array($0.values) } != trained.network.parameters.flatMap { Array($0.values) })
        try train(cfg, split, resume: true)
        let a = try SafeTensors.read(straight + "/last.safetensors"), b = try SafeTensors.read(split + "/last.safetensors")
        let names = a.tensors.map(\.name).filter { $0.hasPrefix(WeightAverage.prefix) }
        #expect(!names.isEmpty)
        for n in names { #expect(a[n]?.values == b[n]?.values, "\(n)") }
        // A run saved without an average, resumed with one: a clear error, nothing overwritten.
        let plain = Paths.temporaryDirectory("emaPlain")
        var noAverage = short
        noAverage.ema = nil
        try train(noAverage, plain)
        let before = try Data(contentsOf: URL(fileURLWithPath: plain + "/last.safetensors"))
        #expect { try train(cfg, plain, resume: true) } throws: { "\($0)".contains("no weight average") }
        #expect(try Data(contentsOf: URL(fileURLWithPath: plain + "/last.safetensors")) == before)
    }

    @Test func checkpointRoundTrip() throws {
        let spec = ModelSpec(preset: .resnet, width: 8, inputSize: 32)
        let model = Classifier(spec: spec, seed: 5)
        // Give the batch-norm buffers non-default values.
        for b in model.network.buffers { for i in 0..<b.count { b.values[i] = Float(i) * 0.01 + 0.5 } }
        let path = Paths.temporaryDirectory("ckpt") + "/m.safetensors"
        var card = ModelCard(spec: spec, classNames: Emotion.names)
        card.metrics = ["validation_accuracy": 0.5]
        try Checkpoint.save(model, card: card, to: path)
        let (loaded, loadedCard, _) = try Checkpoint.load(path)
        #expect(loadedCard.spec == spec)
        #expect(loadedCard.metrics["validation_accuracy"] == 0.5)
        for (p, q) in zip(model.network.parameters + model.network.buffers, loaded.network.parameters + loaded.network.buffers) {
            #expect(p.name == q.name)
            #expect(Array(p.values) == Array(q.values))
        }
        var rng = SplitMix64(seed: 1)
        let x = Tensor(shape: [2, 1, 32, 32], values: (0..<2048).map { _ in rng.unit() })
        #expect(model.logits(x).plainValues() == loaded.logits(x).plainValues())
    }

    @Test func testTimeAugmentationAveragesViews() {
        // A symmetric face gives the same probabilities with and without flips; a random one need not.
        let spec = ModelSpec(preset: .cnn, width: 8, inputSize: 40)
        let model = Classifier(spec: spec, seed: 4)
        var rng = SplitMix64(seed: 8)
        var faces: [[UInt8]] = []
        for _ in 0..<5 { faces.append((0..<2304).map { _ in UInt8(rng.next() % 256) }) }
        let plain = model.classify(faces: faces)
        for tta in TestTimeAugmentation.allCases {
            let p = model.classify(faces: faces, tta: tta, batchSize: 16)
            #expect(p.count == 5)
            #expect(p.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-4 })
            if tta == .none { #expect(p == plain) }
        }
        var symmetric = [UInt8](repeating: 0, count: 2304)
        for y in 0..<48 { for x in 0..<24 { let v = UInt8(rng.next() % 256); symmetric[y * 48 + x] = v; symmetric[y * 48 + 47 - x] = v } }
        let a = model.classify(faces: [symmetric])[0], b = model.classify(faces: [symmetric], tta: .flip)[0]
        #expect(zip(a, b).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test func halfPrecisionCheckpoint() throws {
        let spec = ModelSpec(preset: .cnn, width: 8)
        let model = Classifier(spec: spec, seed: 3)
        let path = Paths.temporaryDirectory("half") + "/m.safetensors"
        try Checkpoint.save(model, card: ModelCard(spec: spec, classNames: Emotion.names), to: path, half: true)
        let loaded = try Checkpoint.load(path).0
        for (p, q) in zip(model.network.parameters, loaded.network.parameters) {
            let err = zip(Array(p.values), Array(q.values)).map { abs($0 - $1) / max(abs($0), 1e-3) }.max()!
            #expect(err < 1e-3, "\(p.name): relative error \(err)")
        }
    }

    @Test func corruptCheckpointIsAClearError() throws {
        let path = Paths.temporaryDirectory("bad") + "/bad.safetensors"
        _ = FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3]))
        #expect(throws: DataError.self) { _ = try Checkpoint.load(path) }
        var st = SafeTensors()
        st.add("x", shape: [2], values: [1, 2])
        try st.write(path)
        #expect(throws: CheckpointError.self) { _ = try Checkpoint.load(path) }
    }

    /// A real run on FER2013: a small CNN for a few minutes of CPU must beat chance by a wide margin.
    @Test func learnsRealExpressions() throws {
        guard Paths.haveFER2013 else { print("skipped: \(Paths.fer2013) is absent"); return }
        var c = TrainConfig()
        c.data = Paths.fer2013
        c.preset = .cnn
        c.width = 16
        c.inputSize = 40
        c.epochs = 3
        c.limit = 6000
        c.validationLimit = 1000
        c.optimizer.learningRate = 2e-3
        c.augmentation = .none
        let t = Trainer(config: c, outDir: Paths.temporaryDirectory("real"))
        t.showProgress = false
        let r = try t.run()
        // Chance is 1/7 (14%); always answering Happy, the largest class, scores about 25%.
        #expect(r.bestValidationFigure > 0.33, "validation accuracy \(r.bestValidationFigure)")
    }
}

@Suite("Run folders") struct RunFolderTests {
    /// Two writers never share a run folder: the second is refused while the first holds it.
    @Test func oneRunPerFolder() throws {
        let dir = Paths.temporaryDirectory("lock") + "/run"
        let first = try RunFolderLock(dir)
        #expect(throws: DataError.self) { _ = try RunFolderLock(dir) }
        first.release()
        let again = try RunFolderLock(dir)
        again.release()
    }

    /// A second process is refused too (flock is per open file, so this is what two `fer train` see).
    @Test func anotherProcessIsRefused() throws {
        let dir = Paths.temporaryDirectory("lock2")
        let held = try RunFolderLock(dir)
        defer { held.release() }
        let r = try run(Paths.ferBinary, ["train", "--data", "/nonexistent.csv", "--out", dir, "--quiet"])
        #expect(r.status == 1 && r.stderr.contains("another process is using this run folder"), "\(r.stderr)")
    }
}

@Suite("Model specs") struct ModelSpecTests {
    /// Every preset at its defaults passes the one validation that train, bench and models share.
    @Test func presetDefaultsAreValid() {
        for p in Preset.allCases { #expect(ModelSpec(preset: p).problem == nil, "\(p)") }
        #expect(ModelSpec(preset: .vgg, width: 300).problem != nil)
        #expect(ModelSpec(preset: .mlp, width: 2048).problem == nil)
    }
}
