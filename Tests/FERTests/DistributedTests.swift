import Foundation
import Testing
@testable import FERData
@testable import FERIO

/// Data-parallel training on Open MPI, run as CI runs it: `mpirun --allow-run-as-root --oversubscribe
/// -np 2 fer train ...` against the same command in one process.
@Suite("Data-parallel training (Open MPI)", .serialized) struct DistributedTests {
    static let mpirun: String? = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static func skipNote() -> Bool {
        guard mpirun != nil, Paths.haveFER2013 else {
            print("note: mpirun (Debian openmpi-bin) or FER2013 is absent; the data-parallel tests are skipped")
            return true
        }
        return false
    }

    static func trainArgs(_ out: String, _ extra: [String]) -> [String] {
        ["train", "--data", Paths.fer2013, "--out", out, "--threads", "1", "--quiet", "--limit", "512", "--val-limit", "300"] + extra
    }

    static func mpi(_ ranks: Int, _ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try run(mpirun!, ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", Paths.ferBinary] + args)
    }

    static func weights(_ path: String) throws -> [String: [Float]] {
        let st = try SafeTensors.read(path)
        return Dictionary(uniqueKeysWithValues: st.tensors.filter { !$0.name.contains("/") }.map { ($0.name, $0.values) })
    }

    /// Largest difference relative to the tensor's scale, over all tensors.
    static func maxRelativeDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Float {
        var worst: Float = 0
        for (name, x) in a {
            guard let y = b[name], y.count == x.count else { return .infinity }
            let scale = max(x.map(abs).max() ?? 0, 1e-6)
            for (u, v) in zip(x, y) { worst = max(worst, abs(u - v) / scale) }
        }
        return worst
    }

    /// Same global batch, two ranks of half of it each: the same weights as one process after 16 steps.
    @Test func twoRanksEqualOneProcess() throws {
        if Self.skipNote() { return }
        let dir = Paths.temporaryDirectory("ddp")
        let recipe = ["--preset", "mlp", "--width", "64", "--dropout", "0", "--epochs", "1", "--batch-size", "32"]
        let one = try run(Paths.ferBinary, Self.trainArgs(dir + "/one", recipe))
        #expect(one.status == 0, "\(one.stderr)")
        let two = try Self.mpi(2, Self.trainArgs(dir + "/two", recipe))
        #expect(two.status == 0, "\(two.stderr)")
        #expect(two.stdout.contains("allreduce:"))
        let d = Self.maxRelativeDifference(try Self.weights(dir + "/one/last.safetensors"), try Self.weights(dir + "/two/last.safetensors"))
        #expect(d < 1e-5, "weights differ by \(d) relative")
    }

    /// With batch norm (per-rank statistics, averaged each epoch) the runs are not bitwise alike, but
    /// end at the same validation loss within 2%.
    @Test func batchNormRunEndsAtTheSameLoss() throws {
        if Self.skipNote() { return }
        let dir = Paths.temporaryDirectory("ddp-bn")
        let recipe = ["--preset", "cnn", "--width", "8", "--epochs", "2", "--batch-size", "64", "--limit", "2048"]
        let one = try run(Paths.ferBinary, Self.trainArgs(dir + "/one", recipe))
        let two = try Self.mpi(2, Self.trainArgs(dir + "/two", recipe))
        #expect(one.status == 0 && two.status == 0, "\(one.stderr)\n\(two.stderr)")
        func lastValidationLoss(_ run: String) throws -> Double {
            let lines = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            let last = try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any]
            return last?["validationLoss"] as? Double ?? .nan
        }
        let a = try lastValidationLoss(dir + "/one"), b = try lastValidationLoss(dir + "/two")
        #expect(abs(a - b) / a < 0.02, "validation loss \(a) alone, \(b) on two ranks")
    }

    /// Interrupted after one epoch and resumed on two ranks: the same weights as two epochs straight.
    @Test func resumeOnTwoRanks() throws {
        if Self.skipNote() { return }
        let dir = Paths.temporaryDirectory("ddp-resume")
        let recipe = ["--preset", "mlp", "--width", "64", "--dropout", "0", "--batch-size", "32"]
        let straight = try Self.mpi(2, Self.trainArgs(dir + "/straight", recipe + ["--epochs", "2"]))
        let first = try Self.mpi(2, Self.trainArgs(dir + "/resumed", recipe + ["--epochs", "1"]))
        let second = try Self.mpi(2, Self.trainArgs(dir + "/resumed", ["--resume", "--epochs", "2"]))
        #expect(straight.status == 0 && first.status == 0 && second.status == 0, "\(straight.stderr)\n\(first.stderr)\n\(second.stderr)")
        let d = Self.maxRelativeDifference(try Self.weights(dir + "/straight/last.safetensors"), try Self.weights(dir + "/resumed/last.safetensors"))
        #expect(d < 1e-6, "resumed weights differ by \(d)")
    }

    /// Ranks given different recipes stop with a clear error instead of training apart.
    @Test func ranksThatDisagreeStop() throws {
        if Self.skipNote() { return }
        let dir = Paths.temporaryDirectory("ddp-disagree")
        let cmd = "exec '\(Paths.ferBinary)' " + Self.trainArgs(dir + "/run", ["--preset", "mlp", "--width", "16", "--epochs", "1"])
            .map { "'\($0)'" }.joined(separator: " ") + " --lr 0.00$((OMPI_COMM_WORLD_RANK + 1))"
        let r = try run(Self.mpirun!, ["--allow-run-as-root", "--oversubscribe", "-np", "2", "/bin/sh", "-c", cmd])
        #expect(r.status != 0)
        #expect(r.stderr.contains("the ranks disagree: the training configuration differs"), "\(r.stderr.suffix(800))")
    }

    /// A rank killed mid-run takes the job down: mpirun exits with an error, never hangs.
    @Test func aKilledRankEndsTheJob() throws {
        if Self.skipNote() { return }
        let dir = Paths.temporaryDirectory("ddp-kill")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.mpirun!)
        p.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "2", Paths.ferBinary]
            + Self.trainArgs(dir + "/run", ["--preset", "mlp", "--width", "64", "--epochs", "500", "--batch-size", "32"])
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Wait for the first epoch, then kill rank 1 (found by its environment).
        let start = Date()
        while !FileManager.default.fileExists(atPath: dir + "/run/metrics.jsonl"), Date().timeIntervalSince(start) < 60 { usleep(100_000) }
        var killed = false
        for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int32(pid) != nil {
            guard let env = FileManager.default.contents(atPath: "/proc/\(pid)/environ"),
                  let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
            if String(decoding: cmd, as: UTF8.self).contains(dir), String(decoding: env, as: UTF8.self).contains("OMPI_COMM_WORLD_RANK=1\u{0}") {
                kill(Int32(pid)!, SIGKILL)
                killed = true
            }
        }
        #expect(killed, "rank 1 was not found")
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning, Date() < deadline { usleep(100_000) }
        let hung = p.isRunning
        if hung { p.terminate(); kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        #expect(!hung, "the job did not end within 60 s of a rank's death")
        #expect(p.terminationStatus != 0)
    }
}
