/* The roofline's core probe: one online sample's pass over W1 as fastbp's
 * kernel makes it, fastbp_update_dot_d from fastbp/_kernels.h (the update
 * w[j] -= step x_prev[j] of sample i and the dot product of the updated row
 * with x, sample i + 1's input, in one walk of each row), compiled with the
 * flags of the copy fastbp runs (roofline.py passes them).
 *
 * rows_apart = n_in walks W1's rows as the kernel does, so the time is the
 * pass's with W1 wherever it lives (L2 or L3).  rows_apart = 0 makes the same
 * calls on rows 0 and 1 alternately (2 x n_in doubles, with x_prev and x
 * inside L1 too): the same instructions with memory out of the way, the
 * fastest these operations run on this core.
 *
 * Where x_prev and x lie against the row changes the time by up to a third
 * (loads of x that share their address's low 12 bits with a store to w just
 * made wait for it), so pass p reads them placement_step x (p mod placements)
 * doubles into their buffers (n_in + placement_step x placements doubles
 * each; roofline.py chooses both): both modes average over the same
 * placements, as a real pass over W1's rows at their many offsets does.  The
 * step alternates in sign, pass by pass, so the weights keep their values;
 * the dot products go to *sink so that nothing is left out.
 */
#include <stddef.h>
typedef ptrdiff_t Py_ssize_t;  /* _kernels.h's index type, without Python.h */
#include "../../fastbp/_kernels.h"

void w1_pass(double *w, long rows, long n_in, long rows_apart, const double *x_prev,
             const double *x, long placement_step, long placements, long passes,
             double *sink) {
    double total = 0;
    for (long p = 0; p < passes; p++) {
        const double step = p & 1 ? 1e-9 : -1e-9;
        const long at = placement_step * (p % placements);
        for (long k = 0; k < rows; k++) {
            double *row = w + (rows_apart ? k * rows_apart : (k & 1) * n_in);
            total += fastbp_update_dot_d(row, step, x_prev + at, x + at, n_in);
        }
    }
    *sink = total;
}
