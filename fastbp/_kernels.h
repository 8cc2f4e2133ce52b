/* C helpers of fastbp's compiled kernels (fastbp/_kernels.pyx and the door,
   fastbp/_door.pxi): included by every instruction-set copy, compiled with
   -ffp-contract=off, so that each copy gives the same bits.  Everything here
   is static inline: each copy has its own. */
#ifndef FASTBP_KERNELS_H
#define FASTBP_KERNELS_H

#include <math.h>
/* e^t for -708 <= t <= 0, branch-free so that a loop of it vectorises
   (libm's exp is a call per value).  Cody-Waite reduction t = k ln2 + r,
   |r| <= ln2/2, with k found by the 1.5 * 2^52 rounding trick (whose low
   bits then hold k), e^r by its Taylor series to r^13/13! (truncation
   < 1e-17 relative), and 2^k built from its exponent bits.  Plain
   multiply-adds with no contraction: every instruction set rounds the
   same way.  Within 2 ulp of the correctly rounded e^t.
   The series is e^r = 1 + (r + r^2 q(r)), q(r) = sum_i r^i / (i + 2)!,
   with q by Estrin's scheme (pairs c + c' r, then pairs of those times r^2,
   then r^4, then r^8) and then r + r^2 q and 1 + ...: 5 dependent
   multiply-adds and an add where Horner's rule takes 13.  An online sample
   is a chain of sigmoid layers, each waiting for the last; on layers of 8
   values and more (fewer take libm's exp) that wait is this latency:
   measured on Zen 4, 123 -> 78 cycles per sigmoid of a dependent chain.
   q only carries r^2 q < 0.07 of the result, so its own rounding hardly
   shows; 1 + (r + ...) last, as in Horner's rule, keeps the result as
   accurate (measured over 10M values: 1 ulp at worst, as before). */
#include <stdint.h>
#include <string.h>
static inline double fastbp_exp_nonpositive(double t) {
    const double shifter = 6755399441055744.0;         /* 1.5 * 2^52 */
    double kd = t * 1.4426950408889634 + shifter;       /* log2(e) */
    double k = kd - shifter;
    double r = (t - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
    double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    double q01 = 1.0 / 2.0 + r * (1.0 / 6.0);            /* 1/2!, 1/3! */
    double q23 = 1.0 / 24.0 + r * (1.0 / 120.0);
    double q45 = 1.0 / 720.0 + r * (1.0 / 5040.0);
    double q67 = 1.0 / 40320.0 + r * (1.0 / 362880.0);
    double q89 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0);
    double qab = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0);  /* 1/12!, 1/13! */
    double q03 = q01 + r2 * q23, q47 = q45 + r2 * q67, q8b = q89 + r2 * qab;
    double q = (q03 + r4 * q47) + r8 * q8b;
    double p = 1.0 + (r + r2 * q);
    uint64_t kbits, shifter_bits, scale_bits;
    double scale;
    memcpy(&kbits, &kd, 8);
    memcpy(&shifter_bits, &shifter, 8);
    scale_bits = (kbits - shifter_bits + 1023) << 52;  /* 2^k, k in [-1022, 0] */
    memcpy(&scale, &scale_bits, 8);
    return p * scale;
}
/* sum_j w[j] x[j] in one fixed order, whatever the vector width: 32
   partial sums s[u] (u = j mod 32; a tail shorter than 32 is padded with
   zeros, which add nothing), then the tree s[u] += s[u + 16], + 8, + 4,
   + 2, + 1.  Rows shorter than 32 are summed in order.  GCC/Clang vector
   types hold the 32 sums in registers at any width (lowered to SSE2 on the
   baseline build); other compilers get the same order in plain C. */
#define FASTBP_DOT(NAME, T, VT, W)                                            \
static inline T NAME(const T *w, const T *x, Py_ssize_t n) {                  \
    T acc = 0;                                                                \
    Py_ssize_t j = 0, u;                                                      \
    if (n < 32) {                                                             \
        for (j = 0; j < n; j++) acc += w[j] * x[j];                           \
        return acc;                                                           \
    }                                                                         \
    FASTBP_DOT_BODY(T, VT, W)                                                 \
}
#if defined(__GNUC__) || defined(__clang__)
#if defined(__AVX512F__)
/* Where the copy may use AVX-512, double's 32 sums are 4 vectors of 8 (the
   layout float has): the same sums in the same order, so the same bits,
   with half the loads and stores per weight on CPUs that move 512 bits at
   a time (Zen 5). */
