/* test_json.c - the one JSON string escaper every JSON writer uses (reports, timeline):
 * escapes, UTF-8 passed through, and bytes outside well-formed UTF-8 replaced by U+FFFD. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* json_put_string(in) must produce exactly `want`. */
static void check(const char *in, const char *want)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    json_put_string(f, in);
    fclose(f);
    assert_string_equal(out, want);
    free(out);
}

static void test_json_string_escapes_quotes_backslashes_and_controls(void **state)
{
    (void)state;
    check("plain", "\"plain\"");
    check("a\"b\\c", "\"a\\\"b\\\\c\"");
    check("tab\there\nnl\x01\x1f", "\"tab\\u0009here\\u000anl\\u0001\\u001f\"");
    check("del\x7f", "\"del\x7f\""); /* DEL needs no escape in JSON */
}

static void test_json_string_keeps_well_formed_utf8(void **state)
{
    (void)state;
    check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
          "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"");
}

static void test_json_string_replaces_invalid_utf8_bytes(void **state)
{
    (void)state;
    check("bad\xffname", "\"bad\\ufffdname\"");                    /* never valid */
    check("\xc0\xaf", "\"\\ufffd\\ufffd\"");                       /* overlong '/' */
    check("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");            /* overlong, 3 bytes */
    check("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");            /* UTF-16 surrogate */
    check("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* above U+10FFFF */
    check("end\xe2\x82", "\"end\\ufffd\\ufffd\"");                 /* cut short by the NUL */
    check("\x80x", "\"\\ufffdx\"");                                /* lone continuation byte */
    check("\xc3\xa9\xa9", "\"\xc3\xa9\\ufffd\"");                  /* valid, then a stray byte */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_string_escapes_quotes_backslashes_and_controls),
        cmocka_unit_test(test_json_string_keeps_well_formed_utf8),
        cmocka_unit_test(test_json_string_replaces_invalid_utf8_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
