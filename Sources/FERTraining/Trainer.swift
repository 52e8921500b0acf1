import Foundation
import FEREngine
import FEROptimizers
import FERIO
import FERData
import FERModels
import FEREvaluation
import FERDistributed

/// Where a run stands; saved in last.safetensors so `--resume` continues exactly.
struct TrainerState: Codable {
    var epoch = 0            // epochs completed
    var stepInEpoch = 0      // batches done in the current epoch (after an interruption)
    var globalStep = 0
    var bestAccuracy = -1.0  // the best selection figure so far (accuracy, or mean recall with selectBy recall)
    var bestEpoch = 0
    var epochsWithoutImprovement = 0
    var history: [EpochRecord] = []
    var partialLoss = 0.0, partialCorrect = 0, partialSeen = 0, partialSeconds = 0.0
    var trainSeconds = 0.0
}

/// Set from a signal handler: the trainer saves its state after the current step and returns.
public final class StopFlag: @unchecked Sendable {  // every access holds `lock`
    public static let shared = StopFlag()
    private var flag = false
    private let lock = NSLock()
    public var isSet: Bool { lock.lock(); defer { lock.unlock() }; return flag }
    public func set() { lock.lock(); flag = true; lock.unlock() }
    public func reset() { lock.lock(); flag = false; lock.unlock() }
}

public struct TrainingOutcome: Sendable {
    public var epochsCompleted: Int
    /// The best epoch's selection figure: its validation accuracy, or its mean recall over classes
    /// with `selectBy` recall (`TrainConfig.selectionFigure`).
    public var bestValidationFigure: Double
    public var bestEpoch: Int
    public var interrupted: Bool
    public var stoppedEarly: Bool
    public var history: [EpochRecord]
    public var trainSeconds: Double
}

/// Trains a preset on FER2013: shuffled augmented batches, validation on PublicTest every epoch,
/// the best checkpoint by validation accuracy, early stopping, exact resume, a metrics log and a
/// training-curve image. Every file is written atomically.
///
/// Files in `outDir`: config.json, last.safetensors (model + optimizer + state), best.safetensors
/// (model + card), metrics.jsonl, curves.png.
public final class Trainer {
    public let config: TrainConfig
    public let outDir: String
    public var say: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    public var showProgress = true
    /// The ranks training together (data-parallel under mpirun); rank 0 alone writes files and logs.
    public var communicator = Communicator.single
    /// Photo folders' faces (`PhotoFaces`), loaded by the caller, trained on beside `config.data`.
    public var photos: [DataSource] = []

    public init(config: TrainConfig, outDir: String) {
        self.config = config
        self.outDir = outDir
    }

    static let lastFile = "last.safetensors", bestFile = "best.safetensors"
    var lastPath: String { (outDir as NSString).appendingPathComponent(Self.lastFile) }
    public var bestPath: String { (outDir as NSString).appendingPathComponent(Self.bestFile) }

    /// A run's data: every source's training faces end to end (`parts` says where each lies),
    /// and each source's validation faces by name.
    public struct TrainingData: Sendable {
        public var train: FaceDataset
        public var parts: [(name: String, range: Range<Int>)]
        public var validations: [(name: String, data: FaceDataset)]
        /// The first validation set (FER2013's PublicTest when the run has FER2013).
        public var validation: FaceDataset { validations[0].data }

        /// The draw of each epoch when the config mixes the sources with weights or balances their
        /// classes; nil: every image once.
        public func sampling(_ config: TrainConfig) -> MixedSampling? {
            guard config.mix != nil || config.classBalance != nil else { return nil }
            // Without --mix each source is drawn as often as it holds images.
            let mixed = MixedSampling(parts: parts.map { part in
                .init(name: part.name, start: part.range.lowerBound, count: part.range.count,
                      weight: config.mix.map { $0[part.name] ?? 0 } ?? Double(part.range.count))
            }, epochSize: config.epochSize ?? train.count)
            return config.classBalance.map { mixed.balancingClasses($0, labels: train.labels) } ?? mixed
        }

