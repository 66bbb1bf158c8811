// Gate routines of the native engine. See kernels.h for the representation.
//
// Structure (the same as the JavaScript engine's, so the two stay comparable):
// - Every routine enumerates the index space with the gate's own bits removed (a counter over
//   2^(n-m) values with zero bits inserted at the m sorted gate positions) and handles each group
//   of 2^m amplitudes that differ only in those bits. Consecutive counter values differ only in
//   the bits below the lowest gate position, so the enumeration comes in contiguous runs: the
//   inner loops walk a run with unit stride, which the compiler vectorises.
// - Threads split the counter range, i.e. the index space that excludes the gate's qubits: every
//   thread gets whole groups, and a gate on the top qubits still spreads over all threads.
// - Hot loops are compiled three times (target_clones: AVX-512F, AVX2, baseline x86-64) and the
//   loader picks one for the CPU at start; no -march=native, so the binary runs anywhere.
#include "kernels.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <thread>
#include <utility>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define QMK_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define QMK_CLONES
#endif
#define QMK_INLINE inline __attribute__((always_inline))
// Lambdas handed to for_runs must be inlined into the cloned caller, or they run baseline code.
#define QMK_LAMBDA_INLINE __attribute__((always_inline))

namespace qmk {
namespace {

std::atomic<int> g_threads{1};

// Below this many counter values a call runs on the calling thread: starting a thread costs
// ~20–50 µs, about what 2^16 amplitude updates take.
constexpr uint64_t PARALLEL_MIN = uint64_t{1} << 16;

QMK_INLINE uint64_t insert_zero(uint64_t i, int q) {
  const uint64_t low = (uint64_t{1} << q) - 1;
  return ((i & ~low) << 1) | (i & low);
}

// Sorted gate positions; m ≤ DENSE_QUBITS_MAX + 1.
struct Positions {
  int p[8];
  int m;
};

QMK_INLINE uint64_t insert_all(uint64_t i, const Positions& pos) {
  for (int j = 0; j < pos.m; j++) i = insert_zero(i, pos.p[j]);
  return i;
}

// Calls f(base, len) for each run of the counter range [begin, end): base is the index of the run's
// first amplitude with every gate bit 0, and the run's amplitudes are base .. base+len-1.
template <class F>
QMK_INLINE void for_runs(uint64_t begin, uint64_t end, const Positions& pos, F&& f) {
  const uint64_t run = uint64_t{1} << pos.p[0];
  uint64_t i = begin;
  while (i < end) {
    const uint64_t len = std::min(run - (i & (run - 1)), end - i);
    f(insert_all(i, pos), len);
    i += len;
  }
}

// Like for_runs when the positions start with 0, 1, …, t−1 (t ≥ 1): consecutive counter values
// then map to indices `step` = 2^t apart until the next position is crossed. Calls
// f(base, count, step) for each such stretch.
template <class F>
QMK_INLINE void for_strided(uint64_t begin, uint64_t end, const Positions& pos, F&& f) {
  int t = 0;
  while (t < pos.m && pos.p[t] == t) t++;
  const int next = t < pos.m ? pos.p[t] : 63;
  const uint64_t run = uint64_t{1} << (next - t);
  uint64_t i = begin;
  while (i < end) {
    const uint64_t len = std::min(run - (i & (run - 1)), end - i);
    f(insert_all(i, pos), len, uint64_t{1} << t);
    i += len;
  }
}

// Sparse kernels (short runs far apart: a CZ or CNOT on low qubits touches 128 bytes in every 512)
// stall on memory latency; fetch the run PREFETCH_RUNS ahead by hand.
constexpr uint64_t PREFETCH_RUNS = 16;

QMK_INLINE void prefetch_ahead(const double* s, const Positions& pos, uint64_t set, uint64_t base,
                               uint64_t run) {
  // Counter value of this run, advanced PREFETCH_RUNS runs; then the same insertion.
  uint64_t i = base;
  for (int j = pos.m - 1; j >= 0; j--) {
    const uint64_t low = (uint64_t{1} << pos.p[j]) - 1;
    i = ((i >> 1) & ~low) | (i & low);
  }
  const uint64_t ahead = insert_all(i + PREFETCH_RUNS * run, pos) | set;
  __builtin_prefetch(s + 2 * ahead, 1);
  if (run >= 4) __builtin_prefetch(s + 2 * ahead + 8, 1);
}

// Runs body(begin, end) over [0, count), split across the configured threads when large.
template <class F>
void parallel(uint64_t count, F&& body) {
  const int t = g_threads.load(std::memory_order_relaxed);
  if (t <= 1 || count < PARALLEL_MIN) {
    body(uint64_t{0}, count);
    return;
  }
  const uint64_t chunk = (count + t - 1) / t;
  std::vector<std::thread> workers;
  workers.reserve(t - 1);
  for (int w = 1; w < t; w++) {
    const uint64_t b = w * chunk;
    const uint64_t e = std::min(count, b + chunk);
    if (b < e) workers.emplace_back([&body, b, e] { body(b, e); });
  }
  body(0, std::min(chunk, count));
  for (auto& w : workers) w.join();
}

Positions sorted_positions(const int* qs, int m) {
  Positions pos{};
  pos.m = m;
  for (int j = 0; j < m; j++) pos.p[j] = qs[j];
  std::sort(pos.p, pos.p + m);
  return pos;
}

Positions mask_positions(uint64_t mask) {
  Positions pos{};
  pos.m = 0;
  for (int q = 0; q < 64; q++) {
    if ((mask >> q) & 1) pos.p[pos.m++] = q;
  }
  return pos;
}

// The longest run (in amplitudes) matrix1_range stages through a stack buffer (16 KiB).
constexpr uint64_t MID_RUN_MAX = 1024;

// Four complex amplitudes (8 doubles, re/im interleaved) and a lane permutation of them.
typedef double v8d __attribute__((vector_size(64)));
typedef long long v8i __attribute__((vector_size(64)));

// ---- Dense k-qubit matrices ----------------------------------------------------------------

// The matrix as separate real and imaginary parts, column-major (mr[c·D + r]): the row loop of a
// column then runs over contiguous doubles and vectorises for D ≥ 4.
template <int K>
QMK_INLINE void dense_body(double* s, const Positions& pos, const uint64_t* offs, const double* mr,
                           const double* mi, uint64_t begin, uint64_t end) {
  constexpr int D = 1 << K;
  for_runs(begin, end, pos, [&](uint64_t base, uint64_t len) QMK_LAMBDA_INLINE {
    for (uint64_t j = 0; j < len; j++) {
      double vr[D], vi[D], orr[D], oi[D];
      for (int c = 0; c < D; c++) {
        const double* p = s + 2 * (base + j + offs[c]);
        vr[c] = p[0];
        vi[c] = p[1];
      }
      for (int r = 0; r < D; r++) {
        orr[r] = 0;
        oi[r] = 0;
      }
      for (int c = 0; c < D; c++) {
        const double xr = vr[c];
        const double xi = vi[c];
        const double* cr = mr + c * D;
        const double* ci = mi + c * D;
        for (int r = 0; r < D; r++) {
          orr[r] += cr[r] * xr - ci[r] * xi;
          oi[r] += cr[r] * xi + ci[r] * xr;
        }
      }
      for (int r = 0; r < D; r++) {
        double* p = s + 2 * (base + j + offs[r]);
        p[0] = orr[r];
        p[1] = oi[r];
      }
    }
  });
}

// The same product, vectorised along a run: when the gate's lowest qubit is ≥ 2 every run holds a
// multiple of 4 amplitudes, and 4 consecutive amplitudes (8 doubles, re/im interleaved) of each of
// the 2^k inputs are one vector v. With w = (−Im v, Re v) made once per input, out_r += m_rc · v_c
// is two fused multiply-adds with the scalars Re(m_rc) and Im(m_rc) broadcast. All inputs are read
// before any output is written, so rows can be done in chunks of 8 accumulators (no spills at
// k = 4, 5). `mre`/`mim` are row-major D × D.

template <int K>
QMK_INLINE void dense_vec_body(double* s, const Positions& pos, const uint64_t* offs,
                               const double* mre, const double* mim, uint64_t begin,
                               uint64_t end) {
  constexpr int D = 1 << K;
  constexpr int R = D < 16 ? D : 16;
  const v8i swap = {1, 0, 3, 2, 5, 4, 7, 6};
  const v8d sign = {-1, 1, -1, 1, -1, 1, -1, 1};
  for_runs(begin, end, pos, [&](uint64_t base, uint64_t len) QMK_LAMBDA_INLINE {
    for (uint64_t j = 0; j < len; j += 4) {
      v8d v[D], w[D];
      for (int c = 0; c < D; c++) {
        __builtin_memcpy(&v[c], s + 2 * (base + j + offs[c]), sizeof v[c]);
        w[c] = __builtin_shuffle(v[c], swap) * sign;
      }
      for (int r0 = 0; r0 < D; r0 += R) {
        v8d out[R];
#pragma GCC unroll 16
        for (int r = 0; r < R; r++) out[r] = v8d{};
        for (int c = 0; c < D; c++) {
#pragma GCC unroll 16
          for (int r = 0; r < R; r++) {
            out[r] += mre[(r0 + r) * D + c] * v[c];
            out[r] += mim[(r0 + r) * D + c] * w[c];
          }
        }
#pragma GCC unroll 16
        for (int r = 0; r < R; r++) {
          __builtin_memcpy(s + 2 * (base + j + offs[r0 + r]), &out[r], sizeof out[r]);
        }
      }
    }
  });
}

// Gates on qubit 0 and/or 1 (the bits inside a vector of 4 amplitudes). Each vector v[h] holds the
// 4 amplitudes of one combination h of the gate's other ("high") qubits, lane l = index bits 0–1.
// For each pattern x of the gate's low bits, a permutation moves lane (l & ~lowMask) | x to lane
// l; out[h_r] += C(h_r, h_c, x) ⊙ perm_x(v[h_c]) with the lane-wise coefficient vector C, which
// is zero-free: the lanes' own low bits pick the matrix row. 2^k complex multiply-adds per
// amplitude, as in the high path, but no scalar gathers.
template <int KH, int NX>
QMK_INLINE void dense_low_body(double* s, const Positions& pos, const uint64_t* offs,
                               const v8i* perms, const v8d* coef, uint64_t begin, uint64_t end) {
  constexpr int DH = 1 << KH;
  const v8i swap = {1, 0, 3, 2, 5, 4, 7, 6};
  // pos includes bits 0 and 1: consecutive groups lie `step` amplitudes apart.
  for_strided(begin, end, pos, [&](uint64_t base, uint64_t count, uint64_t step) QMK_LAMBDA_INLINE {
    for (uint64_t j = 0; j < count; j++) {
      double* g = s + 2 * (base + j * step);
      v8d out[DH];
      for (int r = 0; r < DH; r++) out[r] = v8d{};
      for (int c = 0; c < DH; c++) {
        v8d v;
        __builtin_memcpy(&v, g + 2 * offs[c], sizeof v);
        const v8d w = __builtin_shuffle(v, swap);
        for (int x = 0; x < NX; x++) {
          const v8d vp = __builtin_shuffle(v, perms[x]);
          const v8d wp = __builtin_shuffle(w, perms[x]);
          const v8d* cf = coef + 2 * ((c * NX + x) * DH);
          for (int r = 0; r < DH; r++) {
            out[r] += cf[2 * r] * vp;
            out[r] += cf[2 * r + 1] * wp;
          }
        }
      }
      for (int r = 0; r < DH; r++) __builtin_memcpy(g + 2 * offs[r], &out[r], sizeof out[r]);
    }
  });
}

// One qubit: the two halves of a run are contiguous arrays, walked with unit stride.
QMK_CLONES void matrix1_range(double* s, int q, const double* m, uint64_t begin, uint64_t end) {
  const double a00r = m[0], a00i = m[1], a01r = m[2], a01i = m[3];
  const double a10r = m[4], a10i = m[5], a11r = m[6], a11i = m[7];
  const Positions pos{{q}, 1};
  const uint64_t stride = 2 * (uint64_t{1} << q);
  if (q >= 2) {
    // Runs of ≥ 4 amplitudes: whole vectors, w = (−Im, Re) made once per input.
    const v8i swap = {1, 0, 3, 2, 5, 4, 7, 6};
    const v8d sign = {-1, 1, -1, 1, -1, 1, -1, 1};
    // Qubits 5..10: the two halves of a block are 0.5–16 KiB apart in one page, and reading them
    // alternately vector by vector ran at half the bandwidth; reading the lower half in one
    // sequential sweep into a buffer first recovered most of it (measured 12 → 8 ms at q = 5).
    alignas(64) double buf[2 * MID_RUN_MAX];
    const bool staged = q >= 5 && (uint64_t{1} << q) <= MID_RUN_MAX;
    for_runs(begin, end, pos, [&](uint64_t base, uint64_t len) QMK_LAMBDA_INLINE {
      double* p0 = s + 2 * base;
      double* p1 = p0 + stride;
      const double* r0 = p0;
      if (staged) {
        std::copy(p0, p0 + 2 * len, buf);
        r0 = buf;
      }
      for (uint64_t j = 0; j < 2 * len; j += 8) {
        v8d x0, x1;
        __builtin_memcpy(&x0, r0 + j, sizeof x0);
        __builtin_memcpy(&x1, p1 + j, sizeof x1);
        const v8d w0 = __builtin_shuffle(x0, swap) * sign;
        const v8d w1 = __builtin_shuffle(x1, swap) * sign;
        const v8d y0 = a00r * x0 + a00i * w0 + a01r * x1 + a01i * w1;
        const v8d y1 = a10r * x0 + a10i * w0 + a11r * x1 + a11i * w1;
        __builtin_memcpy(p0 + j, &y0, sizeof y0);
        __builtin_memcpy(p1 + j, &y1, sizeof y1);
      }
    });
    return;
  }
  for_runs(begin, end, pos, [&](uint64_t base, uint64_t len) QMK_LAMBDA_INLINE {
    double* __restrict p0 = s + 2 * base;
    double* __restrict p1 = p0 + stride;
    for (uint64_t j = 0; j < 2 * len; j += 2) {
      const double x0r = p0[j], x0i = p0[j + 1], x1r = p1[j], x1i = p1[j + 1];
      p0[j] = a00r * x0r - a00i * x0i + (a01r * x1r - a01i * x1i);
      p0[j + 1] = a00r * x0i + a00i * x0r + (a01r * x1i + a01i * x1r);
      p1[j] = a10r * x0r - a10i * x0i + (a11r * x1r - a11i * x1i);
      p1[j + 1] = a10r * x0i + a10i * x0r + (a11r * x1i + a11i * x1r);
    }
  });
}

#define QMK_DENSE(K)                                                                          \
  QMK_CLONES void dense##K##_range(double* s, const Positions& pos, const uint64_t* offs,    \
                                   const double* mr, const double* mi, uint64_t begin,       \
                                   uint64_t end) {                                           \
    dense_body<K>(s, pos, offs, mr, mi, begin, end);                                         \
  }
QMK_DENSE(2)
QMK_DENSE(3)
QMK_DENSE(4)
QMK_DENSE(5)
#undef QMK_DENSE

#define QMK_DENSE_VEC(K)                                                                      \
  QMK_CLONES void dense_vec##K##_range(double* s, const Positions& pos, const uint64_t* offs, \
                                       const double* mre, const double* mim, uint64_t begin, \
                                       uint64_t end) {                                       \
    dense_vec_body<K>(s, pos, offs, mre, mim, begin, end);                                   \
  }
