// Host emulation of the CUDA execution model, for running kernels/*.cu on a
// CPU (feature `cuda-emulator`; docs/design.md "How CUDA is checked without a
// GPU").
//
// Included by common.cuh only when the file is NOT compiled by NVRTC/nvcc.
// Model:
//   * one OS thread per CUDA thread of a block (taken from a pool of parked
//     threads, reused across blocks and launches); blocks of a grid run a
//     few at a time (MASKOPS_EMU_BLOCKS_AT_ONCE, default 2);
//   * __syncthreads is a per-block barrier, __syncwarp / __shfl_*_sync /
//     __ballot_sync / __any_sync / __all_sync go through a per-warp exchange
//     (slots + a warp barrier), and require the mask to name every lane of
//     the warp that exists (the only form the kernels use);
//   * every barrier wait is timed (MASKOPS_EMU_TIMEOUT_MS, default 10000):
//     a kernel that deadlocks (a barrier or a shuffle in divergent code, a
//     thread that returned early) aborts the launch with an error instead of
//     hanging;
//   * atomics go through std::atomic_ref;
//   * `extern __shared__` is MASKOPS_EXTERN_SHARED(T, name), static shared
//     arrays are MASKOPS_SHARED(T, name, N) (same declaration order in every
//     thread, so a per-thread bump cursor gives every thread the same slot).
#ifndef MASKOPS_EMU_CUH
#define MASKOPS_EMU_CUH

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
#define MASKOPS_EMU 1

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace emu {

struct Abort {};

// Per-launch override (maskops_emu_set_timeout_ms), else the environment,
// else 10 s.
inline std::atomic<long> g_timeout_ms{0};
inline long timeout_ms() {
    static const long t = [] {
        const char* s = std::getenv("MASKOPS_EMU_TIMEOUT_MS");
        long v = s ? std::atol(s) : 0;
        return v > 0 ? v : 10000L;
    }();
    const long o = g_timeout_ms.load();
    return o > 0 ? o : t;
}

struct BlockState;

// A reusable barrier whose waits time out and observe the block's abort flag.
struct Barrier {
    std::mutex m;
    std::condition_variable cv;
    unsigned expected = 0;
    unsigned count = 0;
    unsigned long gen = 0;
    void wait(BlockState& bs, const char* what);
};

struct Warp {
    Barrier bar;
    unsigned long long slots[32];
    unsigned lanes = 0;  // threads of the block in this warp
    unsigned full_mask() const { return lanes >= 32 ? 0xffffffffu : ((1u << lanes) - 1u); }
};

struct BlockState {
    dim3 grid, block;
    uint3 block_idx;
    std::vector<unsigned long long> dyn;     // extern __shared__ (8-byte aligned)
    std::vector<unsigned long long> statics;  // MASKOPS_SHARED arena
    Barrier bar;
    std::unique_ptr<Warp[]> warps;
    std::atomic<bool> aborted{false};
    std::mutex msg_m;
    std::string msg;
    void abort(const std::string& why) {
        {
            std::lock_guard<std::mutex> g(msg_m);
            if (msg.empty()) msg = why;
        }
        aborted.store(true);
    }
};

inline void Barrier::wait(BlockState& bs, const char* what) {
    std::unique_lock<std::mutex> lk(m);
    if (bs.aborted.load()) throw Abort{};
    const unsigned long g = gen;
    if (++count == expected) {
        count = 0;
        ++gen;
        cv.notify_all();
        return;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms());
    while (gen == g) {
        cv.wait_for(lk, std::chrono::milliseconds(20));
        if (gen != g) break;
        if (bs.aborted.load()) throw Abort{};
        if (std::chrono::steady_clock::now() > deadline) {
            bs.abort(std::string("deadlock: ") + what + " timed out after " + std::to_string(timeout_ms()) +
                     " ms (" + std::to_string(count) + " of " + std::to_string(expected) + " threads arrived)");
            throw Abort{};
        }
    }
}

struct ThreadCtx {
    uint3 thread_idx{0, 0, 0};
    uint3 block_idx{0, 0, 0};
    dim3 block_dim, grid_dim;
    BlockState* bs = nullptr;
    unsigned lane = 0, warp = 0;
    size_t static_cursor = 0;
};

inline thread_local ThreadCtx ctx;

inline void* dyn_shared() { return ctx.bs->dyn.data(); }

template <class T>
inline T* static_shared(size_t n) {
    size_t bytes = (n * sizeof(T) + 15) & ~size_t(15);
    size_t off = ctx.static_cursor;
    if (off + bytes > ctx.bs->statics.size() * 8) {
        ctx.bs->abort("static __shared__ arrays exceed 48 KiB");
        throw Abort{};
    }
    ctx.static_cursor += bytes;
    return reinterpret_cast<T*>(reinterpret_cast<unsigned char*>(ctx.bs->statics.data()) + off);
}

inline void syncthreads() { ctx.bs->bar.wait(*ctx.bs, "__syncthreads"); }

inline Warp& my_warp(unsigned mask, const char* what) {
    Warp& w = ctx.bs->warps[ctx.warp];
    if ((mask & w.full_mask()) != w.full_mask()) {
        ctx.bs->abort(std::string(what) + ": the emulator supports only masks naming every lane of the warp");
        throw Abort{};
    }
    return w;
}

template <class T>
inline unsigned long long to_bits(T v) {
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    unsigned long long b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
}
template <class T>
inline T from_bits(unsigned long long b) {
    T v;
    std::memcpy(&v, &b, sizeof(T));
    return v;
}

// Every lane publishes `v`, then reads the slot of lane `src` (own value when
// src is outside the warp's existing lanes).
template <class T>
inline T exchange(unsigned mask, T v, unsigned src, const char* what) {
    Warp& w = my_warp(mask, what);
    w.slots[ctx.lane] = to_bits(v);
    w.bar.wait(*ctx.bs, what);
    T r = src < w.lanes ? from_bits<T>(w.slots[src]) : v;
    w.bar.wait(*ctx.bs, what);
    return r;
}

inline unsigned ballot(unsigned mask, bool pred, const char* what) {
    Warp& w = my_warp(mask, what);
    w.slots[ctx.lane] = pred ? 1 : 0;
    w.bar.wait(*ctx.bs, what);
    unsigned r = 0;
    for (unsigned l = 0; l < w.lanes; ++l)
        if (w.slots[l] && (mask >> l & 1u)) r |= 1u << l;
    w.bar.wait(*ctx.bs, what);
    return r;
}

using Body = std::function<void()>;

struct LastError {
    std::mutex m;
    std::string msg;
};
inline LastError& last_error() {
    static LastError e;
    return e;
}
inline void set_error(const std::string& s) {
    std::lock_guard<std::mutex> g(last_error().m);
    last_error().msg = s;
}

struct ThreadArg {
    const Body* body;
    BlockState* bs;
    uint3 tidx;
    unsigned linear;
};

// Counts the threads of one block still running; shared with the workers
// (a worker may still hold it after the block's runner returned).
struct Latch {
    std::mutex m;
    std::condition_variable cv;
    unsigned left = 0;
    void arrive() {
        std::lock_guard<std::mutex> g(m);
        if (--left == 0) cv.notify_all();
    }
    void wait() {
        std::unique_lock<std::mutex> lk(m);
        cv.wait(lk, [&] { return left == 0; });
    }
};

// Runs one emulated thread of a block on the calling OS thread.
inline void run_thread(const ThreadArg& a) {
    ctx.thread_idx = a.tidx;
    ctx.block_idx = a.bs->block_idx;
    ctx.block_dim = a.bs->block;
    ctx.grid_dim = a.bs->grid;
    ctx.bs = a.bs;
    ctx.lane = a.linear % 32;
    ctx.warp = a.linear / 32;
    ctx.static_cursor = 0;
    try {
        (*a.body)();
    } catch (Abort&) {
    } catch (std::exception& e) {
        a.bs->abort(std::string("exception in kernel: ") + e.what());
    } catch (...) {
        a.bs->abort("unknown exception in kernel");
    }
}

// OS threads are kept and reused across blocks and launches (creating 256
// threads per block cost more than running most kernels): a worker parks
// on its own condition variable until it is handed one emulated thread,
// runs it, returns itself to the idle list and counts the block's latch
// down. Every emulated thread of a block still has an OS thread of its own
// for the whole block, as before.
struct Worker {
    std::mutex m;
    std::condition_variable cv;
    bool has_task = false;
    ThreadArg task{};
    std::shared_ptr<Latch> latch;
};

struct Pool {
    std::mutex m;
    std::vector<Worker*> idle;
    static void* main(void* p);
    // An idle worker, or a new one; nullptr if no thread could be started.
    Worker* get() {
        {
            std::lock_guard<std::mutex> g(m);
            if (!idle.empty()) {
                Worker* w = idle.back();
                idle.pop_back();
                return w;
            }
        }
        Worker* w = new Worker();
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 1 << 20);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t th;
        const bool ok = pthread_create(&th, &attr, Pool::main, w) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) {
            delete w;
            return nullptr;
        }
        return w;
    }
    void put(Worker* w) {
        std::lock_guard<std::mutex> g(m);
        idle.push_back(w);
    }
    static void give(Worker* w, const ThreadArg& a, const std::shared_ptr<Latch>& l) {
        {
            std::lock_guard<std::mutex> g(w->m);
            w->task = a;
            w->latch = l;
            w->has_task = true;
        }
        w->cv.notify_one();
    }
};