typedef double fastbp_vd __attribute__((vector_size(64)));
#define FASTBP_LANES_D 8
#else
typedef double fastbp_vd __attribute__((vector_size(32)));
#define FASTBP_LANES_D 4
#endif
typedef float fastbp_vf __attribute__((vector_size(32)));
/* The 32 partial sums are 32 / W vectors (W lanes each: 4 or 8 doubles,
   8 floats) named s0..s7, not an array: GCC keeps an array of vectors on the
   stack (a load and a store per sum and step, and a store-forwarding stall
   in the tree); named ones stay in registers.  FASTBP_EACH(STEP, W) runs
   STEP(s_u, u, W) for u = 0 .. 32 / W - 1 (W = 8 uses s0..s3 only). */
#define FASTBP_SUMS(VT)                                                       \
    VT s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};                                \
    VT s4 = {0}, s5 = {0}, s6 = {0}, s7 = {0};
#define FASTBP_EACH(STEP, W)                                                  \
    STEP(s0, 0, W) STEP(s1, 1, W) STEP(s2, 2, W) STEP(s3, 3, W)               \
    if (W == 4) { STEP(s4, 4, W) STEP(s5, 5, W) STEP(s6, 6, W) STEP(s7, 7, W) }
/* One vector of sum_j w[j] x[j] at j + U W, into S. */
#define FASTBP_DOT_STEP(S, U, W)                                              \
    memcpy(&a, w + j + (U) * W, sizeof a);                                    \
    memcpy(&b, x + j + (U) * W, sizeof b);                                    \
    S += a * b;
#define FASTBP_DOT_BODY(T, VT, W)   /* W = lanes per vector (4 or 8) */      \
    VT a, b;                                                                  \
    FASTBP_SUMS(VT)                                                           \
    T tw[32], tx[32];                                                         \
    for (; j + 32 <= n; j += 32) { FASTBP_EACH(FASTBP_DOT_STEP, W) }          \
    FASTBP_DOT_FINISH(T, VT, W)
/* One vector of the zero-padded tail, into S. */
#define FASTBP_TAIL_STEP(S, U, W)                                             \
    memcpy(&a, tw + (U) * W, sizeof a);                                       \
    memcpy(&b, tx + (U) * W, sizeof b);                                       \
    S += a * b;
/* The tail (padded with zeros) and the tree of the 32 partial sums, for
   FASTBP_DOT_BODY, FASTBP_UPDATE_DOT and FASTBP_MOMENTUM_DOT; needs s0..s7,
   a, b, tw, tx, j, u.  The tree: s[u] += s[u + 16], + 8, + 4, + 2, + 1, on
   the vectors while a step spans whole vectors, then on the lanes. */
#define FASTBP_DOT_FINISH(T, VT, W)                                           \
    if (j < n) {                                                              \
        for (u = 0; u < 32; u++) {                                            \
            tw[u] = j + u < n ? w[j + u] : 0;                                 \
            tx[u] = j + u < n ? x[j + u] : 0;                                 \
        }                                                                     \
        FASTBP_EACH(FASTBP_TAIL_STEP, W)                                      \
    }                                                                         \
    if (W == 4) {  /* double in 256-bit vectors: 8 vectors of 4 sums */       \
        s0 += s4; s1 += s5; s2 += s6; s3 += s7;            /* + 16 */        \
        s0 += s2; s1 += s3;                                /* + 8 */         \
        s0 += s1;                                          /* + 4 */         \
    } else {       /* W = 8 (float, or AVX-512 double): 4 vectors of 8 sums */ \
        s0 += s2; s1 += s3;                                /* + 16 */        \
        s0 += s1;                                          /* + 8 */         \
        s0[0] += s0[4 % W]; s0[1] += s0[5 % W];            /* + 4 */         \
        s0[2] += s0[6 % W]; s0[3] += s0[7 % W];                               \
    }                                                                         \
    return (s0[0] + s0[2]) + (s0[1] + s0[3]);              /* + 2, + 1 */
