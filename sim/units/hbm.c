/* hbm.c - HBM timing by reservation: per pseudo-channel data bus and per bank row state
 * (banked model) or one shared bus at peak x efficiency (simple model). Requests are served
 * in issue order per pseudo-channel (FCFS, no reordering); timings are JEDEC-style ns values
 * from the config, converted to ps once at hbm_new. */
#include "hbm.h"
#include "umath.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HBM_ROW_NONE UINT64_MAX /* bank precharged (no open row) */

typedef struct hbm_bank {
    uint64_t open_row; /* HBM_ROW_NONE when closed */
    uint64_t act_ps;   /* time of the last activate (for tRAS) */
    uint64_t ready_ps; /* earliest column command to the open row (activate + tRCD) */
    uint64_t pre_ps;   /* earliest precharge: tRAS after activate, after the last column data */
} hbm_bank;

typedef struct hbm_pc {
    uint64_t bus_free_ps;     /* the pseudo-channel's data bus is reserved until then */
    uint64_t next_refresh_ps; /* due time of the next all-bank refresh */
    int dir;                  /* direction of the last transfer: 0 read, 1 write, -1 none */
} hbm_pc;

typedef struct hbm_model {
    const char *name; /* the hbm.model choice it implements */
    uint64_t (*access)(hbm *h, uint64_t addr, uint64_t bytes, int is_write, uint64_t now_ps);
    /* count blocks of `block` bytes, `stride` apart, issued in order at now_ps */
    uint64_t (*strided)(hbm *h, uint64_t addr, uint64_t block, uint64_t stride, uint64_t count,
                        int is_write, uint64_t now_ps);
} hbm_model;

struct hbm {
    const hbm_model *model;
    uint64_t capacity;
    double peak_bytes_per_ps; /* channels x pseudo x bus_bits/8 x gbps_per_pin */

    /* banked model */
    uint64_t npc, nbanks, granule, row_bytes, burst_bytes;
    int pc_shift, bank_shift, gran_shift, row_shift; /* log2 of the above, or -1 if not 2^k */
    int burst_shift;                                 /* log2(burst_bytes), or -1 */
    uint64_t granule_xfer_ps;                        /* transfer time of one whole granule */
    uint64_t granule_bursts;                         /* bursts in one whole granule */
    uint64_t nxfer;         /* xfer_ps[k] = hbm_xfer_ps(k bursts) for k <= nxfer, precomputed */
    uint64_t *xfer_ps;      /* so a piece costs a lookup, not a float-to-int conversion */
    double bus_ps_per_byte; /* one pseudo-channel bus: 8 / (bus_bits x gbps_per_pin) ns/B */
    uint64_t tcl, trcd, trp, tras, trfc, trefi, twtr, trtw; /* ps */
    hbm_pc *pcs;                                            /* npc */
    hbm_bank *banks;                                        /* npc x nbanks, pseudo-channel major */

    /* simple model */
    double simple_ps_per_byte; /* 1 / (peak x efficiency) */
    uint64_t latency_ps;
    uint64_t simple_bus_free_ps;

    /* counters */
    uint64_t bytes_read, bytes_written;
    uint64_t row_hits, row_misses, row_conflicts, refreshes, turnarounds;
    uint64_t bus_busy_ps;  /* data-bus occupancy summed over buses */
    uint64_t bus_gap_ps;   /* bus idle with a request queued behind its data, summed */
    uint64_t nbus;         /* buses bus_busy_ps is summed over (npc, or 1 for simple) */
    uint64_t nch, npseudo; /* channels, pseudo-channels per channel */
    int pseudo_shift;      /* log2(npseudo), or -1 if not 2^k */
    uint64_t *ch_bytes;    /* per channel: bytes moved (banked; the simple model has one bus,
                            * its bytes are spread over the channels evenly) */
};

static uint64_t hbm_ns_to_ps(double ns)
{
    return (uint64_t)(ns * 1000.0 + 0.5);
}

/* log2(x) when x is a power of two, else -1: lets the address mapping use shifts. */
static int hbm_log2(uint64_t x)
{
    if (x == 0 || (x & (x - 1)))
        return -1;
    int s = 0;
    while ((x >> s) != 1)
        s++;
    return s;
}

/* ceil(bytes x ps_per_byte): rounding up keeps sustained bandwidth at or below peak. */
static uint64_t hbm_xfer_ps(uint64_t bytes, double ps_per_byte)
{
    double ps = (double)bytes * ps_per_byte;
    uint64_t r = (uint64_t)ps;
    return (double)r < ps ? r + 1 : r;
}

/* ---- banked model ---------------------------------------------------------------------- */

/* All-bank refresh of pseudo-channel p before a granule issued at `now`, once
 * max(now, bus_free) has reached the pc's next due time. Refreshes are due
 * every tREFI (in step across pseudo-channels, see hbm_new). A refresh that fell due while
 * the bus still holds reserved data starts when that data has drained:
 *   refresh start rs = max(due, bus_free);  pc blocked until re = rs + tRFC;
 * every row closes. Further refreshes that fell due before `now` ran back to back or at
 * their due time (free if the pc sat idle), and only the latest may still block this
 * access; they are counted in closed form, so a long idle gap costs no loop. */
static __attribute__((noinline)) void banked_refresh_due(hbm *h, uint64_t p, uint64_t now)
{
    hbm_pc *pc = &h->pcs[p];
    uint64_t re = um_max(pc->next_refresh_ps, pc->bus_free_ps) + h->trfc;
    uint64_t n = 1, next = pc->next_refresh_ps + h->trefi;
    if (now >= next) {
        /* k further refreshes due in [next, now], each starting at max(due, previous end):
         * with tREFI >= tRFC the chain ends at max(last due + tRFC, re + k x tRFC). */
        uint64_t k = (now - next) / h->trefi + 1;
        uint64_t last = next + (k - 1) * h->trefi;
        re = um_max(last + h->trfc, re + k * h->trfc);
        n += k;
        next += k * h->trefi;
    }
    pc->next_refresh_ps = next;
    pc->bus_free_ps = um_max(pc->bus_free_ps, re);
    h->refreshes += n;
    hbm_bank *b = &h->banks[p * h->nbanks];
    for (uint64_t i = 0; i < h->nbanks; i++) {
        b[i].open_row = HBM_ROW_NONE;
        b[i].ready_ps = um_max(b[i].ready_ps, re);
        b[i].pre_ps = um_max(b[i].pre_ps, re);
    }
}

