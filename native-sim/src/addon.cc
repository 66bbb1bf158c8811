// The one Node-API glue file: argument checks and conversions, nothing else. Every function
// returns 0 on success or a negative code (below) for arguments that break the engine's contract;
// the JavaScript side turns a non-zero code into an assertion, since the kernel validated every
// tenant input before it reached the engine.
#include <napi.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#if defined(__linux__)
#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#endif

#include "kernels.h"

namespace {

constexpr int OK = 0;
constexpr int BAD_STATE = -1;   // not a Float64Array of 2·2^n doubles, or n out of range
constexpr int BAD_QUBIT = -2;   // a qubit out of range or repeated
constexpr int BAD_MATRIX = -3;  // wrong matrix length or gate width
constexpr int BAD_ARG = -4;     // a wrong argument type

struct State {
  double* data = nullptr;
  int n = -1;
};

bool read_state(const Napi::CallbackInfo& info, State& st) {
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsNumber()) return false;
  auto ta = info[0].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float64_array) return false;
  const int n = info[1].As<Napi::Number>().Int32Value();
  if (n < 0 || n > qmk::ENGINE_QUBITS_MAX) return false;
  auto arr = ta.As<Napi::Float64Array>();
  if (arr.ElementLength() != (size_t{2} << n)) return false;
  st.data = arr.Data();
  st.n = n;
  return true;
}

int int_arg(const Napi::CallbackInfo& info, size_t i, int fallback = -1) {
  if (info.Length() <= i || !info[i].IsNumber()) return fallback;
  return info[i].As<Napi::Number>().Int32Value();
}

double num_arg(const Napi::CallbackInfo& info, size_t i) {
  return info[i].As<Napi::Number>().DoubleValue();
}

bool qubit_ok(int q, int n) { return q >= 0 && q < n; }

Napi::Value code(const Napi::CallbackInfo& info, int c) { return Napi::Number::New(info.Env(), c); }

// A non-negative mask of qubits below n, passed as a JS number (exact up to 2^53).
bool read_mask(const Napi::CallbackInfo& info, size_t i, int n, uint64_t& mask) {
  if (info.Length() <= i || !info[i].IsNumber()) return false;
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0) || v >= static_cast<double>(uint64_t{1} << n) || v != static_cast<uint64_t>(v))
    return false;
  mask = static_cast<uint64_t>(v);
  return true;
}

bool read_doubles(const Napi::CallbackInfo& info, size_t i, size_t len, const double*& out) {
  if (info.Length() <= i || !info[i].IsTypedArray()) return false;
  auto ta = info[i].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float64_array) return false;
  auto arr = ta.As<Napi::Float64Array>();
  if (arr.ElementLength() != len) return false;
  out = arr.Data();
  return true;
}

// The qubit list of a fused gate (argument 2: Int32Array of 1..DENSE_QUBITS_MAX distinct qubits
// below n). Returns OK and sets qs/k, or the error code.
int read_gate_qubits(const Napi::CallbackInfo& info, int n, const int*& qs, int& k) {
  if (info.Length() < 4 || !info[2].IsTypedArray()) return BAD_ARG;
  auto qa = info[2].As<Napi::TypedArray>();
  if (qa.TypedArrayType() != napi_int32_array) return BAD_ARG;
  auto arr = qa.As<Napi::Int32Array>();
  k = static_cast<int>(arr.ElementLength());
  if (k < 1 || k > qmk::DENSE_QUBITS_MAX || k > n) return BAD_MATRIX;
  uint64_t seen = 0;
  for (int j = 0; j < k; j++) {
    const int q = arr[j];
    if (!qubit_ok(q, n) || ((seen >> q) & 1)) return BAD_QUBIT;
    seen |= uint64_t{1} << q;
  }
  qs = arr.Data();
  return OK;
}

// applyDense(state, n, qubits: Int32Array, matrix: Float64Array of 2·4^k)
Napi::Value ApplyDense(const Napi::CallbackInfo& info) {
  State st;
  if (!read_state(info, st)) return code(info, BAD_STATE);
  const int* qs = nullptr;
  int k = 0;
  if (const int c = read_gate_qubits(info, st.n, qs, k); c != OK) return code(info, c);
  const double* m = nullptr;
  if (!read_doubles(info, 3, size_t{2} << (2 * k), m)) return code(info, BAD_MATRIX);
  qmk::apply_dense(st.data, st.n, qs, k, m);
  return code(info, OK);
}

