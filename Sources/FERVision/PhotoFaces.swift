import FERData
import FEREngine
import FERIO
import FERModels
import Foundation

/// Labelled photo folders as training data: every photo goes through the same detector, framing
/// and (optional) alignment as `fer predict`, so a network trains on exactly what it will see.
///
///     ROOT/<emotion>/*.jpg|png...              one set
///     ROOT/train/<emotion>/..., ROOT/val/...   Training and validation (the FER2013 folder names)
///
/// Detection runs once per photo: its outcome (the 48x48 face, or how many faces there were) is
/// cached by the photo's bytes and the pipeline's settings (`cacheKey`), so a second run reads the
/// cache in seconds and a changed photo is detected again. A photo with no face, several faces, or
/// unreadable bytes yields no training face and is reported, never dropped silently.
public enum PhotoFaces {
    /// A photo that gave no face, and why.
    public struct Problem: Codable, Sendable, Equatable {
        public var file: String
        public var problem: String
    }

    /// The faces of one folder of labelled photos.
    public struct Set: Sendable {
        public var faces: FaceDataset
        public var problems: [Problem]
        /// Photos answered from the cache, and photos detected now.
        public var cached: Int, detected: Int
        /// Why an existing cache file was not used (damaged, other settings), if it was not.
        public var cacheProblem: String?
        /// Why the cache could not be written, if it could not (the faces are still all here).
        public var cacheWriteProblem: String?
        /// Every photo by its path under the folder: its label and content hash ("happy 3f2a..."), or
        /// "unreadable": what `fer train --resume` compares to tell that the photos changed.
        public var fingerprints: [String: String] = [:]
    }

    /// Everything that decides what face a photo yields; part of the cache's key.
    public static func cacheKey(_ analyzer: FaceAnalyzer) -> String {
        let s = analyzer.detector.settings, f = analyzer.framing
        return "photo-faces v2; detector \(s.kind.rawValue) min \(s.minFace) side \(s.maxSide) decode \(analyzer.decodeScale) scale \(s.scaleFactor) neighbours \(s.minNeighbors) "
            + "\(s.precision.rawValue); border retry \(analyzer.reading.borderRetry); framing \(f.left) \(f.top) \(f.side); margin \(analyzer.reading.margin.map { "\($0)" } ?? "-"); "
            + "align \(analyzer.reading.align); out \(analyzer.classifier.sourceSide)"
    }

    /// The cache file for `folder` under `cacheFolder`: one per folder and settings.
    public static func cachePath(folder: String, key: String, in cacheFolder: String) -> String {
        let absolute = URL(fileURLWithPath: folder).standardizedFileURL.path
        let name = String(format: "faces-%016llx-%016llx.cache", contentHash(Data(absolute.utf8)), contentHash(Data(key.utf8)))
        return (cacheFolder as NSString).appendingPathComponent(name)
    }

    /// Thrown when `shouldStop` said so: detection stopped at once, and what it had detected is in
    /// the cache for the next run.
    public struct Stopped: Error, CustomStringConvertible {
        public var detected: Int
        public var description: String { "stopped during face detection (\(detected) photos detected so far are kept in the face cache)" }
    }

