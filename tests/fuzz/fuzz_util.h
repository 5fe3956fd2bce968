/* fuzz_util.h - scratch files for the libFuzzer harnesses: one private directory per process
 * (under /dev/shm when it exists, so iterations do not touch the disk), removed at exit.
 * The library under test only takes paths, so each input is written to a file first. */
#ifndef TPU_FUZZ_UTIL_H
#define TPU_FUZZ_UTIL_H

#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_dir[256];

static void fuzz_cleanup(void)
{
    DIR *d = opendir(fuzz_dir);
    if (d) {
        struct dirent *de;
        char p[512];
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            snprintf(p, sizeof p, "%s/%s", fuzz_dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(fuzz_dir);
}

/* Path of scratch file `name` in the private directory (created on first use) into out. */
static void fuzz_path(char *out, size_t cap, const char *name)
{
    if (!fuzz_dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/tpusim-fuzz-XXXXXX", base);
        if (!mkdtemp(fuzz_dir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fuzz_cleanup);
    }
    snprintf(out, cap, "%s/%s", fuzz_dir, name);
}

/* The next line of data[0..size) from *start into line (NUL-terminated, cut to cap - 1 bytes);
 * *start moves past its newline. 0 once data is used up. */
static int fuzz_next_line(const uint8_t *data, size_t size, size_t *start, char *line, size_t cap)
{
    if (*start >= size)
        return 0;
    size_t end = *start;
    while (end < size && data[end] != '\n')
        end++;
    size_t len = end - *start < cap - 1 ? end - *start : cap - 1;
    memcpy(line, data + *start, len);
    line[len] = '\0';
    *start = end + 1;
    return 1;
}

/* Write data to path (truncating); aborts on failure since that is the harness's fault. */
static void fuzz_write(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        perror(path);
        abort();
    }
}

/* Read a whole file into a malloc'd buffer (caller frees); NULL if it does not exist. */
static uint8_t *fuzz_slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            uint8_t *nb = realloc(buf, cap);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf)
        abort();
    *size = n;
    return buf;
}

/* Assert that a file does not exist (no stray output after a failed write). */
static void fuzz_assert_absent(const char *path)
{
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "fuzz: %s exists after a failed write\n", path);
        abort();
    }
}

#endif