inline Pool& pool() {
    static Pool* p = new Pool();  // never destroyed: workers outlive main
    return *p;
}

inline void* Pool::main(void* p) {
    Worker* w = static_cast<Worker*>(p);
    for (;;) {
        ThreadArg a;
        std::shared_ptr<Latch> l;
        {
            std::unique_lock<std::mutex> lk(w->m);
            w->cv.wait(lk, [&] { return w->has_task; });
            a = w->task;
            l = std::move(w->latch);
            w->has_task = false;
        }
        run_thread(a);
        ctx.bs = nullptr;
        pool().put(w);
        l->arrive();
    }
    return nullptr;
}

// Runs one block on pooled OS threads (one per emulated thread) and waits
// for all of them. Returns "" or the error.
inline std::string run_block(const Body& body, dim3 grid, dim3 block, uint3 bidx, unsigned shared) {
    const unsigned n = block.x * block.y * block.z;
    BlockState bs;
    bs.grid = grid;
    bs.block = block;
    bs.block_idx = bidx;
    bs.dyn.assign((shared + 7) / 8 + 1, 0xdeadbeefdeadbeefull);  // garbage, like real shared memory
    bs.statics.assign(48 * 1024 / 8, 0xdeadbeefdeadbeefull);
    bs.bar.expected = n;
    const unsigned nw = (n + 31) / 32;
    bs.warps.reset(new Warp[nw]);
    for (unsigned w = 0; w < nw; ++w) {
        bs.warps[w].lanes = std::min(32u, n - 32 * w);
        bs.warps[w].bar.expected = bs.warps[w].lanes;
    }
    // the workers first: a block whose threads cannot all start runs none
    std::vector<Worker*> ws(n, nullptr);
    bool ok = true;
    for (unsigned k = 0; k < n && ok; ++k) {
        ws[k] = pool().get();
        ok = ws[k] != nullptr;
    }
    if (!ok) {
        for (Worker* w : ws)
            if (w) pool().put(w);
        return "block (" + std::to_string(bidx.x) + "," + std::to_string(bidx.y) + "," + std::to_string(bidx.z) +
               "): could not start the threads of the block";
    }
    auto latch = std::make_shared<Latch>();
    latch->left = n;
    unsigned i = 0;
    for (unsigned z = 0; z < block.z; ++z)
        for (unsigned y = 0; y < block.y; ++y)
            for (unsigned x = 0; x < block.x; ++x, ++i) Pool::give(ws[i], ThreadArg{&body, &bs, uint3{x, y, z}, i}, latch);
    latch->wait();
    if (bs.aborted.load()) {
        return "block (" + std::to_string(bidx.x) + "," + std::to_string(bidx.y) + "," + std::to_string(bidx.z) +
               "): " + bs.msg;
    }
    return "";
}

