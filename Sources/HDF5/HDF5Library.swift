import Formats
import Support

// HDF5's C API as this target calls it (HDF5 1.10 and later: hid_t is 64 bits). The library is opened by soname the
// first time an HDF5 file is read, so building Plexus does not need it.

typealias HID = Int64
typealias HSize = UInt64

/// The functions of libhdf5 that reading a dataset's rows needs, looked up once per process.
final class HDF5Library: @unchecked Sendable {
    typealias Open = @convention(c) () -> Int32
    typealias Version = @convention(c) (UnsafeMutablePointer<UInt32>, UnsafeMutablePointer<UInt32>, UnsafeMutablePointer<UInt32>) -> Int32
    typealias SetAutomaticErrors = @convention(c) (HID, UnsafeRawPointer?, UnsafeRawPointer?) -> Int32
    typealias WalkCallback = @convention(c) (UInt32, UnsafeRawPointer?, UnsafeMutableRawPointer?) -> Int32
    typealias WalkErrors = @convention(c) (HID, Int32, WalkCallback, UnsafeMutableRawPointer?) -> Int32
    typealias OpenFile = @convention(c) (UnsafePointer<CChar>, UInt32, HID) -> HID
    typealias OpenByName = @convention(c) (HID, UnsafePointer<CChar>, HID) -> HID
    typealias Close = @convention(c) (HID) -> Int32
    typealias Exists = @convention(c) (HID, UnsafePointer<CChar>, HID) -> Int32
    typealias Get = @convention(c) (HID) -> HID
    typealias Rank = @convention(c) (HID) -> Int32
    typealias Dimensions = @convention(c) (HID, UnsafeMutablePointer<HSize>?, UnsafeMutablePointer<HSize>?) -> Int32
    typealias SelectHyperslab = @convention(c) (HID, Int32, UnsafePointer<HSize>, UnsafePointer<HSize>?, UnsafePointer<HSize>,
                                                UnsafePointer<HSize>?) -> Int32
    typealias CreateSimple = @convention(c) (Int32, UnsafePointer<HSize>, UnsafePointer<HSize>?) -> HID
    typealias Read = @convention(c) (HID, HID, HID, HID, HID, UnsafeMutableRawPointer) -> Int32
    typealias TypeClass = @convention(c) (HID) -> Int32
    typealias TypeSize = @convention(c) (HID) -> Int
    typealias NativeType = @convention(c) (HID, Int32) -> HID
    typealias GroupInfo = @convention(c) (HID, UnsafeMutableRawPointer) -> Int32
    typealias NameByIndex = @convention(c) (HID, UnsafePointer<CChar>, Int32, Int32, HSize, UnsafeMutablePointer<CChar>?, Int,
                                            HID) -> Int

    let walkErrors: WalkErrors
    let openFile: OpenFile, closeFile: Close
    let exists: Exists
    let openDataset: OpenByName, closeDataset: Close, space: Get, type: Get, read: Read
    let openGroup: OpenByName, closeGroup: Close, groupInfo: GroupInfo, nameByIndex: NameByIndex
    let rank: Rank, dimensions: Dimensions, selectHyperslab: SelectHyperslab, createSimple: CreateSimple, closeSpace: Close
    let typeClass: TypeClass, typeSize: TypeSize, superType: Get, sign: TypeClass, nativeType: NativeType, closeType: Close
    /// H5T_NATIVE_DOUBLE: what every numeric dataset is read as.
    let nativeDouble: HID
    private let library: SharedLibrary

    /// The library, opened once per process (or the error saying it is missing, every time it is needed).
    static let shared = Result { try HDF5Library() }

    /// Sonames of HDF5 1.10 to 1.14 as Debian, Ubuntu, Fedora and source builds install them.
    static let sonames = ["libhdf5_serial.so.103", "libhdf5.so.103", "libhdf5_serial.so.200", "libhdf5.so.200",
                          "libhdf5_serial.so.310", "libhdf5.so.310", "libhdf5_serial.so.320", "libhdf5.so.320",
                          "libhdf5_openmpi.so.103", "libhdf5_openmpi.so.310"]