QMK_DENSE_VEC(1)
QMK_DENSE_VEC(2)
QMK_DENSE_VEC(3)
QMK_DENSE_VEC(4)
QMK_DENSE_VEC(5)
#undef QMK_DENSE_VEC

#define QMK_DENSE_LOW(KH, NX)                                                                 \
  QMK_CLONES void dense_low##KH##_##NX##_range(double* s, const Positions& pos,               \
                                               const uint64_t* offs, const v8i* perms,        \
                                               const v8d* coef, uint64_t begin, uint64_t end) { \
    dense_low_body<KH, NX>(s, pos, offs, perms, coef, begin, end);                             \
  }
QMK_DENSE_LOW(0, 2)
QMK_DENSE_LOW(1, 2)
QMK_DENSE_LOW(2, 2)
QMK_DENSE_LOW(3, 2)
QMK_DENSE_LOW(4, 2)
QMK_DENSE_LOW(0, 4)
QMK_DENSE_LOW(1, 4)
QMK_DENSE_LOW(2, 4)
QMK_DENSE_LOW(3, 4)
#undef QMK_DENSE_LOW

// ---- Diagonals, controls, permutations -------------------------------------------------------

QMK_CLONES void diagonal1_range(double* s, int q, const double* d, uint64_t begin, uint64_t end) {
  // q ≥ 2 here (lower qubits go through lanes_range): both halves of a run are whole vectors.
  const v8i swap = {1, 0, 3, 2, 5, 4, 7, 6};
  const v8d sign = {-1, 1, -1, 1, -1, 1, -1, 1};
  const double d0r = d[0], d0i = d[1], d1r = d[2], d1i = d[3];
  const bool scale0 = !(d0r == 1 && d0i == 0);
  const Positions pos{{q}, 1};
  const uint64_t stride = 2 * (uint64_t{1} << q);
  for_runs(begin, end, pos, [&](uint64_t base, uint64_t len) QMK_LAMBDA_INLINE {
    double* p0 = s + 2 * base;
    double* p1 = p0 + stride;
    for (uint64_t j = 0; j < 2 * len; j += 8) {
      v8d x;
      if (scale0) {
        __builtin_memcpy(&x, p0 + j, sizeof x);
        x = d0r * x + d0i * (__builtin_shuffle(x, swap) * sign);
        __builtin_memcpy(p0 + j, &x, sizeof x);
      }
      __builtin_memcpy(&x, p1 + j, sizeof x);
      x = d1r * x + d1i * (__builtin_shuffle(x, swap) * sign);
      __builtin_memcpy(p1 + j, &x, sizeof x);
    }
  });
}