inline unsigned blocks_at_once() {
    static const unsigned k = [] {
        const char* s = std::getenv("MASKOPS_EMU_BLOCKS_AT_ONCE");
        long v = s ? std::atol(s) : 0;
        return v > 0 ? unsigned(v) : 2u;
    }();
    return k;
}

// The driver-API-shaped launch: grid, block, dynamic shared bytes. Return 0
// on success; otherwise an error code with the message in last_error().
inline int launch(const char* name, const Body& body, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                  unsigned by, unsigned bz, unsigned shared) {
    const unsigned long long nthreads = 1ull * bx * by * bz;
    if (gx == 0 || gy == 0 || gz == 0 || nthreads == 0 || nthreads > 1024 || bz > 64 || gy > 65535 ||
        gz > 65535 || shared > 227u * 1024u) {
        set_error(std::string(name) + ": invalid launch configuration grid (" + std::to_string(gx) + "," +
                  std::to_string(gy) + "," + std::to_string(gz) + ") block (" + std::to_string(bx) + "," +
                  std::to_string(by) + "," + std::to_string(bz) + ") shared " + std::to_string(shared));
        return 3;
    }
    dim3 grid{gx, gy, gz}, block{bx, by, bz};
    std::vector<uint3> all;
    for (unsigned z = 0; z < gz; ++z)
        for (unsigned y = 0; y < gy; ++y)
            for (unsigned x = 0; x < gx; ++x) all.push_back(uint3{x, y, z});
    const unsigned k = blocks_at_once();
    for (size_t i = 0; i < all.size(); i += k) {
        const size_t m = std::min<size_t>(k, all.size() - i);
        std::vector<std::string> errs(m);
        // Run up to k blocks concurrently, each on a helper thread.
        std::vector<pthread_t> hs(m);
        struct BA {
            const Body* body;
            dim3 grid, block;
            uint3 b;
            unsigned shared;
            std::string* err;
        };
        std::vector<BA> bas(m);
        std::vector<bool> ok(m, false);
        for (size_t j = 0; j < m; ++j) {
            bas[j] = BA{&body, grid, block, all[i + j], shared, &errs[j]};
            ok[j] = pthread_create(
                        &hs[j], nullptr,
                        [](void* p) -> void* {
                            BA* a = static_cast<BA*>(p);
                            *a->err = run_block(*a->body, a->grid, a->block, a->b, a->shared);
                            return nullptr;
                        },
                        &bas[j]) == 0;
            if (!ok[j]) errs[j] = "could not start a thread for the block";
        }
        for (size_t j = 0; j < m; ++j)
            if (ok[j]) pthread_join(hs[j], nullptr);
        for (size_t j = 0; j < m; ++j)
            if (!errs[j].empty()) {
                set_error(std::string(name) + ": " + errs[j]);
                return 2;
            }
    }
    return 0;
}

