// kernel.cpp - the C API over SystemC's discrete-event kernel (the project's only C++ file).
//
// SystemC keeps simulated time; one method process, sensitive to one sc_event, runs every
// kern_event due at the current time. The kern_events themselves are queued here, in the
// structures SystemC 2.3 itself uses and in its order, so results do not change with this
// layer: timed notifications in a priority queue ordered by time alone (a copy of sc_ppq, the
// binary heap of Cormen-Leiserson-Rivest ch. 7, cancelled entries left in place as dead ones),
// triggered in extraction order; notifications with delay 0 in a list run in the next delta
// cycle of the current time, triggered last-notified first (sc_simcontext::crunch); an event
// pending at an earlier time keeps it. A timed notification made by kern_notify_at_delta
// joins, at its time, the delta notifications of that time's first delta cycle instead of the
// timed phase (an extension: it stands for a timed callback that only notifies with delay 0).
// So SystemC sees one timed event per distinct time at which something happens, not one per
// kern_event, and a kern_event costs no SystemC process:
// creating one is a small pooled allocation, whatever number of slots a configuration
// declares. kern_begin() records the current SystemC time as the new zero. Time resolution is
// 1 ps.
#define SC_INCLUDE_DYNAMIC_PROCESSES
#include <systemc>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <vector>

#include <sys/mman.h>

#include "kernel.h"

using namespace sc_core;

// Start-up. libsystemc-2.3.4's static initialisers allocate and clear a 3 MiB buffer before
// main (measured: 768 of the 977 page faults, about 0.6 ms, of an empty SystemC program on a
// 2-core VM). The process's global operator new is replaced here so that blocks of 1 MiB and
// more are 2 MiB-aligned and advised as huge pages: where transparent huge pages are enabled
// ("madvise" or "always") the clear then costs two faults instead of 768; elsewhere nothing
// changes. Otherwise it is the default: malloc, std::bad_alloc on failure, free to release
// (every operator delete is free, so blocks from either path are released alike). Not in
// sanitizer builds, whose runtime brings its own operator new and delete (GCC says so with
// __SANITIZE_ADDRESS__, clang with __has_feature).
#if defined(__SANITIZE_ADDRESS__)
#define KERN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KERN_ASAN 1
#endif
#endif
#if !defined(KERN_ASAN)
void *operator new(std::size_t n)
{
    const std::size_t huge = std::size_t(2) << 20;
    void *p;
    if (n >= huge / 2) {
        std::size_t r = (n + huge - 1) / huge * huge;
        p = aligned_alloc(huge, r);
        if (p)
            (void)madvise(p, r, MADV_HUGEPAGE);
    } else {
        p = malloc(n ? n : 1);
    }
    if (!p)
        throw std::bad_alloc();
    return p;
}

void operator delete(void *p) noexcept
{
    free(p);
}

void operator delete(void *p, std::size_t) noexcept
{
    free(p);
}
#endif

namespace
{
struct kern_timed; // an entry of the timed queue
enum kern_type { KERN_NONE, KERN_DELTA, KERN_TIMED };
} // namespace

struct kern_event {
    kern_type type = KERN_NONE;
    kern_timed *timed = nullptr; // KERN_TIMED: its entry
    uint32_t delta_index = 0;    // KERN_DELTA: index in the delta list
    kern_fn fn = nullptr;
    void *ctx = nullptr;
};