    private init() throws {
        library = try SharedLibrary(sonames: Self.sonames, purpose: "reading HDF5 files",
                                    install: "Debian 12: apt-get install libhdf5-103-1; Ubuntu 24.04: libhdf5-103-1t64; "
                                        + "Fedora: dnf install hdf5; or add your HDF5's lib directory to LD_LIBRARY_PATH")
        let open = try library.symbol("H5open", as: Open.self)
        var major: UInt32 = 0, minor: UInt32 = 0, release: UInt32 = 0
        guard open() >= 0, try library.symbol("H5get_libversion", as: Version.self)(&major, &minor, &release) >= 0,
              major > 1 || (major == 1 && minor >= 10) else {
            throw UserError("\(library.soname) is HDF5 \(major).\(minor).\(release); reading HDF5 files needs 1.10 or later")
        }
        // HDF5 prints its error stack to stderr by default; errors become one line of ours instead.
        _ = try library.symbol("H5Eset_auto2", as: SetAutomaticErrors.self)(0, nil, nil)
        walkErrors = try library.symbol("H5Ewalk2", as: WalkErrors.self)
        openFile = try library.symbol("H5Fopen", as: OpenFile.self)
        closeFile = try library.symbol("H5Fclose", as: Close.self)
        exists = try library.symbol("H5Lexists", as: Exists.self)
        openDataset = try library.symbol("H5Dopen2", as: OpenByName.self)
        closeDataset = try library.symbol("H5Dclose", as: Close.self)
        space = try library.symbol("H5Dget_space", as: Get.self)
        type = try library.symbol("H5Dget_type", as: Get.self)
        read = try library.symbol("H5Dread", as: Read.self)
        openGroup = try library.symbol("H5Gopen2", as: OpenByName.self)
        closeGroup = try library.symbol("H5Gclose", as: Close.self)
        groupInfo = try library.symbol("H5Gget_info", as: GroupInfo.self)
        nameByIndex = try library.symbol("H5Lget_name_by_idx", as: NameByIndex.self)
        rank = try library.symbol("H5Sget_simple_extent_ndims", as: Rank.self)
        dimensions = try library.symbol("H5Sget_simple_extent_dims", as: Dimensions.self)
        selectHyperslab = try library.symbol("H5Sselect_hyperslab", as: SelectHyperslab.self)
        createSimple = try library.symbol("H5Screate_simple", as: CreateSimple.self)
        closeSpace = try library.symbol("H5Sclose", as: Close.self)
        typeClass = try library.symbol("H5Tget_class", as: TypeClass.self)
        typeSize = try library.symbol("H5Tget_size", as: TypeSize.self)
        superType = try library.symbol("H5Tget_super", as: Get.self)
        sign = try library.symbol("H5Tget_sign", as: TypeClass.self)
        nativeType = try library.symbol("H5Tget_native_type", as: NativeType.self)
        closeType = try library.symbol("H5Tclose", as: Close.self)
        nativeDouble = try library.symbol("H5T_NATIVE_DOUBLE_g", as: UnsafePointer<HID>.self).pointee
    }

    /// The message on HDF5's error stack (what the last failed call left) that says most: one about a filter (a
    /// compression libhdf5 lacks), else the most specific one; `fallback` when the stack is empty.
    func lastError(or fallback: String) -> String {
        final class Messages { var all: [String] = [] }
        let messages = Messages()
        // H5E_error2_t: three hid_t, an unsigned line (padded to 8), then func_name, file_name and desc pointers.
        let callback: WalkCallback = { _, error, context in
            guard let error, let context,
                  let description = error.load(fromByteOffset: 48, as: UnsafePointer<CChar>?.self) else { return 0 }
            Unmanaged<Messages>.fromOpaque(context).takeUnretainedValue().all.append(String(cString: description))
            return 0
        }
        // H5E_DEFAULT (0), walking upward: from the most specific error to the API call.
        _ = walkErrors(0, 0, callback, Unmanaged.passUnretained(messages).toOpaque())
        let text = withExtendedLifetime(messages) { messages.all.first { $0.contains("filter") } ?? messages.all.first ?? "" }
        return text.isEmpty ? fallback : escapedForMessage(text, limit: 200)
    }

    /// H5T_class_t values this reader distinguishes.
    static let integerClass: Int32 = 0, floatClass: Int32 = 1, stringClass: Int32 = 3, compoundClass: Int32 = 6,
               enumClass: Int32 = 8
}