// Unpacks the driver API's `void** params` into the kernel's typed arguments.
template <class... A, size_t... I>
inline void invoke_impl(void (*f)(A...), void** p, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<A>*>(p[I])...);
}
template <class... A>
inline void invoke(void (*f)(A...), void** p) {
    invoke_impl(f, p, std::index_sequence_for<A...>{});
}

using Entry = int (*)(unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void**);
inline std::map<std::string, Entry>& registry() {
    static std::map<std::string, Entry> r;
    return r;
}
struct Registrar {
    Registrar(const char* name, Entry e) { registry()[name] = e; }
};

}  // namespace emu

#define threadIdx (::emu::ctx.thread_idx)
#define blockIdx (::emu::ctx.block_idx)
#define blockDim (::emu::ctx.block_dim)
#define gridDim (::emu::ctx.grid_dim)
#define warpSize 32

inline void __syncthreads() { ::emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { (void)::emu::ballot(mask, true, "__syncwarp"); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

template <class T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    unsigned lane = ::emu::ctx.lane;
    unsigned base = lane & ~unsigned(width - 1);
    return ::emu::exchange(mask, v, base + (unsigned(src) & unsigned(width - 1)), "__shfl_sync");
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    unsigned lane = ::emu::ctx.lane;
    unsigned seg = lane & unsigned(width - 1);
    unsigned src = seg + delta < unsigned(width) ? lane + delta : lane;
    return ::emu::exchange(mask, v, src, "__shfl_down_sync");
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    unsigned lane = ::emu::ctx.lane;
    unsigned seg = lane & unsigned(width - 1);
    unsigned src = seg >= delta ? lane - delta : lane;
    return ::emu::exchange(mask, v, src, "__shfl_up_sync");
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    unsigned lane = ::emu::ctx.lane;
    unsigned src = lane ^ unsigned(lane_mask);
    if ((src & ~unsigned(width - 1)) != (lane & ~unsigned(width - 1))) src = lane;
    return ::emu::exchange(mask, v, src, "__shfl_xor_sync");
}
inline unsigned __ballot_sync(unsigned mask, int pred) { return ::emu::ballot(mask, pred != 0, "__ballot_sync"); }
inline int __any_sync(unsigned mask, int pred) { return ::emu::ballot(mask, pred != 0, "__any_sync") != 0; }
inline int __all_sync(unsigned mask, int pred) {
    return ::emu::ballot(mask, pred != 0, "__all_sync") == (mask & ::emu::ctx.bs->warps[::emu::ctx.warp].full_mask());
}

template <class T>
inline T atomicAdd(T* p, T v) {
    return std::atomic_ref<T>(*p).fetch_add(v);
}
template <class T>
inline T atomicExch(T* p, T v) {
    return std::atomic_ref<T>(*p).exchange(v);
}
template <class T>
inline T atomicCAS(T* p, T cmp, T v) {
    std::atomic_ref<T>(*p).compare_exchange_strong(cmp, v);
    return cmp;
}
template <class T>
inline T atomicMax(T* p, T v) {
    std::atomic_ref<T> r(*p);
    T old = r.load();
    while (old < v && !r.compare_exchange_weak(old, v)) {
    }
    return old;
}
template <class T>
inline T atomicMin(T* p, T v) {
    std::atomic_ref<T> r(*p);
    T old = r.load();
    while (v < old && !r.compare_exchange_weak(old, v)) {
    }
    return old;
}

inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }
inline int __ffs(int v) { return __builtin_ffs(v); }
inline int __clz(int v) { return v == 0 ? 32 : __builtin_clz(unsigned(v)); }
inline float __int_as_float(int v) {
    float f;
    std::memcpy(&f, &v, 4);
    return f;
}
inline int __float_as_int(float f) {
    int v;
    std::memcpy(&v, &f, 4);
    return v;
}
inline unsigned __float_as_uint(float f) {
    unsigned v;
    std::memcpy(&v, &f, 4);
    return v;
}
inline float __uint_as_float(unsigned v) {
    float f;
    std::memcpy(&f, &v, 4);
    return f;
}