// Diagonal factors that depend on index bits 0–1 (lane factors f = [re per lane, ±im per lane]),
// on every vector whose index has all bits of `set` (bits ≥ 2) set. pos holds 0, 1 and the bits
// of `set`.
QMK_CLONES void lanes_range(double* s, const Positions& pos, uint64_t set, const v8d* f,
                            uint64_t begin, uint64_t end) {
  const v8i swap = {1, 0, 3, 2, 5, 4, 7, 6};
  const v8d fr = f[0];
  const v8d fi = f[1];
  for_strided(begin, end, pos, [&](uint64_t base, uint64_t count, uint64_t step) QMK_LAMBDA_INLINE {
    if (count < 16) prefetch_ahead(s, pos, set, base, count);
    for (uint64_t j = 0; j < count; j++) {
      double* g = s + 2 * ((base + j * step) | set);
      v8d x;
      __builtin_memcpy(&x, g, sizeof x);
      x = fr * x + fi * __builtin_shuffle(x, swap);
      __builtin_memcpy(g, &x, sizeof x);
    }
  });
}

// Swaps the amplitude runs starting at indices a and b (len complex each).
QMK_INLINE void swap_runs(double* s, uint64_t a, uint64_t b, uint64_t len) {
  double* __restrict pa = s + 2 * a;
  double* __restrict pb = s + 2 * b;
  for (uint64_t j = 0; j < 2 * len; j++) {
    const double t = pa[j];
    pa[j] = pb[j];
    pb[j] = t;
  }
}