/* The check, inlined into every piece; the refresh itself (rare) stays out of line. */
static inline void banked_refresh(hbm *h, uint64_t p, uint64_t now)
{
    const hbm_pc *pc = &h->pcs[p];
    if (um_max(now, pc->bus_free_ps) >= pc->next_refresh_ps)
        banked_refresh_due(h, p, now);
}

/* Address mapping (granule G, npc pseudo-channels, row R bytes, B banks):
 *   g = addr / G;  pc = g % npc;  local = (g / npc) x G + addr % G
 *   bank = (local / R) % B;  row = local / R / B
 * so a sequential stream visits every pseudo-channel granule by granule, and within one pc
 * fills a whole row of one bank before moving on to the next bank. */

/* x / d and x % d, by shift and mask when d is a power of two (resolved once at hbm_new).
 * The banked model's functions take p2, a compile-time constant: 1 in the copy used when the
 * whole geometry is powers of two (every preset), so that copy has neither the tests nor
 * the divisions; 0 in the general copy, which tests each shift. */
static inline uint64_t hbm_div(uint64_t x, uint64_t d, int shift, const int p2)
{
    return p2 || shift >= 0 ? x >> shift : x / d;
}

static inline uint64_t hbm_mod(uint64_t x, uint64_t d, int shift, const int p2)
{
    return p2 || shift >= 0 ? x & (d - 1) : x % d;
}

/* x * d, by shift when d is a power of two. */
static inline uint64_t hbm_mul(uint64_t x, uint64_t d, int shift, const int p2)
{
    return p2 || shift >= 0 ? x << shift : x * d;
}

/* Bank b of pseudo-channel p (the array is pseudo-channel major). */
static inline hbm_bank *banked_bank(const hbm *h, uint64_t p, uint64_t b, const int p2)
{
    return &h->banks[hbm_mul(p, h->nbanks, h->bank_shift, p2) + b];
}

/* Bus time of a piece of `bytes` (whole bursts) on one pseudo-channel. */
static inline uint64_t banked_xfer(const hbm *h, uint64_t bytes, const int p2)
{
    uint64_t bursts = bytes == h->granule
                          ? h->granule_bursts
                          : hbm_div(bytes + h->burst_bytes - 1, h->burst_bytes, h->burst_shift, p2);
    return bursts <= h->nxfer ? h->xfer_ps[bursts]
                              : hbm_xfer_ps(bursts * h->burst_bytes, h->bus_ps_per_byte);
}

/* Row-state counters, accumulated by a walk and added to the hbm's once at its end. */
typedef struct hbm_tally {
    uint64_t hits, misses, conflicts, turnarounds;
    uint64_t gap; /* bus idle while a request waited on bank timing or refresh (banked_open) */
} hbm_tally;

/* Add a walk's row tally and bus time to the counters. */
static inline void banked_tally_add(hbm *h, const hbm_tally *t, uint64_t busy_ps)
{
    h->row_hits += t->hits;
    h->row_misses += t->misses;
    h->row_conflicts += t->conflicts;
    h->turnarounds += t->turnarounds;
    h->bus_busy_ps += busy_ps;
    h->bus_gap_ps += t->gap;
}

/* Add a walk on pseudo-channel p to the counters: its row tally, bus time and bytes. */
static inline void banked_account(hbm *h, uint64_t p, const hbm_tally *t, uint64_t busy_ps,
                                  uint64_t bytes, const int p2)
{
    banked_tally_add(h, t, busy_ps);
    h->ch_bytes[hbm_div(p, h->npseudo, h->pseudo_shift, p2)] += bytes;
}

/* The command side of a piece at local offset `local` of pseudo-channel p, issued at `now`:
 * refresh if due, open the row, turn the bus around. Returns the earliest start of the
 * piece's data and sets *bank. Timing, all per pseudo-channel in issue order:
 *   row hit:      cas = max(now, bank.ready)
 *   row closed:   act = max(now, bank.ready);                    cas = act + tRCD
 *   row conflict: pre = max(now, bank.ready, bank.pre);  act = pre + tRP;  cas = act + tRCD
 *   data start  = max(cas + tCL, bus_free [+ tWTR or tRTW if the bus direction changes])
 * The column latency of writes is taken as tCL too (no tCWL key). Activates on other banks
 * proceed while this bank's data occupies the bus, so bank-level parallelism emerges from
 * bank.ready being per bank and bus_free per pseudo-channel. Always inlined: it is the
 * per-row step of every walk. banked_open_row takes the bank and row already mapped. */