// applyMatrix1(state, n, q, matrix: Float64Array(8))
Napi::Value ApplyMatrix1(const Napi::CallbackInfo& info) {
  State st;
  if (!read_state(info, st)) return code(info, BAD_STATE);
  const int q = int_arg(info, 2);
  if (!qubit_ok(q, st.n)) return code(info, BAD_QUBIT);
  const double* m = nullptr;
  if (!read_doubles(info, 3, 8, m)) return code(info, BAD_MATRIX);
  qmk::apply_dense(st.data, st.n, &q, 1, m);
  return code(info, OK);
}

// applyDiagonalK(state, n, qubits: Int32Array, d: Float64Array of 2·2^k)
Napi::Value ApplyDiagonalK(const Napi::CallbackInfo& info) {
  State st;
  if (!read_state(info, st)) return code(info, BAD_STATE);
  const int* qs = nullptr;
  int k = 0;
  if (const int c = read_gate_qubits(info, st.n, qs, k); c != OK) return code(info, c);
  const double* d = nullptr;
  if (!read_doubles(info, 3, size_t{2} << k, d)) return code(info, BAD_MATRIX);
  qmk::apply_diagonal_k(st.data, st.n, qs, k, d);
  return code(info, OK);
}

// applyDiagonal1(state, n, q, d0re, d0im, d1re, d1im)
Napi::Value ApplyDiagonal1(const Napi::CallbackInfo& info) {
  State st;
  if (!read_state(info, st)) return code(info, BAD_STATE);
  const int q = int_arg(info, 2);
  if (!qubit_ok(q, st.n)) return code(info, BAD_QUBIT);
  if (info.Length() < 7) return code(info, BAD_ARG);
  const double d[4] = {num_arg(info, 3), num_arg(info, 4), num_arg(info, 5), num_arg(info, 6)};
  qmk::apply_diagonal1(st.data, st.n, q, d);
  return code(info, OK);
}

// applyX(state, n, cmask, target): X, CNOT, Toffoli
Napi::Value ApplyX(const Napi::CallbackInfo& info) {
  State st;
  if (!read_state(info, st)) return code(info, BAD_STATE);
  uint64_t cmask = 0;
  const int t = int_arg(info, 3);
  if (!read_mask(info, 2, st.n, cmask) || !qubit_ok(t, st.n) || ((cmask >> t) & 1))
    return code(info, BAD_QUBIT);
  qmk::apply_x(st.data, st.n, cmask, t);
  return code(info, OK);
}

// applySwap(state, n, a, b)
Napi::Value ApplySwap(const Napi::CallbackInfo& info) {
  State st;
  if (!read_state(info, st)) return code(info, BAD_STATE);
  const int a = int_arg(info, 2);
  const int b = int_arg(info, 3);
  if (!qubit_ok(a, st.n) || !qubit_ok(b, st.n) || a == b) return code(info, BAD_QUBIT);
  qmk::apply_swap(st.data, st.n, a, b);
  return code(info, OK);
}

// applyPhase(state, n, mask, re, im): CZ is mask of both qubits with -1
Napi::Value ApplyPhase(const Napi::CallbackInfo& info) {
  State st;
  if (!read_state(info, st)) return code(info, BAD_STATE);
  uint64_t mask = 0;
  if (!read_mask(info, 2, st.n, mask) || mask == 0) return code(info, BAD_QUBIT);
  if (info.Length() < 5) return code(info, BAD_ARG);
  qmk::apply_phase(st.data, st.n, mask, num_arg(info, 3), num_arg(info, 4));
  return code(info, OK);
}

// branchWeights(state, n, q, out: Float64Array(2))
Napi::Value BranchWeights(const Napi::CallbackInfo& info) {
  State st;
  if (!read_state(info, st)) return code(info, BAD_STATE);
  const int q = int_arg(info, 2);
  if (!qubit_ok(q, st.n)) return code(info, BAD_QUBIT);
  if (info.Length() < 4 || !info[3].IsTypedArray()) return code(info, BAD_ARG);
  auto ta = info[3].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float64_array || ta.ElementLength() != 2)
    return code(info, BAD_ARG);
  qmk::branch_weights(st.data, st.n, q, ta.As<Napi::Float64Array>().Data());
  return code(info, OK);
}

// collapse(state, n, q, outcome, scale)
Napi::Value Collapse(const Napi::CallbackInfo& info) {
  State st;
  if (!read_state(info, st)) return code(info, BAD_STATE);
  const int q = int_arg(info, 2);
  const int outcome = int_arg(info, 3);
  if (!qubit_ok(q, st.n)) return code(info, BAD_QUBIT);
  if ((outcome != 0 && outcome != 1) || info.Length() < 5) return code(info, BAD_ARG);
  qmk::collapse(st.data, st.n, q, outcome, num_arg(info, 4));
  return code(info, OK);
}