        /// Each class's share of an epoch's targets (soft targets where the data has them), each
        /// image counted by how often an epoch draws it.
        public func classPrior(_ sampling: MixedSampling?) -> [Float] {
            let k = train.classNames.count
            var prior = [Float](repeating: 0, count: k)
            func add(_ images: some Sequence<Int>, draw: Float) {
                for i in images {
                    if let t = train.targets {
                        for j in 0..<k { prior[j] += draw * t[i * k + j] }
                    } else {
                        prior[train.labels[i]] += draw
                    }
                }
            }
            if let sampling {
                for (part, quota) in zip(sampling.parts, sampling.quotas) where part.count > 0 {
                    add((0..<part.count).lazy.map(part.image), draw: Float(quota) / Float(part.count))
                }
            } else {
                add(0..<train.count, draw: 1)
            }
            let total = prior.reduce(0, +)
            return prior.map { total > 0 ? $0 / total : 0 }
        }
    }

    /// Training and validation sets as the config asks (FER+ labels, limits, hold-out), joined with
    /// the photo folders' faces (`photos`, loaded by the caller through the photo pipeline).
    public static func datasets(_ config: TrainConfig, photos: [DataSource] = []) throws -> TrainingData {
        var sources: [DataSource] = []
        if !config.data.isEmpty { sources.append(try fer2013Source(config)) }
        sources += photos
        guard !sources.isEmpty else { throw TrainingError.noTrainingData("give FER2013 (--data) or a folder of labelled photos (--photos)") }
        for (i, var s) in sources.enumerated() {
            // A source without validation faces holds out a seeded fraction of its training faces.
            if s.validation == nil || s.validation!.count == 0, let train = s.train {
                let order = TrainingBatches.order(count: train.count, seed: config.seed ^ 0x7A1, epoch: -1)
                let cut = Int(Double(train.count) * config.validationFraction)
                guard cut >= 1, cut < train.count else {
                    throw TrainingError.noTrainingData("\(s.name) has no validation split and \(train.count) training images are too few to hold some out")
                }
                s.validation = train.subset(Array(order[..<cut]).sorted())
                s.train = train.subset(Array(order[cut...]).sorted())
            }
            // --limit: the first N training images of FER2013 (quick experiments and tests).
            if i == 0, !config.data.isEmpty, let l = config.limit, let t = s.train, l < t.count { s.train = t.subset(Array(0..<l)) }
            if let l = config.validationLimit, let v = s.validation, l < v.count { s.validation = v.subset(Array(0..<l)) }
            sources[i] = s
        }
        let withTrain = sources.filter { ($0.train?.count ?? 0) > 0 }
        guard !withTrain.isEmpty else { throw TrainingError.noTrainingData("\(sources.map(\.name).joined(separator: ", ")): no training images") }
        var train = try FaceDataset.concatenated(withTrain.map { $0.train! })
        var parts: [(name: String, range: Range<Int>)] = [], at = 0
        for s in withTrain {
            parts.append((s.name, at ..< at + s.train!.count))
            at += s.train!.count
        }
        if let teachers = config.teachers, !teachers.isEmpty {
            let probabilities = try Distillation.teacherProbabilities(train, teachers: teachers, temperature: config.distillation.temperature,
                                                                          tta: config.teacherTTA ?? .none)
            train.targets = Distillation.blend(train, teacher: probabilities, weight: config.distillation.weight)
        }
        let epochImages = config.mix == nil ? train.count : (config.epochSize ?? train.count)
        guard epochImages >= config.batchSize else {
            throw TrainingError.noTrainingData("\(train.count) training images, fewer than one batch of \(config.batchSize)")
        }
        let validations = sources.compactMap { s in s.validation.map { (name: s.name, data: $0) } }
        return TrainingData(train: train, parts: parts, validations: validations)
    }