static inline __attribute__((always_inline)) uint64_t
banked_open_row(hbm *h, uint64_t p, uint64_t bank_index, uint64_t row, int is_write, uint64_t now,
                hbm_bank **bank, hbm_tally *t, const int p2)
{
    hbm_pc *pc = &h->pcs[p];
    uint64_t prev = pc->bus_free_ps; /* the bus end of the requests ahead of this one */
    banked_refresh(h, p, now);
    hbm_bank *b = banked_bank(h, p, bank_index, p2);
    *bank = b;

    uint64_t cas;
    if (b->open_row == row) {
        cas = um_max(now, b->ready_ps);
        t->hits++;
    } else {
        uint64_t act = um_max(now, b->ready_ps);
        if (b->open_row != HBM_ROW_NONE) {
            act = um_max(act, b->pre_ps) + h->trp;
            t->conflicts++;
        }
        t->misses++;
        b->open_row = row;
        b->act_ps = act;
        b->ready_ps = act + h->trcd;
        cas = b->ready_ps;
    }

    uint64_t bus = pc->bus_free_ps;
    if (pc->dir >= 0 && pc->dir != is_write) {
        bus += is_write ? h->trtw : h->twtr;
        t->turnarounds++;
    }
    pc->dir = is_write;
    uint64_t start = um_max(cas + h->tcl, bus);
    /* Queued behind earlier data (issued before the bus freed): the bus then idles until
     * this piece's data starts only for bank timing, a turnaround or a refresh; that gap is
     * lost bandwidth with work waiting (hbm.busy_demand_ps), unlike an idle bus's latency. */
    if (now < prev)
        t->gap += start - prev;
    return start;
}

static inline __attribute__((always_inline)) uint64_t banked_open(hbm *h, uint64_t p,
                                                                  uint64_t local, int is_write,
                                                                  uint64_t now, hbm_bank **bank,
                                                                  hbm_tally *t, const int p2)
{
    uint64_t rowi = hbm_div(local, h->row_bytes, h->row_shift, p2);
    return banked_open_row(h, p, hbm_mod(rowi, h->nbanks, h->bank_shift, p2),
                           hbm_div(rowi, h->nbanks, h->bank_shift, p2), is_write, now, bank, t, p2);
}

/* The data side once a piece of a row (or a run of pieces) ends at `end` on pc's bus:
 *   bank.pre = max(act + tRAS, data end - tCL)   (the column command really issues tCL
 *              before its bus slot; the row stays open until that burst is read) */
static inline void banked_close(hbm *h, hbm_pc *pc, hbm_bank *b, uint64_t end)
{
    pc->bus_free_ps = end;
    b->pre_ps = um_max(b->act_ps + h->tras, end - h->tcl);
}

/* Of m pieces of transfer time x that could follow, in the open row, a piece whose data
 * ends at e0, how many stream before a refresh falls due. A follower is a row hit on the
 * same bus direction, so its data starts when the previous data ends (after k followers the
 * data ends at e0 + k x); it sees a refresh only once max(now, bus_free) reaches the due
 * time R, so the run stops after ceil((R - e0) / x) followers, or none if R <= max(now, e0).
 * The next piece then opens its row again, after the refresh. */
static inline uint64_t banked_followers(const hbm_pc *pc, uint64_t m, uint64_t e0, uint64_t x,
                                        uint64_t now)
{
    uint64_t rdue = pc->next_refresh_ps;
    if (m == 0 || rdue <= um_max(now, e0))
        return 0;
    if (x && e0 + (m - 1) * x >= rdue)
        return (rdue - e0 + x - 1) / x;
    return m;
}

/* Rows of a regular walk in a bank cycle, in closed form. A walk of pieces `pitch` apart
 * (pitch a divisor or a multiple of the row) opens, from an aligned row on, rows rowi,
 * rowi + dr, rowi + 2 dr, ... (dr = 1 or pitch / R), each holding k pieces (R / pitch or 1),
 * so its banks repeat with period Pb = B / gcd(dr, B) and every full row puts Y = k x X_b on
 * the bus. Suppose the next Pb rows j = 0..Pb-1 find their bank b with another row open and
 *   (i)   pre_b >= max(now, ready_b)                      so act_j = pre_b + tRP,
 *   (ii)  pre_b + tRP + tRCD + tCL <= E + j Y             so the row's data starts when the
 *                                                         bus frees (E = bus_free now),
 *   (iii) pre_b + tRP + max(tRAS, tRCD) <= E + (j+1) Y - tCL   so the new pre_b is its
 *                                                         data end - tCL (and >= ready);
 * and tRP + tRCD <= (Pb - 1) Y, tRP + max(tRAS, tRCD) <= Pb Y. Then (i)-(iii) hold again for
 * the next cycle (the bank's next row comes Pb rows, Pb Y of bus time, later), so by
 * induction every row j < N is bus-bound: it ends at E + (j+1) Y, and a bank last opened at
 * row j (j >= Pb) was activated at E + (j-Pb+1) Y - tCL + tRP, the end of its previous row
 * minus tCL plus tRP. N stops before the first row whose open or followers would see a
 * refresh due (E + j Y + (k-1) X_b >= next refresh) and at the last full row. The cost is
 * per bank of the cycle, not per row; returns N (0: the conditions do not hold, walk on). */
static uint64_t banked_cycle(hbm *h, uint64_t p, uint64_t rowi, uint64_t dr, uint64_t Pb,
                             uint64_t k, uint64_t rows, uint64_t x, uint64_t now, hbm_tally *t)
{
    hbm_pc *pc = &h->pcs[p];
    uint64_t E = pc->bus_free_ps, Y = k * x, mx = Y - x, rdue = pc->next_refresh_ps;
    uint64_t trp = h->trp, trcd = h->trcd, tcl = h->tcl, tras = h->tras;
    uint64_t slow = tras > trcd ? tras : trcd;
    if (trp + trcd > (Pb - 1) * Y || trp + slow > Pb * Y || rdue <= E + mx)
        return 0;
    uint64_t n = (rdue - E - mx - 1) / Y + 1;
    n = n < rows ? n : rows;
    if (n < Pb)
        return 0;
    for (uint64_t j = 0; j < Pb; j++) {
        uint64_t ri = rowi + j * dr;
        const hbm_bank *b = banked_bank(h, p, ri % h->nbanks, 0);
        uint64_t pre = b->pre_ps;
        if (b->open_row == HBM_ROW_NONE || b->open_row == ri / h->nbanks || pre < now ||
            pre < b->ready_ps || pre + trp + trcd + tcl > E + j * Y ||
            pre + trp + slow + tcl > E + (j + 1) * Y)
            return 0;
    }
    for (uint64_t j = 0; j < Pb; j++) {
        uint64_t last = j + (n - 1 - j) / Pb * Pb, ri = rowi + last * dr;
        hbm_bank *b = banked_bank(h, p, ri % h->nbanks, 0);
        uint64_t act = last == j ? b->pre_ps + trp : E + (last - Pb + 1) * Y - tcl + trp;
        b->open_row = ri / h->nbanks;
        b->act_ps = act;
        b->ready_ps = act + trcd;
        b->pre_ps = um_max(act + tras, E + (last + 1) * Y - tcl);
    }
    pc->bus_free_ps = E + n * Y;
    t->misses += n;
    t->conflicts += n;
    t->hits += n * (k - 1);
    return n;
}

