import Foundation

/// One naming rule for every command that writes a file per input into a folder (annotated photos,
/// face crops, annotated videos, timelines): `FOLDER/<stem><suffix>`, where the stem is the input's
/// file name without its extension, and inputs that share a stem (`a/in.avi`, `b/in.avi`) get
/// `-2`, `-3`... in input order, so no output is written twice. An output that is an input is
/// refused (`check`), never overwritten.
public enum OutputNames {
    /// A stem per input, unique among `inputs`, in order.
    public static func stems(_ inputs: [String]) -> [String] {
        var used = Set<String>(), out: [String] = []
        for path in inputs {
            let base = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            var stem = base, n = 1
            while used.contains(stem.lowercased()) { n += 1; stem = "\(base)-\(n)" }  // case-folded: safe on case-insensitive disks too
            used.insert(stem.lowercased())
            out.append(stem)
        }
        return out
    }

    /// An error if `output` is one of `inputs` (the same file, or the same path): the one rule that
    /// keeps every writer off its inputs (batch outputs, models written from models, videos).
    public static func check(_ output: String, against inputs: [String], option: String) throws {
        if inputs.contains(where: { AtomicFile.sameFile($0, output) }) {
            throw DataError.cannotWrite(output, reason: "\(option) would overwrite an input (refusing to overwrite it: write elsewhere)")
        }
    }
}
