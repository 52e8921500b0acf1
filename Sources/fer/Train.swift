import ArgumentParser
import FER
import FERData
import FERDistributed
import FEREngine
import FERIO
import FERModels
import FEROptimizers
import FERTraining
import FERVision
import Foundation

extension OptimizerKind: ExpressibleByArgument {}
extension ScheduleKind: ExpressibleByArgument {}
extension FERPlus.Mode: ExpressibleByArgument {}
extension TestTimeAugmentation: ExpressibleByArgument {}
extension Split: ExpressibleByArgument {}
extension TrainRecipe: ExpressibleByArgument {}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model on FER2013 (CSV, .csv.gz or image folders).",
        discussion: """
        Trains on Training, validates on PublicTest every epoch and keeps the best checkpoint
        (OUT/best.safetensors). Ctrl-C saves OUT/last.safetensors; --resume continues exactly.
        Example: fer train --data fer2013.csv.gz --preset cnn --epochs 30 --optimizer adamw --lr 1e-3 --out runs/cnn
        The one-hour recipe: fer train --recipe fast --data fer2013.csv.gz --ferplus fer2013new.csv --out runs/fast
        Defaults: a recipe's values, else those shown; options given always win.
        """)

    @OptionGroup(title: "Data") var dataOptions: TrainDataOptions
    @OptionGroup(title: "Photo folders: the face detector") var detection: DetectorOptions
    @OptionGroup(title: "Network") var architecture: ArchitectureOptions
    @OptionGroup(title: "Optimisation") var optimisation: TrainOptimizerOptions
    @OptionGroup(title: "Augmentation") var augmentation: TrainAugmentationOptions
    @OptionGroup(title: "Starting point and teachers") var start: TrainStartOptions
    @Option(help: ArgumentHelp("Start from a named recipe (fast: the default network from scratch in 35 epochs; long: in 120, with mixup and a moving average of the weights); options given beside it override its values.",
                               valueName: "name"))
    var recipe: TrainRecipe?
    @Option(help: "Run folder for checkpoints, metrics.jsonl and curves.png.") var out: String
    @Option var seed: UInt64 = 1
    @OptionGroup var threads: ThreadOptions
    @Option(help: "Arithmetic of the convolutions and dense layers: auto (the faster of fp32 and bf16, measured on this CPU; fp32 where it has no AVX-512 BF16 or AMX), fp32, bf16 (int8 is for inference).")
    var precision: PrecisionChoice = .auto
    @Flag(help: "Continue from OUT/last.safetensors.") var resume = false
    @Flag(help: "With --resume: continue even though the training photos changed since the run started.") var force = false
    @Flag(help: "No progress bar.") var quiet = false

    /// The run's settings: the recipe's (or TrainConfig's defaults), then every option given here.
    func makeConfig() throws -> TrainConfig {
        var c = recipe?.config ?? TrainConfig()
        // An option given replaces the base's value; one not given keeps it (fields that are themselves
        // optional take the two-level form, so that a missing option is not written as nil).
        func set<T>(_ value: T?, _ field: WritableKeyPath<TrainConfig, T>) { if let value { c[keyPath: field] = value } }
        func set<T>(_ value: T?, _ field: WritableKeyPath<TrainConfig, T?>) { if let value { c[keyPath: field] = value } }
        c.data = dataOptions.data ?? ""
        if !dataOptions.photos.isEmpty { c.photos = dataOptions.photos }
        if !dataOptions.mix.isEmpty { c.mix = Dictionary(dataOptions.mix.compactMap(Self.parseMix), uniquingKeysWith: { _, b in b }) }
        set(dataOptions.epochSize, \.epochSize)
        set(dataOptions.classBalance, \.classBalance)
        c.selectOn = dataOptions.selectOn ?? (dataOptions.photos.isEmpty ? nil : "mean")
        set(dataOptions.selectBy, \.selectBy)
        set(architecture.preset, \.preset)
        set(architecture.width, \.width)
        set(architecture.fcWidth, \.fcWidth)
        set(architecture.inputSize, \.inputSize)
        set(architecture.dropout, \.dropout)
        set(optimisation.epochs, \.epochs)
        set(optimisation.batchSize, \.batchSize)
        set(optimisation.optimizer, \.optimizer.kind)
        set(optimisation.lr, \.optimizer.learningRate)
        set(optimisation.momentum, \.optimizer.momentum)
        if optimisation.nesterov { c.optimizer.nesterov = true }
        set(optimisation.weightDecay, \.optimizer.weightDecay)
        set(optimisation.schedule, \.schedule.kind)
        set(optimisation.warmup, \.schedule.warmupEpochs)
        set(optimisation.stepEpochs, \.schedule.stepEpochs)
        set(optimisation.gamma, \.schedule.gamma)
        set(optimisation.plateauPatience, \.schedule.patience)
        set(optimisation.labelSmoothing, \.labelSmoothing)
        if optimisation.balanced { c.balancedClassWeights = true }
        if let t = optimisation.logitAdjust { c.logitAdjustment = t == 0 ? nil : t }
        set(optimisation.patience, \.patience)
        set(optimisation.clip, \.clipNorm)
        if let d = optimisation.ema { c.ema = d == 0 ? nil : d }
        c.ferplus = dataOptions.ferplus
        set(dataOptions.ferplusMode, \.ferplusMode)
        set(dataOptions.ferplusWeight, \.ferplusWeight)
        if c.ferplus == nil { c.ferplusMode = .majority }  // a recipe's FER+ blend applies when there are votes
        if c.ferplusMode != .blend { c.ferplusWeight = nil }
        c.initFrom = try start.initFrom.map { f in try optionError("--init-from") { try BundledModels.resolve(f) } }
        c.teachers = start.teacher.isEmpty ? nil : try start.teacher.map { t in try optionError("--teacher") { try BundledModels.resolve(t) } }
        c.teacherWeight = start.teacherWeight
        c.teacherTemperature = start.teacherTemperature
        c.teacherTTA = start.teacherTta
        if let m = augmentation.mixup { c.mixup = m == 0 ? nil : m }
        if augmentation.noAugment {
            c.augmentation = .none
        } else {
            if augmentation.noFlip { c.augmentation.flip = false }
            set(augmentation.rotation, \.augmentation.rotation)
            set(augmentation.shift, \.augmentation.shift)
            set(augmentation.scale, \.augmentation.scale)
            set(augmentation.erasing, \.augmentation.erasing)
            if augmentation.photometric { c.augmentation.photometric = Photometric() }
        }
        c.seed = seed
        c.threads = threads.threads
        c.precision = precision.fixed  // auto: measured when the run starts (train)
        c.limit = dataOptions.limit
        c.validationLimit = dataOptions.valLimit
        return c
    }

    func validate() throws {
        if force && !resume { throw ValidationError("--force goes with --resume (it resumes a run whose photos changed)") }
        if let p = precision.fixed, let problem = AutoPrecision.Work.training("").problem(p) { throw ValidationError("--precision \(problem)") }
        if let e = optimisation.epochs, e < 1 { throw ValidationError("--epochs must be at least 1, got \(e)") }
        if dataOptions.data == nil, dataOptions.photos.isEmpty { throw ValidationError("give the training data: --data (FER2013) and/or --photos (folders of labelled photos)") }
        for m in dataOptions.mix where Self.parseMix(m) == nil { throw ValidationError("--mix \(m): expected NAME=WEIGHT, for example fer2013=0.7") }
        if !dataOptions.mix.isEmpty, dataOptions.data == nil ? dataOptions.photos.count < 2 : dataOptions.photos.isEmpty { throw ValidationError("--mix weighs several datasets; this run has one") }
        if dataOptions.epochSize != nil, dataOptions.mix.isEmpty, dataOptions.classBalance == nil { throw ValidationError("--epoch-size applies with --mix or --class-balance") }
        if !resume, dataOptions.ferplus == nil, dataOptions.ferplusMode ?? .majority != .majority { throw ValidationError("--ferplus-mode needs --ferplus") }
        do { try makeConfig().validate() } catch let e as TrainingError { throw ValidationError("\(e)") }
    }

    func run() throws {
        if let w = precision.fixed?.emulationWarning { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        installInterruptHandler()
        // Under mpirun/srun every rank runs this command; rank 0 alone writes and prints.
        let world = try Communicator.world()
        do {
            try train(world)
            world.finish()
        } catch let e as ExitCode {
            world.finish()
            throw e
        } catch {
            guard world.size > 1 else { throw error }
            FileHandle.standardError.write(Data("error: rank \(world.rank): \(error)\n".utf8))
            world.abort(1)  // the other ranks may be waiting in a reduction: end them too
        }
    }

    func train(_ world: Communicator) throws {
        var cfg = try makeConfig()
        let configPath = (out as NSString).appendingPathComponent("config.json")
        if resume, let saved = FileManager.default.contents(atPath: configPath) {
            // A resumed run keeps its recorded recipe; only the data path may move.
            do { cfg = try JSONDecoder().decode(TrainConfig.self, from: saved) } catch { throw DataError.unreadable(configPath, reason: "not a training configuration (\(error))") }
            if let data = dataOptions.data { cfg.data = data }
            if let e = optimisation.epochs { cfg.epochs = e }  // the one knob a resumed run may change
            if world.isRoot {
                FileHandle.standardError.write(Data("resuming with the recipe recorded in \(configPath); options other than --data and --epochs are ignored\n".utf8))
            }
        }
        if cfg.precision == nil {
            threads.apply()
            let (p, decision) = try Trainer.resolvePrecision(.auto, spec: cfg.modelSpec, batch: cfg.batchSize, communicator: world)
            cfg.precision = p
            cfg.precisionChoice = "auto: " + (decision?.reason ?? "\(p.rawValue): rank 0's measurement")
            if let decision { FileHandle.standardError.write(Data("precision auto: \(decision.reason)\n".utf8)) }
        }
        if world.isRoot, let r = cfg.recipe {
            FileHandle.standardError.write(Data("recipe: \(r.rawValue) (options given beside it override its values; config.json has them all)\n".utf8))
        }
        if world.isRoot { try Trainer.checkRunFolder(out, resume: resume) }  // before any work: a refused run writes nothing
        let photoSources = try loadPhotos(cfg.photos ?? [], spec: cfg.modelSpec, world: world)
        if !photoSources.isEmpty { cfg.photoPipeline = photoSources[0].pipeline }
        if world.isRoot { try checkPhotosUnchanged(photoSources.map(\.fingerprints).reduce(into: [:]) { $0.merge($1) { a, _ in a } }) }
        let trainer = Trainer(config: cfg, outDir: out)
        trainer.showProgress = !quiet
        trainer.communicator = world
        trainer.photos = photoSources.map(\.source)
        let r = try trainer.run(resume: resume)
        let status = r.interrupted ? "interrupted" : r.stoppedEarly ? "stopped early" : "finished"
        var line = String(format: "%@ after %d epochs (%.0f s training)", status, r.epochsCompleted, r.trainSeconds)
        if r.bestEpoch > 0 {
            let figure = cfg.selectionFigure == .recall ? String(format: "recall %.3f", r.bestValidationFigure)
                : String(format: "accuracy %.2f%%", 100 * r.bestValidationFigure)
            line += String(format: ": best validation %@ at epoch %d -> %@", figure, r.bestEpoch, trainer.bestPath)
        } else {
            line += ": no epoch finished yet, so no best checkpoint; continue with --resume"
        }
        if world.isRoot { print(line) }
        if world.size > 1, world.isRoot {
            print(String(format: "allreduce: %.3f MB per rank in %.3f s", Double(world.reducedBytes) / 1e6, world.reduceSeconds))
        }
        if r.interrupted { throw ExitCode(130) }
    }
}

