/// HDF5: numeric datasets of HDF5 files read by row range, through libhdf5 loaded at run time.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Support

/// An HDF5 file opened read-only through libhdf5 (loaded the first time one is opened; a machine without it gets one
/// line saying what to install). libhdf5 is not thread-safe: use a file from one thread at a time.
public final class HDF5File {
    /// The file's path, for messages.
    let path: String
    let library: HDF5Library
    let id: HID

    /// Opens `path`; a missing file, a file that is not HDF5 or a missing libhdf5 is a `UserError` naming it.
    public init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 { throw UserError("\(path): \(FileIO.describeOpenFailure(errno))") }
        close(descriptor)
        library = try HDF5Library.shared.get()
        // H5F_ACC_RDONLY and H5P_DEFAULT are both 0.
        id = library.openFile(path, 0, 0)
        guard id >= 0 else {
            throw UserError("\(path): not an HDF5 file, or a damaged one (\(library.lastError(or: "libhdf5 cannot open it")))")
        }
    }

    deinit { _ = library.closeFile(id) }

    /// The names of the root group's members, sorted (for messages naming what the file holds).
    var memberNames: [String] {
        var info = [UInt64](repeating: 0, count: 4)  // H5G_info_t: storage type, nlinks, max_corder, mounted
        guard info.withUnsafeMutableBytes({ library.groupInfo(id, $0.baseAddress!) }) >= 0 else { return [] }
        let count = min(Int(info[1]), 1000)
        return (0..<count).compactMap { index -> String? in
            // H5_INDEX_NAME and H5_ITER_INC are both 0.
            let length = library.nameByIndex(id, ".", 0, 0, HSize(index), nil, 0, 0)
            guard length >= 0 else { return nil }
            var name = [CChar](repeating: 0, count: length + 1)
            guard library.nameByIndex(id, ".", 0, 0, HSize(index), &name, name.count, 0) >= 0 else { return nil }
            return String(cString: name)
        }.sorted()
    }

    /// Whether the file has a member `name` (a path inside the file such as `y` or `train/targets`).
    public func contains(_ name: String) -> Bool {
        // H5Lexists checks one link at a time: every parent of a path must exist first.
        let parts = name.split(separator: "/").map(String.init)
        return !parts.isEmpty && parts.indices.allSatisfy { library.exists(id, parts[0...$0].joined(separator: "/"), 0) > 0 }
    }

    /// The dataset `name` (a path inside the file such as `x` or `train/features`); one that is absent, a group or
    /// not numeric is a `UserError` naming the file and what it holds.
    public func dataset(_ name: String) throws -> HDF5Dataset {
        let what = "\(path): \(quotedForMessage(name))"
        guard contains(name) else {
            let listed = memberNames.prefix(20).map { quotedForMessage($0) }.joined(separator: ", ")
            throw UserError("\(path): no dataset \(quotedForMessage(name)) (the file holds: \(listed.isEmpty ? "nothing" : listed))")
        }
        let dataset = library.openDataset(id, name, 0)
        guard dataset >= 0 else {
            let group = library.openGroup(id, name, 0)
            if group >= 0 {
                _ = library.closeGroup(group)
                throw UserError("\(what) is a group, not a dataset")
            }
            throw UserError("\(what): cannot open the dataset (\(library.lastError(or: "libhdf5 refused it")))")
        }
        return try HDF5Dataset(file: self, name: name, id: dataset)
    }
}

/// A numeric dataset of an HDF5 file, [rows, ...]: rows are the first dimension and the others are flattened into
/// each row. Integers, floats (half, single, double) and enums of integers (h5py's bool) are read as Floats.
public final class HDF5Dataset {
    /// The dataset's name in the file.
    let name: String
    /// Its dimensions, outermost first.
    public let shape: [Int]
    /// Rows: the first dimension.
    public let rowCount: Int
    /// Values per row: the product of the other dimensions (1 for a 1-d dataset).
    public let rowWidth: Int
    private let file: HDF5File
    private let id: HID
    /// The memory type read into: H5T_NATIVE_DOUBLE, or for an enum its native type (integers of `enumSize` bytes).
    private let memoryType: HID
    private let enumSize: Int?
    private let enumSigned: Bool
    private var library: HDF5Library { file.library }
    private var what: String { "\(file.path): \(quotedForMessage(name))" }

