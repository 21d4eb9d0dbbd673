/* Mamba's selective scan by the three-phase lane scan, compiled: mamba's `impl=chunked_c` runs this
 * (effprof/mechanisms/ssm/selective_scan.py, the op effprof::selective_scan). It has no backward; chunked_scan
 * there (`impl=chunked`) is the readable version of the same algorithm, and the one autograd differentiates.
 *
 * For every sequence, channel d and state index s (A: (D, N); Δ, x: (b, n, D); B, C: (b, n, N)):
 *
 *     h_t = exp(Δ_t A) ⊙ h_{t-1} + (Δ_t x_t) B_t,      y_t = h_t C_t
 *
 * The n tokens are cut into c lanes of `size` consecutive tokens (the last one padded with Δ = 0, x = 0,
 * B = C = 0, which leaves h unchanged: computed, as in the torch form, but never read from or written to memory):
 *   1. every lane runs the recurrence from h = 0; its end state goes to `entering`;
 *   2. per channel, the state entering lane k, H_k = exp(A·ΣΔ over lane k-1) ⊙ H_{k-1} + end state of
 *      lane k-1, overwrites `entering` in place (one pass over the c lanes);
 *   3. every output of lane k adds C_t exp(A·Σ_{s≤t in lane} Δ_s) H_k.
 * Phases 1 and 3 are parallel over (sequence, lane, block of channels), phase 2 over (sequence, block of
 * channels). The innermost loop runs over the CHANNELS of a block, which lie next to each other in x, Δ, y
 * and Aᵀ: that is the loop the compiler vectorises, exp included (exp_f32 below is inlined for that).
 *
 * The output is finished in the same pass, as Mamba's own kernel does: (y + D ⊙ x) ⊙ SiLU(z).
 *
 * The arithmetic is op for op that of the torch form (selective_scan.selective_scan), so both count the same
 * FLOPs (mamba_cost.selective_scan_flops).
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#define STATE_MAX 256 /* d_state up to this: the one definition; Python reads selective_scan_state_max */
#define BLOCK 32      /* channels per block: h of one block is STATE_MAX × BLOCK floats on the stack */

const long selective_scan_state_max = STATE_MAX;

static long min_long(long a, long b) { return a < b ? a : b; }

/* e^x in float, inlined so that the channel loops vectorise it: x = k·ln2 + r, |r| ≤ ln2/2, e^r by Cephes'
 * degree-6 polynomial, 2^k by building the float's exponent bits. Relative error about 1e-7 (float's own);
 * below -87.3 it returns e^-87.3 ≈ 1e-38 (a decay that small is 0 for every purpose here). */
