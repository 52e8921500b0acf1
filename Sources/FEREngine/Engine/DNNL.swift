import CDNNL
import Foundation

/// The one oneDNN CPU engine every primitive is made for.
///
/// oneDNN does the arithmetic (convolution, pooling, batch norm, eltwise, inner product, reorders);
/// Swift decides what runs when. Execution is synchronous, from any thread: each thread runs on a
/// stream and scratch memory of its own (`ThreadResources`).
public final class DNNL: @unchecked Sendable {  // an immutable handle; oneDNN engines are thread-safe to share
    public static let shared = DNNL()
    let engine: dnnl_engine_t

    private init() {
        fer_keep_large_allocations_on_heap()
        var e: dnnl_engine_t?
        check(dnnl_engine_create(&e, dnnl_cpu, 0), "engine create")
        engine = e!
    }

    /// Threads oneDNN's OpenMP runtime uses for every primitive (the whole process shares them).
    public static func setThreads(_ n: Int) {
        _ = fer_set_omp_threads(Int32(max(1, n)))
    }

    public static var threads: Int { Int(fer_omp_max_threads()) }

    /// oneDNN's library version, e.g. "2.6.3".
    public static var version: String {
        guard let v = dnnl_version() else { return "?" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch)"
    }
}

@inline(__always)
func check(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
    if status != dnnl_success {
        fatalError("oneDNN: \(what()) failed with status \(status.rawValue)")
    }
}

// MARK: - Memory descriptors

typealias MemoryDesc = dnnl_memory_desc_t

extension dnnl_memory_desc_t {
    /// A descriptor for data of logical `dims` and element type `type` in the layout `tag`
    /// (`dnnl_format_tag_any` lets a primitive choose).
    init(_ dims: [Int], _ tag: dnnl_format_tag_t, _ type: dnnl_data_type_t = dnnl_f32) {
        self.init()
        var d = dims.map { Int64($0) }
        check(dnnl_memory_desc_init_by_tag(&self, Int32(dims.count), &d, type, tag),
              "memory desc \(dims)")
    }

    /// The plain row-major layout for a tensor of this rank (nc, nchw, oihw...).
    static func plainTag(rank: Int) -> dnnl_format_tag_t {
        switch rank {
        case 1: return dnnl_a
        case 2: return dnnl_ab
        case 3: return dnnl_abc
        case 4: return dnnl_abcd
        default: fatalError("rank \(rank) tensors are not used here")
        }
    }

    static func plain(_ dims: [Int], _ type: dnnl_data_type_t = dnnl_f32) -> MemoryDesc { MemoryDesc(dims, plainTag(rank: dims.count), type) }
    static func any(_ dims: [Int], _ type: dnnl_data_type_t = dnnl_f32) -> MemoryDesc { MemoryDesc(dims, dnnl_format_tag_any, type) }

    var shape: [Int] {
        withUnsafeBytes(of: dims) { raw in
            Array(raw.bindMemory(to: Int64.self).prefix(Int(ndims)).map { Int($0) })
        }
    }

    /// Bytes the layout occupies, padding included.
    var byteCount: Int { withUnsafePointer(to: self) { dnnl_memory_desc_get_size($0) } }

    func sameLayout(as other: MemoryDesc) -> Bool {
        withUnsafePointer(to: self) { a in withUnsafePointer(to: other) { b in dnnl_memory_desc_equal(a, b) != 0 } }
    }

    /// True for the plain row-major f32 layout of its rank.
    var isPlain: Bool { sameLayout(as: .plain(shape)) }

    var dataType: dnnl_data_type_t { data_type }

    /// The same layout holding another element type (strides count elements, so they carry over).
    func with(_ type: dnnl_data_type_t) -> MemoryDesc {
        var d = self
        d.data_type = type
        return d
    }

    /// The raw bytes, used as a dictionary key for primitive caches.
    var key: Data { withUnsafeBytes(of: self) { Data($0) } }
}

// MARK: - Primitives

/// A oneDNN primitive and its primitive descriptor, created once per shape and reused every step.
final class Primitive {
    let pd: dnnl_primitive_desc_t
    let primitive: dnnl_primitive_t
    /// What it computes ("int8 convolution", "prelu forward"...), for errors and `KernelLog`.
    let what: String

