/// Index of the largest value (the first of equals; 0 for an empty array): a prediction from scores.
public func argmax(_ v: [Float]) -> Int { v.indices.max { v[$0] < v[$1] } ?? 0 }
