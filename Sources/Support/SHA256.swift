/// An incremental SHA-256 (FIPS 180-4) hasher, used to fingerprint checkpoints and parameters.
public struct SHA256 {
    private static let roundConstants: [UInt32] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
        0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
        0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
        0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
        0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ]

    private var state: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19
    )
    // Bytes of an incomplete 64-byte block waiting for more input.
    private var pending: [UInt8] = []
    private var totalLength: UInt64 = 0
    private var finished = false

    /// Starts a new, empty hash.
    public init() { pending.reserveCapacity(64) }

    /// Feeds raw bytes into the hash.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard !finished, let base = bytes.baseAddress else { return }
        var index = 0
        let count = bytes.count
        totalLength &+= UInt64(count)
        if !pending.isEmpty {
            let take = min(64 - pending.count, count)
            pending.append(contentsOf: UnsafeRawBufferPointer(start: base, count: take))
            index = take
            if pending.count == 64 {
                // A local copy keeps the read of `pending` apart from the mutating compress.
                let block = pending
                pending.removeAll(keepingCapacity: true)
                block.withUnsafeBytes { raw in
                    if let start = raw.baseAddress { compress(block: start) }
                }
            }
        }
        while count - index >= 64 {
            compress(block: base + index)
            index += 64
        }
        if index < count {
            pending.append(contentsOf: UnsafeRawBufferPointer(start: base + index, count: count - index))
        }
    }

    /// Feeds a collection of bytes (array, slice, string's UTF-8 view) into the hash.
    public mutating func update<C: Collection>(bytes: C) where C.Element == UInt8 {
        let handled: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            update(UnsafeRawBufferPointer(buffer))
        }
        if handled == nil {
            let copy = Array(bytes)
            copy.withUnsafeBytes { update($0) }
        }
    }

    /// Pads the message and returns the 32-byte digest; later updates are ignored.
    public mutating func finalize() -> [UInt8] {
        if !finished {
            let bitLength = totalLength &* 8
            var tail: [UInt8] = [0x80]
            let used = (pending.count + 1) % 64
            let zeros = used <= 56 ? 56 - used : 120 - used
            tail.append(contentsOf: repeatElement(0, count: zeros))
            for shift in stride(from: 56, through: 0, by: -8) {
                tail.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
            }
            let savedLength = totalLength
            tail.withUnsafeBytes { update($0) }
            totalLength = savedLength
            finished = true
        }
        var digest: [UInt8] = []
        digest.reserveCapacity(32)
        let words = [state.0, state.1, state.2, state.3, state.4, state.5, state.6, state.7]
        for word in words {
            digest.append(UInt8(truncatingIfNeeded: word >> 24))
            digest.append(UInt8(truncatingIfNeeded: word >> 16))
            digest.append(UInt8(truncatingIfNeeded: word >> 8))
            digest.append(UInt8(truncatingIfNeeded: word))
        }
        return digest
    }

    /// Lower-case hexadecimal spelling of a digest.
    public static func hex(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var characters: [UInt8] = []
        characters.reserveCapacity(digest.count * 2)
        for byte in digest {
            characters.append(digits[Int(byte >> 4)])
            characters.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: characters, as: UTF8.self)
    }

    /// Hex SHA-256 of a whole byte collection in one call.
    static func hexDigest<C: Collection>(of bytes: C) -> String where C.Element == UInt8 {
        var hasher = SHA256()
        hasher.update(bytes: bytes)
        return hex(hasher.finalize())
    }

    private mutating func compress(block: UnsafeRawPointer) {
        var schedule = (
            UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0),
            UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0)
        )
        withUnsafeMutableBytes(of: &schedule) { raw in
            let words = raw.bindMemory(to: UInt32.self)
            for index in 0..<16 {
                words[index] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self))
            }
            var a = state.0, b = state.1, c = state.2, d = state.3
            var e = state.4, f = state.5, g = state.6, h = state.7
            Self.roundConstants.withUnsafeBufferPointer { constants in
                for round in 0..<64 {
                    let word: UInt32
                    if round < 16 {
                        word = words[round]
                    } else {
                        // The message schedule is kept as a 16-word ring buffer.
                        let w15 = words[(round - 15) & 15], w2 = words[(round - 2) & 15]
                        let sigma0 = rotate(w15, 7) ^ rotate(w15, 18) ^ (w15 >> 3)
                        let sigma1 = rotate(w2, 17) ^ rotate(w2, 19) ^ (w2 >> 10)
                        word = words[round & 15] &+ sigma0 &+ words[(round - 7) & 15] &+ sigma1
                        words[round & 15] = word
                    }
                    let bigSigma1 = rotate(e, 6) ^ rotate(e, 11) ^ rotate(e, 25)
                    let choice = (e & f) ^ (~e & g)
                    let temp1 = h &+ bigSigma1 &+ choice &+ constants[round] &+ word
                    let bigSigma0 = rotate(a, 2) ^ rotate(a, 13) ^ rotate(a, 22)
                    let majority = (a & b) ^ (a & c) ^ (b & c)
                    let temp2 = bigSigma0 &+ majority
                    h = g; g = f; f = e; e = d &+ temp1
                    d = c; c = b; b = a; a = temp1 &+ temp2
                }
            }
            state.0 &+= a; state.1 &+= b; state.2 &+= c; state.3 &+= d
            state.4 &+= e; state.5 &+= f; state.6 &+= g; state.7 &+= h
        }
    }
}

@inline(__always)
private func rotate(_ value: UInt32, _ count: UInt32) -> UInt32 {
    (value >> count) | (value << (32 - count))
}