    /// `opDesc` points at an operation descriptor (convolution, pooling, ...); `hint` is the forward
    /// primitive a backward one must agree with.
    convenience init(_ opDesc: UnsafeRawPointer, hint: Primitive? = nil, attr: dnnl_primitive_attr_t? = nil, _ what: String) {
        var pd: dnnl_primitive_desc_t?
        Self.withUserScratchpad(attr) { attr in
            check(dnnl_primitive_desc_create(&pd, opDesc, attr, DNNL.shared.engine, hint?.pd), "\(what) primitive descriptor")
        }
        self.init(pd: pd!, what)
    }

    /// Wraps a primitive descriptor made by a dedicated constructor (reorder), with its attributes
    /// from `withUserScratchpad`.
    init(pd: dnnl_primitive_desc_t, _ what: String) {
        var attr: const_dnnl_primitive_attr_t?
        var mode = dnnl_scratchpad_mode_library
        check(dnnl_primitive_desc_get_attr(pd, &attr), "\(what) attributes")
        check(dnnl_primitive_attr_get_scratchpad_mode(attr, &mode), "\(what) scratchpad mode")
        precondition(mode == dnnl_scratchpad_mode_user, "\(what): made without withUserScratchpad")
        var p: dnnl_primitive_t?
        check(dnnl_primitive_create(&p, pd), "\(what) primitive")
        self.pd = pd
        self.primitive = p!
        self.what = what
        guard let md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) else { fatalError("oneDNN: \(what) has no scratchpad query") }
        scratchpad = md.pointee
        scratchpadBytes = md.pointee.byteCount
    }

    /// `attr` (a new one where nil), set so that the primitive takes its scratch memory from
    /// `execute` (`ThreadResources`) rather than from oneDNN. oneDNN's own (its "library" mode, as
    /// Debian builds it) belongs to the thread that made the primitive, while ours run on whichever
    /// thread asks: run elsewhere, one read and wrote another thread's buffer, too small or absent.
    static func withUserScratchpad(_ given: dnnl_primitive_attr_t?, _ body: (dnnl_primitive_attr_t) -> Void) {
        var attr = given
        if attr == nil { check(dnnl_primitive_attr_create(&attr), "attr create") }
        defer { if given == nil { dnnl_primitive_attr_destroy(attr) } }
        check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode")
        body(attr!)
    }

    /// The scratch memory the primitive needs while it runs (zero bytes for most).
    let scratchpad: MemoryDesc
    let scratchpadBytes: Int

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(pd)
    }

    /// The layout the primitive chose for one of its arguments (src, weights, dst, workspace...).
    func desc(_ query: dnnl_query_t, _ index: Int32 = 0) -> MemoryDesc {
        guard let md = dnnl_primitive_desc_query_md(pd, query, index) else {
            fatalError("oneDNN: query \(query) returned nothing")
        }
        return md.pointee
    }

    /// oneDNN's name for the implementation it chose (`jit:avx2`, `brgconv:avx512_core`, `ref:any`...),
    /// as `ONEDNN_VERBOSE` prints it.
    var implementation: String {
        var info: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &info) == dnnl_success, let info else { return "?" }
        return String(cString: info)
    }

    /// True for oneDNN's reference implementations: plain C loops, 10-200x slower than its JIT kernels.
    var isReference: Bool { implementation.hasPrefix("ref") }

    /// True when the primitive needs a workspace (max pooling in training).
    var hasWorkspace: Bool { desc(dnnl_query_workspace_md).ndims > 0 }

    func execute(_ args: [(Int32, Tensor)]) {
        var exec = args.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1.memory) }
        let thread = ThreadResources.current
        var scratch: dnnl_memory_t?
        if scratchpadBytes > 0 {
            var md = scratchpad
            check(dnnl_memory_create(&scratch, &md, DNNL.shared.engine, thread.scratch(scratchpadBytes)), "\(what) scratchpad")
            exec.append(dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: scratch))
        }
        defer { if let scratch { dnnl_memory_destroy(scratch) } }
        check(dnnl_primitive_execute(primitive, thread.stream, Int32(exec.count), &exec), "execute")
        check(dnnl_stream_wait(thread.stream), "stream wait")
        KernelLog.note(self)
    }
}

