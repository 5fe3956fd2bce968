/* ofile.c - output files written through a unique temporary and renamed into place, or
 * directly when the path is a device or FIFO. Assumes POSIX (mkstemp, rename within one
 * directory is atomic) and glibc's fopencookie, through which every write's errno is kept. */
#define _GNU_SOURCE
#include "ofile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OFILE_TEMPS_MAX 64          /* temporaries open at once that a signal can remove */
#define OFILE_LINKS_MAX 40          /* symlinks followed before giving up (as the kernel) */
#define OFILE_BUF       (64 * 1024) /* stdio buffer: one write(2) per 64 KB */
#define OFILE_BASE_KEEP 200         /* bytes of the file name kept in the temporary's name */
#define OFILE_SHOW      160         /* bytes of a second path echoed in a message */

struct ofile {
    FILE *f;
    int fd;
    char *path;   /* as given */
    char *target; /* symlinks resolved: what is renamed onto */
    char *tmp;    /* the temporary, NULL when written directly */
    int slot;     /* registry slot of tmp, -1 if none */
    int err_no;   /* first write or close failure */
};

/* The temporaries being written, for ofile_unlink_temps. A slot is set after the file is
 * created and cleared after it was renamed or removed, so a handler sees only live names;
 * the string is freed only once its slot is clear. */
static _Atomic(char *) ofile_temps[OFILE_TEMPS_MAX];

static int temps_add(char *tmp)
{
    for (int i = 0; i < OFILE_TEMPS_MAX; i++) {
        char *expect = NULL;
        if (atomic_compare_exchange_strong(&ofile_temps[i], &expect, tmp))
            return i;
    }
    return -1; /* full: written as usual, only not removed on a signal */
}

static void temps_del(int slot)
{
    if (slot >= 0)
        atomic_store(&ofile_temps[slot], NULL);
}

void ofile_unlink_temps(void)
{
    for (int i = 0; i < OFILE_TEMPS_MAX; i++) {
        char *p = atomic_load(&ofile_temps[i]);
        if (p)
            unlink(p);
    }
}

static char *ofile_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* The directory part of path ("." if none); malloc'd. */
static char *ofile_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return ofile_strndup(".", 1);
    return ofile_strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

static const char *ofile_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Follow symlinks at the last component of path: returns the final target (malloc'd), which
 * may not exist yet (a dangling link names the file to create), or NULL with errno set. */
static char *ofile_resolve(const char *path)
{
    char *cur = ofile_strndup(path, strlen(path));
    for (int hops = 0; cur; hops++) {
        struct stat st;
        if (lstat(cur, &st) || !S_ISLNK(st.st_mode))
            return cur; /* not a link (or absent: the caller's stat reports why) */
        if (hops == OFILE_LINKS_MAX) {
            free(cur);
            errno = ELOOP;
            return NULL;
        }
        size_t cap = (size_t)st.st_size + 2;
        char *link = malloc(cap);
        ssize_t n = link ? readlink(cur, link, cap) : -1;
        if (n < 0 || (size_t)n >= cap) { /* failed, or changed under us: give up */
            free(link);
            free(cur);
            if (n >= 0)
                errno = EAGAIN;
            return NULL;
        }
        link[n] = '\0';
        char *next;
        if (link[0] == '/' || !strchr(cur, '/')) {
            next = link;
        } else {
            char *dir = ofile_dirname(cur);
            size_t a = dir ? strlen(dir) : 0;
            next = dir ? malloc(a + 1 + (size_t)n + 1) : NULL;
            if (next) {
                memcpy(next, dir, a);
                next[a] = '/';
                memcpy(next + a + 1, link, (size_t)n + 1);
            }
            free(dir);
            free(link);
        }
        free(cur);
        cur = next;
    }
    errno = ENOMEM;
    return NULL;
}

static ssize_t ofile_cookie_write(void *cookie, const char *buf, size_t n)
{
    ofile *o = cookie;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(o->fd, buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (!o->err_no)
                o->err_no = w < 0 ? errno : EIO;
            return 0; /* glibc: 0 = error; errno stays as write(2) left it */
        }
        done += (size_t)w;
    }
    return (ssize_t)n;
}

static int ofile_cookie_close(void *cookie)
{
    ofile *o = cookie;
    int rc = close(o->fd);
    if (rc && !o->err_no)
        o->err_no = errno;
    o->fd = -1;
    return rc;
}

static void ofile_free(ofile *o)
{
    temps_del(o->slot);
    free(o->tmp);
    free(o->target);
    free(o->path);
    free(o);
}

