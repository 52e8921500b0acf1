import Foundation

/// Spellings of earlier releases, still understood for one release: each is rewritten to the new
/// one before parsing, with a note on standard error naming the new spelling.
enum Deprecations {
    /// Old command names, by their new path.
    static let commands: [String: [String]] = [
        "calibrate-crop": ["calibrate", "crop"], "calibrate-prior": ["calibrate", "prior"],
        "calibrate-temperature": ["calibrate", "temperature"], "calibrate-int8": ["calibrate", "int8"],
    ]

    /// Old option names, by command path: a flag that meant something else in another command.
    static let options: [[String]: [String: String]] = [
        ["live"]: ["--width": "--camera-width", "--height": "--camera-height"],
        ["video"]: ["--csv": "--timeline-csv"],
        ["calibrate", "crop"]: ["--count": "--faces"],
    ]

    /// `args` (without the program name) in today's spelling, and the notes to print.
    static func rewrite(_ args: [String]) -> (args: [String], notes: [String]) {
        var args = args
        var notes: [String] = []
        if let first = args.first, let path = commands[first] {
            notes.append("note: `fer \(first)` is now `fer \(path.joined(separator: " "))`; the old name works until the next release")
            args.replaceSubrange(0..<1, with: path)
        }
        for (path, renames) in options where args.starts(with: path) {
            for i in path.count..<args.count {
                let (name, value) = split(args[i])
                guard let new = renames[name] else { continue }
                notes.append("note: `fer \(path.joined(separator: " ")) \(name)` is now \(new); the old name works until the next release")
                args[i] = new + (value.map { "=" + $0 } ?? "")
            }
        }
        return (args, notes)
    }

    /// "--flag=value" -> ("--flag", "value"); "--flag" -> ("--flag", nil).
    static func split(_ arg: String) -> (String, String?) {
        guard arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") else { return (arg, nil) }
        return (String(arg[..<eq]), String(arg[arg.index(after: eq)...]))
    }
}