/// What one thread runs primitives with: a stream (oneDNN keeps per-stream state for some
/// primitives, so two threads running one primitive never share it) and scratch memory, grown to
/// the largest need seen. Execution is synchronous, so a thread's buffer serves one primitive at a
/// time. Both are freed when the thread ends.
final class ThreadResources {
    let stream: dnnl_stream_t
    private var base: UnsafeMutableRawPointer?
    private var capacity = 0

    private init() {
        var s: dnnl_stream_t?
        check(dnnl_stream_create(&s, DNNL.shared.engine, dnnl_stream_default_flags.rawValue), "stream create")
        stream = s!
    }

    deinit {
        base?.deallocate()
        dnnl_stream_destroy(stream)
    }

    /// At least `bytes` of scratch memory, 64-byte aligned.
    func scratch(_ bytes: Int) -> UnsafeMutableRawPointer {
        if bytes > capacity {
            base?.deallocate()
            base = .allocate(byteCount: bytes, alignment: 64)
            capacity = bytes
        }
        return base!
    }

    /// This thread's.
    static var current: ThreadResources {
        if let p = pthread_getspecific(key) { return Unmanaged<ThreadResources>.fromOpaque(p).takeUnretainedValue() }
        let r = ThreadResources()
        pthread_setspecific(key, Unmanaged.passRetained(r).toOpaque())
        return r
    }

    /// The thread-specific slot; its destructor releases a finished thread's resources.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { p in if let p { Unmanaged<ThreadResources>.fromOpaque(p).release() } }
        return key
    }()
}

// MARK: - Reorders

/// Reorder primitives, cached by (source layout, destination layout).
final class ReorderCache: @unchecked Sendable {  // the cache behind `lock`
    static let shared = ReorderCache()
    private var cache: [Data: Primitive] = [:]
    private let lock = NSLock()

    /// `scale`: multiply every value by it on the way (quantizing to u8/s8), 1 for a plain reorder.
    func primitive(from src: MemoryDesc, to dst: MemoryDesc, scale: Float = 1) -> Primitive {
        var key = src.key
        key.append(dst.key)
        withUnsafeBytes(of: scale) { key.append(contentsOf: $0) }
        lock.lock(); defer { lock.unlock() }
        if let p = cache[key] { return p }
        let p = Self.make(from: src, to: dst, scales: scale == 1 ? [] : [scale])
        cache[key] = p
        return p
    }

    /// A reorder that multiplies by `scales` on the way: none (a plain copy), one for the whole
    /// tensor, or one per index of dimension 0 (per output channel of a weight tensor).
    static func make(from src: MemoryDesc, to dst: MemoryDesc, scales: [Float]) -> Primitive {
        var pd: dnnl_primitive_desc_t?
        Primitive.withUserScratchpad(nil) { attr in
            if !scales.isEmpty {
                var v = scales
                check(dnnl_primitive_attr_set_output_scales(attr, Int64(v.count), v.count == 1 ? 0 : 1 << 0, &v), "reorder scales")
            }
            var s = src, d = dst
            check(dnnl_reorder_primitive_desc_create(&pd, &s, DNNL.shared.engine, &d, DNNL.shared.engine, attr), "reorder \(src.shape)")
        }
        return Primitive(pd: pd!, "reorder")
    }
}

extension Tensor {
    /// This tensor in layout `desc`: itself when it already is, else a reordered copy.
    /// Layers call this at the few places where two primitives disagree on a layout.
    func laidOut(as desc: MemoryDesc, scale: Float = 1) -> Tensor {
        if self.desc.sameLayout(as: desc) && scale == 1 { return self }
        precondition(self.desc.shape == desc.shape, "reorder between shapes \(self.desc.shape) and \(desc.shape)")
        let out = Tensor(desc: desc, zeroed: false)
        ReorderCache.shared.primitive(from: self.desc, to: desc, scale: scale).execute([(DNNL_ARG_FROM, self), (DNNL_ARG_TO, out)])
        return out
    }

    /// Copies `source` (any layout, same shape) into this tensor's layout.
    func assign(reordering source: Tensor) {
        precondition(source.shape == shape, "assign \(source.shape) into \(shape)")
        if source.desc.sameLayout(as: desc) {
            memcpy(raw, source.raw, desc.byteCount)
            return
        }
        ReorderCache.shared.primitive(from: source.desc, to: desc).execute([(DNNL_ARG_FROM, source), (DNNL_ARG_TO, self)])
    }
}
