# The CPU guard of the compiled kernels (included by _kernels.pyx before any
# other module-level statement, so it is part of every copy: _kernels,
# _kernels_v3, _kernels_v4).
#
# setup.py compiles the same kernels for several instruction sets.  A copy
# compiled for x86-64-v3 or -v4 may use AVX2 or AVX-512 instructions anywhere,
# including in the code Cython generates to initialise the module, so on a CPU
# without them even importing it would die with SIGILL.  Two guards make the
# import raise ImportError instead, naming what the CPU lacks:
#
# * The module's entry point, PyInit_<module> (the first code of the module
#   Python runs), is a wrapper compiled for the baseline instruction set
#   (``FASTBP_BASELINE_CODE``): it asks the CPU, and calls Cython's own init,
#   compiled for the wide set, only if the CPU runs it.  setup.py enables it
#   for the wide copies by renaming Cython's init (``-DPyInit_<module>=...``)
#   and naming the exported symbol (``FASTBP_GUARDED_INIT``, an asm label, so
#   that the rename does not apply to it).  Nothing of the wide copy runs
#   before the check.
# * A module-level check, the module's first statement, for a build that does
#   not define those (a copy compiled by other means).  It runs after Cython's
#   own initialisation code, so it is the fallback, not the guarantee.
#
# The probe and the refusal message are C compiled for the baseline set too.

cdef extern from *:
    """
    /* Which instruction set this copy of the module was compiled for (setup.py). */
    #ifndef FASTBP_ISA
    #define FASTBP_ISA "baseline"
    #endif
    #include <stdio.h>
    #include <string.h>
    #if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    /* Code that must run on any x86-64 CPU whatever -march this file gets. */
    #define FASTBP_BASELINE_CODE __attribute__((target("arch=x86-64")))
    #else
    #define FASTBP_BASELINE_CODE
    #endif

    /* Writes into out (n bytes) the comma-separated features of isa
       ("x86-64-v3", "x86-64-v4") this CPU lacks, and returns how many; -1 for
       an instruction set this probe does not know.  The feature lists are the
       x86-64 psABI levels (v3 includes v2; v4 includes v3), which is what
       -march=x86-64-vN lets the compiler use. */
    static FASTBP_BASELINE_CODE int fastbp_cpu_lacks(const char *isa, char *out, size_t n) {
        int level, missing = 0;
        size_t used = 0;
        if (n) out[0] = '\\0';
        if (strcmp(isa, "baseline") == 0) return 0;
        if (strcmp(isa, "x86-64-v3") == 0) level = 3;
        else if (strcmp(isa, "x86-64-v4") == 0) level = 4;
        else return -1;
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
        __builtin_cpu_init();
    #define FASTBP_NEED(LEVEL, FEATURE)                                              \\
        if (level >= LEVEL && !__builtin_cpu_supports(FEATURE)) {                    \\
            missing++;                                                               \\
            if (used < n) used += snprintf(out + used, n - used, "%s%s",             \\
                                           used ? ", " : "", FEATURE);               \\
        }
    #if defined(__clang__) || __GNUC__ < 11
        /* Compilers whose __builtin_cpu_supports does not know every feature
           of the levels: the ones this code's vector paths need. */
        FASTBP_NEED(3, "avx") FASTBP_NEED(3, "avx2") FASTBP_NEED(3, "fma") FASTBP_NEED(3, "bmi2")
    #else
        FASTBP_NEED(3, "cmpxchg16b") FASTBP_NEED(3, "lahf_lm") FASTBP_NEED(3, "popcnt")
        FASTBP_NEED(3, "sse3") FASTBP_NEED(3, "ssse3") FASTBP_NEED(3, "sse4.1") FASTBP_NEED(3, "sse4.2")
        FASTBP_NEED(3, "avx") FASTBP_NEED(3, "avx2") FASTBP_NEED(3, "bmi") FASTBP_NEED(3, "bmi2")
        FASTBP_NEED(3, "f16c") FASTBP_NEED(3, "fma") FASTBP_NEED(3, "lzcnt") FASTBP_NEED(3, "movbe")
        FASTBP_NEED(3, "xsave")
    #endif
        FASTBP_NEED(4, "avx512f") FASTBP_NEED(4, "avx512bw") FASTBP_NEED(4, "avx512cd")
        FASTBP_NEED(4, "avx512dq") FASTBP_NEED(4, "avx512vl")
    #undef FASTBP_NEED
        return missing;
    #else
        (void)level; (void)missing; (void)used;
        if (n) snprintf(out, n, "the %s instruction set", isa);
        return 1;  /* not an x86 CPU: only the baseline copy runs */
    #endif
    }

    static FASTBP_BASELINE_CODE int fastbp_cpu_runs(const char *isa) {
        char lacks[256];
        return fastbp_cpu_lacks(isa, lacks, sizeof lacks) == 0;
    }

    /* The ImportError raised when this copy cannot run here; returns NULL. */
    static FASTBP_BASELINE_CODE PyObject *fastbp_refuse_import(const char *module) {
        char lacks[256];
        fastbp_cpu_lacks(FASTBP_ISA, lacks, sizeof lacks);
        PyErr_Format(PyExc_ImportError,
                     "%s is the copy of fastbp's kernels compiled for %s, which this CPU cannot run "
                     "(it lacks %s); import fastbp, which loads the best copy this CPU runs, or the "
                     "baseline copy fastbp._kernels", module, FASTBP_ISA, lacks);
        return NULL;
    }

    #if defined(FASTBP_GUARDED_INIT) && defined(FASTBP_UNGUARDED_INIT) && defined(FASTBP_MODULE)
    /* The module's real entry point (see _isa_guard.pxi); Cython's init is
       FASTBP_UNGUARDED_INIT, renamed by setup.py. */
    PyMODINIT_FUNC FASTBP_UNGUARDED_INIT(void);
    PyMODINIT_FUNC fastbp_guarded_init(void) __asm__(FASTBP_GUARDED_INIT);
    FASTBP_BASELINE_CODE PyMODINIT_FUNC fastbp_guarded_init(void) {
        if (!fastbp_cpu_runs(FASTBP_ISA)) return fastbp_refuse_import(FASTBP_MODULE);
        return FASTBP_UNGUARDED_INIT();
    }
    #endif
    """
    const char* FASTBP_ISA
    int fastbp_cpu_runs(const char *isa) nogil
    object fastbp_refuse_import(const char *module)


if not fastbp_cpu_runs(FASTBP_ISA):
    fastbp_refuse_import(__name__.encode())

ISA = FASTBP_ISA.decode()


def cpu_runs(str isa):
    """Whether this CPU can run the kernels built for ``isa`` ("baseline",
    "x86-64-v3" or "x86-64-v4")."""
    if isa not in ("baseline", "x86-64-v3", "x86-64-v4"):
        raise ValueError(f"unknown instruction set {isa!r}")
    return bool(fastbp_cpu_runs(isa.encode()))
