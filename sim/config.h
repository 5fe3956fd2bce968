/* config.h - the machine configuration: one struct generated from config_keys.def.
 *
 * YAML files are nested maps whose paths are the dotted key names (`mxu: {rows: 256}` is
 * `mxu.rows`). A file may start with `include: other.yaml` (path relative to the including
 * file, or a bare preset name such as `v7` looked up in the presets directory), whose keys
 * it then overrides. Unknown keys, wrong types and out-of-range values are errors naming
 * file, line and key; nothing is silently defaulted except keys never mentioned. */
#ifndef TPU_CONFIG_H
#define TPU_CONFIG_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "isa.h"

#define CFG_STR_MAX 64

#define CFG_FIELD_INT(f)  uint64_t f;
#define CFG_FIELD_DBL(f)  double f;
#define CFG_FIELD_BOOL(f) int f;
#define CFG_FIELD_ENUM(f) int f;
#define CFG_FIELD_STR(f)  char f[CFG_STR_MAX];

/* Key ids in config_keys.def order (CFG_K_hbm_trefi_ns, ...), CFG_KEY_COUNT keys. */
enum cfg_key_id {
#define CFG_KEY(f, ...) CFG_K_##f,
#include "config_keys.def"
#undef CFG_KEY
    CFG_KEY_COUNT
};

/* A load reads a file and at most 8 nested includes, one per file (config.c). */
#define CFG_FILES_MAX 9

/* Where a key got its value, for cross-key errors: file 0 means the default or a cfg_set
 * (-p) override; file i > 0 is line `line` of files[i - 1]. */
typedef struct cfg_origin {
    uint32_t line;
    uint8_t file;
} cfg_origin;

typedef struct cfg {
#define CFG_KEY(f, name, T, ...) CFG_FIELD_##T(f)
#include "config_keys.def"
#undef CFG_KEY
    char source[PATH_MAX]; /* file the config was loaded from ("" for defaults) */
    cfg_origin origin[CFG_KEY_COUNT];
    char files[CFG_FILES_MAX][PATH_MAX]; /* the files the load read, in the order opened */
} cfg;

/* Values of ENUM keys, in the order of their choices string. */
enum { CFG_HBM_BANKED, CFG_HBM_SIMPLE };

typedef enum cfg_type { CFG_T_INT, CFG_T_DBL, CFG_T_BOOL, CFG_T_ENUM, CFG_T_STR } cfg_type;

typedef struct cfg_key {
    const char *name;
    cfg_type type;
    const char *unit;
    double min, max;
    const char *def;
    const char *choices;
    const char *help;
    size_t offset; /* of the field in struct cfg */
} cfg_key;

/* The key table, in declaration order. */
const cfg_key *cfg_keys(size_t *count);
const cfg_key *cfg_key_find(const char *name);

/* Fill c with every key's default. */
void cfg_defaults(cfg *c);
/* Defaults, then the file (and its includes). `presets_dir` resolves bare preset names;
 * NULL means the built-in search path (TPUSIM_PRESETS env, ./configs, install dir). */
int cfg_load(cfg *c, const char *path, const char *presets_dir, err *e);
/* The i-th directory (from 0) of the preset search path into out: presets_dir (when not
 * NULL or empty), each entry of $TPUSIM_PRESETS (':'-separated), ./configs,
 * BINDIR/../share/tpusim/configs, the install directory. Returns 1 (out is "" when the
 * directory does not fit in n), or 0 past the end. Model
 * presets (gen --model) live in the models/ subfolder of the same directories. */
int cfg_preset_dir(const char *presets_dir, unsigned i, char *out, size_t n);
/* Set one key from text, as from a CLI override `-p key=value`; `where` names the source
 * for errors (e.g. "-p" or "file.yaml:12"). */
int cfg_set(cfg *c, const char *key, const char *value, const char *where, err *e);
/* Cross-key checks (e.g. at least one MXU datatype supported, hbm.tREFI_ns above
 * hbm.tRFC_ns, enough ICI links for ici.dims). Every command runs it after loading and
 * overrides; an error starts with FILE:LINE of the key set in a file, when one was. */
int cfg_check(const cfg *c, err *e);
/* Text of key k's value in c as `tpusim config` prints it (units as written there, e.g.
 * "16GiB"), strings without quotes. */
void cfg_format_value(const cfg *c, const cfg_key *k, char *buf, size_t n);
/* Print the resolved config as YAML that cfg_load accepts, with units and help as comments. */
void cfg_dump(const cfg *c, FILE *out);
/* Print the key table: name, type, unit, range, default, help. */
void cfg_help(FILE *out);

/* Derived figures (formulas on the keys, no state). */
double cfg_cycle_ps(const cfg *c);               /* ps per core clock cycle */
double cfg_mxu_rate(const cfg *c, isa_dtype dt); /* rows/cycle, 0 = unsupported */
/* A run models one device: with chip.megacore the whole chip, otherwise one TensorCore with
 * its share of the chip's HBM (docs/architecture.md, "Devices and megacore"). The helpers
 * below give that device's resources; only the cfg_chip_* ones speak for the whole chip. */
unsigned cfg_devices_per_chip(const cfg *c);            /* 1 with chip.megacore, else chip.cores */
unsigned cfg_device_cores(const cfg *c);                /* chip.cores with megacore, else 1 */
double cfg_peak_flops(const cfg *c, isa_dtype dt);      /* device peak FLOP/s for dt */
double cfg_chip_peak_flops(const cfg *c, isa_dtype dt); /* devices per chip x device peak */
double cfg_hbm_peak_bps(const cfg *c);                  /* device's bytes/s: its channels */
uint64_t cfg_hbm_channels(const cfg *c);                /* hbm.channels / devices per chip */
uint64_t cfg_hbm_bytes(const cfg *c);                   /* hbm.bytes / devices per chip */
double cfg_static_w(const cfg *c);                      /* energy.static_w / devices per chip */
double cfg_tdp_w(const cfg *c);                         /* chip.tdp_w / devices per chip */
double cfg_ici_link_bps(const cfg *c);                  /* link direction's B/s / devices */
double cfg_dcn_bps(const cfg *c);                       /* dcn.gbs in B/s / devices */
double cfg_vmem_total_bytes(const cfg *c);              /* device cores x vmem.bytes */
unsigned cfg_mxu_total(const cfg *c);                   /* device cores x mxu.count */

/* Parse "16x16x8" into dims[3] (missing axes = 1); returns the number of axes or -1. */
int cfg_parse_dims(const char *s, unsigned dims[3]);
/* Chips along the torus axes in `mask` (bit a = axis a of ici.dims): the size of a collective
 * group on those axes; 1 for an empty mask. */
uint64_t cfg_axes_chips(const cfg *c, unsigned mask);

#endif
