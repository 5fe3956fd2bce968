/* test_ofile.c - the output-file module: temporaries renamed into place, devices, FIFOs and
 * symlinks written in place (never replaced), unique temporaries, long paths, write errors
 * naming the output and the reason, and the same-file checks between inputs and outputs. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ofile.h"
#include "tmpleft.h"

#include "harness.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Open, write text, close; returns ofile_close's result with e filled. */
static int put(const char *path, const char *text, err *e)
{
    ofile *o;
    if (ofile_open(&o, path, e))
        return -1;
    fputs(text, ofile_stream(o));
    return ofile_close(o, e);
}

static void test_ofile_regular_file_appears_only_at_close(void **state)
{
    (void)state;
    char p[300];
    harness_path("a.json", p, sizeof p);
    harness_write(p, "old\n");
    assert_int_equal(chmod(p, 0640), 0);
    ofile *o;
    err e;
    assert_int_equal(ofile_open(&o, p, &e), 0);
    fputs("new\n", ofile_stream(o));
    assert_int_equal(tmp_left(p), 1);
    assert_string_equal(slurp(p), "old\n"); /* the old file stays whole until the rename */
    assert_int_equal(ofile_close(o, &e), 0);
    assert_string_equal(slurp(p), "new\n");
    assert_int_equal(tmp_left(p), 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640); /* a replaced file keeps its permissions */
}

static void test_ofile_abort_leaves_nothing(void **state)
{
    (void)state;
    char p[300];
    harness_path("aborted.json", p, sizeof p);
    ofile *o;
    err e;
    assert_int_equal(ofile_open(&o, p, &e), 0);
    fputs("half", ofile_stream(o));
    ofile_abort(o);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(tmp_left(p), 0);
}