    /// FER2013 (`config.data`): Training, with FER+ labels if asked, and PublicTest.
    static func fer2013Source(_ config: TrainConfig) throws -> DataSource {
        var splits = try DatasetLoader.load(config.data)
        if let fp = config.ferplus {
            let plus = try FERPlus.load(fp)
            for (k, v) in splits { splits[k] = try plus.relabel(v, mode: config.ferplusMode, weight: config.ferplusBlendWeight) }
        }
        guard let train = splits[.training], train.count > 0 else { throw TrainingError.noTrainingData("\(config.data) has no Training split") }
        return DataSource(name: TrainConfig.datasetName(config.data), train: train, validation: splits[.publicTest])
    }

    /// Everything one run works with, made once by `prepare`.
    final class Session {
        let train: FaceDataset
        let validations: [(name: String, data: FaceDataset)]
        let sampling: MixedSampling?
        let model: Classifier
        let optimizer: Optimizer
        let schedule: LearningRateSchedule
        let loss: SoftmaxCrossEntropy
        let dropouts: [Dropout]
        let batchesPerEpoch: Int
        var state = TrainerState()
        /// The moving average of the weights (`--ema`), if the run keeps one.
        var average: WeightAverage?
        /// The network validated and saved: the average if there is one, else the trained network.
        var judged: Classifier { average?.model ?? model }

        init(data: TrainingData, sampling: MixedSampling?, model: Classifier, optimizer: Optimizer, schedule: LearningRateSchedule,
             loss: SoftmaxCrossEntropy, batchesPerEpoch: Int) {
            self.train = data.train; self.validations = data.validations; self.sampling = sampling
            self.model = model; self.optimizer = optimizer
            self.schedule = schedule; self.loss = loss; self.batchesPerEpoch = batchesPerEpoch
            dropouts = allLayers(model.network).compactMap { $0 as? Dropout }
        }
    }

    /// Whether a run may start in `outDir`: a fresh run refuses a folder that holds one, and (with
    /// `probeLock`) a run in progress there holds its lock. Commands check this before any work
    /// of their own (detecting photos, writing lists), so a refused run writes nothing.
    public static func checkRunFolder(_ outDir: String, resume: Bool, probeLock: Bool = true) throws {
        let files = [lastFile, bestFile].map { (outDir as NSString).appendingPathComponent($0) }
        if !resume && files.contains(where: { FileManager.default.fileExists(atPath: $0) }) {
            throw TrainingError.invalidConfig("\(outDir) already holds a run; continue it with --resume, or choose another --out")
        }
        if probeLock, FileManager.default.fileExists(atPath: outDir) { try RunFolderLock(outDir).release() }
    }

    public func run(resume: Bool = false) throws -> TrainingOutcome {
        try config.validate()
        let lock = communicator.isRoot ? try RunFolderLock(outDir) : nil
        defer { lock?.release() }
        if !communicator.isRoot { say = { _ in }; showProgress = false }
        let run = try prepare(resume: resume)
        var stoppedEarly = false, interrupted = false
        while run.state.epoch < config.epochs {
            guard try trainEpoch(run) else { interrupted = true; break }
            if try endEpoch(run) { stoppedEarly = true; break }
            if try anyRank(StopFlag.shared.isSet) { interrupted = true; break }
        }
        let s = run.state
        return TrainingOutcome(epochsCompleted: s.epoch, bestValidationFigure: s.bestAccuracy, bestEpoch: s.bestEpoch,
                               interrupted: interrupted, stoppedEarly: stoppedEarly, history: s.history, trainSeconds: s.trainSeconds)
    }