extension Train {
    /// `NAME=WEIGHT` of --mix.
    static func parseMix(_ s: String) -> (String, Double)? {
        let p = s.split(separator: "=", maxSplits: 1).map(String.init)
        guard p.count == 2, !p[0].isEmpty, let w = Double(p[1]) else { return nil }
        return (p[0], w)
    }

    /// A resumed run trains on the photos it started with: OUT/photos.json records every photo's
    /// label and content hash, and a resume whose photos differ is refused, saying what changed,
    /// unless --force (which records the new set).
    func checkPhotosUnchanged(_ current: [String: String]) throws {
        let path = (out as NSString).appendingPathComponent("photos.json")
        if resume, let saved = FileManager.default.contents(atPath: path), let old = try? JSONDecoder().decode([String: String].self, from: saved),
           let what = PhotoFaces.changes(from: old, to: current) {
            guard force else { throw ValidationError("the training photos changed since this run started: \(what); continue anyway with --force, or start a new run") }
            FileHandle.standardError.write(Data("warning: resuming on changed photos (--force): \(what)\n".utf8))
        }
        guard !current.isEmpty else { return }
        try AtomicFile.write(Data(try JSONEncoder.sorted.encode(current)), to: path)
    }

    /// The photo folders' faces through the photo pipeline (the face cache answers photos seen
    /// before). Photos that gave no face are counted here and listed in OUT/photos-skipped.json.
    func loadPhotos(_ roots: [String], spec: ModelSpec, world: Communicator) throws -> [(source: DataSource, pipeline: String, fingerprints: [String: String])] {
        guard !roots.isEmpty else { return [] }
        threads.apply()
        // The analyzer's classifier only fixes the face side (48); the run trains its own network.
        let analyzer = FaceAnalyzer(detector: try detection.make(), classifier: Classifier(spec: spec))
        var sources: [(DataSource, String, [String: String])] = [], skipped: [PhotoFaces.Problem] = []
        for root in roots {
            let name = TrainConfig.datasetName(root)
            let (trainFolder, valFolder) = try PhotoFaces.splitFolders(root)
            var sets: [FaceDataset?] = [], fingerprints: [String: String] = [:]
            for (folder, part) in [(trainFolder, "train"), (valFolder, "val")] {
                guard let folder else { sets.append(nil); continue }
                let set = try PhotoFolderFaces.load(folder, label: "\(name)/\(part)", analyzer: analyzer, cacheFolder: dataOptions.faceCache.folder,
                                                    verbose: world.isRoot, progressBar: !quiet && world.isRoot)
                skipped += set.problems
                sets.append(set.faces)
                for (k, v) in set.fingerprints { fingerprints["\(name)/\(part)/\(k)"] = v }
            }
            sources.append((DataSource(name: name, train: sets[0], validation: sets[1]), PhotoFaces.cacheKey(analyzer), fingerprints))
        }
        if world.isRoot {
            let list = (out as NSString).appendingPathComponent("photos-skipped.json")
            try AtomicFile.write(Data(try JSONEncoder.sorted.encode(skipped)), to: list)
            if !skipped.isEmpty { FileHandle.standardError.write(Data("the \(skipped.count) photos left out are listed in \(list)\n".utf8)) }
        }
        return sources
    }
}