/* cnt pieces of b bytes at local offsets ls, ls + pitch, ... of pseudo-channel p, each inside
 * one granule, issued at `now` in that order; pitch 0 puts every piece in the row of ls (a
 * run of granules of one row, whose exact offsets do not change the timing). Per row: the
 * first piece opens it (banked_open) and ends at E0 = data start + X_b (X_b the transfer
 * time of b bytes); the pieces that follow it in the same row stream in closed form
 * (banked_followers):
 *   after m followers:  end = E0 + m x X_b;  bank.pre = max(act + tRAS, end - tCL)
 * stopping where a refresh falls due (the next piece then opens its row again, after the
 * refresh). The cost is per row touched, not per piece; counters are added once. */
static inline __attribute__((always_inline)) uint64_t banked_seq(hbm *h, uint64_t p, uint64_t ls,
                                                                 uint64_t b, uint64_t pitch,
                                                                 uint64_t cnt, int is_write,
                                                                 uint64_t now, const int p2)
{
    uint64_t end = now, x = banked_xfer(h, b, p2), pieces = 0;
    hbm_pc *pc = &h->pcs[p];
    hbm_tally t = {0};
    /* A regular walk long enough for whole bank cycles (banked_cycle): k pieces per row,
     * rows dr apart, banks repeating every Pb rows; tried at an aligned row every Pb rows. */
    uint64_t R = h->row_bytes, k = 0, dr = 0, Pb = 0, rows = 0, next_try = 0;
    if (pitch && cnt >= h->nbanks) {
        if (pitch < R && R % pitch == 0) {
            k = R / pitch;
            dr = 1;
        } else if (pitch >= R && pitch % R == 0) {
            k = 1;
            dr = pitch / R;
        }
        Pb = k ? h->nbanks / um_gcd(dr % h->nbanks, h->nbanks) : 0;
    }
    while (cnt) {
        if (Pb > 1 && rows >= next_try && cnt >= Pb * k && pc->dir == is_write &&
            hbm_mod(ls, R, h->row_shift, p2) < (k > 1 ? pitch : R)) {
            uint64_t rowi = hbm_div(ls, R, h->row_shift, p2);
            uint64_t n = banked_cycle(h, p, rowi, dr, Pb, k, cnt / k, x, now, &t);
            if (n) {
                end = pc->bus_free_ps;
                pieces += n * k;
                cnt -= n * k;
                ls += n * k * pitch;
                rows += n;
                continue;
            }
            next_try = rows + Pb;
        }
        rows++;
        hbm_bank *bk;
        uint64_t e0 = banked_open(h, p, ls, is_write, now, &bk, &t, p2) + x;
        uint64_t rend = ls - hbm_mod(ls, h->row_bytes, h->row_shift, p2) + h->row_bytes;
        uint64_t m = 0; /* followers: the further pieces starting in this row */
        ls += pitch;
        if (--cnt && ls < rend) {
            if (pitch == 0)
                m = cnt;
            else if (pitch == h->granule)
                m = hbm_div(rend - ls + pitch - 1, pitch, h->gran_shift, p2);
            else
                m = (rend - ls + pitch - 1) / pitch;
            m = banked_followers(pc, m < cnt ? m : cnt, e0, x, now);
        }
        end = e0 + m * x;
        banked_close(h, pc, bk, end);
        t.hits += m;
        pieces += m + 1;
        ls += m * pitch;
        cnt -= m;
    }
    banked_account(h, p, &t, pieces * x, pieces * b, p2);
    return end;
}

/* One piece of `bytes` inside one granule, at local offset `local` of pseudo-channel p,
 * issued at `now`; returns the end of its data. */
static inline __attribute__((always_inline)) uint64_t banked_piece(hbm *h, uint64_t p,
                                                                   uint64_t local, uint64_t bytes,
                                                                   int is_write, uint64_t now,
                                                                   const int p2)
{
    return banked_seq(h, p, local, bytes, 0, 1, is_write, now, p2);
}

/* The contiguous local range [ls, le) of pseudo-channel p, issued at `now`, piece by piece
 * in local order, exactly as banked_piece would time it one granule at a time; but the whole
 * granules that follow a piece in the same row stream in closed form (banked_followers, X =
 * one granule's transfer):
 *   after m followers:  end = E0 + m x X;  bank.pre = max(act + tRAS, end - tCL);  hits += m
 * The cost is per row touched, not per granule; counters are added once. */
