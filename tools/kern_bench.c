/* kern_bench.c - the kernel's raw event rate: N events (1 and 64), each re-notifying itself
 * with a delay from its callback, nothing else done per event. tools/bench.sh prints it next to
 * tpusim's own events per wall-second, so the ratio to the kernel's limit is visible.
 * Usage: kern_bench [EVENTS_PER_RUN]   (default 4,000,000); prints one line per N.
 *        kern_bench --startup   starts the kernel and exits: the start-up floor of any process
 *                               on libsystemc (loading, its static initialisers, elaboration). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel.h"

typedef struct kb_ev {
    kern_event *ev;
    uint64_t delay, left;
} kb_ev;

static void kb_fire(void *ctx)
{
    kb_ev *k = ctx;
    if (k->left && --k->left)
        kern_notify(k->ev, k->delay);
}

static double kb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--startup")) {
        kern_begin();
        return 0;
    }
    uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 4000000;
    static const unsigned ns[] = {1, 64};
    for (unsigned t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        unsigned n = ns[t];
        kb_ev *k = calloc(n, sizeof *k);
        if (!k)
            return 1;
        kern_begin();
        for (unsigned i = 0; i < n; i++) {
            k[i].ev = kern_event_new(kb_fire, &k[i]);
            k[i].delay = 1000 + 37 * i; /* distinct periods: times interleave */
            k[i].left = total / n;
            kern_notify(k[i].ev, k[i].delay);
        }
        double t0 = kb_now();
        kern_run(KERN_FOREVER);
        double dt = kb_now() - t0;
        uint64_t ev = kern_event_count();
        printf("kernel: %u event(s) re-notified with a delay: %llu callbacks in %.3f s = %.0f "
               "events per wall-second\n",
               n, (unsigned long long)ev, dt, dt > 0 ? ev / dt : 0.0);
        for (unsigned i = 0; i < n; i++)
            kern_event_free(k[i].ev);
        free(k);
    }
    return 0;
}