/// `fer train`: data.
struct TrainDataOptions: ParsableArguments {
    @Option(help: "FER2013 CSV (plain or .gz) or image-folder root.") var data: String?
    @Option(help: ArgumentHelp("A folder of labelled photos (emotion sub-folders, or train/ and val/ holding them), run through the photo pipeline; repeatable.",
                               valueName: "dir"))
    var photos: [String] = []
    @Option(help: ArgumentHelp("Sampling weight of a dataset, by name (fer2013, or a photo folder's name); repeatable. Default: every image once per epoch.",
                               valueName: "name=weight"))
    var mix: [String] = []
    @Option(help: "With --mix or --class-balance: images per epoch (default: all training images).") var epochSize: Int?
    @Option(help: ArgumentHelp("Class-balanced sampling: each dataset's share of an epoch is split among its classes in proportion to count^(1 - B): 0.5 draws a class by the square root of its count, 1 every class equally (default: off, the data's own shares).",
                               valueName: "B"))
    var classBalance: Double?
    @Option(help: ArgumentHelp("The validation figure that picks the best epoch: mean (of every set's accuracy) or one dataset's name. Default: mean with photo folders, else PublicTest.",
                               valueName: "mean|name"))
    var selectOn: String?
    @Option(help: "Which figure of a validation set picks the best epoch: accuracy, or recall (its mean recall over the classes it holds, so that rare expressions count as much as common ones). Default: accuracy.")
    var selectBy: TrainConfig.SelectionFigure?
    @OptionGroup var faceCache: FaceCacheOptions
    @Option(help: "fer2013new.csv: train on FER+ crowd labels.") var ferplus: String?
    @Option(help: "FER+ labels: majority (vote), distribution (soft targets), or blend (FER2013 label mixed with the votes) (default: \(TrainConfig().ferplusMode.rawValue)).") var ferplusMode: FERPlus.Mode?
    @Option(help: "Blend mode: weight of the FER+ votes against FER2013's label (default: \(TrainConfig().ferplusBlendWeight)).") var ferplusWeight: Float?
    @Option(help: "Use only the first N training images.") var limit: Int?
    @Option(help: "Use only the first N validation images.") var valLimit: Int?
}