/* A temporary next to target: "DIR/NAME.tmp.XXXXXX", NAME cut to OFILE_BASE_KEEP bytes so
 * the temporary's name stays within NAME_MAX whatever the target's. */
static char *ofile_tmp_name(const char *target)
{
    const char *base = ofile_basename(target);
    size_t dir = (size_t)(base - target), blen = strlen(base);
    if (blen > OFILE_BASE_KEEP)
        blen = OFILE_BASE_KEEP;
    static const char suffix[] = ".tmp.XXXXXX";
    char *t = malloc(dir + blen + sizeof suffix);
    if (t) {
        memcpy(t, target, dir + blen);
        memcpy(t + dir + blen, suffix, sizeof suffix);
    }
    return t;
}

int ofile_open(ofile **out, const char *path, err *e)
{
    *out = NULL;
    if (!path[0])
        return err_set(e, "empty output path");
    ofile *o = calloc(1, sizeof *o);
    if (!o || !(o->path = ofile_strndup(path, strlen(path)))) {
        free(o);
        return err_path(e, path, "out of memory");
    }
    o->fd = -1;
    o->slot = -1;
    if (!strcmp(path, "-")) {
        o->f = stdout;
        *out = o;
        return 0;
    }
    if (!(o->target = ofile_resolve(path))) {
        err_path(e, path, "cannot create: %s", strerror(errno));
        goto out_free;
    }
    struct stat st;
    int exists = !stat(o->target, &st);
    if (!exists && errno != ENOENT) {
        err_path(e, path, "cannot create: %s", strerror(errno));
        goto out_free;
    }
    if ((exists && S_ISDIR(st.st_mode)) || !ofile_basename(o->target)[0]) {
        err_path(e, path, "cannot create: %s", strerror(EISDIR));
        goto out_free;
    }
    if (exists && !S_ISREG(st.st_mode)) { /* device, FIFO, socket: write it in place */
        o->fd = open(o->target, O_WRONLY | O_CLOEXEC);
        if (o->fd < 0) {
            err_path(e, path, "cannot open: %s", strerror(errno));
            goto out_free;
        }
    } else {
        if (!(o->tmp = ofile_tmp_name(o->target))) {
            err_path(e, path, "out of memory");
            goto out_free;
        }
        o->fd = mkostemp(o->tmp, O_CLOEXEC);
        if (o->fd < 0) {
            err_path(e, path, "cannot create: %s", strerror(errno));
            goto out_free;
        }
        o->slot = temps_add(o->tmp);
        mode_t mask = umask(022);
        umask(mask);
        /* a replaced file keeps its permissions; a new one gets what fopen would give */
        if (fchmod(o->fd, exists ? st.st_mode & 07777 : 0666 & ~mask)) {
            err_path(e, path, "cannot create: %s", strerror(errno));
            goto out_unlink;
        }
    }
    cookie_io_functions_t io = {.write = ofile_cookie_write, .close = ofile_cookie_close};
    o->f = fopencookie(o, "w", io);
    if (!o->f) {
        err_path(e, path, "cannot create: %s", strerror(errno));
        goto out_unlink;
    }
    setvbuf(o->f, NULL, _IOFBF, OFILE_BUF);
    *out = o;
    return 0;
out_unlink:
    close(o->fd);
    if (o->tmp)
        unlink(o->tmp);
out_free:
    ofile_free(o);
    return -1;
}

FILE *ofile_stream(const ofile *o)
{
    return o->f;
}

const char *ofile_path(const ofile *o)
{
    return o->path;
}

int ofile_errno(const ofile *o)
{
    return o->err_no;
}

int ofile_close(ofile *o, err *e)
{
    if (o->f == stdout) {
        int bad = fflush(stdout) || ferror(stdout);
        int en = errno;
        ofile_free(o);
        if (bad)
            return err_set(e, "standard output: cannot write: %s", strerror(en ? en : EIO));
        return 0;
    }
    int bad = fflush(o->f) != 0 || ferror(o->f);
    if (fclose(o->f))
        bad = 1;
    o->f = NULL;
    if (bad) {
        int en = o->err_no ? o->err_no : EIO;
        if (o->tmp)
            unlink(o->tmp);
        err_path(e, o->path, "cannot write: %s", strerror(en));
        ofile_free(o);
        return -1;
    }
    if (o->tmp && rename(o->tmp, o->target)) {
        int en = errno;
        unlink(o->tmp);
        err_path(e, o->path, "cannot replace: %s", strerror(en));
        ofile_free(o);
        return -1;
    }
    ofile_free(o);
    return 0;
}