// prepare(state, n): huge pages and pages faulted in, values unchanged
Napi::Value Prepare(const Napi::CallbackInfo& info) {
  State st;
  if (!read_state(info, st)) return code(info, BAD_STATE);
  qmk::prepare(st.data, size_t{2} << st.n);
  return code(info, OK);
}

// zero(state, n): all amplitudes to 0 (a cached buffer's reuse)
Napi::Value Zero(const Napi::CallbackInfo& info) {
  State st;
  if (!read_state(info, st)) return code(info, BAD_STATE);
  qmk::zero(st.data, size_t{2} << st.n);
  return code(info, OK);
}

// misalignment(array: Float64Array): how many doubles past a 64-byte boundary its data starts
// (0..7). V8 places large buffers 16 bytes into a page; vectors that straddle cache lines ran the
// sparse kernels 5× slower, so callers over-allocate and start the state at a boundary.
Napi::Value Misalignment(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray()) return code(info, BAD_ARG);
  auto ta = info[0].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float64_array) return code(info, BAD_ARG);
  const auto addr = reinterpret_cast<uintptr_t>(ta.As<Napi::Float64Array>().Data());
  return code(info, static_cast<int>((addr % 64) / 8));
}

// bandwidthPass(buffer: Float64Array, a, b)
Napi::Value BandwidthPass(const Napi::CallbackInfo& info) {
  if (info.Length() < 3 || !info[0].IsTypedArray()) return code(info, BAD_ARG);
  auto ta = info[0].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float64_array) return code(info, BAD_ARG);
  auto arr = ta.As<Napi::Float64Array>();
  qmk::bandwidth_pass(arr.Data(), arr.ElementLength(), num_arg(info, 1), num_arg(info, 2));
  return code(info, OK);
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  const int t = int_arg(info, 0);
  if (t < 1) return code(info, BAD_ARG);
  qmk::set_threads(t);
  return code(info, OK);
}

Napi::Value Threads(const Napi::CallbackInfo& info) { return code(info, qmk::threads()); }

Napi::Value Isa(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), qmk::isa());
}

// Gives the C heap's free memory back to the system: glibc keeps what threads freed in their
// arenas (an ended worker thread's included) until asked. Returns whether this C library can
// (glibc's malloc_trim); elsewhere nothing to do.
Napi::Value TrimHeap(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  malloc_trim(0);
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// One sd_notify datagram (systemd's notify protocol) from this process itself, so the service
// manager attributes it to the main PID (the unit can say NotifyAccess=main): `socketPath` is
// $NOTIFY_SOCKET (a filesystem path, or "@name" for the abstract namespace). Node has no unix
// datagram sockets, hence this. Returns 0, or the errno of the failed step; -1 where there are
// no unix sockets.
Napi::Value NotifySocket(const Napi::CallbackInfo& info) {
#if defined(__linux__)
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const std::string message = info[1].As<Napi::String>().Utf8Value();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Napi::Number::New(info.Env(), EINVAL);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Napi::Number::New(info.Env(), errno);
  const ssize_t sent = sendto(fd, message.data(), message.size(), MSG_NOSIGNAL,
                              reinterpret_cast<const sockaddr*>(&addr), len);
  const int err = sent < 0 ? errno : 0;
  close(fd);
  return Napi::Number::New(info.Env(), err);
#else
  return Napi::Number::New(info.Env(), -1);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("applyDense", Napi::Function::New(env, ApplyDense));
  exports.Set("applyMatrix1", Napi::Function::New(env, ApplyMatrix1));
  exports.Set("applyDiagonalK", Napi::Function::New(env, ApplyDiagonalK));
  exports.Set("applyDiagonal1", Napi::Function::New(env, ApplyDiagonal1));
  exports.Set("applyX", Napi::Function::New(env, ApplyX));
  exports.Set("applySwap", Napi::Function::New(env, ApplySwap));
  exports.Set("applyPhase", Napi::Function::New(env, ApplyPhase));
  exports.Set("branchWeights", Napi::Function::New(env, BranchWeights));
  exports.Set("collapse", Napi::Function::New(env, Collapse));
  exports.Set("prepare", Napi::Function::New(env, Prepare));
  exports.Set("zero", Napi::Function::New(env, Zero));
  exports.Set("misalignment", Napi::Function::New(env, Misalignment));
  exports.Set("bandwidthPass", Napi::Function::New(env, BandwidthPass));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("threads", Napi::Function::New(env, Threads));
  exports.Set("isa", Napi::Function::New(env, Isa));
  exports.Set("trimHeap", Napi::Function::New(env, TrimHeap));
  exports.Set("notifySocket", Napi::Function::New(env, NotifySocket));
  return exports;
}

}  // namespace

NODE_API_MODULE(qmk_native, Init)