FASTBP_DOT(fastbp_dot_d, double, fastbp_vd, FASTBP_LANES_D)
FASTBP_DOT(fastbp_dot_f, float, fastbp_vf, 8)
/* One vector of FASTBP_UPDATE_DOT's row at j + U W, into S. */
#define FASTBP_UPDATE_STEP(S, U, W)                                           \
    memcpy(&a, w + j + (U) * W, sizeof a);                                    \
    memcpy(&c, x_prev + j + (U) * W, sizeof c);                               \
    a = a - steps * c;                                                        \
    memcpy(w + j + (U) * W, &a, sizeof a);                                    \
    memcpy(&b, x + j + (U) * W, sizeof b);                                    \
    S += a * b;
/* w[j] -= step * a[j] for one row, and then sum_j w[j] x[j] of the
   updated row in FASTBP_DOT's order, in one pass over w: the row is
   loaded once and stored once, which on rows streamed from L3 is most of
   the online loop's time.  The same operations as the update loop and
   then FASTBP_DOT, in the same order, so the same bits. */
#define FASTBP_UPDATE_DOT(NAME, T, VT, W)                                     \
static inline T NAME(T *restrict w, T step, const T *restrict x_prev,         \
                     const T *restrict x, Py_ssize_t n) {                     \
    T acc = 0;                                                                \
    Py_ssize_t j = 0, u;                                                      \
    if (n < 32) {  /* one loop: no reload of what was just stored */          \
        for (j = 0; j < n; j++) {                                             \
            T v = w[j] - step * x_prev[j];                                    \
            w[j] = v;                                                         \
            acc += v * x[j];                                                  \
        }                                                                     \
        return acc;                                                           \
    }                                                                         \
    VT a, b, c, steps = (VT){0} + step;                                       \
    FASTBP_SUMS(VT)                                                           \
    T tw[32], tx[32];                                                         \
    for (; j + 32 <= n; j += 32) { FASTBP_EACH(FASTBP_UPDATE_STEP, W) }       \
    for (u = j; u < n; u++) w[u] = w[u] - step * x_prev[u];                   \
    FASTBP_DOT_FINISH(T, VT, W)                                               \
}
FASTBP_UPDATE_DOT(fastbp_update_dot_d, double, fastbp_vd, FASTBP_LANES_D)
FASTBP_UPDATE_DOT(fastbp_update_dot_f, float, fastbp_vf, 8)
/* One vector of FASTBP_MOMENTUM_DOT's row at j + U W, into S. */
#define FASTBP_MOMENTUM_STEP(S, U, W)                                         \
    memcpy(&v, buf + j + (U) * W, sizeof v);                                  \
    memcpy(&c, x_prev + j + (U) * W, sizeof c);                               \
    v = mus * v + deltas * c;                                                 \
    memcpy(buf + j + (U) * W, &v, sizeof v);                                  \
    memcpy(&a, w + j + (U) * W, sizeof a);                                    \
    a = a - lrs * v;                                                          \
    memcpy(w + j + (U) * W, &a, sizeof a);                                    \
    memcpy(&b, x + j + (U) * W, sizeof b);                                    \
    S += a * b;
/* SGD with momentum (no weight decay, not Nesterov) on one row:
   buf[j] = mu buf[j] + delta a[j];  w[j] -= lr buf[j];  then sum_j w[j] x[j]
   of the updated row in FASTBP_DOT's order, in one pass over w and buf (the
   operations and order of _momentum_one and then _dot, in the dtype: the
   same bits). */