static inline __attribute__((always_inline)) uint64_t
banked_run(hbm *h, uint64_t p, uint64_t ls, uint64_t le, int is_write, uint64_t now, const int p2)
{
    uint64_t end = now, X = h->granule_xfer_ps, busy = 0, bytes = 0;
    hbm_pc *pc = &h->pcs[p];
    hbm_tally t = {0};
    while (ls < le) {
        uint64_t gend = ls - hbm_mod(ls, h->granule, h->gran_shift, p2) + h->granule;
        uint64_t rend = ls - hbm_mod(ls, h->row_bytes, h->row_shift, p2) + h->row_bytes;
        uint64_t pe = gend < le ? gend : le, x0 = banked_xfer(h, pe - ls, p2);
        hbm_bank *bk;
        uint64_t e0 = banked_open(h, p, ls, is_write, now, &bk, &t, p2) + x0;
        busy += x0;
        bytes += pe - ls;
        ls = pe;
        /* Followers only while the row lasts: below ls when a granule spans rows. */
        uint64_t lim = rend < le ? rend : le;
        uint64_t m = lim > ls ? hbm_div(lim - ls, h->granule, h->gran_shift, p2) : 0;
        m = banked_followers(pc, m, e0, X, now);
        end = e0 + m * X;
        banked_close(h, pc, bk, end);
        t.hits += m;
        busy += m * X;
        bytes += m * h->granule;
        ls += m * h->granule;
    }
    banked_account(h, p, &t, busy, bytes, p2);
    return end;
}

/* n (>= 1) whole granules of pseudo-channel p from the granule-aligned local offset ls on,
 * all in one row, issued at `now`: banked_run's walk for that common case (a wide
 * contiguous access gives every pc such a run), with no piece splitting. The first granule
 * opens the row (banked_open), the n - 1 others follow it (banked_followers) unless a refresh
 * falls due, after which the next granule opens the row again. Counters go to the caller's tally;
 * returns the end of the last data. */
static inline __attribute__((always_inline)) uint64_t banked_rowrun(hbm *h, uint64_t p, uint64_t ls,
                                                                    uint64_t n, int is_write,
                                                                    uint64_t now, hbm_tally *t,
                                                                    const int p2)
{
    uint64_t X = h->granule_xfer_ps, end;
    hbm_pc *pc = &h->pcs[p];
    for (;;) { /* once, or again after the refresh that cut the followers short */
        hbm_bank *bk;
        uint64_t e0 = banked_open(h, p, ls, is_write, now, &bk, t, p2) + X;
        uint64_t m = banked_followers(pc, n - 1, e0, X, now);
        end = e0 + m * X;
        banked_close(h, pc, bk, end);
        t->hits += m;
        n -= m + 1;
        if (!n)
            return end;
        ls += (m + 1) * h->granule;
    }
}

/* Split the access by pseudo-channel: granules g, g + npc, g + 2 npc, ... of the access all
 * land in one pc at consecutive local offsets, so each pc receives one contiguous local
 * range. Pseudo-channels share no state, so timing them one after another equals timing the
 * granules in address order. The access completes when its last data beat has moved. */
static inline __attribute__((always_inline)) uint64_t
banked_access(hbm *h, uint64_t addr, uint64_t bytes, int is_write, uint64_t now, const int p2)
{
    uint64_t end = addr + bytes, G = h->granule;
    uint64_t g0 = hbm_div(addr, G, h->gran_shift, p2), g1 = hbm_div(end - 1, G, h->gran_shift, p2);
    uint64_t ng = g1 - g0 + 1, npcs = ng < h->npc ? ng : h->npc;
    uint64_t p = hbm_mod(g0, h->npc, h->pc_shift, p2), q = hbm_div(g0, h->npc, h->pc_shift, p2);
    if (ng == 1) /* the common small request (a strided DMA's block): one piece */
        return banked_piece(h, p, q * G + (addr - g0 * G), bytes, is_write, now, p2);
    uint64_t done = now;
    if (!hbm_mod(addr, G, h->gran_shift, p2) && !hbm_mod(end, G, h->gran_shift, p2) &&
        ng >= h->npc) {
        /* Whole granules on every pc: pcs p.. get c + 1 or c granules from local q (q + 1
         * for those after the wrap to pc 0); when a pc's run stays in one row, it is one
         * banked_rowrun. The pcs with c + 1 granules are the first ng % npc from p. */
        uint64_t c = hbm_div(ng, h->npc, h->pc_shift, p2),
                 extra = ng - hbm_mul(c, h->npc, h->pc_shift, p2);
        uint64_t R = h->row_bytes, ls = q * G;
        hbm_tally t = {0};
        uint64_t grans = 0;
        for (uint64_t j = 0; j < h->npc; j++) {
            uint64_t n = c + (j < extra), le = ls + n * G;
            uint64_t e;
            if (hbm_div(ls, R, h->row_shift, p2) == hbm_div(le - 1, R, h->row_shift, p2)) {
                e = banked_rowrun(h, p, ls, n, is_write, now, &t, p2);
                h->ch_bytes[hbm_div(p, h->npseudo, h->pseudo_shift, p2)] += n * G;
                grans += n;
            } else {
                e = banked_run(h, p, ls, le, is_write, now, p2);
            }
            done = um_max(done, e);
            if (++p == h->npc) {
                p = 0;
                ls += G;
            }
        }
        banked_tally_add(h, &t, grans * h->granule_xfer_ps);
        return done;
    }
    for (uint64_t j = 0; j < npcs; j++) {
        uint64_t g = g0 + j;
        uint64_t cnt = ng > h->npc ? hbm_div(g1 - g, h->npc, h->pc_shift, p2) : 0;
        uint64_t ls = q * G + (j == 0 ? addr - g0 * G : 0);
        uint64_t le = (q + cnt) * G + (g + cnt * h->npc == g1 ? end - g1 * G : G);
        if (cnt == 0) /* one piece inside one granule: nothing to run in closed form */
            done = um_max(done, banked_piece(h, p, ls, le - ls, is_write, now, p2));
        else
            done = um_max(done, banked_run(h, p, ls, le, is_write, now, p2));
        if (++p == h->npc) {
            p = 0;
            q++;
        }
    }
    return done;
}

/* n whole granules, one on each of the pseudo-channels p .. p + n - 1 (no wrap), all at local
 * offset `local`, issued at `now`, in pc order: per pc banked_open then banked_close (a piece
 * of one granule, X = its transfer), with the address mapping done once (every pc sees the
 * same bank and row). Returns the latest data end; row counters and the bus gap go to *t. */