    /// Data, model (fresh, fine-tuned from `initFrom`, or resumed), optimizer and schedule.
    func prepare(resume: Bool) throws -> Session {
        DNNL.setThreads(config.threads)
        try Self.checkRunFolder(outDir, resume: resume, probeLock: false)
        let data = try Self.datasets(config, photos: photos)
        let train = data.train, sampling = data.sampling(config)
        if let p = sampling?.problem { throw TrainingError.invalidConfig("--mix: \(p)") }
        let quotas = sampling.map { Dictionary(uniqueKeysWithValues: $0.quotasByDataset.map { ($0.name, $0.quota) }) }
        for part in data.parts {
            let v = data.validations.first { $0.name == part.name }?.data.count ?? 0
            say("data: \(part.name): \(part.range.count) training images (\(quotas?[part.name] ?? part.range.count) per epoch), \(v) validation")
        }
        if let sampling, let b = config.classBalance {
            for part in data.parts {
                let byClass = zip(sampling.parts, sampling.quotas).filter { $0.0.name == part.name }
                    .map { p, q in "\(train.classNames[p.label ?? 0]) \(q) of \(p.count)" }
                say("data: \(part.name) per epoch, classes balanced (\(b)): \(byClass.joined(separator: ", "))")
            }
        }
        say("best epoch: by \(selectionRule(data.validations.map(\.name)))")
        if let tau = config.logitAdjustment {
            let shares = zip(train.classNames, data.classPrior(sampling)).map { "\($0) \(String(format: "%.3f", $1))" }
            say("loss: logit-adjusted, tau \(tau), class shares of an epoch: \(shares.joined(separator: ", "))")
        }
        if let t = config.teachers, !t.isEmpty {
            say("targets: labels blended with \(t.count) teacher(s) (weight \(config.distillation.weight), temperature \(config.distillation.temperature), views \((config.teacherTTA ?? .none).rawValue))")
        }
        try checkRanksAgree(train, data.validations.flatMap { $0.data.labels })
        let spec = config.modelSpec
        let model = Classifier(spec: spec, classNames: train.classNames, seed: config.seed)
        model.network.use(config.precision ?? .fp32)
        let batches = TrainingBatches.batchesPerEpoch(train.count, batchSize: config.batchSize, sampling: sampling)
        let run = Session(data: data, sampling: sampling, model: model, optimizer: config.optimizer.make(model.network.parameters),
                          schedule: LearningRateSchedule(config.schedule, baseRate: config.optimizer.learningRate, epochs: config.epochs, stepsPerEpoch: batches),
                          loss: SoftmaxCrossEntropy(labelSmoothing: config.labelSmoothing,
                                                    classWeights: config.balancedClassWeights ? train.balancedClassWeights : nil,
                                                    logitOffsets: config.logitAdjustment.map {
                                                        SoftmaxCrossEntropy.logitAdjustment(prior: data.classPrior(sampling), tau: $0) }),
                          batchesPerEpoch: batches)
        run.average = config.ema.map { WeightAverage(of: model, decay: $0) }
        run.average?.model.network.use(config.precision ?? .fp32)
        if resume && FileManager.default.fileExists(atPath: lastPath) {
            run.state = try restore(model: model, optimizer: run.optimizer, schedule: run.schedule, average: run.average)
            try checkResumable(run.state, batchesPerEpoch: batches)
            say("resumed from \(lastPath) at epoch \(run.state.epoch + 1), step \(run.state.stepInEpoch)")
        } else {
            if resume { say("nothing to resume in \(outDir) (no last.safetensors): starting a new run") }
            if let source = config.initFrom {
                let st = try SafeTensors.read(source)
                try Checkpoint.checkClasses(st, path: source, matching: model.classNames, role: "--init-from")
                try Checkpoint.restore(model, from: st, path: source)
                say("initialised from \(source)")
            }
            run.average?.restart()
            if communicator.isRoot {
                try AtomicFile.write(Data(try JSONEncoder.sorted.encode(config)), to: (outDir as NSString).appendingPathComponent("config.json"))
            }
        }
        try communicator.agree([Int64(run.state.globalStep)], on: "the step to resume from")
        if communicator.size > 1 {
            say("data-parallel: \(communicator.size) ranks, \(config.batchSize / communicator.size)-\((config.batchSize + communicator.size - 1) / communicator.size) images of each batch of \(config.batchSize) per rank")
        }
        say("model: \(spec.preset.rawValue) width \(spec.width), input \(spec.inputSize)x\(spec.inputSize), "
            + "\(model.parameterCount) parameters, \(model.multiplyAdds / 1_000_000) M multiply-adds/image, \((config.precision ?? .fp32).rawValue)")
        return run
    }