QMK_CLONES void x_range(double* s, const Positions& pos, uint64_t cmask, uint64_t tbit,
                        uint64_t begin, uint64_t end) {
  const uint64_t run = uint64_t{1} << pos.p[0];
  for_runs(begin, end, pos, [&](uint64_t base, uint64_t len) QMK_LAMBDA_INLINE {
    if (run < 64) {
      prefetch_ahead(s, pos, cmask, base, run);
      prefetch_ahead(s, pos, cmask | tbit, base, run);
    }
    swap_runs(s, base | cmask, base | cmask | tbit, len);
  });
}

QMK_CLONES void swap_range(double* s, const Positions& pos, uint64_t abit, uint64_t bbit,
                           uint64_t begin, uint64_t end) {
  const uint64_t run = uint64_t{1} << pos.p[0];
  for_runs(begin, end, pos, [&](uint64_t base, uint64_t len) QMK_LAMBDA_INLINE {
    if (run < 64) {
      prefetch_ahead(s, pos, abit, base, run);
      prefetch_ahead(s, pos, bbit, base, run);
    }
    swap_runs(s, base | abit, base | bbit, len);
  });
}

QMK_CLONES void phase_range(double* s, const Positions& pos, uint64_t mask, double re, double im,
                            uint64_t begin, uint64_t end) {
  const uint64_t run = uint64_t{1} << pos.p[0];
  for_runs(begin, end, pos, [&](uint64_t base, uint64_t len) QMK_LAMBDA_INLINE {
    if (run < 64) prefetch_ahead(s, pos, mask, base, run);
    double* __restrict p = s + 2 * (base | mask);
    for (uint64_t j = 0; j < 2 * len; j += 2) {
      const double xr = p[j], xi = p[j + 1];
      p[j] = re * xr - im * xi;
      p[j + 1] = re * xi + im * xr;
    }
  });
}

