import Foundation

/// The processor a measurement ran on, for benchmark output: its model name and the vector
/// extensions that decide which oneDNN kernels run (the machine changes between sessions).
public enum CPU {
    public static var description: String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let lines = info.split(separator: "\n")
        let model = lines.first { $0.hasPrefix("model name") }.map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        let flags = Set((lines.first { $0.hasPrefix("flags") }?.split(separator: ":", maxSplits: 1).last ?? "").split(separator: " ").map(String.init))
        let isa = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16"].filter(flags.contains)
        return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(isa.isEmpty ? "no AVX2" : isa.joined(separator: " "))"
    }
}
