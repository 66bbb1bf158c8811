// Numerics of the native state-vector engine: no Node-API, no policy, primitives in and out.
//
// The representation is the JavaScript reference engine's (src/sim/engine.ts): an n-qubit state
// is 2·2^n doubles, interleaved complex (re at 2i, im at 2i+1), and qubit q is bit q of the basis
// index. States live in caller-owned buffers (SharedArrayBuffers on the Node side); nothing here
// allocates a state or keeps a pointer after returning. Arguments are checked by the glue file;
// these functions assume them valid.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qmk {

// Largest dense (fused) gate: 2^5 × 2^5 complex entries.
constexpr int DENSE_QUBITS_MAX = 5;
// Largest state the engine addresses (the kernel caps clusters at 26 qubits).
constexpr int ENGINE_QUBITS_MAX = 30;

// Worker threads used by one call on a large state (1 = the calling thread only).
void set_threads(int threads);
int threads();
// The instruction set the dispatcher picked for this CPU: "avx512f", "avx2" or "default".
const char* isa();

// Dense k-qubit matrix (k ≤ DENSE_QUBITS_MAX) on the given distinct qubits. `m` is 2^k × 2^k
// row-major, interleaved complex; local bit j of a row or column index is qubit qubits[j].
void apply_dense(double* s, int n, const int* qubits, int k, const double* m);
// A diagonal over k ≤ DENSE_QUBITS_MAX distinct qubits: d holds the 2^k entries, interleaved
// complex; local bit j of an entry's index is qubits[j]. Entries of exactly 1 are skipped.
void apply_diagonal_k(double* s, int n, const int* qubits, int k, const double* d);
// diag(d0, d1) on qubit q; d = [d0re, d0im, d1re, d1im].
void apply_diagonal1(double* s, int n, int q, const double* d);
// X on `target` where every bit of `cmask` is 1, as an index permutation (X, CNOT, Toffoli).
void apply_x(double* s, int n, uint64_t cmask, int target);
// SWAP of qubits a and b as an index permutation.
void apply_swap(double* s, int n, int a, int b);
// Multiplies the amplitudes whose index has every bit of `mask` set by re + i·im (CZ: -1).
void apply_phase(double* s, int n, uint64_t mask, double re, double im);
// Unnormalised branch weights of qubit q: out[0] = Σ|a|² over bit q = 0, out[1] over bit q = 1.
void branch_weights(const double* s, int n, int q, double* out);
// Keeps the half with bit q = outcome, scaled by `scale`; zeroes the other half.
void collapse(double* s, int n, int q, int outcome, double scale);

// Readies a fresh state buffer for passes: asks for transparent huge pages (fewer TLB misses and
// page faults on a large state) and faults its pages in on all threads. Values are unchanged.
void prepare(double* s, size_t count);

// Sets `count` doubles to zero on all threads (reusing a state buffer costs one write pass; a
// fresh one costs page faults, which on a VM took ~300 ms for 256 MiB).
void zero(double* s, size_t count);

// One read-modify-write pass (x = x·a + b) over `count` doubles, for the bandwidth floor.
void bandwidth_pass(double* buf, size_t count, double a, double b);

}  // namespace qmk