// X on `target` under `cmask` when some of those bits are 0 or 1 (inside a vector). Over the
// vectors whose index has the high control bits `hset` set (pos: 0, 1, the high bits of cmask and
// a high target): a low target permutes lanes within the vector (`perm`), a high target swaps the
// lanes whose low control bits are set (`keep` is 0 in those lanes) with the vector at +tbit.
// (Vectors go by pointer: a 512-bit argument by value has a different ABI in each clone.)
QMK_CLONES void x_lanes_range(double* s, const Positions& pos, uint64_t hset, uint64_t tbit,
                              const v8i* lanes, uint64_t begin, uint64_t end) {
  const v8i perm = lanes[0];
  const v8i keep = lanes[1];
  for_strided(begin, end, pos, [&](uint64_t base, uint64_t count, uint64_t step) QMK_LAMBDA_INLINE {
    if (count < 16) prefetch_ahead(s, pos, hset, base, count);
    for (uint64_t j = 0; j < count; j++) {
      double* g = s + 2 * ((base + j * step) | hset);
      v8d x;
      __builtin_memcpy(&x, g, sizeof x);
      if (tbit < 4) {
        x = __builtin_shuffle(x, perm);
        __builtin_memcpy(g, &x, sizeof x);
        continue;
      }
      double* h = g + 2 * tbit;
      v8d y;
      __builtin_memcpy(&y, h, sizeof y);
      const v8d x2 = keep ? x : y;
      const v8d y2 = keep ? y : x;
      __builtin_memcpy(g, &x2, sizeof x2);
      __builtin_memcpy(h, &y2, sizeof y2);
    }
  });
}

// A fused diagonal with every qubit ≥ 2: each run of each of the 2^k bit patterns is a stretch of
// whole vectors multiplied by one broadcast entry.
QMK_CLONES void diagk_range(double* s, const Positions& pos, const uint64_t* offs, int d,
                            const double* dr, const double* di, uint64_t begin, uint64_t end) {
  const v8i swap = {1, 0, 3, 2, 5, 4, 7, 6};
  const v8d sign = {-1, 1, -1, 1, -1, 1, -1, 1};
  for_runs(begin, end, pos, [&](uint64_t base, uint64_t len) QMK_LAMBDA_INLINE {
    for (int c = 0; c < d; c++) {
      if (dr[c] == 1 && di[c] == 0) continue;
      double* p = s + 2 * (base + offs[c]);
      const double re = dr[c];
      const double im = di[c];
      for (uint64_t j = 0; j < 2 * len; j += 8) {
        v8d x;
        __builtin_memcpy(&x, p + j, sizeof x);
        x = re * x + im * (__builtin_shuffle(x, swap) * sign);
        __builtin_memcpy(p + j, &x, sizeof x);
      }
    }
  });
}

// A fused diagonal on qubit 0 and/or 1: per combination h of its high qubits, one lane-factor
// vector pair (f[2h], f[2h+1]) multiplies the vector at base + offs[h].
QMK_CLONES void diagk_lanes_range(double* s, const Positions& pos, const uint64_t* offs, int dh,
                                  const v8d* f, uint64_t begin, uint64_t end) {
  const v8i swap = {1, 0, 3, 2, 5, 4, 7, 6};
  for_strided(begin, end, pos, [&](uint64_t base, uint64_t count, uint64_t step) QMK_LAMBDA_INLINE {
    for (uint64_t j = 0; j < count; j++) {
      double* g = s + 2 * (base + j * step);
      for (int h = 0; h < dh; h++) {
        v8d x;
        __builtin_memcpy(&x, g + 2 * offs[h], sizeof x);
        x = f[2 * h] * x + f[2 * h + 1] * __builtin_shuffle(x, swap);
        __builtin_memcpy(g + 2 * offs[h], &x, sizeof x);
      }
    }
  });
}

// ---- Measurement ---------------------------------------------------------------------------

QMK_CLONES void weights_range(const double* s, int q, uint64_t begin, uint64_t end, double* out) {
  const Positions pos{{q}, 1};
  const uint64_t stride = 2 * (uint64_t{1} << q);
  double w0 = 0, w1 = 0;
  for_runs(begin, end, pos, [&](uint64_t base, uint64_t len) QMK_LAMBDA_INLINE {
    const double* p0 = s + 2 * base;
    const double* p1 = p0 + stride;
    for (uint64_t j = 0; j < 2 * len; j++) {
      w0 += p0[j] * p0[j];
      w1 += p1[j] * p1[j];
    }
  });
  out[0] = w0;
  out[1] = w1;
}

QMK_CLONES void collapse_range(double* s, int q, int outcome, double scale, uint64_t begin,
                               uint64_t end) {
  const Positions pos{{q}, 1};
  const uint64_t stride = 2 * (uint64_t{1} << q);
  for_runs(begin, end, pos, [&](uint64_t base, uint64_t len) QMK_LAMBDA_INLINE {
    double* __restrict keep = s + 2 * base + (outcome ? stride : 0);
    double* __restrict drop = s + 2 * base + (outcome ? 0 : stride);
    for (uint64_t j = 0; j < 2 * len; j++) {
      keep[j] *= scale;
      drop[j] = 0;
    }
  });
}

QMK_CLONES void rmw_range(double* buf, double a, double b, uint64_t begin, uint64_t end) {
  for (uint64_t i = begin; i < end; i++) buf[i] = buf[i] * a + b;
}

}  // namespace

void set_threads(int t) { g_threads.store(std::clamp(t, 1, 256), std::memory_order_relaxed); }
int threads() { return g_threads.load(std::memory_order_relaxed); }

const char* isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "avx512f";
  if (__builtin_cpu_supports("avx2")) return "avx2";
#endif
  return "default";
}