namespace
{
struct kern_timed {
    uint64_t t;     // absolute SystemC time, ps
    kern_event *ev; // nullptr: cancelled (a dead entry, dropped when it reaches the top)
    bool delta;     // kern_notify_at_delta: at t, join the first delta cycle, not the timed phase
};

// Process-wide kernel state: the SystemC context, the queues, the pools and the time base.
struct kern_state {
    std::vector<kern_event *> pool;
    std::vector<kern_timed *> tpool;
    std::vector<kern_timed *> heap{nullptr}; // 1-based, as sc_ppq
    std::vector<kern_event *> deltas;        // delta notifications, in notification order
    std::vector<kern_event *> runq;          // triggered, not yet run (from runq_head on)
    size_t runq_head = 0;
    sc_event *wake = nullptr; // notified for the next time something is due
    uint64_t base_ps = 0;
    uint64_t sc_ps = 0;  // SystemC time at the current callback (base_ps + now_ps)
    uint64_t now_ps = 0; // kern_now(): SystemC time - base, refreshed whenever it can change
    uint64_t events = 0;
    bool stopping = false;
    bool overflow = false;
    bool nomem = false;
    int order = KERN_ORDER_SYSTEMC; // kern_set_order: kept across simulations
    uint64_t order_rng = 0;
};
kern_state *g_kern;

uint64_t sc_now_ps()
{
    return (uint64_t)sc_time_stamp().value();
}

// sc_ppq's insert, extract_top and heapify, with sc_notify_time_compare's order (earlier
// time first, ties as the heap's shape leaves them).
size_t heap_size(const kern_state *s)
{
    return s->heap.size() - 1;
}

void heap_insert(kern_state *s, kern_timed *e)
{
    s->heap.push_back(e);
    size_t i = heap_size(s);
    while (i > 1 && s->heap[i >> 1]->t > e->t) {
        s->heap[i] = s->heap[i >> 1];
        i >>= 1;
    }
    s->heap[i] = e;
}

kern_timed *heap_extract_top(kern_state *s)
{
    std::vector<kern_timed *> &h = s->heap;
    kern_timed *top = h[1];
    h[1] = h.back();
    h.pop_back();
    size_t n = heap_size(s), i = 1, l;
    while ((l = 2 * i) <= n) {
        size_t r = l + 1;
        size_t m = h[l]->t < h[i]->t ? l : i;
        if (r <= n && h[r]->t < h[m]->t)
            m = r;
        if (m == i)
            break;
        kern_timed *tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
    return top;
}

void timed_free(kern_state *s, kern_timed *e)
{
    s->tpool.push_back(e);
}

// sc_event::trigger for a method process statically sensitive to it: runnable, at the back.
void trigger(kern_state *s, kern_event *k)
{
    k->type = KERN_NONE;
    k->timed = nullptr;
    s->runq.push_back(k);
}

void remove_delta(kern_state *s, kern_event *k)
{
    uint32_t i = k->delta_index, j = (uint32_t)s->deltas.size() - 1;
    if (i != j) {
        s->deltas[i] = s->deltas[j];
        s->deltas[i]->delta_index = i;
    }
    s->deltas.pop_back();
}

void cancel(kern_state *s, kern_event *k)
{
    if (k->type == KERN_DELTA)
        remove_delta(s, k);
    else if (k->type == KERN_TIMED)
        k->timed->ev = nullptr;
    k->type = KERN_NONE;
    k->timed = nullptr;
}

// Run the runnable callbacks in order (the evaluation phase of one delta cycle).
void run_queue(kern_state *s)
{
    while (s->runq_head < s->runq.size()) {
        kern_event *k = s->runq[s->runq_head++];
        if (!k->fn) // freed after it was triggered
            continue;
        s->events++;
        k->fn(k->ctx);
    }
    s->runq.clear();
    s->runq_head = 0;
}

// kern_set_order's test orders: reverse or shuffle (xorshift64, Fisher-Yates) the callbacks
// triggered together, runq[from..end), before any of them runs.
void permute(kern_state *s, size_t from)
{
    std::vector<kern_event *> &q = s->runq;
    size_t n = q.size() - from;
    if (s->order == KERN_ORDER_SYSTEMC || n < 2)
        return;
    if (s->order == KERN_ORDER_REVERSE) {
        for (size_t i = 0; i < n / 2; i++)
            std::swap(q[from + i], q[from + n - 1 - i]);
        return;
    }
    for (size_t i = n - 1; i > 0; i--) {
        uint64_t x = s->order_rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s->order_rng = x;
        std::swap(q[from + i], q[from + x % (i + 1)]);
    }
}

// Drop dead entries at the top of the timed queue (sc_simcontext::next_time).
void drop_dead(kern_state *s)
{
    while (heap_size(s) && !s->heap[1]->ev)
        timed_free(s, heap_extract_top(s));
}

// Arm the SystemC event for the next time anything is due (nothing due: leave it idle).
void arm(kern_state *s)
{
    if (s->runq_head < s->runq.size() || !s->deltas.empty()) {
        s->wake->notify(SC_ZERO_TIME);
        return;
    }
    drop_dead(s);
    if (heap_size(s)) {
        uint64_t now = sc_now_ps(), t = s->heap[1]->t;
        s->wake->notify(t > now ? sc_time::from_value(t - now) : SC_ZERO_TIME);
    }
}

// The method process, at each time something is due: the timed notifications of this time
// trigger (in extraction order) and run, then each delta cycle's notifications trigger
// (last notified first) and run, until none is left; then the next time is armed. After
// kern_stop the current delta cycle completes, as SystemC's sc_pause lets it.
void drain()
{
    kern_state *s = g_kern;
    s->sc_ps = sc_now_ps();
    s->now_ps = s->sc_ps - s->base_ps;
    if (s->runq.empty()) { // else: left triggered by kern_stop, run first
        drop_dead(s);
        while (heap_size(s) && s->heap[1]->t == s->sc_ps) {
            kern_timed *e = heap_extract_top(s);
            if (e->ev && e->delta) { // pending for the first delta cycle from here on
                e->ev->type = KERN_DELTA;
                e->ev->timed = nullptr;
                e->ev->delta_index = (uint32_t)s->deltas.size();
                s->deltas.push_back(e->ev);
            } else if (e->ev)
                trigger(s, e->ev);
            timed_free(s, e);
        }
        permute(s, 0);
    }
    for (;;) {
        run_queue(s);
        for (size_t i = s->deltas.size(); i-- > 0;)
            trigger(s, s->deltas[i]);
        s->deltas.clear();
        permute(s, 0);
        // sc_pause ends the run after this delta cycle; what it triggered runs on resume.
        if (s->runq.empty() || s->stopping)
            break;
    }
    if (!s->stopping)
        arm(s);
}

kern_state *state()
{
    if (!g_kern) {
        // Keep SystemC's copyright banner off the user's output.
        setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "DISABLE", 1);
        sc_report_handler::set_actions(SC_INFO, SC_DO_NOTHING);
        sc_report_handler::set_actions(SC_WARNING, SC_DO_NOTHING);
        sc_set_time_resolution(1, SC_PS);
        g_kern = new kern_state;
        g_kern->wake = new sc_event;
        sc_spawn_options o;
        o.spawn_method();
        o.set_sensitivity(g_kern->wake);
        o.dont_initialize();
        sc_spawn(drain, "kern_drain", &o);
    }
    return g_kern;
}
} // namespace