/* Defect 1: a device node must stay a device node. */
static void test_ofile_character_device_is_written_in_place(void **state)
{
    (void)state;
    err e;
    assert_int_equal(put("/dev/null", "x\n", &e), 0);
    struct stat st;
    assert_int_equal(stat("/dev/null", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_int_equal(tmp_left("/dev/null"), 0);
}

static void test_ofile_fifo_is_written_in_place(void **state)
{
    (void)state;
    char p[300];
    harness_path("fifo", p, sizeof p);
    assert_int_equal(mkfifo(p, 0600), 0);
    int rd = open(p, O_RDONLY | O_NONBLOCK); /* a reader, so the writer's open does not block */
    assert_true(rd >= 0);
    err e;
    assert_int_equal(put(p, "through the fifo\n", &e), 0);
    char buf[64] = {0};
    assert_int_equal(read(rd, buf, sizeof buf - 1), 17);
    assert_string_equal(buf, "through the fifo\n");
    close(rd);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
}

static void test_ofile_symlink_stays_a_link_and_its_target_is_written(void **state)
{
    (void)state;
    char link[300], target[300], dangling[300], created[300];
    harness_path("target.json", target, sizeof target);
    harness_path("link.json", link, sizeof link);
    harness_write(target, "old\n");
    assert_int_equal(symlink("target.json", link), 0); /* relative to the link's directory */
    err e;
    assert_int_equal(put(link, "new\n", &e), 0);
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_string_equal(slurp(target), "new\n");
    /* a dangling link names the file to create */
    harness_path("dangling.json", dangling, sizeof dangling);
    harness_path("created.json", created, sizeof created);
    assert_int_equal(symlink(created, dangling), 0);
    assert_int_equal(put(dangling, "made\n", &e), 0);
    assert_int_equal(lstat(dangling, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_string_equal(slurp(created), "made\n");
}

/* Defect 3: two writers of one path each get their own temporary. */
static void test_ofile_two_writers_of_one_path_never_share_a_temporary(void **state)
{
    (void)state;
    char p[300], old_tmp[310];
    harness_path("shared.json", p, sizeof p);
    snprintf(old_tmp, sizeof old_tmp, "%s.tmp", p);
    assert_int_equal(mkdir(old_tmp, 0700), 0); /* the old fixed name is taken */
    ofile *a, *b;
    err e;
    assert_int_equal(ofile_open(&a, p, &e), 0);
    assert_int_equal(ofile_open(&b, p, &e), 0);
    fputs("from a\n", ofile_stream(a));
    fputs("from b\n", ofile_stream(b));
    assert_int_equal(tmp_left(p), 3); /* the directory and two temporaries */
    assert_int_equal(ofile_close(a, &e), 0);
    assert_string_equal(slurp(p), "from a\n");
    assert_int_equal(ofile_close(b, &e), 0);
    assert_string_equal(slurp(p), "from b\n"); /* whole, never interleaved */
    assert_int_equal(rmdir(old_tmp), 0);
    assert_int_equal(tmp_left(p), 0);
}

/* Defect 14's library half: the registry a signal handler empties. */
static void test_ofile_unlink_temps_removes_open_temporaries(void **state)
{
    (void)state;
    char p[300];
    harness_path("interrupted.json", p, sizeof p);
    ofile *o;
    err e;
    assert_int_equal(ofile_open(&o, p, &e), 0);
    fputs("partial", ofile_stream(o));
    fflush(ofile_stream(o));
    assert_int_equal(tmp_left(p), 1);
    ofile_unlink_temps();
    assert_int_equal(tmp_left(p), 0);
    ofile_abort(o);
    assert_int_equal(access(p, F_OK), -1);
}

/* Defect 4: a path of 600+ bytes is written under exactly that name; a long path in an error
 * is shortened, never the reason. */
static void test_ofile_long_paths_are_not_cut(void **state)
{
    (void)state;
    char p[1200], seg[201];
    memset(seg, 'd', 200);
    seg[200] = '\0';
    harness_path("", p, sizeof p);
    for (int i = 0; i < 3; i++) {
        strcat(p, seg);
        assert_int_equal(mkdir(p, 0700), 0);
        strcat(p, "/");
    }
    strcat(p, "report-with-a-long-name.json");
    assert_true(strlen(p) > 600);
    err e;
    assert_int_equal(put(p, "long\n", &e), 0);
    assert_string_equal(slurp(p), "long\n");
    strcat(p, "/no/such/dir/x.json");
    assert_int_equal(put(p, "x", &e), -1);
    assert_true(strlen(e.msg) < ERR_MSG_MAX);
    assert_non_null(strstr(e.msg, "..."));
    assert_non_null(strstr(e.msg, "/no/such/dir/x.json: cannot create: Not a directory"));
}

/* Defect 4 for every message, not only the output module's: any error echoing a path too
 * long for ERR_MSG_MAX is shortened in the middle, so the path's head and the reason stay
 * (it used to be cut at the end, "trace.tpt: byte 20: truncated header" losing all after the
 * path). A message that fits is left as it is. */
static void test_err_long_message_keeps_its_reason(void **state)
{
    (void)state;
    char path[901];
    memset(path, 'd', 900);
    path[0] = '/';
    path[900] = '\0';
    err e;
    assert_int_equal(err_set(&e, "%s: byte %d: truncated header", path, 20), -1);
    assert_int_equal(strlen(e.msg), ERR_MSG_MAX - 1);
    assert_int_equal(strncmp(e.msg, "/ddd", 4), 0);
    assert_non_null(strstr(e.msg, "ddd...ddd"));
    const char *tail = ": byte 20: truncated header";
    assert_string_equal(e.msg + strlen(e.msg) - strlen(tail), tail);
    assert_int_equal(err_setk(&e, ERR_DEADLOCK, "%s: %s", "t.tpt", "deadlock"), -1);
    assert_string_equal(e.msg, "t.tpt: deadlock");
    assert_int_equal(e.kind, ERR_DEADLOCK);
}

/* Defect 18: a full disk names the output and the reason. */
static void test_ofile_full_device_names_the_output_and_errno(void **state)
{
    (void)state;
    err e;
    ofile *o;
    assert_int_equal(ofile_open(&o, "/dev/full", &e), 0);
    for (int i = 0; i < 10000; i++)
        fputs("0123456789", ofile_stream(o));
    assert_int_equal(ofile_errno(o), ENOSPC);
    assert_int_equal(ofile_close(o, &e), -1);
    assert_string_equal(e.msg, "/dev/full: cannot write: No space left on device");
    struct stat st;
    assert_int_equal(stat("/dev/full", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
}

static void test_ofile_refuses_a_directory(void **state)
{
    (void)state;
    char p[300];
    harness_path("", p, sizeof p);
    ofile *o;
    err e;
    assert_int_equal(ofile_open(&o, p, &e), -1);
    assert_non_null(strstr(e.msg, "Is a directory"));
}

/* Defect 2: an output equal to an input, or to another output, by device and inode. */
static void test_ofile_check_refuses_an_input_as_output(void **state)
{
    (void)state;
    char in[300], hard[300], soft[300], dotted[400];
    harness_path("t.tpt", in, sizeof in);
    harness_path("hard.tpt", hard, sizeof hard);
    harness_path("soft.tpt", soft, sizeof soft);
    snprintf(dotted, sizeof dotted, "%s/./t.tpt", harness_dir());
    harness_write(in, "trace");
    assert_int_equal(link(in, hard), 0);
    assert_int_equal(symlink(in, soft), 0);
    ofile_ref ins[] = {{"config.yaml", "config"}, {in, "trace"}};
    const char *outs[] = {in, hard, soft, dotted};
    for (unsigned i = 0; i < 4; i++) {
        err e = {0};
        ofile_ref o = {outs[i], "--json"};
        assert_int_equal(ofile_check(&o, 1, ins, 2, &e), -1);
        assert_non_null(strstr(e.msg, "the --json output is the same file as the trace"));
        assert_string_equal(slurp(in), "trace");
    }
}

static void test_ofile_check_refuses_two_outputs_in_one_file(void **state)
{
    (void)state;
    char a[300], a2[400];
    harness_path("new.json", a, sizeof a);
    snprintf(a2, sizeof a2, "%s/../%s/new.json", harness_dir(), strrchr(harness_dir(), '/') + 1);
    ofile_ref outs[] = {{a, "--json"}, {"-", "--csv"}, {a2, "--timeline"}};
    err e = {0};
    assert_int_equal(ofile_check(outs, 3, NULL, 0, &e), -1);
    assert_non_null(strstr(e.msg, "the --timeline output is the same file as the --json output"));
    /* devices may be named twice: writing /dev/null twice destroys nothing */
    ofile_ref devs[] = {{"/dev/null", "--json"}, {"/dev/null", "--csv"}};
    assert_int_equal(ofile_check(devs, 2, NULL, 0, &e), 0);
}

/* Defect 21: an output that cannot be created is refused before any work. */
static void test_ofile_check_refuses_a_missing_directory(void **state)
{
    (void)state;
    ofile_ref o = {"/nonexistent-dir/x.json", "--json"};
    err e = {0};
    assert_int_equal(ofile_check(&o, 1, NULL, 0, &e), -1);
    assert_string_equal(e.msg, "/nonexistent-dir/x.json: cannot create the --json output: No "
                               "such file or directory");
    char p[300];
    harness_path("", p, sizeof p);
    o.path = p;
    assert_int_equal(ofile_check(&o, 1, NULL, 0, &e), -1);
    assert_non_null(strstr(e.msg, "Is a directory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ofile_regular_file_appears_only_at_close),
        cmocka_unit_test(test_ofile_abort_leaves_nothing),
        cmocka_unit_test(test_ofile_character_device_is_written_in_place),
        cmocka_unit_test(test_ofile_fifo_is_written_in_place),
        cmocka_unit_test(test_ofile_symlink_stays_a_link_and_its_target_is_written),
        cmocka_unit_test(test_ofile_two_writers_of_one_path_never_share_a_temporary),
        cmocka_unit_test(test_ofile_unlink_temps_removes_open_temporaries),
        cmocka_unit_test(test_ofile_long_paths_are_not_cut),
        cmocka_unit_test(test_err_long_message_keeps_its_reason),
        cmocka_unit_test(test_ofile_full_device_names_the_output_and_errno),
        cmocka_unit_test(test_ofile_refuses_a_directory),
        cmocka_unit_test(test_ofile_check_refuses_an_input_as_output),
        cmocka_unit_test(test_ofile_check_refuses_two_outputs_in_one_file),
        cmocka_unit_test(test_ofile_check_refuses_a_missing_directory),
    };
    return cmocka_run_group_tests(tests, harness_dir_setup, harness_dir_teardown);
}