    /// Trains the rest of the current epoch. Returns false if interrupted (the state is then saved
    /// mid-epoch, for --resume).
    func trainEpoch(_ run: Session) throws -> Bool {
        var s = run.state
        defer { run.state = s }
        let bar = ProgressBar(total: run.batchesPerEpoch, label: "epoch \(s.epoch + 1)/\(config.epochs)", initial: s.stepInEpoch)
        bar.enabled = showProgress
        let epochStart = Date().addingTimeInterval(-s.partialSeconds), resumedSeen = s.partialSeen, resumedSeconds = s.partialSeconds
        let rank = communicator.rank
        for batch in TrainingBatches(run.train, batchSize: config.batchSize, size: config.inputSize, augmentation: config.augmentation,
                                     seed: config.seed, epoch: s.epoch, skip: s.stepInEpoch, shard: (rank, communicator.size),
                                     mixup: config.mixup ?? 0, sampling: run.sampling) {
            run.optimizer.learningRate = run.schedule.rate(step: s.globalStep)
            for (i, d) in run.dropouts.enumerated() {
                d.reseed(config.seed &+ UInt64(s.globalStep) &* 7919 &+ UInt64(i) &+ UInt64(rank) &* 104_729)
            }
            let r = try step(run, batch)
            guard r.loss.isFinite else {
                throw TrainingError.invalidConfig("the loss became \(r.loss) at epoch \(s.epoch + 1), step \(s.stepInEpoch + 1); lower the learning rate")
            }
            run.average?.update(step: s.globalStep)
            s.partialLoss += Double(r.loss) * Double(r.seen)
            s.partialCorrect += r.correct
            s.partialSeen += r.seen
            s.stepInEpoch += 1
            s.globalStep += 1
            s.partialSeconds = Date().timeIntervalSince(epochStart)
            let rate = Double(s.partialSeen - resumedSeen) / max(s.partialSeconds - resumedSeconds, 1e-9)
            bar.update(s.stepInEpoch, String(format: "loss %.4f acc %.1f%% %.0f img/s", s.partialLoss / Double(s.partialSeen),
                                             100 * Double(s.partialCorrect) / Double(s.partialSeen), rate))
            if r.stop {
                run.state = s
                if communicator.isRoot { try saveLast(run) }
                if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
                say("interrupted: state saved to \(lastPath); continue with --resume")
                return false
            }
        }
        let seen = max(s.partialSeen, 1)
        bar.finish(String(format: "loss %.4f acc %.1f%%", s.partialLoss / Double(seen), 100 * Double(s.partialCorrect) / Double(seen)))
        return true
    }