    /// The training faces of a folder with one sub-folder per emotion. `cacheFolder` nil: no cache.
    /// `progress(done, total)` is called after every photo; `shouldStop` before each (Ctrl-C).
    public static func load(_ folder: String, analyzer: FaceAnalyzer, cacheFolder: String?, shouldStop: () -> Bool = { false },
                            progress: (Int, Int) -> Void = { _, _ in }) throws -> Set {
        let files = try PhotoSetEvaluation.scan(folder)
        let key = cacheKey(analyzer), side = analyzer.classifier.sourceSide
        var cache = cacheFolder.map { KeyedCache(path: cachePath(folder: folder, key: key, in: $0), settings: key) }
        var images: [UInt8] = [], labels: [Int] = [], sources: [String] = [], problems: [Problem] = []
        var cached = 0, detected = 0, fingerprints: [String: String] = [:]
        for (n, (path, label)) in files.enumerated() {
            if shouldStop() {
                if detected > 0 { try? cache?.save() }
                throw Stopped(detected: detected)
            }
            defer { progress(n + 1, files.count) }
            let bytes: Data
            do {
                try DataError.checkReadable(path)
                bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                problems.append(Problem(file: path, problem: "\(error)"))
                fingerprints[relative(path, to: folder)] = "unreadable"
                continue
            }
            let hash = contentHash(bytes)
            fingerprints[relative(path, to: folder)] = "\(Emotion(rawValue: label)?.folderName ?? String(label)) \(String(hash, radix: 16))"
            var outcome = cache?[hash]
            if let o = outcome, !isRecord(o, side: side) { outcome = nil }  // not a record of ours (a valid checksum proves no more): detect again
            if outcome != nil {
                cached += 1
            } else {
                do {
                    outcome = record(analyzer.faceInputs(try analyzer.decodePhoto([UInt8](bytes), name: path)))
                } catch {
                    problems.append(Problem(file: path, problem: "\(error)"))  // unreadable now; not cached, so a fixed file is read again
                    continue
                }
                detected += 1
                cache?[hash] = outcome
            }
            let o = outcome!
            guard o[0] == 1 else {
                problems.append(Problem(file: path, problem: o[0] == 0 ? "no face found" : "\(o[0]) faces found"))
                continue
            }
            images += o[1...]
            labels.append(label)
            sources.append(path)
        }
        var writeProblem: String?
        if detected > 0, let c = cache {
            // A cache that cannot be written costs the next run its time, not this run its result.
            do { try c.save() } catch { writeProblem = "\(error)" }
        }
        let faces = FaceDataset(side: side, images: images, labels: labels, sources: sources)
        return Set(faces: faces, problems: problems, cached: cached, detected: detected, cacheProblem: cache?.problem,
                   cacheWriteProblem: writeProblem, fingerprints: fingerprints)
    }

    static func relative(_ path: String, to folder: String) -> String {
        path.hasPrefix(folder + "/") ? String(path.dropFirst(folder.count + 1)) : path
    }

    /// What changed between two photo sets' `fingerprints` ("2 added, 1 relabelled: happy/a.jpg
    /// happy -> sad, ..."), nil when nothing did.
    public static func changes(from old: [String: String], to new: [String: String]) -> String? {
        var added = new.keys.filter { old[$0] == nil }.sorted(), removed = old.keys.filter { new[$0] == nil }.sorted()
        var relabelled: [String] = [], changed: [String] = []
        func parts(_ v: String) -> (label: Substring, hash: Substring) { let p = v.split(separator: " "); return (p.first ?? "", p.last ?? "") }
        for (k, v) in new.sorted(by: { $0.key < $1.key }) {
            guard let o = old[k], o != v else { continue }
            if parts(o).label != parts(v).label { relabelled.append("\(k) \(parts(o).label) -> \(parts(v).label)") } else { changed.append(k) }
        }
        // A photo moved to another emotion's folder: the same bytes under a new path and label.
        for r in removed {
            guard let a = added.firstIndex(where: { parts(new[$0]!).hash == parts(old[r]!).hash && parts(new[$0]!).label != parts(old[r]!).label }) else { continue }
            relabelled.append("\(r) \(parts(old[r]!).label) -> \(parts(new[added[a]]!).label)")
            added.remove(at: a)
            removed.removeAll { $0 == r }
        }
        func list(_ what: String, _ xs: [String]) -> String? {
            xs.isEmpty ? nil : "\(xs.count) \(what) (\(xs.prefix(3).joined(separator: ", "))\(xs.count > 3 ? ", ..." : ""))"
        }
        let said = [list("added", added), list("removed", removed), list("relabelled", relabelled), list("changed", changed)].compactMap { $0 }
        return said.isEmpty ? nil : said.joined(separator: "; ")
    }

    /// Whether `o` is an outcome `record` writes: its size matches the face count it declares (one
    /// byte for no face or several; that byte and a side x side face for one).
    static func isRecord(_ o: [UInt8], side: Int) -> Bool { o.count == (o.first == 1 ? 1 + side * side : 1) }

    /// A photo's outcome as a cache record: the face count (at most 255), then the face if one.
    static func record(_ faces: [[UInt8]]) -> [UInt8] {
        [UInt8(min(faces.count, 255))] + (faces.count == 1 ? faces[0] : [])
    }

    /// A photo-folder root's splits: train/ and val/ (the FER2013 folder names) if there, else the
    /// whole folder as one set.
    public static func splitFolders(_ root: String) throws -> (train: String?, validation: String?) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else { throw DataError.missingFile(root) }
        func first(_ split: Split) -> String? {
            ImageFolder.folderNames(split).map { (root as NSString).appendingPathComponent($0) }.first { FileManager.default.fileExists(atPath: $0) }
        }
        let train = first(.training), validation = first(.publicTest)
        return train == nil && validation == nil ? (root, nil) : (train, validation)
    }
}
