import CDNNL
import Foundation

/// A PReLU (y = x if x > 0 else a_c * x) in an inference network, on whatever its input is: f32,
/// bf16 or s8. PReLU is positively homogeneous (PReLU(s x) = s PReLU(x) for s > 0), so an s8
/// input's quantization scale carries over to the output unchanged.
///
/// It stays a primitive of its own: oneDNN 2.6 runs a PReLU post-op on a convolution with its
/// reference kernel (two orders of magnitude slower), and not at all on an inner product.
final class PReLUOp {
    let slopes: [Float]
    private var plans: [Data: (primitive: Primitive, slopes: Tensor)] = [:]

    init(_ p: PReLU) { slopes = Array(p.weight.values) }

    func forward(_ x: Tensor) -> Tensor {
        let key = x.desc.key
        if plans[key] == nil, plans.count >= 64 { plans.removeAll() }  // endless shapes stay bounded
        let plan = plans[key] ?? makePlan(x)
        plans[key] = plan
        let y = Tensor(desc: x.desc, zeroed: false)
        plan.primitive.execute([(DNNL_ARG_SRC, x), (DNNL_ARG_WEIGHTS, plan.slopes), (DNNL_ARG_DST, y)])
        return y
    }

    private func makePlan(_ x: Tensor) -> (primitive: Primitive, slopes: Tensor) {
        // The C slopes as [1, C, 1, 1] (or [1, C]): broadcast over batch and space.
        let slopes = Tensor(shape: [1, self.slopes.count] + Array(repeating: 1, count: x.shape.count - 2), values: self.slopes)
        var data = x.desc, w = slopes.desc
        var d = dnnl_prelu_desc_t()
        check(dnnl_prelu_forward_desc_init(&d, dnnl_forward_inference, &data, &w), "inference prelu desc")
        return (Primitive(&d, "inference prelu"), slopes)
    }
}
