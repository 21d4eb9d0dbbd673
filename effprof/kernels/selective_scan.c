/* Mamba's selective scan by the three-phase lane scan, compiled, with its backward: mamba's `impl=chunked_c`
 * runs this (effprof/mechanisms/ssm/selective_scan.py, the ops effprof::selective_scan and
 * effprof::selective_scan_backward). chunked_scan there (`impl=chunked`) is the readable version of the same
 * forward algorithm; autograd differentiates it, and the tests hold this backward to autograd's gradients.
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
 * Where sequences × blocks of channels alone occupy the threads (b·D ≥ 256: mamba_cost.one_pass decides), the
 * forward runs phase 1 with one lane of n tokens instead (one_pass below), half the exponentials, storing the
 * state entering each chunk of `size` tokens for the backward.
 *
 * The arithmetic is op for op that of the torch form (selective_scan.selective_scan) with the same lanes, so
 * both count the same FLOPs (mamba_cost.selective_scan_flops).
 */
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <string.h>

#define STATE_MAX 256 /* d_state up to this: the one definition; Python reads selective_scan_state_max */
#define BLOCK 32      /* channels per block: h of one block is STATE_MAX × BLOCK floats on the stack */

const long selective_scan_state_max = STATE_MAX;
const long selective_scan_block = BLOCK; /* Python sizes the backward's per-thread workspace with it */

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

/* One token of the recurrence for channels d0 … d0+w: h ← exp(Δ_t A) ⊙ h + (Δ_t x_t) B_t, acc = C_t h (both passes
 * that run it from the tokens themselves, lane_from_zero and one_pass, share it). */
static inline void step(const Scan *p, float h[STATE_MAX][BLOCK], const float *dt, const float *xt, const float *bt,
                        const float *ct, long d0, long w, float acc[BLOCK]) {
    const long D = p->D, N = p->N;
    float u[BLOCK];
    for (long j = 0; j < w; j++) u[j] = dt[j] * xt[j], acc[j] = 0; /* Δ_t x_t */
    for (long s = 0; s < N; s++) {
        const float *a = p->At + s * D + d0;
        for (long j = 0; j < w; j++) {
            h[s][j] = exp_f32(dt[j] * a[j]) * h[s][j] + bt[s] * u[j]; /* Ā_t ⊙ h + B̄_t x_t */
            acc[j] += ct[s] * h[s][j];                                /* C_t h_t */
        }
    }
}

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
        float acc[BLOCK];
        step(p, h, dt, xt, bt, ct, d0, w, acc);
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

/* The one-pass form, used where sequences × blocks of channels alone occupy the threads (the caller decides:
 * mamba_cost.one_pass): sequence i, channels d0 … run the recurrence over all n tokens from h = 0, finishing
 * each output as they go — phase 1 with one lane, as Mamba's own kernel runs a sequence per thread block. The
 * state entering every chunk of `size` tokens is stored in `entering` on the way (the backward restarts from
 * these), and h_n in `last`. */
static void one_pass(const Scan *p, long i, long d0, long w) {
    const long n = p->n, D = p->D, N = p->N;
    float h[STATE_MAX][BLOCK] = {{0}};
    for (long t = 0; t < n; t++) {
        if (t % p->size == 0) {
            float *slot = p->entering + (i * p->lanes + t / p->size) * N * D + d0;
            for (long s = 0; s < N; s++)
                for (long j = 0; j < w; j++) slot[s * D + j] = h[s][j];
        }
        const long at = (i * n + t) * D + d0;
        const float *dt = p->delta + at, *xt = p->x + at, *bt = p->B + (i * n + t) * N, *ct = p->C + (i * n + t) * N;
        float acc[BLOCK];
        step(p, h, dt, xt, bt, ct, d0, w, acc);
        gate(p->y + at, acc, xt, p->Dskip + d0, p->z + i * p->z_batch + t * p->z_token + d0, w);
    }
    for (long s = 0; s < N; s++)
        for (long j = 0; j < w; j++) p->last[(i * D + d0 + j) * N + s] = h[s][j];
}

