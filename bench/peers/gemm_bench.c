/* Timing harness for bench/blas_options.py: one GEMM call shape, timed in a
 * C loop (no Python between the calls), through a function pointer that the
 * caller took from a BLAS library already loaded in the process: OpenBLAS's
 * CBLAS (32- or 64-bit integers), a Fortran-interface GEMM (PyTorch's MKL),
 * or BLIS's typed API.  Nothing here links against a BLAS.
 *
 * The product is C (M x N) = alpha P (M x K) Q (K x N) + beta C, with every
 * matrix stored row-major either as itself (s = 0; leading dimension its
 * column count) or as its transpose (s = 1): sp, sq, sc say which, for P, Q
 * and C.  Each interface is driven to compute exactly that product from those
 * bytes (CBLAS: RowMajor when C is stored as itself, ColMajor when it is
 * stored transposed; Fortran: column-major, C^T = Q^T P^T for a row-major C;
 * BLIS: the strides).
 */
#include <stdint.h>
#include <time.h>

enum { API_CBLAS32 = 0, API_CBLAS64 = 1, API_F77 = 2, API_BLIS = 3 };
enum { ROW = 101, COL = 102, NOTRANS = 111, TRANS = 112 };

typedef void (*cblas_d32)(int, int, int, int, int, int, double, const double *, int, const double *, int,
                          double, double *, int);
typedef void (*cblas_s32)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                          float, float *, int);
typedef void (*cblas_d64)(int, int, int, int64_t, int64_t, int64_t, double, const double *, int64_t,
                          const double *, int64_t, double, double *, int64_t);
typedef void (*cblas_s64)(int, int, int, int64_t, int64_t, int64_t, float, const float *, int64_t,
                          const float *, int64_t, float, float *, int64_t);
typedef void (*f77_d)(const char *, const char *, const int *, const int *, const int *, const double *,
                      const double *, const int *, const double *, const int *, const double *, double *,
                      const int *);
typedef void (*f77_s)(const char *, const char *, const int *, const int *, const int *, const float *,
                      const float *, const int *, const float *, const int *, const float *, float *,
                      const int *);
typedef void (*bli_d)(int, int, int64_t, int64_t, int64_t, const double *, const double *, int64_t, int64_t,
                      const double *, int64_t, int64_t, const double *, double *, int64_t, int64_t);
typedef void (*bli_s)(int, int, int64_t, int64_t, int64_t, const float *, const float *, int64_t, int64_t,
                      const float *, int64_t, int64_t, const float *, float *, int64_t, int64_t);
/* MKL's packed GEMM (float32): pack Q once, then compute with it. */
typedef void (*pack_s)(int, int, int, int, int, int, float, const float *, int, float *);
typedef void (*compute_s)(int, int, int, int, int, int, const float *, int, const float *, int, float,
                          float *, int);