namespace {

void group_offsets(const int* qubits, int k, uint64_t* offs) {
  for (int c = 0; c < (1 << k); c++) {
    uint64_t o = 0;
    for (int j = 0; j < k; j++) {
      if ((c >> j) & 1) o |= uint64_t{1} << qubits[j];
    }
    offs[c] = o;
  }
}

void apply_dense_vec(double* s, int n, const int* qubits, int k, const double* m,
                     const Positions& pos) {
  const int d = 1 << k;
  uint64_t offs[1 << DENSE_QUBITS_MAX];
  group_offsets(qubits, k, offs);
  std::vector<double> mre(d * d), mim(d * d);
  for (int e = 0; e < d * d; e++) {
    mre[e] = m[2 * e];
    mim[e] = m[2 * e + 1];
  }
  const double* r = mre.data();
  const double* i = mim.data();
  parallel(uint64_t{1} << (n - k), [&](uint64_t lo, uint64_t hi) {
    switch (k) {
      case 1: dense_vec1_range(s, pos, offs, r, i, lo, hi); break;
      case 2: dense_vec2_range(s, pos, offs, r, i, lo, hi); break;
      case 3: dense_vec3_range(s, pos, offs, r, i, lo, hi); break;
      case 4: dense_vec4_range(s, pos, offs, r, i, lo, hi); break;
      default: dense_vec5_range(s, pos, offs, r, i, lo, hi); break;
    }
  });
}

// A 64-byte-aligned array of vectors: aligned vector loads need it, and std::vector does not
// promise over-aligned storage under every toolchain's flags (node-gyp's did not).
template <class T>
class Aligned {
 public:
  explicit Aligned(size_t count)
      : data_(static_cast<T*>(std::aligned_alloc(64, ((count * sizeof(T) + 63) / 64) * 64))) {
    for (size_t i = 0; i < count; i++) new (&data_[i]) T();
  }
  ~Aligned() { std::free(data_); }
  Aligned(const Aligned&) = delete;
  Aligned& operator=(const Aligned&) = delete;
  T& operator[](size_t i) { return data_[i]; }
  const T* data() const { return data_; }

 private:
  T* data_;
};

// A gate's qubits split for the lane kernels: low ones (qubit 0 or 1) index lanes inside a vector
// of 4 amplitudes, high ones pick which vectors form a group.
struct LaneSplit {
  int lowLocal[2], lowQubit[2], nl = 0;
  int highLocal[DENSE_QUBITS_MAX], highQubit[DENSE_QUBITS_MAX], nh = 0;
  uint64_t lowMask = 0;
  // Offsets of the 2^nh vectors of a group, and the enumeration positions (0, 1, high qubits).
  uint64_t offs[1 << DENSE_QUBITS_MAX];
  Positions pos;

  LaneSplit(const int* qubits, int k) {
    for (int j = 0; j < k; j++) {
      if (qubits[j] < 2) {
        lowLocal[nl] = j;
        lowQubit[nl++] = qubits[j];
        lowMask |= uint64_t{1} << qubits[j];
      } else {
        highLocal[nh] = j;
        highQubit[nh++] = qubits[j];
      }
    }
    group_offsets(highQubit, nh, offs);
    int all[DENSE_QUBITS_MAX + 2] = {0, 1};
    for (int i = 0; i < nh; i++) all[2 + i] = highQubit[i];
    pos = sorted_positions(all, 2 + nh);
  }

  // The x-th pattern of the low bits, as lane bits.
  uint64_t pattern(int x) const {
    uint64_t p = 0;
    for (int i = 0; i < nl; i++) {
      if ((x >> i) & 1) p |= uint64_t{1} << lowQubit[i];
    }
    return p;
  }

  // Local matrix index of (high combination h, lane l).
  int local(int h, uint64_t l) const {
    int idx = 0;
    for (int i = 0; i < nh; i++) {
      if ((h >> i) & 1) idx |= 1 << highLocal[i];
    }
    for (int i = 0; i < nl; i++) {
      if ((l >> lowQubit[i]) & 1) idx |= 1 << lowLocal[i];
    }
    return idx;
  }
};

void apply_dense_low(double* s, int n, const int* qubits, int k, const double* m) {
  const int d = 1 << k;
  const LaneSplit split(qubits, k);
  const int nh = split.nh;
  const int dh = 1 << nh;
  const int nx = 1 << split.nl;
  auto pattern = [&](int x) { return split.pattern(x); };
  auto local = [&](int h, uint64_t l) { return split.local(h, l); };
  const uint64_t lowMask = split.lowMask;
  Aligned<v8i> perms(nx);
  for (int x = 0; x < nx; x++) {
    for (int l = 0; l < 4; l++) {
      const uint64_t src = (l & ~lowMask) | pattern(x);
      perms[x][2 * l] = static_cast<long long>(2 * src);
      perms[x][2 * l + 1] = static_cast<long long>(2 * src + 1);
    }
  }
  Aligned<v8d> coef(2 * dh * nx * dh);
  for (int c = 0; c < dh; c++) {
    for (int x = 0; x < nx; x++) {
      for (int r = 0; r < dh; r++) {
        v8d re{}, im{};
        for (int l = 0; l < 4; l++) {
          const int row = local(r, l);
          const int col = local(c, pattern(x));
          const double mr = m[2 * (row * d + col)];
          const double mi = m[2 * (row * d + col) + 1];
          re[2 * l] = mr;
          re[2 * l + 1] = mr;
          im[2 * l] = -mi;
          im[2 * l + 1] = mi;
        }
        coef[2 * ((c * nx + x) * dh + r)] = re;
        coef[2 * ((c * nx + x) * dh + r) + 1] = im;
      }
    }
  }
  const Positions& pos = split.pos;
  const uint64_t* offs = split.offs;
  const v8i* pp = perms.data();
  const v8d* cp = coef.data();
  parallel(uint64_t{1} << (n - 2 - nh), [&](uint64_t b, uint64_t e) {
    switch (nh * 8 + nx) {
      case 0 * 8 + 2: dense_low0_2_range(s, pos, offs, pp, cp, b, e); break;
      case 1 * 8 + 2: dense_low1_2_range(s, pos, offs, pp, cp, b, e); break;
      case 2 * 8 + 2: dense_low2_2_range(s, pos, offs, pp, cp, b, e); break;
      case 3 * 8 + 2: dense_low3_2_range(s, pos, offs, pp, cp, b, e); break;
      case 4 * 8 + 2: dense_low4_2_range(s, pos, offs, pp, cp, b, e); break;
      case 0 * 8 + 4: dense_low0_4_range(s, pos, offs, pp, cp, b, e); break;
      case 1 * 8 + 4: dense_low1_4_range(s, pos, offs, pp, cp, b, e); break;
      case 2 * 8 + 4: dense_low2_4_range(s, pos, offs, pp, cp, b, e); break;
      default: dense_low3_4_range(s, pos, offs, pp, cp, b, e); break;
    }
  });
}

}  // namespace

