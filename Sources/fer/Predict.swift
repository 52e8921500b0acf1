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
        a folder for several). Images no larger than 96x96, or all with --crop, are taken as face
        crops and classified whole. Unreadable files are reported and skipped; the exit code is 1
        if any file failed.
        """)

    @Argument(help: "Photos, or folders of photos.") var inputs: [String]
    @OptionGroup var face: FaceOptions
    @Flag(help: "Treat every image as a face crop: no detection.") var crop = false
    @Option(help: "Write annotated images: a file (one input) or a folder.") var annotate: String?
    @Option(help: "Write each face as the network sees it (gray, 48x48 PNG) into this folder.") var crops: String?
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Print CSV (one row per face).") var csv = false
    @Option(help: ArgumentHelp("Label only shard I of N of the inputs (0-based, e.g. 2/8); under mpirun or srun the rank is used.",
                               valueName: "I/N")) var shard: String?

    struct Row: Encodable { var file: String; var faces: [FaceResult]; var error: String?; var note: String? }

    static var imageExtensions: Set<String> { ImageFolder.imageExtensions }

    func expand(_ inputs: [String]) -> [String] {
        inputs.flatMap { path -> [String] in
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else { return [path] }
            let items = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String]) ?? []
            return items.filter { Self.imageExtensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
                .map { (path as NSString).appendingPathComponent($0) }
        }
    }

    func validate() throws {
        if json && csv { throw ValidationError("give --json or --csv, not both") }
        _ = try shardSpec()
    }

    /// (index, count) from --shard, else from the launcher, else (0, 1).
    func shardSpec() throws -> (index: Int, count: Int) { try parseShard(shard) ?? launcherShard() ?? (0, 1) }

    func run() throws {
        let all = expand(inputs)
        let (index, count) = try shardSpec()
        // Interleaved shards: every file in exactly one shard, and the shards equally long (±1).
        let files = all.enumerated().filter { $0.offset % count == index }.map(\.element)
        guard !all.isEmpty else { throw ValidationError("no images in \(inputs.joined(separator: ", ")) (looked for \(Self.imageExtensions.sorted().joined(separator: ", ")))") }
        let analyzer = try face.analyzer()
        let names = analyzer.classifier.classNames
        let bar = ProgressBar(total: files.count, label: "photos")
        bar.enabled = files.count > 1 && !json && !csv
        var rows: [Row] = []
        // Output names over every input (not only this shard's), so shards name files as one run would.
        let stemOf = Dictionary(zip(all, OutputNames.stems(all)), uniquingKeysWith: { a, _ in a })
        for (i, path) in files.enumerated() {
            do {
                // Drawn results and saved crops use the photo at full size; labels alone need only the
                // detector's side (a JPEG then decodes reduced, several times faster).
                let photo = annotate == nil && crops == nil ? try analyzer.readPhoto(path)
                    : try ScaledImage.read(path, channels: 3, minSide: 0, maxPixels: analyzer.maxPixels)
                let image = photo.image
                let asCrop = crop || max(photo.originalWidth, photo.originalHeight) <= 96
                let faces = asCrop ? analyzer.analyzeAsCrop(image) : analyzer.analyze(photo)
                if let dir = crops, !asCrop {
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                    for (k, f) in faces.enumerated() {
                        let side = analyzer.classifier.sourceSide
                        let target = (dir as NSString).appendingPathComponent("\(stemOf[path]!).face\(k + 1).png")
                        try OutputNames.check(target, against: all, option: "--crops")
                        try Image(width: side, height: side, channels: 1, pixels: analyzer.faceInput(image, f.box)).write(target)
                    }
                }
                rows.append(Row(file: path, faces: faces, error: nil, note: faces.isEmpty ? "no face found" : asCrop ? "classified whole, as a face crop" : nil))
                if let out = annotate {
                    let target = files.count == 1 && !out.hasSuffix("/") && !isDirectory(out) ? out
                        : (out as NSString).appendingPathComponent(stemOf[path]! + ".annotated.png")
                    try OutputNames.check(target, against: all, option: "--annotate")
                    try Annotator.annotate(image, faces, classNames: names).write(target)
                }
            } catch {
                rows.append(Row(file: path, faces: [], error: "\(error)", note: nil))
            }
            bar.update(i + 1)
        }
        bar.finish()
        if json {
            try printJSON(rows)
        } else if csv {
            let header = ["file", "face", "x", "y", "width", "height", "emotion", "confidence"] + names.map { $0.lowercased() } + ["note", "error"]
            if index == 0 { print(header.joined(separator: ",")) }  // so `cat` of the shards is one CSV
            // Every row has every column: a photo with no face, or an unreadable one, gets a row too.
            for r in rows {
                if r.faces.isEmpty {
                    let blanks = [String](repeating: "", count: header.count - 3)
                    print(([csvField(r.file)] + blanks + [csvField(r.note ?? ""), csvField(r.error ?? "")]).joined(separator: ","))
                    continue
                }
                for (i, f) in r.faces.enumerated() {
                    let probs = f.probabilities.map { String(format: "%.4f", $0) }
                    print(([csvField(r.file), "\(i)", "\(f.box.x)", "\(f.box.y)", "\(f.box.width)", "\(f.box.height)", f.emotion, String(format: "%.4f", f.confidence)]
                           + probs + [csvField(r.note ?? ""), ""]).joined(separator: ","))
                }
            }
        } else {
            for r in rows {
                if let e = r.error { print("\(r.file): error: \(e)"); continue }
                if r.faces.isEmpty { print("\(r.file): no face found"); continue }
                print("\(r.file): \(r.faces.count) face\(r.faces.count == 1 ? "" : "s")\(r.note.map { " (\($0))" } ?? "")")
                for (i, f) in r.faces.enumerated() {
                    print("  face \(i + 1) at x=\(f.box.x) y=\(f.box.y) \(f.box.width)x\(f.box.height): \(f.emotion) (\(String(format: "%.1f", 100 * f.confidence))%)")
                    for (n, v) in zip(names, f.probabilities) {
                        print("    " + n.padding(toLength: 9, withPad: " ", startingAt: 0) + String(format: "%6.1f%% ", 100 * v)
                              + String(repeating: "█", count: Int((v * 30).rounded())))
                    }
                }
            }
            if let a = annotate { print("annotated: \(a)") }
        }
        if rows.contains(where: { $0.error != nil }) { throw ExitCode(1) }
    }
}

func isDirectory(_ path: String) -> Bool {
    var d: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &d) && d.boolValue
}

func csvField(_ s: String) -> String {
    s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}