/// `fer train`: optimisation.
struct TrainOptimizerOptions: ParsableArguments {
    @Option(help: "Epochs (default: \(TrainConfig().epochs); with --resume, a new total for the run).") var epochs: Int?
    @Option(help: "Images per step (default: \(TrainConfig().batchSize)).") var batchSize: Int?
    @Option(help: "sgd, adam or adamw (default: \(TrainConfig().optimizer.kind.rawValue)).") var optimizer: OptimizerKind?
    @Option(help: "Peak learning rate (default: \(TrainConfig().optimizer.learningRate)).") var lr: Float?
    @Option(help: "SGD momentum (default: \(TrainConfig().optimizer.momentum)).") var momentum: Float?
    @Flag(help: "Nesterov momentum (SGD).") var nesterov = false
    @Option(help: "Weight decay (default: \(TrainConfig().optimizer.weightDecay)).") var weightDecay: Float?
    @Option(help: "constant, cosine, step or plateau (default: \(TrainConfig().schedule.kind.rawValue)).") var schedule: ScheduleKind?
    @Option(help: "Warm-up epochs (cosine; default: \(TrainConfig().schedule.warmupEpochs)).") var warmup: Double?
    @Option(help: "Step schedule: epochs between decays (default: \(TrainConfig().schedule.stepEpochs)).") var stepEpochs: Int?
    @Option(help: "Step and plateau: decay factor (default: \(TrainConfig().schedule.gamma)).") var gamma: Float?
    @Option(help: "Plateau: epochs without improvement before decaying (default: \(TrainConfig().schedule.patience)).") var plateauPatience: Int?
    @Option(help: "Label smoothing (default: \(TrainConfig().labelSmoothing)).") var labelSmoothing: Float?
    @Flag(help: "Weight classes inversely to their frequency.") var balanced = false
    @Option(help: "Logit-adjusted loss: add tau * log(class share of an epoch's draw) to the logits in training, so rare classes are not traded for common ones; 1 is usual (0, the default: off).")
    var logitAdjust: Float?
    @Option(help: "Early stopping: epochs without a better validation accuracy (0, the default: off).") var patience: Int?
    @Option(help: "Clip the global gradient norm.") var clip: Float?
    @Option(help: "Average the weights: the decay per step of their moving average, such as 0.999; the average is what is validated and saved (0, the default: off).")
    var ema: Float?
}