    /// Validation, the epoch's record, the best checkpoint, last.safetensors and the logs. Returns
    /// true when early stopping ends the run.
    func endEpoch(_ run: Session) throws -> Bool {
        var s = run.state
        defer { run.state = s }
        try averageRunningStatistics(run.model)
        if let a = run.average { try averageRunningStatistics(a.model) }
        let figures = try run.validations.map { v in try rootsFigures(Self.evaluate(run.judged, v.data)) }
        let chosen = try selected(zip(run.validations.map(\.name), figures).map { ($0, $1) })
        let (valLoss, valAcc) = (chosen.loss, chosen.accuracy)
        let byRecall = config.selectionFigure == .recall
        let score = byRecall ? chosen.meanRecall : chosen.accuracy
        let seen = max(s.partialSeen, 1), epochSeconds = s.partialSeconds
        var record = EpochRecord(epoch: s.epoch + 1, learningRate: Double(run.optimizer.learningRate),
                                 trainLoss: s.partialLoss / Double(seen), trainAccuracy: Double(s.partialCorrect) / Double(seen),
                                 validationLoss: valLoss, validationAccuracy: valAcc, seconds: epochSeconds,
                                 imagesPerSecond: Double(s.partialSeen) / max(epochSeconds, 1e-9))
        record.validationMeanRecall = chosen.meanRecall
        if run.validations.count > 1 {
            record.validationSets = Dictionary(uniqueKeysWithValues: zip(run.validations.map(\.name), figures).map {
                ($0, EpochRecord.SetFigures(loss: $1.loss, accuracy: $1.accuracy, meanRecall: $1.meanRecall))
            })
        }
        s.history.append(record)
        s.trainSeconds += epochSeconds
        s.epoch += 1
        s.stepInEpoch = 0
        s.partialLoss = 0; s.partialCorrect = 0; s.partialSeen = 0; s.partialSeconds = 0
        run.schedule.epochEnded(validationAccuracy: score)
        var improved = ""
        if score > s.bestAccuracy {
            s.bestAccuracy = score
            s.bestEpoch = s.epoch
            s.epochsWithoutImprovement = 0
            var card = ModelCard(spec: run.model.spec, classNames: run.model.classNames, training: config)
            card.epoch = s.epoch
            card.metrics = ["validation_accuracy": valAcc, "validation_mean_recall": chosen.meanRecall, "validation_loss": valLoss,
                            "train_seconds": s.trainSeconds]
            if communicator.isRoot {
                try Checkpoint.save(run.judged, card: card, to: bestPath)
                try AtomicFile.write(Data(try JSONEncoder.sorted.encode(card)), to: (outDir as NSString).appendingPathComponent("best.json"))
            }
            improved = " (best, saved)"
        } else {
            s.epochsWithoutImprovement += 1
        }
        let perSet = run.validations.count < 2 ? "" : " (" + zip(run.validations, figures).map {
            String(format: byRecall ? "%@ %.2f%%, recall %.3f" : "%@ %.2f%%", $0.name, 100 * $1.accuracy, $1.meanRecall)
        }.joined(separator: byRecall ? "; " : ", ") + ")"
        let recall = byRecall ? String(format: " recall %.3f", chosen.meanRecall) : ""
        say(String(format: "epoch %d/%d: train loss %.4f acc %.2f%% | val loss %.4f acc %.2f%%%@%@%@ | lr %.2e | %.0fs, %.0f img/s",
                   s.epoch, config.epochs, record.trainLoss, 100 * record.trainAccuracy, valLoss, 100 * valAcc, recall, perSet, improved,
                   record.learningRate, epochSeconds, record.imagesPerSecond))
        run.state = s
        if communicator.isRoot {
            try saveLast(run)
            try writeLogs(s.history)
        }
        guard config.patience > 0, s.epochsWithoutImprovement >= config.patience else { return false }
        say("early stop: no better validation \(config.selectionFigure.words) for \(config.patience) epochs")
        return true
    }

    /// One optimisation step, alone or with the other ranks (see the data-parallel `trainStep`).
    func step(_ run: Session, _ batch: Batch) throws -> StepResult {
        guard communicator.size > 1 else {
            let r = trainStep(run.model.network, batch, loss: run.loss, optimizer: run.optimizer, clipNorm: config.clipNorm)
            return StepResult(loss: r.loss, correct: r.correct, seen: batch.count, stop: StopFlag.shared.isSet)
        }
        return try trainStep(run.model.network, batch, loss: run.loss, optimizer: run.optimizer, clipNorm: config.clipNorm,
                             stop: StopFlag.shared.isSet) { try self.communicator.sum(&$0) }
    }

    /// The rule that picks the best epoch, in words (`TrainConfig.selectOn`).
    func selectionRule(_ names: [String]) -> String {
        let figure = config.selectionFigure.words
        switch config.selectOn {
        case "mean"?: return "the mean validation \(figure) of " + names.joined(separator: ", ")
        case let name?: return "the validation \(figure) of \(name)"
        case nil: return "the validation \(figure) of \(names.first ?? "-")"
        }
    }