void ofile_abort(ofile *o)
{
    if (!o)
        return;
    if (o->f == stdout) {
        fflush(stdout);
    } else if (o->f) {
        fclose(o->f);
        if (o->tmp)
            unlink(o->tmp);
    }
    ofile_free(o);
}

/* ---- same-file and creatable checks ---- */

typedef struct ofile_id {
    dev_t dev;
    ino_t ino;
    int regular;      /* a regular file or a path to create: overwriting it destroys data */
    const char *name; /* a path to create: its name in directory (dev, ino); else NULL */
    char *target;     /* owns name */
} ofile_id;

/* Identity of output `path` and whether it can be written; fills e on failure. */
static int ofile_out_id(const char *path, const char *role, ofile_id *id, err *e)
{
    memset(id, 0, sizeof *id);
    if (!path[0])
        return err_set(e, "%s: empty output path", role);
    if (!(id->target = ofile_resolve(path)))
        return err_path(e, path, "cannot create the %s output: %s", role, strerror(errno));
    struct stat st;
    const char *base = ofile_basename(id->target);
    if (!stat(id->target, &st)) {
        if (S_ISDIR(st.st_mode))
            return err_path(e, path, "cannot create the %s output: %s", role, strerror(EISDIR));
        id->dev = st.st_dev;
        id->ino = st.st_ino;
        id->regular = S_ISREG(st.st_mode);
        if (!id->regular) /* written in place */
            return access(id->target, W_OK)
                       ? err_path(e, path, "cannot open the %s output: %s", role, strerror(errno))
                       : 0;
    } else if (errno != ENOENT || !base[0]) {
        return err_path(e, path, "cannot create the %s output: %s", role,
                        strerror(base[0] ? errno : EISDIR));
    } else {
        id->regular = 1;
        id->name = base;
    }
    char *dir = ofile_dirname(id->target);
    if (!dir)
        return err_path(e, path, "out of memory");
    int rc = 0;
    if (stat(dir, &st) || (!S_ISDIR(st.st_mode) && (errno = ENOTDIR)) || access(dir, W_OK | X_OK))
        rc = err_path(e, path, "cannot create the %s output: %s", role, strerror(errno));
    else if (id->name)
        id->dev = st.st_dev, id->ino = st.st_ino;
    free(dir);
    return rc;
}

static int ofile_id_same(const ofile_id *a, const ofile_id *b)
{
    if (a->dev != b->dev || a->ino != b->ino || !!a->name != !!b->name)
        return 0;
    return !a->name || !strcmp(a->name, b->name);
}

int ofile_check(const ofile_ref *outs, unsigned nout, const ofile_ref *ins, unsigned nin, err *e)
{
    ofile_id *id = calloc(nout ? nout : 1, sizeof *id);
    if (!id)
        return err_set(e, "out of memory");
    int rc = 0;
    char shown[OFILE_SHOW];
    for (unsigned i = 0; i < nout && !rc; i++) {
        const ofile_ref *o = &outs[i];
        if (!o->path || !strcmp(o->path, "-"))
            continue;
        if (ofile_out_id(o->path, o->role, &id[i], e)) {
            rc = -1;
            break;
        }
        if (!id[i].regular)
            continue; /* a device or FIFO: writing it twice, or reading it, destroys nothing */
        for (unsigned j = 0; j < nin && !rc; j++) {
            struct stat st;
            if (!ins[j].path || !strcmp(ins[j].path, "-") || stat(ins[j].path, &st))
                continue;
            ofile_id in = {.dev = st.st_dev, .ino = st.st_ino};
            if (ofile_id_same(&id[i], &in))
                rc = err_path(e, o->path,
                              "the %s output is the same file as the %s %s; refusing to "
                              "overwrite an input",
                              o->role, ins[j].role, err_shorten(shown, sizeof shown, ins[j].path));
        }
        for (unsigned j = 0; j < i && !rc; j++)
            if (id[j].regular && ofile_id_same(&id[i], &id[j]))
                rc =
                    err_path(e, o->path,
                             "the %s output is the same file as the %s output %s; give each "
                             "output its own file",
                             o->role, outs[j].role, err_shorten(shown, sizeof shown, outs[j].path));
    }
    for (unsigned i = 0; i < nout; i++)
        free(id[i].target);
    free(id);
    return rc;
}