/// `fer train`: augmentation.
struct TrainAugmentationOptions: ParsableArguments {
    @Option(help: "Mixup: blend image pairs and their targets with a weight ~ Beta(alpha, alpha); 0.2 is usual (0, the default: off).") var mixup: Float?
    @Flag(help: "Photometric augmentation: brightness, contrast, gamma, blur, noise, down-and-up scaling, JPEG.") var photometric = false
    @Flag(help: "Turn all augmentation off.") var noAugment = false
    @Flag(help: "No horizontal flips.") var noFlip = false
    @Option(help: "Max rotation, degrees (default: \(Augmentation().rotation)).") var rotation: Float?
    @Option(help: "Max shift, fraction of the side (default: \(Augmentation().shift)).") var shift: Float?
    @Option(help: "Max zoom, fraction (default: \(Augmentation().scale)).") var scale: Float?
    @Option(help: "Random-erasing probability (default: \(Augmentation().erasing)).") var erasing: Float?
}

/// `fer train`: starting point and teachers.
struct TrainStartOptions: ParsableArguments {
    @Option(help: "Start from this checkpoint's weights (fine-tuning; same architecture).") var initFrom: String?
    @Option(help: "Distil from this trained model (file or bundled name); repeat for an ensemble.") var teacher: [String] = []
    @Option(help: "Weight of the teachers' answers against the labels (default 0.5).") var teacherWeight: Float?
    @Option(help: "Softmax temperature for the teachers' answers (default 2).") var teacherTemperature: Float?
    @Option(help: "Views each teacher averages: none (centre), flip, tencrop (default none).") var teacherTta: TestTimeAugmentation?
}