static inline float exp_f32(float x) {
    x = fminf(fmaxf(x, -87.3f), 88.7f);
    const float k = floorf(x * 1.44269504088896341f + 0.5f);
    const float r = x - k * 0.693359375f + k * 2.12194440e-4f; /* x − k·ln2, ln2 split in two for exactness */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int bits = ((int)k + 127) << 23; /* 2^k */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* The block's output around the scan, fused as in Mamba's kernel: out_t = (y_t + D ⊙ x_t) ⊙ SiLU(z_t),
 * SiLU(z) = z / (1 + e^-z). */
static inline void gate(float *out, const float *y, const float *x, const float *Dskip, const float *z, long w) {
    for (long j = 0; j < w; j++) out[j] = (y[j] + x[j] * Dskip[j]) * (z[j] / (1.0f + exp_f32(-z[j])));
}

/* The problem, shared by the three phases. */
typedef struct {
    const float *x, *delta, *At, *B, *C, *Dskip, *z; /* inputs (At = Aᵀ: (N, D)) */
    long z_batch, z_token;                           /* z's strides (its channels are adjacent) */
    float *y, *last, *entering, *cumulative;         /* outputs and scratch */
    long b, n, D, N, size, lanes;
} Scan;

static const float zero[BLOCK > STATE_MAX ? BLOCK : STATE_MAX] = {0}; /* Δ, x, B_t and C_t of the padding */

/* 1. lane k of sequence i, channels d0 … d0+w-1, from h = 0: y = the lane's own contribution (the final output
 * when there is one lane), ΣΔ so far into `cumulative`, the end state into entering[k]. */
static void lane_from_zero(const Scan *p, long i, long k, long d0, long w) {
    const long n = p->n, D = p->D, N = p->N;
    float h[STATE_MAX][BLOCK] = {{0}}, sum[BLOCK] = {0};
    for (long t = k * p->size; t < (k + 1) * p->size; t++) {
        const int real = t < n; /* past n: Δ = 0, x = 0, B = 0, C = 0, as the torch form pads */
        const long at = (i * n + t) * D + d0;
        const float *dt = real ? p->delta + at : zero, *xt = real ? p->x + at : zero;
        const float *bt = real ? p->B + (i * n + t) * N : zero, *ct = real ? p->C + (i * n + t) * N : zero;
        float u[BLOCK], acc[BLOCK] = {0};
        for (long j = 0; j < w; j++) u[j] = dt[j] * xt[j]; /* Δ_t x_t */
        for (long s = 0; s < N; s++) {
            const float *a = p->At + s * D + d0;
            for (long j = 0; j < w; j++) {
                h[s][j] = exp_f32(dt[j] * a[j]) * h[s][j] + bt[s] * u[j]; /* Ā_t ⊙ h + B̄_t x_t */
                acc[j] += ct[s] * h[s][j];                                /* C_t h_t */
            }
        }
        if (p->lanes > 1)
            for (long j = 0; j < w; j++) sum[j] += dt[j]; /* Σ_{s≤t in lane} Δ_s (the padding's 0s too, as cumsum) */
        if (!real) continue;
        if (p->lanes == 1) { /* one lane: y_t is complete */
            gate(p->y + at, acc, xt, p->Dskip + d0, p->z + i * p->z_batch + t * p->z_token + d0, w);
            continue;
        }
        for (long j = 0; j < w; j++) {
            p->y[at + j] = acc[j];
            p->cumulative[at + j] = sum[j];
        }
    }
    float *end = p->entering + (i * p->lanes + k) * N * D + d0;
    for (long s = 0; s < N; s++)
        for (long j = 0; j < w; j++) end[s * D + j] = h[s][j];
}

/* 2. sequence i, channels d0 …: the state entering each lane, H_{k+1} = exp(A·ΣΔ over lane k) ⊙ H_k + end_k,
 * overwriting the end states in `entering`; h_n into `last`. */
static void pass_states(const Scan *p, long i, long d0, long w) {
    const long n = p->n, D = p->D, N = p->N;
    float carry[STATE_MAX][BLOCK] = {{0}};
    for (long k = 0; k < p->lanes; k++) {
        /* ΣΔ over lane k: the cumulative sum at its last real position */
        const float *sum = p->cumulative + (i * n + min_long((k + 1) * p->size, n) - 1) * D + d0;
        float *slot = p->entering + (i * p->lanes + k) * N * D + d0;
        for (long s = 0; s < N; s++) {
            const float *a = p->At + s * D + d0;
            for (long j = 0; j < w; j++) {
                const float end = slot[s * D + j];
                slot[s * D + j] = carry[s][j];                            /* H_k */
                carry[s][j] = exp_f32(a[j] * sum[j]) * carry[s][j] + end; /* H_{k+1} */
            }
        }
    }
    for (long s = 0; s < N; s++)
        for (long j = 0; j < w; j++) p->last[(i * D + d0 + j) * N + s] = carry[s][j];
}

/* 3. lane k of sequence i, channels d0 …: add what the entering state contributes, C_t exp(A·ΣΔ) H_k, and
 * finish the output. Lane 0's H is 0; it is added all the same, as in the torch form, so that both do the
 * same arithmetic. */
static void add_entering(const Scan *p, long i, long k, long d0, long w) {
    const long n = p->n, D = p->D, N = p->N;
    const float *H = p->entering + (i * p->lanes + k) * N * D + d0, *sum = zero;
    for (long t = k * p->size; t < (k + 1) * p->size; t++) {
        const int real = t < n;
        const long at = (i * n + t) * D + d0;
        if (real) sum = p->cumulative + at; /* padding: ΣΔ stays at the lane's last real value */
        const float *ct = real ? p->C + (i * n + t) * N : zero;
        float acc[BLOCK] = {0};
        for (long s = 0; s < N; s++) {
            const float *a = p->At + s * D + d0;
            for (long j = 0; j < w; j++) acc[j] += ct[s] * (exp_f32(a[j] * sum[j]) * H[s * D + j]);
        }
        if (!real) continue;
        for (long j = 0; j < w; j++) acc[j] += p->y[at + j]; /* the lane's own part, from phase 1 */
        gate(p->y + at, acc, p->x + at, p->Dskip + d0, p->z + i * p->z_batch + t * p->z_token + d0, w);
    }
}

/* x, delta: (b, n, D); At = Aᵀ: (N, D); B, C: (b, n, N); Dskip: (D,); z: (b, n, D) with strides z_batch,
 * z_token (channels contiguous). Writes y: (b, n, D) = (scan + D ⊙ x) ⊙ SiLU(z), last: (b, D, N) (h_n), and
 * the scratch the algorithm needs, which the caller allocates so that memory accounting sees it:
 * entering: (b, c, N, D) (lane end states, then H_k), cumulative: (b, n, D) (Σ Δ within each lane).
 * Returns 0, or 1 (and writes nothing) when N is outside 1 … STATE_MAX or size < 1. */
int chunked_selective_scan(const float *x, const float *delta, const float *At, const float *B, const float *C,
                            const float *Dskip, const float *z, long z_batch, long z_token, float *y, float *last,
                            float *entering, float *cumulative, long b, long n, long D, long N, long size,
                            int threads) {
    if (N < 1 || N > STATE_MAX || size < 1) return 1;
    const Scan p = {x, delta, At, B, C, Dskip, z, z_batch, z_token, y, last, entering, cumulative,
                    b, n, D, N, size, (n + size - 1) / size};
    const long blocks = (D + BLOCK - 1) / BLOCK, lanes = p.lanes;
#pragma omp parallel num_threads(threads)
    {
#pragma omp for collapse(3) schedule(static)
        for (long i = 0; i < b; i++)
            for (long k = 0; k < lanes; k++)
                for (long q = 0; q < blocks; q++) lane_from_zero(&p, i, k, q * BLOCK, min_long(BLOCK, D - q * BLOCK));
        if (lanes > 1) {
#pragma omp for collapse(2) schedule(static)
            for (long i = 0; i < b; i++)
                for (long q = 0; q < blocks; q++) pass_states(&p, i, q * BLOCK, min_long(BLOCK, D - q * BLOCK));
#pragma omp for collapse(3) schedule(static)
            for (long i = 0; i < b; i++)
                for (long k = 0; k < lanes; k++)
                    for (long q = 0; q < blocks; q++) add_entering(&p, i, k, q * BLOCK, min_long(BLOCK, D - q * BLOCK));
        }
    }
    if (lanes == 1) /* one lane: its end state is h_n */
        for (long i = 0; i < b; i++)
            for (long d = 0; d < D; d++)
                for (long s = 0; s < N; s++) last[(i * D + d) * N + s] = entering[(i * N + s) * D + d];
    return 0;
}