static inline __attribute__((always_inline)) uint64_t banked_sweep(hbm *h, uint64_t p, uint64_t n,
                                                                   uint64_t local, int is_write,
                                                                   uint64_t now, hbm_tally *t,
                                                                   const int p2)
{
    uint64_t rowi = hbm_div(local, h->row_bytes, h->row_shift, p2);
    uint64_t bank = hbm_mod(rowi, h->nbanks, h->bank_shift, p2);
    uint64_t row = hbm_div(rowi, h->nbanks, h->bank_shift, p2), done = now;
    for (uint64_t q = p; q < p + n; q++) {
        hbm_bank *bk;
        uint64_t end =
            banked_open_row(h, q, bank, row, is_write, now, &bk, t, p2) + h->granule_xfer_ps;
        banked_close(h, &h->pcs[q], bk, end);
        h->ch_bytes[hbm_div(q, h->npseudo, h->pseudo_shift, p2)] += h->granule;
        done = um_max(done, end);
    }
    return done;
}

/* Strided blocks of whole, aligned granules (block, stride and addr multiples of G), walked
 * granule by granule in address order with index arithmetic only: each granule is one piece
 * (banked_open, then its data on the bus, banked_close), the granules of a block on
 * consecutive pcs (banked_sweep per run of pcs up to the wrap). A granule that follows another
 * of its pc in the same row is a row hit whose data starts when the bus frees (its bank was
 * ready before the previous piece's data started), which is exactly banked_seq's follower
 * rule, so this equals one banked_seq per run of granules in one row, refreshes included.
 * Counters are added once per request. */
static inline __attribute__((always_inline)) uint64_t
banked_granules(hbm *h, uint64_t addr, uint64_t block, uint64_t stride, uint64_t count,
                int is_write, uint64_t now, const int p2)
{
    uint64_t G = h->granule, nb = hbm_div(block, G, h->gran_shift, p2), done = now;
    hbm_tally t = {0};
    for (uint64_t k = 0; k < count; k++, addr += stride) {
        uint64_t g = hbm_div(addr, G, h->gran_shift, p2);
        uint64_t p = hbm_mod(g, h->npc, h->pc_shift, p2);
        uint64_t local = hbm_mul(hbm_div(g, h->npc, h->pc_shift, p2), G, h->gran_shift, p2);
        for (uint64_t left = nb; left;) {
            uint64_t n = um_min(left, h->npc - p);
            done = um_max(done, banked_sweep(h, p, n, local, is_write, now, &t, p2));
            left -= n;
            p += n;
            if (p == h->npc) {
                p = 0;
                local += G;
            }
        }
    }
    banked_tally_add(h, &t, count * nb * h->granule_xfer_ps);
    return done;
}

/* Strided blocks. When every block lies inside one granule at the same offset (stride a
 * multiple of the granule G), block k is in granule g0 + k S (S = stride / G), so its
 * pseudo-channel cycles with period P = npc / gcd(S, npc): blocks k, k + P, k + 2P, ... all
 * land in one pc, L = S / gcd(S, npc) granules apart in its local space, and the P residues
 * land in P distinct pcs. Pseudo-channels share no state, so timing each residue's blocks in
 * order (banked_seq) equals timing all blocks in address order. Other shapes go block by
 * block through banked_access. */
static inline __attribute__((always_inline)) uint64_t
banked_strided(hbm *h, uint64_t addr, uint64_t block, uint64_t stride, uint64_t count, int is_write,
               uint64_t now, const int p2)
{
    uint64_t G = h->granule, off = hbm_mod(addr, G, h->gran_shift, p2), done = now;
    if (stride >= G && !hbm_mod(stride, G, h->gran_shift, p2) && !off && block > G &&
        !hbm_mod(block, G, h->gran_shift, p2))
        return banked_granules(h, addr, block, stride, count, is_write, now, p2);
    if (stride < G || hbm_mod(stride, G, h->gran_shift, p2) || off + block > G) {
        for (uint64_t k = 0; k < count; k++, addr += stride)
            done = um_max(done, banked_access(h, addr, block, is_write, now, p2));
        return done;
    }
    uint64_t S = hbm_div(stride, G, h->gran_shift, p2), d = um_gcd(S, h->npc);
    uint64_t P = h->npc / d, L = S / d;
    uint64_t g0 = hbm_div(addr, G, h->gran_shift, p2);
    uint64_t p = hbm_mod(g0, h->npc, h->pc_shift, p2), q = hbm_div(g0, h->npc, h->pc_shift, p2);
    uint64_t sp = S % h->npc, sq = S / h->npc;
    uint64_t nr = count < P ? count : P;
    for (uint64_t r = 0; r < nr; r++) {
        uint64_t cnt = (count - 1 - r) / P + 1;
        done = um_max(done, banked_seq(h, p, q * G + off, block, L * G, cnt, is_write, now, p2));
        p += sp;
        q += sq;
        if (p >= h->npc) {
            p -= h->npc;
            q++;
        }
    }
    return done;
}

/* ---- simple model ---------------------------------------------------------------------- */

/* One bus for the whole HBM at peak x efficiency, FCFS:
 *   data start = max(now + latency, bus_free);  done = data start + bytes / (peak x eff)
 * A lone access therefore takes latency + bytes / (peak x eff); concurrent accesses queue
 * behind each other's data but overlap their latency with it. */
static uint64_t simple_access(hbm *h, uint64_t addr, uint64_t bytes, int is_write, uint64_t now)
{
    (void)addr;
    (void)is_write;
    uint64_t xfer = hbm_xfer_ps(bytes, h->simple_ps_per_byte);
    uint64_t start = um_max(now + h->latency_ps, h->simple_bus_free_ps);
    h->simple_bus_free_ps = start + xfer;
    h->bus_busy_ps += xfer;
    for (uint64_t ch = 0; ch < h->nch; ch++) /* evenly; the remainder on the first channels */
        h->ch_bytes[ch] += bytes / h->nch + (ch < bytes % h->nch);
    return start + xfer;
}