    /// The figures the run selects on, from each validation set's figures.
    func selected(_ figures: [(name: String, figures: SetFigures)]) throws -> SetFigures {
        switch config.selectOn {
        case "mean"?:
            let n = Double(max(figures.count, 1))
            func mean(_ f: (SetFigures) -> Double) -> Double { figures.map { f($0.figures) }.reduce(0, +) / n }
            return SetFigures(loss: mean(\.loss), accuracy: mean(\.accuracy), meanRecall: mean(\.meanRecall))
        case let name?:
            guard let f = figures.first(where: { $0.name == name }) else {
                throw TrainingError.invalidConfig("--select-on \(name): the run has no validation set of that name (\(figures.map(\.name).joined(separator: ", ")))")
            }
            return f.figures
        case nil:
            return figures.first?.figures ?? SetFigures(loss: 0, accuracy: 0, meanRecall: 0)
        }
    }

    /// Ranks stop together: true if any rank says so.
    func anyRank(_ flag: Bool) throws -> Bool {
        var v: [Double] = [flag ? 1 : 0]
        try communicator.sum(&v)
        return v[0] > 0
    }

    /// Batch norm keeps per-rank statistics during the epoch (each rank normalises its own shard, as
    /// PyTorch DDP does without SyncBatchNorm); at the epoch's end the running statistics are averaged,
    /// so every rank validates and saves the same model.
    func averageRunningStatistics(_ model: Classifier) throws {
        guard communicator.size > 1 else { return }
        for b in model.network.buffers {
            var v = Array(b.values)
            try communicator.sum(&v)
            let scale = 1 / Float(communicator.size)
            for i in 0..<v.count { b.values[i] = v[i] * scale }
            b.changed()
        }
    }

    /// Rank 0's validation figures on every rank, so that every rank takes the same decisions.
    func rootsFigures(_ figures: SetFigures) throws -> SetFigures {
        var v = communicator.isRoot ? [figures.loss, figures.accuracy, figures.meanRecall] : [0, 0, 0]
        try communicator.sum(&v)
        return SetFigures(loss: v[0], accuracy: v[1], meanRecall: v[2])
    }

    /// Every rank must train the same recipe on the same data: compared by hash before the first step.
    func checkRanksAgree(_ train: FaceDataset, _ validationLabels: [Int]) throws {
        guard communicator.size > 1 else { return }
        var recipe = config
        recipe.data = ""      // the path may differ between machines; the contents may not
        recipe.threads = 0
        recipe.precisionChoice = nil  // each rank's own timings; the precision itself must agree
        let labels = fnv1a(train.labels.map { UInt8($0) }) ^ fnv1a(validationLabels.map { UInt8($0) }, seed: 7)
        let pixels = fnv1a(train.images.prefix(1 << 16)) ^ fnv1a(train.images.suffix(1 << 16), seed: 11)
        try communicator.agree([fnv1a(try JSONEncoder.sorted.encode(recipe))], on: "the training configuration")
        try communicator.agree([Int64(train.count), Int64(validationLabels.count), labels, pixels], on: "the training data")
    }

    /// One validation set's figures for one epoch.
    public struct SetFigures: Sendable {
        public var loss: Double
        public var accuracy: Double
        /// The mean over the classes the set holds of each one's recall.
        public var meanRecall: Double
    }

    /// Mean cross-entropy, accuracy and mean recall on a labelled set (inference mode, centre crop).
    public static func evaluate(_ model: Classifier, _ data: FaceDataset) -> SetFigures {
        let probs = model.classify(data, batchSize: 256)
        let report = ClassificationReport(labels: data.labels, predictions: probs.map(argmax), classNames: model.classNames)
        return SetFigures(loss: TemperatureCalibration.negativeLogLikelihood(probabilities: probs, labels: data.labels),
                          accuracy: report.accuracy, meanRecall: report.meanRecall?.value ?? 0)
    }

