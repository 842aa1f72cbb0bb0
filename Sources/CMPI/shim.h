// MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE, ... are macros (OpenMPI: addresses of globals
// behind casts) that Swift cannot import, so each gets a static inline getter.
#include <mpi.h>

static inline MPI_Comm plexus_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype plexus_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype plexus_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype plexus_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype plexus_mpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype plexus_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op plexus_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op plexus_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op plexus_mpi_min(void) { return MPI_MIN; }
static inline void *plexus_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler plexus_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int plexus_mpi_success(void) { return MPI_SUCCESS; }
static inline int plexus_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int plexus_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }

// Node-local groups, shared windows and non-blocking collectives (Sources/Distributed/MPIGroupParts.swift,
// MPICommunicator.swift).
static inline MPI_Comm plexus_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline int plexus_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline MPI_Info plexus_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline int plexus_mpi_mode_nocheck(void) { return MPI_MODE_NOCHECK; }
static inline MPI_Request plexus_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *plexus_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *plexus_mpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
static inline MPI_Datatype plexus_mpi_uint16(void) { return MPI_UINT16_T; }
static inline MPI_Win plexus_mpi_win_null(void) { return MPI_WIN_NULL; }
static inline int plexus_mpi_any_source(void) { return MPI_ANY_SOURCE; }

// A waiting rank's naps (Sources/Distributed/MPIDeadline.swift) last what they ask for, not Linux's default 50 µs
// of timer slack more; prctl is variadic, which Swift cannot call.
#if defined(__linux__)
#include <sys/prctl.h>
static inline void plexus_precise_sleeps(void) { prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL); }
#else
static inline void plexus_precise_sleeps(void) {}
#endif

// The MPI library and version of these headers, for `plexus --version` (what the build was compiled against).
#define PLEXUS_MPI_STRING_(x) #x
#define PLEXUS_MPI_STRING(x) PLEXUS_MPI_STRING_(x)
#define PLEXUS_MPI_STANDARD "(MPI " PLEXUS_MPI_STRING(MPI_VERSION) "." PLEXUS_MPI_STRING(MPI_SUBVERSION) ")"
static inline const char *plexus_mpi_header_version(void) {
#if defined(OMPI_MAJOR_VERSION)
    return "Open MPI " PLEXUS_MPI_STRING(OMPI_MAJOR_VERSION) "." PLEXUS_MPI_STRING(OMPI_MINOR_VERSION) "."
        PLEXUS_MPI_STRING(OMPI_RELEASE_VERSION) " " PLEXUS_MPI_STANDARD;
#elif defined(I_MPI_VERSION)
    return "Intel MPI " I_MPI_VERSION " " PLEXUS_MPI_STANDARD;
#elif defined(MVAPICH2_VERSION)
    return "MVAPICH2 " MVAPICH2_VERSION " " PLEXUS_MPI_STANDARD;
#elif defined(MPICH_VERSION)
    return "MPICH " MPICH_VERSION " " PLEXUS_MPI_STANDARD;
#else
    return "an MPI library " PLEXUS_MPI_STANDARD;
#endif
}