/* count blocks back to back on the one bus: the same as count simple_access calls at now
 * (each later block's start max(now + latency, bus_free) is the previous block's end). */
static uint64_t simple_strided(hbm *h, uint64_t addr, uint64_t block, uint64_t stride,
                               uint64_t count, int is_write, uint64_t now)
{
    (void)addr;
    (void)stride;
    (void)is_write;
    uint64_t xfer = hbm_xfer_ps(block, h->simple_ps_per_byte);
    uint64_t start = um_max(now + h->latency_ps, h->simple_bus_free_ps);
    h->simple_bus_free_ps = start + count * xfer;
    h->bus_busy_ps += count * xfer;
    for (uint64_t ch = 0; ch < h->nch; ch++)
        h->ch_bytes[ch] += count * (block / h->nch + (ch < block % h->nch));
    return start + count * xfer;
}

/* The variants, indexed by the hbm.model enum (choices "banked|simple" in config_keys.def). */
/* The banked model's two copies (see hbm_div): powers-of-two geometry, and any geometry. */
static uint64_t banked_access_p2(hbm *h, uint64_t addr, uint64_t bytes, int is_write, uint64_t now)
{
    return banked_access(h, addr, bytes, is_write, now, 1);
}

static uint64_t banked_access_any(hbm *h, uint64_t addr, uint64_t bytes, int is_write, uint64_t now)
{
    return banked_access(h, addr, bytes, is_write, now, 0);
}

static uint64_t banked_strided_p2(hbm *h, uint64_t addr, uint64_t block, uint64_t stride,
                                  uint64_t count, int is_write, uint64_t now)
{
    return banked_strided(h, addr, block, stride, count, is_write, now, 1);
}

static uint64_t banked_strided_any(hbm *h, uint64_t addr, uint64_t block, uint64_t stride,
                                   uint64_t count, int is_write, uint64_t now)
{
    return banked_strided(h, addr, block, stride, count, is_write, now, 0);
}

static const hbm_model hbm_models[] = {
    [CFG_HBM_BANKED] = {.name = "banked",
                        .access = banked_access_any,
                        .strided = banked_strided_any},
    [CFG_HBM_SIMPLE] = {.name = "simple", .access = simple_access, .strided = simple_strided},
};
static const hbm_model hbm_banked_p2 = {
    .name = "banked", .access = banked_access_p2, .strided = banked_strided_p2};

/* ---- common ---------------------------------------------------------------------------- */

hbm *hbm_new(const cfg *c, err *e)
{
    assert(c->hbm_model >= 0 && (size_t)c->hbm_model < sizeof hbm_models / sizeof hbm_models[0]);
    /* The hbm and its arrays (pcs, banks, transfer times, channel bytes) in one block. */
    uint64_t npc = cfg_hbm_channels(c) * c->hbm_pseudo_channels, nch = cfg_hbm_channels(c);
    uint64_t burst = c->hbm_bus_bits / 8 * c->hbm_burst_length;
    burst = burst ? burst : 1;
    uint64_t bursts = (c->hbm_interleave_bytes + burst - 1) / burst;
    uint64_t nxfer = bursts < 4096 ? bursts : 4096;
    size_t n_banks = npc * c->hbm_banks;
    hbm *h = calloc(1, sizeof *h + npc * sizeof *h->pcs + n_banks * sizeof *h->banks +
                           (nxfer + 1 + nch) * sizeof(uint64_t));
    if (!h) {
        err_setk(e, ERR_NOMEM, "hbm: out of memory");
        return NULL;
    }
    h->pcs = (hbm_pc *)(h + 1);
    h->banks = (hbm_bank *)(h->pcs + npc);
    h->xfer_ps = (uint64_t *)(h->banks + n_banks);
    h->ch_bytes = h->xfer_ps + nxfer + 1;
    h->model = &hbm_models[c->hbm_model];
    h->capacity = cfg_hbm_bytes(c);
    h->npc = npc;
    h->nbanks = c->hbm_banks;
    h->granule = c->hbm_interleave_bytes;
    h->row_bytes = c->hbm_row_bytes;
    h->burst_bytes = burst;
    /* bus_bits x gbps_per_pin Gb/s = bus_bits x gbps / 8 bytes/ns */
    double pc_bytes_per_ps = (double)c->hbm_bus_bits * c->hbm_gbps_per_pin / 8.0 / 1000.0;
    h->bus_ps_per_byte = 1.0 / pc_bytes_per_ps;
    h->peak_bytes_per_ps = pc_bytes_per_ps * (double)h->npc;
    /* JEDEC-style timings: ns in the config, ps here */
    const double ns[] = {c->hbm_tcl_ns,  c->hbm_trcd_ns,  c->hbm_trp_ns,  c->hbm_tras_ns,
                         c->hbm_trfc_ns, c->hbm_trefi_ns, c->hbm_twtr_ns, c->hbm_trtw_ns};
    uint64_t *const ps[] = {&h->tcl,  &h->trcd,  &h->trp,  &h->tras,
                            &h->trfc, &h->trefi, &h->twtr, &h->trtw};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        *ps[i] = hbm_ns_to_ps(ns[i]);
    if (h->trefi == 0)
        h->trefi = 1;
    /* log2 of the geometry, for the shift-and-mask copy of the banked model */
    const uint64_t geom[] = {h->npc,       h->nbanks,      h->granule,
                             h->row_bytes, h->burst_bytes, c->hbm_pseudo_channels};
    int *const shift[] = {&h->pc_shift,  &h->bank_shift,  &h->gran_shift,
                          &h->row_shift, &h->burst_shift, &h->pseudo_shift};
    int all_p2 = 1;
    for (size_t i = 0; i < sizeof geom / sizeof geom[0]; i++) {
        *shift[i] = hbm_log2(geom[i]);
        all_p2 &= *shift[i] >= 0;
    }
    if (h->model == &hbm_models[CFG_HBM_BANKED] && all_p2)
        h->model = &hbm_banked_p2;
    h->granule_xfer_ps = hbm_xfer_ps(bursts * burst, h->bus_ps_per_byte);
    h->granule_bursts = bursts;
    h->nxfer = nxfer;
    for (uint64_t k = 0; k <= h->nxfer; k++)
        h->xfer_ps[k] = hbm_xfer_ps(k * h->burst_bytes, h->bus_ps_per_byte);
    h->simple_ps_per_byte = 1.0 / (h->peak_bytes_per_ps * c->hbm_efficiency);
    h->latency_ps = hbm_ns_to_ps(c->hbm_latency_ns);
    h->nbus = c->hbm_model == CFG_HBM_SIMPLE ? 1 : h->npc;
    h->nch = nch;
    h->npseudo = c->hbm_pseudo_channels;
    for (uint64_t p = 0; p < h->npc; p++) {
        h->pcs[p].dir = -1;
        /* All pseudo-channels are first due at tREFI, not staggered: accesses are
         * interleaved over every pseudo-channel, so with a stagger some pc is almost always
         * refreshing (npc x tRFC > tREFI) and nearly every wide access would wait on one.
         * In step, the memory as a whole loses about tRFC / tREFI. */
        h->pcs[p].next_refresh_ps = h->trefi;
    }
    for (uint64_t i = 0; i < n_banks; i++)
        h->banks[i].open_row = HBM_ROW_NONE;
    return h;
}