    /// A saved state that is not one this trainer could have written, or that has done more epochs
    /// than the run now asks for, is an error rather than a run that silently does nothing.
    func checkResumable(_ s: TrainerState, batchesPerEpoch: Int) throws {
        guard s.epoch >= 0, s.stepInEpoch >= 0, s.globalStep >= 0, s.stepInEpoch <= batchesPerEpoch, s.history.count == s.epoch,
              s.bestEpoch >= 0, s.bestEpoch <= s.epoch, s.partialSeen >= 0, s.trainSeconds.isFinite, s.trainSeconds >= 0 else {
            throw TrainingError.resumeMismatch("\(lastPath): its trainer state is damaged (epoch \(s.epoch), step \(s.stepInEpoch) of \(batchesPerEpoch), "
                                               + "global step \(s.globalStep), \(s.history.count) epochs logged)")
        }
        guard s.epoch <= config.epochs else {
            throw TrainingError.resumeMismatch("the run has done \(s.epoch) epochs, more than the \(config.epochs) asked for; give --epochs \(s.epoch) or more")
        }
    }

    private func saveLast(_ run: Session) throws {
        var extra = SafeTensors()
        for (k, v) in run.optimizer.state.sorted(by: { $0.key < $1.key }) { extra.add("optimizer/" + k, shape: [v.count], values: v) }
        extra.add("schedule/state", shape: [run.schedule.state.count], values: run.schedule.state)
        run.average?.save(into: &extra)
        extra.metadata["trainer-state"] = String(decoding: try JSONEncoder().encode(run.state), as: UTF8.self)
        var card = ModelCard(spec: run.model.spec, classNames: run.model.classNames, training: config)
        card.epoch = run.state.epoch
        try Checkpoint.save(run.model, card: card, to: lastPath, extra: extra)
    }

    private func restore(model: Classifier, optimizer: Optimizer, schedule: LearningRateSchedule, average: WeightAverage?) throws -> TrainerState {
        let st = try SafeTensors.read(lastPath)
        guard let json = st.metadata["swift-fer"], let card = try? JSONDecoder().decode(ModelCard.self, from: Data(json.utf8)) else {
            throw CheckpointError.notAModel(lastPath)
        }
        guard card.spec == model.spec else { throw TrainingError.resumeMismatch("\(lastPath) holds a different architecture (\(card.spec))") }
        try Checkpoint.restore(model, from: st, path: lastPath)
        var opt: [String: [Float]] = [:]
        for t in st.tensors where t.name.hasPrefix("optimizer/") { opt[String(t.name.dropFirst("optimizer/".count))] = t.values }
        try optimizer.load(state: opt)
        if let s = st["schedule/state"] { schedule.load(state: s.values) }
        try average?.restore(from: st, path: lastPath)
        guard let s = st.metadata["trainer-state"], let state = try? JSONDecoder().decode(TrainerState.self, from: Data(s.utf8)) else {
            throw TrainingError.resumeMismatch("\(lastPath) has no trainer state")
        }
        return state
    }

    private func writeLogs(_ history: [EpochRecord]) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let lines = try history.map { String(decoding: try enc.encode($0), as: UTF8.self) }.joined(separator: "\n") + "\n"
        try AtomicFile.write(lines, to: (outDir as NSString).appendingPathComponent("metrics.jsonl"))
        try Plots.trainingCurves(history).write((outDir as NSString).appendingPathComponent("curves.png"))
    }
}

/// Every layer inside a network, containers included, depth first.
public func allLayers(_ layer: Layer) -> [Layer] {
    var out: [Layer] = [layer]
    if let s = layer as? Sequential { out += s.layers.flatMap(allLayers) }
    if let r = layer as? Residual { out += allLayers(r.body) + (r.shortcut.map(allLayers) ?? []) }
    return out
}