void apply_dense(double* s, int n, const int* qubits, int k, const double* m) {
  const Positions pos = sorted_positions(qubits, k);
  if (pos.p[0] >= 2 && k >= 2) {
    apply_dense_vec(s, n, qubits, k, m, pos);
    return;
  }
  if (pos.p[0] < 2 && n >= 2) {
    apply_dense_low(s, n, qubits, k, m);
    return;
  }
  if (k == 1) {
    parallel(uint64_t{1} << (n - 1),
             [&](uint64_t b, uint64_t e) { matrix1_range(s, qubits[0], m, b, e); });
    return;
  }
  const int d = 1 << k;
  // Offsets of the 2^k amplitudes of a group: local bit j of c is qubit qubits[j].
  uint64_t offs[1 << DENSE_QUBITS_MAX];
  group_offsets(qubits, k, offs);
  std::vector<double> mr(d * d), mi(d * d);
  for (int r = 0; r < d; r++) {
    for (int c = 0; c < d; c++) {
      mr[c * d + r] = m[2 * (r * d + c)];
      mi[c * d + r] = m[2 * (r * d + c) + 1];
    }
  }
  const uint64_t count = uint64_t{1} << (n - k);
  const double* r = mr.data();
  const double* i = mi.data();
  parallel(count, [&](uint64_t b, uint64_t e) {
    switch (k) {
      case 2: dense2_range(s, pos, offs, r, i, b, e); break;
      case 3: dense3_range(s, pos, offs, r, i, b, e); break;
      case 4: dense4_range(s, pos, offs, r, i, b, e); break;
      default: dense5_range(s, pos, offs, r, i, b, e); break;
    }
  });
}

namespace {

// Lane factors for a diagonal over index bits 0–1: lane l gets factor(l) = (re, im).
template <class Factor>
void lane_factors(v8d* f, Factor&& factor) {
  for (int l = 0; l < 4; l++) {
    const auto [re, im] = factor(l);
    f[0][2 * l] = re;
    f[0][2 * l + 1] = re;
    f[1][2 * l] = -im;
    f[1][2 * l + 1] = im;
  }
}

// Runs lanes_range over the vectors whose index has every bit of `set` (bits ≥ 2) set.
void apply_lanes(double* s, int n, uint64_t set, const v8d* f) {
  const Positions pos = mask_positions(set | 3);
  parallel(uint64_t{1} << (n - pos.m),
           [&](uint64_t b, uint64_t e) { lanes_range(s, pos, set, f, b, e); });
}

}  // namespace

void apply_diagonal_k(double* s, int n, const int* qubits, int k, const double* d) {
  const Positions pos = sorted_positions(qubits, k);
  if (pos.p[0] >= 2) {
    uint64_t offs[1 << DENSE_QUBITS_MAX];
    group_offsets(qubits, k, offs);
    double dr[1 << DENSE_QUBITS_MAX], di[1 << DENSE_QUBITS_MAX];
    for (int c = 0; c < (1 << k); c++) {
      dr[c] = d[2 * c];
      di[c] = d[2 * c + 1];
    }
    parallel(uint64_t{1} << (n - k), [&](uint64_t b, uint64_t e) {
      diagk_range(s, pos, offs, 1 << k, dr, di, b, e);
    });
    return;
  }
  if (n < 2) {  // one qubit, two amplitudes
    apply_diagonal1(s, n, qubits[0], d);
    return;
  }
  // Low qubits (0, 1) pick lanes; the others pick vectors.
  const LaneSplit split(qubits, k);
  const int nh = split.nh;
  const int dh = 1 << nh;
  Aligned<v8d> f(2 * dh);
  for (int h = 0; h < dh; h++) {
    for (int l = 0; l < 4; l++) {
      const int local = split.local(h, static_cast<uint64_t>(l));
      f[2 * h][2 * l] = d[2 * local];
      f[2 * h][2 * l + 1] = d[2 * local];
      f[2 * h + 1][2 * l] = -d[2 * local + 1];
      f[2 * h + 1][2 * l + 1] = d[2 * local + 1];
    }
  }
  const Positions& lanes = split.pos;
  const uint64_t* offs = split.offs;
  const v8d* fp = f.data();
  parallel(uint64_t{1} << (n - 2 - nh), [&](uint64_t b, uint64_t e) {
    diagk_lanes_range(s, lanes, offs, dh, fp, b, e);
  });
}