    init(file: HDF5File, name: String, id: HID) throws {
        self.file = file
        self.name = name
        self.id = id
        let library = file.library
        let what = "\(file.path): \(quotedForMessage(name))"
        let type = library.type(id)
        defer { if type >= 0 { _ = library.closeType(type) } }
        let typeClass = type >= 0 ? library.typeClass(type) : -1
        switch typeClass {
        case HDF5Library.integerClass, HDF5Library.floatClass:
            memoryType = library.nativeDouble
            enumSize = nil
            enumSigned = false
        case HDF5Library.enumClass:
            let native = library.nativeType(type, 0)
            let base = library.superType(type)
            defer { if base >= 0 { _ = library.closeType(base) } }
            let size = native >= 0 ? library.typeSize(native) : 0
            guard [1, 2, 4, 8].contains(size), base >= 0 else {
                if native >= 0 { _ = library.closeType(native) }
                _ = library.closeDataset(id)
                throw UserError("\(what): an enum dataset of \(size)-byte values, expected integers (as h5py stores bools)")
            }
            memoryType = native
            enumSize = size
            enumSigned = library.sign(base) == 1
        default:
            _ = library.closeDataset(id)
            let names = [2: "times", 3: "strings", 4: "bit fields", 5: "opaque bytes", 6: "compound records",
                         7: "references", 9: "variable-length sequences", 10: "arrays"]
            throw UserError("\(what) holds \(names[Int(typeClass)] ?? "values of an unknown type"), expected numbers")
        }
        let space = library.space(id)
        defer { if space >= 0 { _ = library.closeSpace(space) } }
        let rank = space >= 0 ? library.rank(space) : -1
        var dimensions = [HSize](repeating: 0, count: max(Int(rank), 0))
        guard rank >= 1, rank <= 32, library.dimensions(space, &dimensions, nil) == rank,
              dimensions.allSatisfy({ $0 <= HSize(Int.max) }) else {
            if enumSize != nil { _ = library.closeType(memoryType) }
            _ = library.closeDataset(id)
            throw UserError("\(what): " + (rank == 0 ? "a scalar, expected [rows] or [rows, values, ...]"
                : "cannot read its shape (\(library.lastError(or: "no simple dataspace")))"))
        }
        shape = dimensions.map { Int($0) }
        rowCount = shape[0]
        var width = 1
        for dimension in shape.dropFirst() {
            let (product, overflow) = width.multipliedReportingOverflow(by: dimension)
            guard !overflow else {
                if enumSize != nil { _ = library.closeType(memoryType) }
                _ = library.closeDataset(id)
                throw UserError("\(what): shape \(shape) is too large")
            }
            width = product
        }
        rowWidth = width
    }

    deinit {
        if enumSize != nil { _ = library.closeType(memoryType) }
        _ = library.closeDataset(id)
    }

    /// Writes `rows` (a hyperslab: only those rows are read from the file) as Floats to `destination`, which holds
    /// `rows.count × rowWidth`; a value not finite as a Float, or a read libhdf5 fails, is a `UserError`.
    public func readRows(_ rows: Range<Int>, into destination: UnsafeMutableBufferPointer<Float>) throws {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= rowCount && destination.count == rows.count * rowWidth,
                     "HDF5Dataset.readRows: rows \(rows) outside 0..<\(rowCount) or a destination of the wrong size")
        guard rowWidth > 0, !rows.isEmpty else { return }
        let elementSize = enumSize ?? 8
        // A block of rows at a time through a scratch buffer of about 8 MiB.
        let blockRows = max(1, (1 << 20) / rowWidth)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: min(blockRows, rows.count) * rowWidth * elementSize,
                                                             alignment: 16)
        defer { scratch.deallocate() }
        var start = rows.lowerBound
        while start < rows.upperBound {
            let count = min(blockRows, rows.upperBound - start)
            try readBlock(start..<(start + count), into: scratch.baseAddress!)
            let first = (start - rows.lowerBound) * rowWidth
            for index in 0..<(count * rowWidth) {
                let value: Float
                if let enumSize {
                    value = Float(Self.integer(scratch.baseAddress! + index * enumSize, size: enumSize, signed: enumSigned))
                } else {
                    value = Float(scratch.load(fromByteOffset: index * 8, as: Double.self))
                }
                guard value.isFinite else {
                    let element = start * rowWidth + index
                    throw UserError("\(what): value at row \(element / rowWidth), column \(element % rowWidth) is not finite "
                        + "as a float32 (NaN, infinite or beyond ±3.4e38)")
                }
                destination[first + index] = value
            }
            start += count
        }
    }

    /// Reads rows `rows` in the memory type to `buffer`.
    private func readBlock(_ rows: Range<Int>, into buffer: UnsafeMutableRawPointer) throws {
        let fileSpace = library.space(id)
        guard fileSpace >= 0 else { throw UserError("\(what): cannot read (\(library.lastError(or: "no dataspace")))") }
        defer { _ = library.closeSpace(fileSpace) }
        var start = [HSize](repeating: 0, count: shape.count), count = shape.map { HSize($0) }
        start[0] = HSize(rows.lowerBound)
        count[0] = HSize(rows.count)
        var elements = [HSize(rows.count * rowWidth)]
        // H5S_SELECT_SET is 0.
        guard library.selectHyperslab(fileSpace, 0, start, nil, count, nil) >= 0 else {
            throw UserError("\(what): cannot select rows \(rows.lowerBound)..<\(rows.upperBound) (\(library.lastError(or: "bad hyperslab")))")
        }
        let memorySpace = library.createSimple(1, &elements, nil)
        guard memorySpace >= 0 else { throw UserError("\(what): cannot read (\(library.lastError(or: "no memory space")))") }
        defer { _ = library.closeSpace(memorySpace) }
        guard library.read(id, memoryType, memorySpace, fileSpace, 0, buffer) >= 0 else {
            throw UserError("\(what): cannot read rows \(rows.lowerBound)..<\(rows.upperBound) (\(library.lastError(or: "libhdf5 failed")))")
        }
    }

    private static func integer(_ raw: UnsafeMutableRawPointer, size: Int, signed: Bool) -> Int64 {
        switch (size, signed) {
        case (1, true): return Int64(raw.load(as: Int8.self))
        case (1, false): return Int64(raw.load(as: UInt8.self))
        case (2, true): return Int64(raw.load(as: Int16.self))
        case (2, false): return Int64(raw.load(as: UInt16.self))
        case (4, true): return Int64(raw.load(as: Int32.self))
        case (4, false): return Int64(raw.load(as: UInt32.self))
        default: return raw.load(as: Int64.self)
        }
    }
}
