// kernel.cpp - the C API over SystemC's discrete-event kernel (the project's only C++ file).
//
// Each kern_event is an sc_event plus a method process spawned with sc_spawn, sensitive to
// it, that calls the C callback. SystemC cannot delete processes or reset time, so freed
// events go to a pool and are reused, and kern_begin() records the current SystemC time as
// the new zero. Time resolution is 1 ps.
#define SC_INCLUDE_DYNAMIC_PROCESSES
#include <systemc>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "kernel.h"

using namespace sc_core;

struct kern_event {
    sc_event ev;
    kern_fn fn = nullptr;
    void *ctx = nullptr;
    bool in_use = false;
};

namespace
{
// Process-wide kernel state: the SystemC context, the event pool and the time base.
struct kern_state {
    std::vector<kern_event *> pool;
    uint64_t base_ps = 0;
    uint64_t now_ps = 0; // kern_now(): SystemC time - base, refreshed whenever it can change
    uint64_t events = 0;
    bool stopping = false;
    bool overflow = false;
};
kern_state *g_kern;

kern_state *state()
{
    if (!g_kern) {
        // Keep SystemC's copyright banner off the user's output.
        setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "DISABLE", 1);
        sc_report_handler::set_actions(SC_INFO, SC_DO_NOTHING);
        sc_report_handler::set_actions(SC_WARNING, SC_DO_NOTHING);
        sc_set_time_resolution(1, SC_PS);
        g_kern = new kern_state;
    }
    return g_kern;
}

uint64_t sc_now_ps()
{
    return (uint64_t)sc_time_stamp().value();
}

void trampoline(kern_event *k)
{
    kern_state *s = g_kern;
    if (!k->in_use || !k->fn)
        return;
    s->events++;
    // Simulated time moves only inside sc_start, and there only our callbacks run: reading
    // the clock once per callback (and after sc_start returns) keeps kern_now() a load.
    s->now_ps = sc_now_ps() - s->base_ps;
    k->fn(k->ctx);
}
} // namespace

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
    s->base_ps = sc_now_ps();
    s->now_ps = 0;
    s->events = 0;
    s->stopping = false;
    s->overflow = false;
}

kern_event *kern_event_new(kern_fn fn, void *ctx)
{
    kern_state *s = state();
    kern_event *k;
    if (!s->pool.empty()) {
        k = s->pool.back();
        s->pool.pop_back();
    } else {
        k = new kern_event;
        sc_spawn_options o;
        o.spawn_method();
        o.set_sensitivity(&k->ev);
        o.dont_initialize();
        sc_spawn([k] { trampoline(k); }, sc_gen_unique_name("kern_ev"), &o);
    }
    k->fn = fn;
    k->ctx = ctx;
    k->in_use = true;
    return k;
}

void kern_event_free(kern_event *k)
{
    if (!k)
        return;
    k->ev.cancel();
    k->in_use = false;
    k->fn = nullptr;
    k->ctx = nullptr;
    state()->pool.push_back(k);
}

void kern_notify(kern_event *k, uint64_t delay_ps)
{
    // SystemC's clock is a process-wide 64-bit ps count: a time past its end cannot be
    // scheduled. Flag it and stop; the caller reports which instruction got there.
    if (delay_ps >= UINT64_MAX - (g_kern->base_ps + g_kern->now_ps)) {
        kern_state *s = state();
        s->overflow = true;
        s->stopping = true;
        sc_pause();
        return;
    }
    if (delay_ps == 0)
        k->ev.notify(SC_ZERO_TIME);
    else
        k->ev.notify(sc_time::from_value(delay_ps));
}

void kern_notify_at(kern_event *k, uint64_t t_ps)
{
    uint64_t now = kern_now();
    kern_notify(k, t_ps > now ? t_ps - now : 0);
}

void kern_cancel(kern_event *k)
{
    k->ev.cancel();
}

uint64_t kern_now(void)
{
    return state()->now_ps;
}

int kern_run(uint64_t limit_ps)
{
    kern_state *s = state();
    s->stopping = false;
    if (limit_ps == KERN_FOREVER) {
        sc_start();
    } else {
        uint64_t now = kern_now();
        if (limit_ps > now)
            sc_start(sc_time::from_value(limit_ps - now));
    }
    s->now_ps = sc_now_ps() - s->base_ps;
    return sc_pending_activity() ? 1 : 0;
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