#define FASTBP_MOMENTUM_DOT(NAME, T, VT, W)                                   \
static inline T NAME(T *restrict w, T *restrict buf, T delta,                 \
                     const T *restrict x_prev, const T *restrict x,           \
                     Py_ssize_t n, T mu, T lr) {                              \
    T acc = 0;                                                                \
    Py_ssize_t j = 0, u;                                                      \
    if (n < 32) {                                                             \
        for (j = 0; j < n; j++) {                                             \
            buf[j] = mu * buf[j] + delta * x_prev[j];                         \
            w[j] = w[j] - lr * buf[j];                                        \
        }                                                                     \
        for (j = 0; j < n; j++) acc += w[j] * x[j];                           \
        return acc;                                                           \
    }                                                                         \
    VT a, b, c, v, mus = (VT){0} + mu, lrs = (VT){0} + lr;                    \
    VT deltas = (VT){0} + delta;                                              \
    FASTBP_SUMS(VT)                                                           \
    T tw[32], tx[32];                                                         \
    for (; j + 32 <= n; j += 32) { FASTBP_EACH(FASTBP_MOMENTUM_STEP, W) }     \
    for (u = j; u < n; u++) {                                                 \
        buf[u] = mu * buf[u] + delta * x_prev[u];                             \
        w[u] = w[u] - lr * buf[u];                                            \
    }                                                                         \
    FASTBP_DOT_FINISH(T, VT, W)                                               \
}
FASTBP_MOMENTUM_DOT(fastbp_momentum_dot_d, double, fastbp_vd, FASTBP_LANES_D)
FASTBP_MOMENTUM_DOT(fastbp_momentum_dot_f, float, fastbp_vf, 8)
#else
#define FASTBP_DOT_BODY(T, VT, W)                                             \
    T s[32] = {0};                                                            \
    for (; j + 32 <= n; j += 32)                                              \
        for (u = 0; u < 32; u++) s[u] += w[j + u] * x[j + u];                 \
    for (u = 0; j < n; j++, u++) s[u] += w[j] * x[j];                         \
    for (u = 0; u < 16; u++) s[u] += s[u + 16];                               \
    for (u = 0; u < 8; u++) s[u] += s[u + 8];                                 \
    for (u = 0; u < 4; u++) s[u] += s[u + 4];                                 \
    return (s[0] + s[2]) + (s[1] + s[3]);
FASTBP_DOT(fastbp_dot_d, double, double, 1)
FASTBP_DOT(fastbp_dot_f, float, float, 1)
static inline double fastbp_update_dot_d(double *w, double step, const double *x_prev,
                                         const double *x, Py_ssize_t n) {
    for (Py_ssize_t j = 0; j < n; j++) w[j] = w[j] - step * x_prev[j];
    return fastbp_dot_d(w, x, n);
}
static inline float fastbp_update_dot_f(float *w, float step, const float *x_prev,
                                        const float *x, Py_ssize_t n) {
    for (Py_ssize_t j = 0; j < n; j++) w[j] = w[j] - step * x_prev[j];
    return fastbp_dot_f(w, x, n);
}
#define FASTBP_MOMENTUM_DOT(NAME, T, DOT)                                     \
static inline T NAME(T *w, T *buf, T delta, const T *x_prev, const T *x,      \
                     Py_ssize_t n, T mu, T lr) {                              \
    for (Py_ssize_t j = 0; j < n; j++) {                                      \
        buf[j] = mu * buf[j] + delta * x_prev[j];                             \
        w[j] = w[j] - lr * buf[j];                                            \
    }                                                                         \
    return DOT(w, x, n);                                                      \
}
FASTBP_MOMENTUM_DOT(fastbp_momentum_dot_d, double, fastbp_dot_d)
FASTBP_MOMENTUM_DOT(fastbp_momentum_dot_f, float, fastbp_dot_f)
#endif

/* tanh x, branch-free so that a loop of it vectorises (libm's tanh is a
   call per value).  For |x| >= 0.4: (1 - e) / (1 + e) with e = e^-2|x| from
   fastbp_exp_nonpositive (1 - e >= 0.55 there, so no cancellation; within a
   few ulp).  Below: the Taylor series x + x^3 P(x^2) of tanh to x^33
   (coefficients 2^2n (2^2n - 1) B_2n / (2n)!, truncation < 1e-19 relative
   at 0.4).  The sign is copied back, so tanh(-0) = -0.  Plain multiply-adds
   with no contraction: every instruction set gives the same bits. */