enum { PACKED = 151, B_MATRIX = 162 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void gemm(int api, void *fn, int dbl, int sp, int sq, int sc, long M, long N, long K, double alpha,
                 const void *P, const void *Q, double beta, void *C) {
    if (api == API_CBLAS32 || api == API_CBLAS64) {
        int order, ta, tb;
        long lda = sp ? M : K, ldb = sq ? K : N, ldc = sc ? M : N;
        if (!sc) {
            order = ROW; ta = sp ? TRANS : NOTRANS; tb = sq ? TRANS : NOTRANS;
        } else {
            order = COL; ta = sp ? NOTRANS : TRANS; tb = sq ? NOTRANS : TRANS;
        }
        if (api == API_CBLAS32) {
            if (dbl) ((cblas_d32)fn)(order, ta, tb, M, N, K, alpha, P, lda, Q, ldb, beta, C, ldc);
            else ((cblas_s32)fn)(order, ta, tb, M, N, K, (float)alpha, P, lda, Q, ldb, (float)beta, C, ldc);
        } else {
            if (dbl) ((cblas_d64)fn)(order, ta, tb, M, N, K, alpha, P, lda, Q, ldb, beta, C, ldc);
            else ((cblas_s64)fn)(order, ta, tb, M, N, K, (float)alpha, P, lda, Q, ldb, (float)beta, C, ldc);
        }
    } else if (api == API_F77) {
        const void *A, *B;
        char ta, tb;
        int m, n, k = K, lda, ldb, ldc;
        if (!sc) {  /* C^T (N x M, column-major) = Q^T P^T */
            A = Q; B = P; m = N; n = M;
            ta = sq ? 'T' : 'N'; lda = sq ? K : N;
            tb = sp ? 'T' : 'N'; ldb = sp ? M : K;
            ldc = N;
        } else {    /* C (M x N, column-major) = P Q */
            A = P; B = Q; m = M; n = N;
            ta = sp ? 'N' : 'T'; lda = sp ? M : K;
            tb = sq ? 'N' : 'T'; ldb = sq ? K : N;
            ldc = M;
        }
        if (dbl) ((f77_d)fn)(&ta, &tb, &m, &n, &k, &alpha, A, &lda, B, &ldb, &beta, C, &ldc);
        else {
            float a = alpha, b = beta;
            ((f77_s)fn)(&ta, &tb, &m, &n, &k, &a, A, &lda, B, &ldb, &b, C, &ldc);
        }
    } else {  /* BLIS: strides say everything */
        int64_t rsp = sp ? 1 : K, csp = sp ? M : 1;
        int64_t rsq = sq ? 1 : N, csq = sq ? K : 1;
        int64_t rsc = sc ? 1 : N, csc = sc ? M : 1;
        if (dbl) ((bli_d)fn)(0, 0, M, N, K, &alpha, P, rsp, csp, Q, rsq, csq, &beta, C, rsc, csc);
        else {
            float a = alpha, b = beta;
            ((bli_s)fn)(0, 0, M, N, K, &a, P, rsp, csp, Q, rsq, csq, &b, C, rsc, csc);
        }
    }
}

/* One call (for checking the result against NumPy). */
void gemm_once(int api, void *fn, int dbl, int sp, int sq, int sc, long M, long N, long K, double alpha,
               const void *P, const void *Q, double beta, void *C) {
    gemm(api, fn, dbl, sp, sq, sc, M, N, K, alpha, P, Q, beta, C);
}

/* Seconds for `reps` calls. */
double gemm_time(int api, void *fn, int dbl, int sp, int sq, int sc, long M, long N, long K, double alpha,
                 const void *P, const void *Q, double beta, void *C, long reps) {
    double start = now();
    for (long r = 0; r < reps; r++) gemm(api, fn, dbl, sp, sq, sc, M, N, K, alpha, P, Q, beta, C);
    return now() - start;
}

/* MKL, float32, through CBLAS with Q packed: each call packs Q (as a batch
 * step must, since the weights change every batch) then computes; `packed`
 * is a buffer of pack_get_size bytes.  Seconds for `reps` calls, or -1. */
double packed_time(void *pack_fn, void *compute_fn, int sp, int sq, int sc, long M, long N, long K,
                   float alpha, const float *P, const float *Q, float beta, float *C, float *packed,
                   long reps) {
    int order, ta, tb;
    long lda = sp ? M : K, ldb = sq ? K : N, ldc = sc ? M : N;
    if (!sc) {
        order = ROW; ta = sp ? TRANS : NOTRANS; tb = sq ? TRANS : NOTRANS;
    } else {
        order = COL; ta = sp ? NOTRANS : TRANS; tb = sq ? NOTRANS : TRANS;
    }
    double start = now();
    for (long r = 0; r < reps; r++) {
        ((pack_s)pack_fn)(order, B_MATRIX, tb, M, N, K, alpha, Q, ldb, packed);
        ((compute_s)compute_fn)(order, ta, PACKED, M, N, K, P, lda, packed, ldb, beta, C, ldc);
    }
    return now() - start;
}