/* x, delta: (b, n, D); At = Aᵀ: (N, D); B, C: (b, n, N); Dskip: (D,); z: (b, n, D) with strides z_batch,
 * z_token (channels contiguous). Writes y: (b, n, D) = (scan + D ⊙ x) ⊙ SiLU(z), last: (b, D, N) (h_n), and
 * the scratch the algorithm needs, which the caller allocates so that memory accounting sees it:
 * entering: (b, c, N, D) (lane end states, then H_k), cumulative: (b, n, D) (Σ Δ within each lane).
 * single ≠ 0: the one-pass form instead (one_pass; cumulative unused), which leaves the same H_k in entering.
 * Returns 0, or 1 (and writes nothing) when N is outside 1 … STATE_MAX or size < 1. */
int chunked_selective_scan(const float *x, const float *delta, const float *At, const float *B, const float *C,
                            const float *Dskip, const float *z, long z_batch, long z_token, float *y, float *last,
                            float *entering, float *cumulative, long b, long n, long D, long N, long size,
                            int single, int threads) {
    if (N < 1 || N > STATE_MAX || size < 1) return 1;
    const Scan p = {x, delta, At, B, C, Dskip, z, z_batch, z_token, y, last, entering, cumulative,
                    b, n, D, N, size, (n + size - 1) / size};
    const long blocks = (D + BLOCK - 1) / BLOCK, lanes = p.lanes;
    if (single) {
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
        for (long i = 0; i < b; i++)
            for (long q = 0; q < blocks; q++) one_pass(&p, i, q * BLOCK, min_long(BLOCK, D - q * BLOCK));
        return 0;
    }
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

/* ------------------------------------------------------------------------------------------------------------
 * The backward: given dout = ∂L/∂out and dlast = ∂L/∂h_n, the gradients of x, Δ, A, B, C, D and z.
 *
 * With g_t = SiLU(z_t), dy_t = dout_t ⊙ g_t and u_t = Δ_t x_t, the adjoint of the state, λ_t = ∂L/∂h_t, runs
 * backwards: λ_t = C_t dy_t + Ā_{t+1} ⊙ λ_{t+1} (λ_{n-1} adds dlast), and
 *
 *     ∂C_t = Σ_d dy_t h_t          ∂B_t = Σ_d λ_t u_t          ∂u_t = Σ_s λ_t B_t
 *     ∂Δ_t = ∂u_t x_t + Σ_s λ_t ⊙ h_{t-1} ⊙ Ā_t ⊙ A          ∂A = Σ_t λ_t ⊙ h_{t-1} ⊙ Ā_t Δ_t
 *     ∂x_t = ∂u_t Δ_t + dy_t D     ∂D = Σ_t dy_t x_t       ∂z_t = dout_t (y_t + D x_t) σ(z_t)(1 + z_t(1 − σ(z_t)))
 *
 * The reverse recurrence is cut into the forward's lanes and solved in three phases, as the forward is:
 *   a. every lane k ≥ 1 runs λ backwards from 0 at its end: ν_k = Ā_{s_k} ⊙ (its local adjoint at its first
 *      token s_k), and ΣΔ over the lane;
 *   b. per channel, from the last lane down: Λ_last = dlast, Λ_{k-1} = ν_k + exp(A·ΣΔ over lane k) ⊙ Λ_k,
 *      the adjoint that flows into lane k's last token from the lanes after it;
 *   c. every lane recomputes its states from H_k (the forward's `entering`), stores h_t and Ā_t for its tokens
 *      in a per-thread workspace, and runs λ backwards from Λ_k, accumulating every gradient; ∂A and ∂D are
 *      summed per lane (no two threads write one element) and
 *   d. reduced over lanes.
 * Padding tokens (Δ = 0, x = 0, B = C = 0) change nothing in either direction, so the backward skips them.
 * Every FLOP is counted in mamba_cost.selective_scan_backward_flops, phase by phase as below.
 */

typedef struct {
    const float *x, *delta, *At, *B, *C, *Dskip, *z, *dout, *dlast, *entering;
    long z_batch, z_token;
    float *dx, *ddelta, *dB, *dC, *dz, *dAt, *dD;           /* gradients; dAt: (N, D) */
    float *leaving, *lane_sum, *dAt_part, *dD_part, *work; /* scratch */
    long b, n, D, N, size, lanes;
} Back;

static inline float sigmoid_f32(float v) { return 1.0f / (1.0f + exp_f32(-v)); } /* 4 FLOPs: −, exp, +, ÷ */

/* a. lane k ≥ 1 of sequence i, channels d0 …: ν_k into leaving[k], ΣΔ into lane_sum[k].
 * FLOPs per real token: 5 per (channel, state) + 7 per channel (σ 4, z·σ, dout·g, ΣΔ). */
static void lane_adjoint(const Back *p, long i, long k, long d0, long w) {
    const long n = p->n, D = p->D, N = p->N;
    float mu[STATE_MAX][BLOCK] = {{0}}, sum[BLOCK] = {0};
    for (long t = min_long((k + 1) * p->size, n) - 1; t >= k * p->size; t--) {
        const long at = (i * n + t) * D + d0;
        const float *dt = p->delta + at, *ct = p->C + (i * n + t) * N, *dout = p->dout + at;
        const float *zt = p->z + i * p->z_batch + t * p->z_token + d0;
        float dy[BLOCK];
        for (long j = 0; j < w; j++) {
            dy[j] = dout[j] * (zt[j] * sigmoid_f32(zt[j])); /* dout ⊙ SiLU(z) */
            sum[j] += dt[j];
        }
        for (long s = 0; s < N; s++) {
            const float *a = p->At + s * D + d0;
            for (long j = 0; j < w; j++) mu[s][j] = (mu[s][j] + ct[s] * dy[j]) * exp_f32(dt[j] * a[j]);
        }
    }
    float *slot = p->leaving + (i * p->lanes + k) * N * D + d0;
    for (long s = 0; s < N; s++)
        for (long j = 0; j < w; j++) slot[s * D + j] = mu[s][j];
    for (long j = 0; j < w; j++) p->lane_sum[(i * p->lanes + k) * D + d0 + j] = sum[j];
}

/* b. sequence i, channels d0 …: Λ_k into leaving[k], from the last lane down. FLOPs: 4 per (lane ≥ 1, channel,
 * state): A·ΣΔ, exp, ×, +. */
static void pass_adjoints(const Back *p, long i, long d0, long w) {
    const long D = p->D, N = p->N;
    float carry[STATE_MAX][BLOCK];
    for (long s = 0; s < N; s++)
        for (long j = 0; j < w; j++) carry[s][j] = p->dlast[(i * D + d0 + j) * N + s];
    for (long k = p->lanes - 1; k >= 0; k--) {
        float *slot = p->leaving + (i * p->lanes + k) * N * D + d0;
        const float *sum = p->lane_sum + (i * p->lanes + k) * D + d0;
        for (long s = 0; s < N; s++) {
            const float *a = p->At + s * D + d0;
            for (long j = 0; j < w; j++) {
                const float nu = slot[s * D + j];
                slot[s * D + j] = carry[s][j]; /* Λ_k */
                if (k > 0) carry[s][j] = nu + exp_f32(a[j] * sum[j]) * carry[s][j];
            }
        }
    }
}

/* c. lane k of sequence i, all channels: recompute h and Ā over the lane, then λ backwards from Λ_k.
 * FLOPs per real token: 22 per (channel, state) (5 recomputing h_t; C·h, λ += C·dy, ∂C, ∂B, ∂u, λ·h·Ā, ∂Δ's
 * A term, ∂A, λ ⊙= Ā: 17) and 23 per channel (u twice, σ 4, z·σ, dout·g, ∂z 8 with y + D x, ∂D 2, ∂x 3, ∂Δ 2). */
static void lane_gradients(const Back *p, long i, long k, float *work) {
    const long n = p->n, D = p->D, N = p->N, first = k * p->size, last = min_long((k + 1) * p->size, n) - 1;
    float *hs = work, *as = work + p->size * N * BLOCK; /* h_t, Ā_t of the lane: (size, N, BLOCK) each */
    for (long t = first; t <= last; t++)
        for (long s = 0; s < N; s++) p->dB[(i * n + t) * N + s] = p->dC[(i * n + t) * N + s] = 0.0f;
    float *dA = p->dAt_part + (i * p->lanes + k) * N * D, *dD = p->dD_part + (i * p->lanes + k) * D;
    for (long d0 = 0; d0 < D; d0 += BLOCK) {
        const long w = min_long(BLOCK, D - d0);
        float H[STATE_MAX][BLOCK], lam[STATE_MAX][BLOCK], gA[STATE_MAX][BLOCK] = {{0}}, gD[BLOCK] = {0};
        const float *entering = p->entering + (i * p->lanes + k) * N * D + d0, *Lam = p->leaving + (i * p->lanes + k) * N * D + d0;
        for (long s = 0; s < N; s++)
            for (long j = 0; j < w; j++) {
                H[s][j] = k > 0 ? entering[s * D + j] : 0.0f; /* h before the lane: H_k, 0 before lane 0 */
                lam[s][j] = Lam[s * D + j];
            }
        for (long t = first; t <= last; t++) { /* h_t = Ā_t ⊙ h_{t-1} + B_t u_t */
            const long at = (i * n + t) * D + d0;
            const float *dt = p->delta + at, *xt = p->x + at, *bt = p->B + (i * n + t) * N;
            float *h = hs + (t - first) * N * BLOCK, *abar = as + (t - first) * N * BLOCK;
            const float *prev = t > first ? h - N * BLOCK : &H[0][0];
            float u[BLOCK];
            for (long j = 0; j < w; j++) u[j] = dt[j] * xt[j];
            for (long s = 0; s < N; s++) {
                const float *a = p->At + s * D + d0;
                for (long j = 0; j < w; j++) {
                    abar[s * BLOCK + j] = exp_f32(dt[j] * a[j]);
                    h[s * BLOCK + j] = abar[s * BLOCK + j] * prev[s * BLOCK + j] + bt[s] * u[j];
                }
            }
        }
        for (long t = last; t >= first; t--) {
            const long at = (i * n + t) * D + d0;
            const float *dt = p->delta + at, *xt = p->x + at, *bt = p->B + (i * n + t) * N, *ct = p->C + (i * n + t) * N;
            const float *dout = p->dout + at, *zt = p->z + i * p->z_batch + t * p->z_token + d0, *Dskip = p->Dskip + d0;
            const float *h = hs + (t - first) * N * BLOCK, *abar = as + (t - first) * N * BLOCK;
            const float *prev = t > first ? h - N * BLOCK : &H[0][0];
            float *dBt = p->dB + (i * n + t) * N, *dCt = p->dC + (i * n + t) * N;
            float u[BLOCK], dy[BLOCK], y[BLOCK] = {0}, gu[BLOCK] = {0}, gdelta[BLOCK] = {0};
            for (long s = 0; s < N; s++)
                for (long j = 0; j < w; j++) y[j] += ct[s] * h[s * BLOCK + j]; /* y_t = C_t h_t */
            for (long j = 0; j < w; j++) {
                const float sig = sigmoid_f32(zt[j]), g = zt[j] * sig;
                u[j] = dt[j] * xt[j];
                dy[j] = dout[j] * g;
                p->dz[at + j] = dout[j] * (y[j] + Dskip[j] * xt[j]) * (sig * (1.0f + zt[j] * (1.0f - sig)));
                gD[j] += dy[j] * xt[j];
            }
            for (long s = 0; s < N; s++) {
                const float *a = p->At + s * D + d0;
                float c = 0.0f, bsum = 0.0f;
                for (long j = 0; j < w; j++) {
                    lam[s][j] += ct[s] * dy[j]; /* λ_t */
                    c += dy[j] * h[s * BLOCK + j];
                    bsum += lam[s][j] * u[j];
                    gu[j] += lam[s][j] * bt[s];
                    const float q = lam[s][j] * prev[s * BLOCK + j] * abar[s * BLOCK + j];
                    gdelta[j] += q * a[j];
                    gA[s][j] += q * dt[j];
                    lam[s][j] *= abar[s * BLOCK + j]; /* Ā_t λ_t, for t − 1 */
                }
                dCt[s] += c;
                dBt[s] += bsum;
            }
            for (long j = 0; j < w; j++) {
                p->dx[at + j] = gu[j] * dt[j] + dy[j] * Dskip[j];
                p->ddelta[at + j] = gu[j] * xt[j] + gdelta[j];
            }
        }
        for (long s = 0; s < N; s++)
            for (long j = 0; j < w; j++) dA[s * D + d0 + j] = gA[s][j];
        for (long j = 0; j < w; j++) dD[d0 + j] = gD[j];
    }
}

/* Inputs as the forward's, plus dout: (b, n, D) (contiguous), dlast: (b, D, N), entering: the forward's H_k
 * (b, c, N, D). Writes dx, ddelta, dz: (b, n, D); dB, dC: (b, n, N); dAt: (N, D) (∂Aᵀ); dD: (D,). Scratch, allocated
 * by the caller: leaving (b, c, N, D), lane_sum (b, c, D), dAt_part (b, c, N, D), dD_part (b, c, D), work
 * (threads, 2, size, N, BLOCK). Returns 0, or 1 (and writes nothing) when N is outside 1 … STATE_MAX or size < 1. */
int chunked_selective_scan_backward(const float *x, const float *delta, const float *At, const float *B, const float *C,
                                    const float *Dskip, const float *z, long z_batch, long z_token, const float *dout,
                                    const float *dlast, const float *entering, float *dx, float *ddelta, float *dAt,
                                    float *dB, float *dC, float *dD, float *dz, float *leaving, float *lane_sum,
                                    float *dAt_part, float *dD_part, float *work, long b, long n, long D, long N,
                                    long size, int threads) {
    if (N < 1 || N > STATE_MAX || size < 1) return 1;
    const Back p = {x, delta, At, B, C, Dskip, z, dout, dlast, entering, z_batch, z_token, dx, ddelta, dB, dC, dz, dAt,
                    dD, leaving, lane_sum, dAt_part, dD_part, work, b, n, D, N, size, (n + size - 1) / size};
    const long blocks = (D + BLOCK - 1) / BLOCK, lanes = p.lanes, parts = b * lanes;
#pragma omp parallel num_threads(threads)
    {
#pragma omp for collapse(3) schedule(static)
        for (long i = 0; i < b; i++)
            for (long k = 1; k < lanes; k++)
                for (long q = 0; q < blocks; q++) lane_adjoint(&p, i, k, q * BLOCK, min_long(BLOCK, D - q * BLOCK));
#pragma omp for collapse(2) schedule(static)
        for (long i = 0; i < b; i++)
            for (long q = 0; q < blocks; q++) pass_adjoints(&p, i, q * BLOCK, min_long(BLOCK, D - q * BLOCK));
        float *mine = work + (long)omp_get_thread_num() * 2 * size * N * BLOCK;
#pragma omp for collapse(2) schedule(dynamic)
        for (long i = 0; i < b; i++)
            for (long k = 0; k < lanes; k++) lane_gradients(&p, i, k, mine);
        /* d. ∂A and ∂D summed over the b·c lanes: b·c·(N + 1)·D adds */
#pragma omp for schedule(static)
        for (long e = 0; e < N * D; e++) {
            float total = 0.0f;
            for (long part = 0; part < parts; part++) total += dAt_part[part * N * D + e];
            dAt[e] = total;
        }
#pragma omp for schedule(static)
        for (long d = 0; d < D; d++) {
            float total = 0.0f;
            for (long part = 0; part < parts; part++) total += dD_part[part * D + d];
            dD[d] = total;
        }
    }
    return 0;
}