void apply_diagonal1(double* s, int n, int q, const double* d) {
  if (q < 2 && n >= 2) {
    Aligned<v8d> f(2);
    v8d* fp = &f[0];
    lane_factors(fp, [&](int l) {
      return ((l >> q) & 1) ? std::pair<double, double>{d[2], d[3]}
                            : std::pair<double, double>{d[0], d[1]};
    });
    apply_lanes(s, n, 0, fp);
    return;
  }
  if (q < 2) {  // a 1-qubit state: two amplitudes
    const double x0r = s[0], x0i = s[1], x1r = s[2], x1i = s[3];
    s[0] = d[0] * x0r - d[1] * x0i;
    s[1] = d[0] * x0i + d[1] * x0r;
    s[2] = d[2] * x1r - d[3] * x1i;
    s[3] = d[2] * x1i + d[3] * x1r;
    return;
  }
  parallel(uint64_t{1} << (n - 1),
           [&](uint64_t b, uint64_t e) { diagonal1_range(s, q, d, b, e); });
}

void apply_x(double* s, int n, uint64_t cmask, int target) {
  const uint64_t tbit = uint64_t{1} << target;
  if (((cmask | tbit) & 3) != 0 && n >= 2) {
    const uint64_t lowc = cmask & 3;
    const uint64_t hset = cmask & ~uint64_t{3};
    Aligned<v8i> lanes(2);
    v8i& perm = lanes[0];
    v8i& keep = lanes[1];
    for (uint64_t l = 0; l < 4; l++) {
      const bool on = (l & lowc) == lowc;  // this lane's low control bits are all set
      const uint64_t src = (on && tbit < 4) ? (l ^ tbit) : l;
      perm[2 * l] = static_cast<long long>(2 * src);
      perm[2 * l + 1] = static_cast<long long>(2 * src + 1);
      keep[2 * l] = on ? 0 : -1;
      keep[2 * l + 1] = on ? 0 : -1;
    }
    const Positions pos = mask_positions(hset | (tbit < 4 ? 0 : tbit) | 3);
    parallel(uint64_t{1} << (n - pos.m), [&](uint64_t b, uint64_t e) {
      x_lanes_range(s, pos, hset, tbit, lanes.data(), b, e);
    });
    return;
  }
  const Positions pos = mask_positions(cmask | tbit);
  parallel(uint64_t{1} << (n - pos.m),
           [&](uint64_t b, uint64_t e) { x_range(s, pos, cmask, tbit, b, e); });
}

void apply_swap(double* s, int n, int a, int b) {
  const uint64_t abit = uint64_t{1} << a;
  const uint64_t bbit = uint64_t{1} << b;
  const Positions pos = mask_positions(abit | bbit);
  parallel(uint64_t{1} << (n - 2),
           [&](uint64_t lo, uint64_t hi) { swap_range(s, pos, abit, bbit, lo, hi); });
}

void apply_phase(double* s, int n, uint64_t mask, double re, double im) {
  if ((mask & 3) != 0 && n >= 2) {
    // Low bits of the mask pick lanes inside a vector; the rest pick vectors.
    Aligned<v8d> f(2);
    v8d* fp = &f[0];
    const uint64_t low = mask & 3;
    lane_factors(fp, [&](int l) {
      return (static_cast<uint64_t>(l) & low) == low ? std::pair<double, double>{re, im}
                                                     : std::pair<double, double>{1.0, 0.0};
    });
    apply_lanes(s, n, mask & ~uint64_t{3}, fp);
    return;
  }
  const Positions pos = mask_positions(mask);
  parallel(uint64_t{1} << (n - pos.m),
           [&](uint64_t b, uint64_t e) { phase_range(s, pos, mask, re, im, b, e); });
}

void branch_weights(const double* s, int n, int q, double* out) {
  const int t = std::max(1, threads());
  std::vector<double> parts(2 * t, 0.0);
  // Each chunk writes its own slot; the sum is in chunk order, so the result does not depend on
  // which thread ran which chunk (it does depend on the thread count, by rounding only).
  const uint64_t count = uint64_t{1} << (n - 1);
  const uint64_t chunk = (count + t - 1) / t;
  parallel(count, [&](uint64_t b, uint64_t e) {
    const int slot = static_cast<int>(b / chunk);
    weights_range(s, q, b, e, &parts[2 * slot]);
  });
  out[0] = 0;
  out[1] = 0;
  for (int w = 0; w < t; w++) {
    out[0] += parts[2 * w];
    out[1] += parts[2 * w + 1];
  }
}

void collapse(double* s, int n, int q, int outcome, double scale) {
  parallel(uint64_t{1} << (n - 1),
           [&](uint64_t b, uint64_t e) { collapse_range(s, q, outcome, scale, b, e); });
}

void prepare(double* s, size_t count) {
  constexpr uintptr_t HUGE = uintptr_t{2} << 20;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(s) + HUGE - 1) & ~(HUGE - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(s + count)) & ~(HUGE - 1);
#ifdef MADV_HUGEPAGE
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
  // Touch one double per 4 KiB page (read and write back the same value), split over threads.
  constexpr uint64_t PAGE_DOUBLES = 512;
  parallel((count + PAGE_DOUBLES - 1) / PAGE_DOUBLES, [&](uint64_t lo, uint64_t hi) {
    for (uint64_t p = lo; p < hi; p++) {
      volatile double* x = s + p * PAGE_DOUBLES;
      *x = *x;
    }
  });
}

void zero(double* s, size_t count) {
  parallel(count, [&](uint64_t lo, uint64_t hi) {
    std::fill(s + lo, s + hi, 0.0);
  });
}

void bandwidth_pass(double* buf, size_t count, double a, double b) {
  parallel(count, [&](uint64_t lo, uint64_t hi) { rmw_range(buf, a, b, lo, hi); });
}

}  // namespace qmk