void hbm_free(hbm *h)
{
    free(h);
}

uint64_t hbm_access(hbm *h, uint64_t addr, uint64_t bytes, int is_write, uint64_t now_ps)
{
    assert(bytes > 0 && addr < h->capacity && bytes <= h->capacity - addr);
    if (is_write)
        h->bytes_written += bytes;
    else
        h->bytes_read += bytes;
    return h->model->access(h, addr, bytes, is_write != 0, now_ps);
}

uint64_t hbm_access_strided(hbm *h, uint64_t addr, uint64_t block, uint64_t stride, uint64_t count,
                            int is_write, uint64_t now_ps)
{
    assert(block > 0 && count > 0 && stride >= block && addr < h->capacity);
    assert(block <= h->capacity - addr && count - 1 <= (h->capacity - addr - block) / stride);
    if (is_write)
        h->bytes_written += count * block;
    else
        h->bytes_read += count * block;
    return h->model->strided(h, addr, block, stride, count, is_write != 0, now_ps);
}

double hbm_peak_bytes_per_ps(const hbm *h)
{
    return h->peak_bytes_per_ps;
}

static double hbm_row_hit_rate(const void *ctx)
{
    const hbm *h = ctx;
    uint64_t n = h->row_hits + h->row_misses;
    return n ? (double)h->row_hits / (double)n : 0.0;
}

static double hbm_busy_ps(const void *ctx)
{
    const hbm *h = ctx;
    return (double)h->bus_busy_ps / (double)h->nbus;
}

static double hbm_busy_demand_ps(const void *ctx)
{
    const hbm *h = ctx;
    return (double)(h->bus_busy_ps + h->bus_gap_ps) / (double)h->nbus;
}

static double hbm_peak_gbs(const void *ctx)
{
    const hbm *h = ctx;
    return h->peak_bytes_per_ps * 1000.0;
}

void hbm_register_stats(hbm *h, stats_reg *r)
{
    static const stats_def hbm_defs[] = {
        STATS_COUNTER(hbm, bytes_read, "B", "bytes read from HBM"),
        STATS_COUNTER(hbm, bytes_written, "B", "bytes written to HBM"),
        STATS_COUNTER(hbm, row_hits, "granules", "accesses to an already open row (banked)"),
        STATS_COUNTER(hbm, row_misses, "activates", "accesses that activated a row (banked)"),
        STATS_COUNTER(hbm, row_conflicts, "precharges",
                      "row misses that first closed another open row (banked)"),
        STATS_COUNTER(hbm, refreshes, "", "all-bank refreshes over all pseudo-channels (banked)"),
        STATS_COUNTER(hbm, turnarounds, "", "bus read/write direction changes (banked)"),
        STATS_U64(hbm, bus_busy_ps, "bus_busy_sum_ps", "ps",
                  "data-bus occupancy summed over all buses"),
        STATS_U64(hbm, bus_gap_ps, "bus_gap_sum_ps", "ps",
                  "data-bus idle time with a request queued (row timing, turnaround, refresh), "
                  "summed over all buses (banked)"),
        STATS_FORMULA(hbm_busy_ps, "busy_ps", "ps", "data-bus occupancy averaged over the buses"),
        STATS_FORMULA(hbm_busy_demand_ps, "busy_demand_ps", "ps",
                      "data bus busy or idle with a request queued, averaged over the buses"),
        STATS_FORMULA(hbm_row_hit_rate, "row_hit_rate", "", "row hits / (row hits + row misses)"),
        STATS_FORMULA(hbm_peak_gbs, "peak_gbs", "GB/s", "peak bandwidth of the configured HBM"),
    };
    stats_table(r, "hbm", h, hbm_defs, STATS_NDEFS(hbm_defs));
    /* Per channel, for the timeline's channel tracks (sim/timeline.c finds them by name). */
    for (uint64_t ch = 0; ch < h->nch; ch++) {
        char nm[32];
        snprintf(nm, sizeof nm, "ch%llu_bytes", (unsigned long long)ch);
        stats_u64(r, "hbm", nm, "B", "bytes moved on this channel (both pseudo-channels)",
                  &h->ch_bytes[ch]);
    }
}
