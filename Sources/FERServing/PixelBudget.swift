import Foundation

/// A counting semaphore in pixels, taken before an upload is decoded and given back once its answer
/// is made, so the images held in memory at once total at most `capacity` pixels however many clients
/// upload together. Small frames pass side by side; images near the pixel limit take turns. Waiters
/// are served in arrival order, at most `maxWaiting` of them, each for at most `timeout` seconds.
actor PixelBudget {
    let capacity: Int
    let maxWaiting: Int
    let timeout: Double
    private var free: Int
    private var waiting: [(id: UInt64, pixels: Int, resume: CheckedContinuation<Bool, Never>)] = []
    private var nextID: UInt64 = 0

    init(capacity: Int, maxWaiting: Int, timeout: Double) {
        self.capacity = capacity
        self.maxWaiting = maxWaiting
        self.timeout = timeout
        free = capacity
    }

    /// Runs `body` holding `pixels` of the budget (at most the capacity). Throws 503 when too many
    /// uploads wait already or the wait outlasts the timeout.
    nonisolated func withPixels<T: Sendable>(_ pixels: Int, _ body: () async throws -> T) async throws -> T {
        let share = max(1, min(pixels, capacity))
        try await acquire(share)
        do {
            let result = try await body()
            await release(share)
            return result
        } catch {
            await release(share)
            throw error
        }
    }

    private func acquire(_ pixels: Int) async throws {
        if waiting.isEmpty && free >= pixels {
            free -= pixels
            return
        }
        guard waiting.count < maxWaiting else {
            throw ServeError.busy("the server is busy: \(maxWaiting) uploads are waiting to be decoded; try again shortly")
        }
        nextID += 1
        let id = nextID
        let seconds = timeout
        let granted = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            waiting.append((id, pixels, c))
            Task { [weak self] in
                try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                await self?.expire(id)
            }
        }
        guard granted else {
            throw ServeError.busy("the image waited more than \(timeout) s to be decoded; the server is overloaded")
        }
    }

    private func release(_ pixels: Int) {
        free += pixels
        // First come, first served: a large image at the head is not overtaken by small ones.
        while let first = waiting.first, first.pixels <= free {
            waiting.removeFirst()
            free -= first.pixels
            first.resume.resume(returning: true)
        }
    }

    private func expire(_ id: UInt64) {
        guard let i = waiting.firstIndex(where: { $0.id == id }) else { return }
        waiting.remove(at: i).resume.resume(returning: false)
        release(0)  // the waiters behind it may fit now
    }

    /// Pixels in use now (tests).
    var inUse: Int { capacity - free }
}
