import ArgumentParser
import FERData
import FERDistributed
import FERIO
import FERModels
import FERVision
import Foundation

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find every face in photos (or folders of them) and label its expression.",
        discussion: """
        Prints, for every face, its box, top expression and all probabilities: a table by default,
        or --json / --csv. --annotate writes the photo with boxes and labels (a file for one photo,
        a folder for several); --explain DIR writes each face with a heat map of the regions that drove
        its top expression (Grad-CAM on the last convolution). Images no larger than 96x96, or all with --crop, are taken as face
        crops and classified whole. Unreadable files are reported and skipped; the exit code is 1
        if any file failed.
        """)

    @Argument(help: "Photos, or folders of photos.") var inputs: [String]
    @OptionGroup var face: FaceOptions
    @Flag(help: "Treat every image as a face crop: no detection.") var crop = false
    @Option(help: "Write annotated images: a file (one input) or a folder.") var annotate: String?
    @Option(help: "Write each face as the network sees it (gray, 48x48 PNG) into this folder.") var crops: String?
    @Option(help: "Write each face with a heat map of the regions that drove its top expression (Grad-CAM) into this folder.") var explain: String?
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Print CSV (one row per face).") var csv = false
    @Option(help: ArgumentHelp("Label only shard I of N of the inputs (0-based, e.g. 2/8); under mpirun or srun the rank is used.",
                               valueName: "I/N")) var shard: String?

    func validate() throws {
        if json && csv { throw ValidationError("give --json or --csv, not both") }
        _ = try shardSpec()
    }

    /// (index, count) from --shard, else from the launcher, else (0, 1).
    func shardSpec() throws -> (index: Int, count: Int) { try parseShard(shard) ?? launcherShard() ?? (0, 1) }

    func run() throws {
        let all = PhotoLabelling.expand(inputs)
        guard !all.isEmpty else {
            throw ValidationError("no images in \(inputs.joined(separator: ", ")) (looked for \(ImageFolder.imageExtensions.sorted().joined(separator: ", ")))")
        }
        let (index, count) = try shardSpec()
        // Interleaved shards: every file in exactly one shard, and the shards equally long (±1).
        let files = all.enumerated().filter { $0.offset % count == index }.map(\.element)
        var labelling = PhotoLabelling(analyzer: try face.analyzer())
        (labelling.wholeImages, labelling.annotate, labelling.crops, labelling.explain) = (crop, annotate, crops, explain)
        let bar = ProgressBar(total: files.count, label: "photos")
        bar.enabled = files.count > 1 && !json && !csv
        let rows = labelling.label(files, allInputs: all) { bar.update($0) }
        bar.finish()
        let names = labelling.analyzer.classifier.classNames
        if json {
            try printJSON(rows)
        } else {
            let text = csv ? PhotoLabelling.csv(rows, classNames: names, header: index == 0) : PhotoLabelling.text(rows, classNames: names)
            if !text.isEmpty { print(text) }
            if !csv, let a = annotate { print("annotated: \(a)") }
        }
        if rows.contains(where: { $0.error != nil }) { throw ExitCode(1) }
    }
}