static inline double fastbp_tanh(double x) {
    double ax = fabs(x);
    double t = -2.0 * ax;
    t = t < -708.0 ? -708.0 : t;
    double e = fastbp_exp_nonpositive(t);
    double big = (1.0 - e) / (1.0 + e);
    double x2 = ax * ax;
    double p = 4.294911078273806e-07;
    p = p * x2 + -1.0597268320104654e-06;
    p = p * x2 + 2.6147711512907546e-06;
    p = p * x2 + -6.451689215655431e-06;
    p = p * x2 + 1.5918905069328964e-05;
    p = p * x2 + -3.927832388331683e-05;
    p = p * x2 + 9.691537956929451e-05;
    p = p * x2 + -0.00023912911424355248;
    p = p * x2 + 0.000590027440945586;
    p = p * x2 + -0.0014558343870513183;
    p = p * x2 + 0.003592128036572481;
    p = p * x2 + -0.008863235529902197;
    p = p * x2 + 0.021869488536155203;
    p = p * x2 + -0.05396825396825397;
    p = p * x2 + 0.13333333333333333;
    p = p * x2 + -0.3333333333333333;
    double small = ax + ax * (x2 * p);
    return copysign(ax < 0.4 ? small : big, x);
}

/* Whether v[0..n) are all finite, and max |v[i]|, in one pass that
   vectorises at any width: on the bits, |v| orders like the integer
   bits & ~sign, and a value is NaN or inf exactly when that integer is
   at least the bits of inf.  (A floating max or sum would need the
   compiler to reorder a reduction, which it may not.) */
static int fastbp_finite_amax_d(const double *v, Py_ssize_t n, double *amax) {
    uint64_t big = 0, bits;
    for (Py_ssize_t i = 0; i < n; i++) {
        memcpy(&bits, v + i, 8);
        bits &= 0x7fffffffffffffffULL;
        big = bits > big ? bits : big;
    }
    memcpy(amax, &big, 8);
    return big < 0x7ff0000000000000ULL;
}
static int fastbp_finite_amax_f(const float *v, Py_ssize_t n, double *amax) {
    uint32_t big = 0, bits;
    float a;
    for (Py_ssize_t i = 0; i < n; i++) {
        memcpy(&bits, v + i, 4);
        bits &= 0x7fffffffU;
        big = bits > big ? bits : big;
    }
    memcpy(&a, &big, 4);
    *amax = a;
    return big < 0x7f800000U;
}

/* dst[0:n] = src[0:n].  Up to 16 values as straight-line stores (a switch
   that falls through, not a loop, which GCC and Clang would turn back into a
   memcpy call); memcpy beyond.  The online loop copies each sample's input
   row and its output layer's net inputs: on a tiny network a libc memcpy
   call per copy cost 5% of the sample. */
#define FASTBP_COPY(NAME, T)                                                  \
static inline void NAME(T *restrict dst, const T *restrict src, Py_ssize_t n) { \
    switch (n > 16 ? 0 : n) {                                                 \
    case 0: if (n > 0) memcpy(dst, src, (size_t)n * sizeof(T)); return;       \
    case 16: dst[15] = src[15]; /* fall through */                            \
    case 15: dst[14] = src[14]; /* fall through */                            \
    case 14: dst[13] = src[13]; /* fall through */                            \
    case 13: dst[12] = src[12]; /* fall through */                            \
    case 12: dst[11] = src[11]; /* fall through */                            \
    case 11: dst[10] = src[10]; /* fall through */                            \
    case 10: dst[9] = src[9]; /* fall through */                              \
    case 9: dst[8] = src[8]; /* fall through */                               \
    case 8: dst[7] = src[7]; /* fall through */                               \
    case 7: dst[6] = src[6]; /* fall through */                               \
    case 6: dst[5] = src[5]; /* fall through */                               \
    case 5: dst[4] = src[4]; /* fall through */                               \
    case 4: dst[3] = src[3]; /* fall through */                               \
    case 3: dst[2] = src[2]; /* fall through */                               \
    case 2: dst[1] = src[1]; /* fall through */                               \
    default: dst[0] = src[0];                                                 \
    }                                                                         \
}
FASTBP_COPY(fastbp_copy_d, double)
FASTBP_COPY(fastbp_copy_f, float)

#endif /* FASTBP_KERNELS_H */