#define MASKOPS_EXTERN_SHARED(T, name) T* name = reinterpret_cast<T*>(::emu::dyn_shared())
#define MASKOPS_SHARED(T, name, N) T* name = ::emu::static_shared<T>(N)

// Declares a kernel once: the host function (run per emulated thread), an
// extern "C" entry with the driver API's calling convention, and a registry
// entry for maskops_emu_launch.
#define MASKOPS_KERNEL(name, ...)                                                                         \
    extern "C" void name(__VA_ARGS__);                                                                   \
    extern "C" int maskops_emu_##name(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,    \
                                      unsigned bz, unsigned shared, void** params) {                     \
        ::emu::Body body = [params] { ::emu::invoke(&name, params); };                                     \
        return ::emu::launch(#name, body, gx, gy, gz, bx, by, bz, shared);                               \
    }                                                                                                    \
    static ::emu::Registrar maskops_emu_reg_##name(#name, &maskops_emu_##name);                          \
    extern "C" void name(__VA_ARGS__)

// The generic entry the Rust emulator backend calls (same shape as
// cuLaunchKernel, with the function named instead of a CUfunction handle).
#define MASKOPS_EMU_DEFINE_ENTRY_POINTS                                                                  \
    extern "C" int maskops_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, \
                                      unsigned by, unsigned bz, unsigned shared, void** params) {        \
        auto& r = ::emu::registry();                                                                     \
        auto it = r.find(name);                                                                          \
        if (it == r.end()) {                                                                             \
            ::emu::set_error(std::string("no kernel named ") + name);                                    \
            return 1;                                                                                    \
        }                                                                                                \
        return it->second(gx, gy, gz, bx, by, bz, shared, params);                                       \
    }                                                                                                    \
    extern "C" void maskops_emu_set_timeout_ms(long ms) { ::emu::g_timeout_ms.store(ms); }              \
    extern "C" size_t maskops_emu_last_error(char* buf, size_t cap) {                                    \
        std::lock_guard<std::mutex> g(::emu::last_error().m);                                            \
        const std::string& s = ::emu::last_error().msg;                                                  \
        if (cap > 0) {                                                                                   \
            size_t n = std::min(cap - 1, s.size());                                                      \
            std::memcpy(buf, s.data(), n);                                                               \
            buf[n] = 0;                                                                                  \
        }                                                                                                \
        return s.size();                                                                                 \
    }

#endif  // MASKOPS_EMU_CUH