// A recycled object from pool, or a new one (new throws on out-of-memory, as before).
template <class T> static T *pool_take(std::vector<T *> &pool)
{
    if (pool.empty())
        return new T;
    T *x = pool.back();
    pool.pop_back();
    return x;
}

extern "C" {

void kern_begin(void)
{
    kern_state *s = state();
    // A simulation stopped by kern_stop (a failed replay) can leave method processes that
    // were already triggered for the next delta cycle: kern_event_free cancels notifications,
    // not those. Run them now, while every event of that simulation is freed (the trampoline
    // then ignores them), or they would call whichever new owner reuses the pooled event.
    while (sc_pending_activity_at_current_time())
        sc_start(SC_ZERO_TIME);
    // It also leaves its cancelled timed notifications in SystemC's queue, which delivers
    // same-time notifications in heap order: leftovers would reorder (and change) the next
    // simulation. Looking for future activity drops them (every event here is freed).
    (void)sc_pending_activity_at_future_time();
    // Callbacks it left triggered but not run are of freed events: drop them, or they would
    // run the new owner of a pooled event at the first instant of the next simulation.
    s->runq.clear();
    s->runq_head = 0;
    s->base_ps = sc_now_ps();
    s->sc_ps = s->base_ps;
    s->now_ps = 0;
    s->events = 0;
    s->stopping = false;
    s->overflow = false;
    s->nomem = false;
}

kern_event *kern_event_new(kern_fn fn, void *ctx)
{
    kern_state *s = state();
    kern_event *k = pool_take(s->pool);
    k->type = KERN_NONE;
    k->timed = nullptr;
    k->fn = fn;
    k->ctx = ctx;
    return k;
}

void kern_event_free(kern_event *k)
{
    if (!k)
        return;
    kern_state *s = state();
    cancel(s, k);
    k->fn = nullptr;
    k->ctx = nullptr;
    s->pool.push_back(k);
}

static void notify(kern_event *k, uint64_t delay_ps, bool delta);

void kern_notify(kern_event *k, uint64_t delay_ps)
{
    notify(k, delay_ps, false);
}

void kern_notify_at_delta(kern_event *k, uint64_t t_ps)
{
    uint64_t now = g_kern->now_ps;
    notify(k, t_ps > now ? t_ps - now : 0, true);
}

static void notify(kern_event *k, uint64_t delay_ps, bool delta)
{
    kern_state *s = g_kern;
    // SystemC's clock is a process-wide 64-bit ps count: a time past its end cannot be
    // scheduled. Flag it and stop; the caller reports which instruction got there.
    if (delay_ps >= UINT64_MAX - s->sc_ps) {
        s->overflow = true;
        s->stopping = true;
        sc_pause();
        return;
    }
    // sc_event::notify: a pending delta notification stays; delay 0 replaces a pending timed
    // one; a timed one replaces a later pending one and keeps an earlier or equal one.
    if (k->type == KERN_DELTA)
        return;
    if (delay_ps == 0) {
        if (k->type == KERN_TIMED)
            k->timed->ev = nullptr;
        k->timed = nullptr;
        k->delta_index = (uint32_t)s->deltas.size();
        s->deltas.push_back(k);
        k->type = KERN_DELTA;
        return;
    }
    uint64_t t = s->sc_ps + delay_ps;
    if (k->type == KERN_TIMED) {
        if (k->timed->t <= t)
            return;
        k->timed->ev = nullptr;
    }
    kern_timed *e = pool_take(s->tpool);
    e->t = t;
    e->ev = k;
    e->delta = delta;
    heap_insert(s, e);
    k->timed = e;
    k->type = KERN_TIMED;
}

void kern_notify_at(kern_event *k, uint64_t t_ps)
{
    uint64_t now = g_kern->now_ps;
    kern_notify(k, t_ps > now ? t_ps - now : 0);
}

void kern_cancel(kern_event *k)
{
    cancel(g_kern, k);
}

uint64_t kern_now(void)
{
    return state()->now_ps;
}

int kern_run(uint64_t limit_ps)
{
    kern_state *s = state();
    s->stopping = false;
    s->sc_ps = sc_now_ps();
    s->wake->cancel();
    arm(s);
    if (limit_ps == KERN_FOREVER) {
        sc_start();
    } else {
        uint64_t now = kern_now();
        if (limit_ps > now)
            sc_start(sc_time::from_value(limit_ps - now));
    }
    s->sc_ps = sc_now_ps();
    s->now_ps = s->sc_ps - s->base_ps;
    drop_dead(s);
    return heap_size(s) || !s->deltas.empty() || s->runq_head < s->runq.size() ? 1 : 0;
}

void kern_stop(void)
{
    state()->stopping = true;
    sc_pause();
}

int kern_overflowed(void)
{
    return state()->overflow;
}

void kern_fail_nomem(void)
{
    kern_state *s = state();
    s->nomem = true;
    s->stopping = true;
    sc_pause();
}

int kern_out_of_memory(void)
{
    return state()->nomem;
}

void kern_set_order(int order, uint64_t seed)
{
    kern_state *s = state();
    s->order = order;
    s->order_rng = seed | 1; // xorshift needs a nonzero state
}

uint64_t kern_event_count(void)
{
    return state()->events;
}

} // extern "C"

// libsystemc's main() calls sc_main; tpusim has its own main, so this is never called.
int sc_main(int, char **)
{
    return 0;
}
