/* The memory roofline's bandwidth probe: read and write back every element
 * of a buffer, pass after pass, as the in-place update of an online step does
 * with W (each weight read once and written once per sample).
 *
 * Compiled with the C peer's flags (-O3 -march=native): the loop vectorises to
 * full-width loads and stores, and one add per element is far below what the
 * core can do, so the time is the time the bytes take.  The added value
 * alternates between +1 and -1, read from memory each pass (the compiler
 * cannot cancel two passes), so the buffer keeps its values.
 */
void stream_rw(double *buf, long n, long passes) {
    volatile double sign[2] = {1.0, -1.0};
    for (long p = 0; p < passes; p++) {
        const double s = sign[p & 1];
        for (long i = 0; i < n; i++) buf[i] += s;
    }
}
