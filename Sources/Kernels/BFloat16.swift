// bfloat16: the upper 16 bits of an IEEE float (8 exponent bits, 7 mantissa bits), rounded to nearest even.
// Gradient compression sends gradients in this format (half the bytes of Float, the same range).

/// `value` as bfloat16 bits, rounded to nearest (ties to even); a NaN stays a (quiet) NaN.
@inline(__always)
public func bfloat16Bits(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
    return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
}

/// The Float that bfloat16 `bits` stand for (exact).
@inline(__always)
public func floatFromBFloat16(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

// x[count] → y[count] as bfloat16
/// Rounds `count` floats to bfloat16 (the same bits as `bfloat16Bits` element by element).
public func convertToBFloat16(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt16>, count: Int) {
    var i = 0
    let half = SIMD8<UInt32>(repeating: 0x7FFF), one = SIMD8<UInt32>(repeating: 1)
    while i + 8 <= count {
        let v = SIMD8<Float>(loadingFrom: x + i)
        let bits = unsafeBitCast(v, to: SIMD8<UInt32>.self)
        if any(v .!= v) {  // a NaN among them: the scalar path keeps it a NaN
            for j in 0..<8 { y[i + j] = bfloat16Bits(x[i + j]) }
        } else {
            let rounded = (bits &+ half &+ ((bits &>> 16) & one)) &>> 16
            SIMD8<UInt16>(truncatingIfNeeded: rounded).store(to: y + i)
        }
        i += 8
    }
    while i < count {
        y[i] = bfloat16Bits(x[i])
        i += 1
    }
}

// x[count] bfloat16 → y[count] Float
/// Widens `count` bfloat16 values to Float (exact).
public func convertFromBFloat16(_ x: UnsafePointer<UInt16>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count {
        let v = SIMD8<UInt32>(truncatingIfNeeded: SIMD8<UInt16>(loadingFrom: x + i)) &<< 16
        unsafeBitCast(v, to: SIMD8<Float>.self).store(to: y + i)
        i += 8
    }
    while i < count {
        y[i] = floatFromBFloat16(x[i])
        i += 1
    }
}

// y[count] = bf16(float(x) + float(y))
/// Adds bfloat16 `x` into bfloat16 `y` (each sum in Float, rounded once): the reduction operator of a bfloat16 allreduce.
public func addBFloat16(_ x: UnsafePointer<UInt16>, into y: UnsafeMutablePointer<UInt16>, count: Int) {
    for i in 0..<count {
        y[i] = bfloat16Bits(floatFromBFloat16(x[i]) + floatFromBFloat16(y[i]))
    }
}
