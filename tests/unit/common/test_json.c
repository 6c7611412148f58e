#include <errno.h>
#include <string.h>

#include "unit.h"

static void test_json__load_errors(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    const char *dup = "{\"a\":1,\"a\":2}";
    assert_null(dlc_json_loadb(dup, strlen(dup), "m.json", &err));
    assert_non_null(err);
    assert_non_null(strstr(err->msg, "m.json:1:"));
    assert_non_null(strstr(err->msg, "duplicate"));
    dlc_error_free(&err);
    const char *bad = "{\n  \"a\": tru }";
    assert_null(dlc_json_loadb(bad, strlen(bad), "x", &err));
    assert_non_null(strstr(err->msg, "x:2:"));
    dlc_error_free(&err);
}

static void test_json__dumps_sorted_compact(void **state)
{
    (void)state;
    json_auto_t *j = json_pack("{s:i,s:s,s:[i,i]}", "z", 1, "a", "x", "m", 1, 2);
    _cleanup_free_ char *s = dlc_json_dumps(j, NULL);
    assert_string_equal(s, "{\"a\":\"x\",\"m\":[1,2],\"z\":1}");
}

static void test_json__getters(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    json_auto_t *j = json_pack("{s:s,s:i,s:b,s:[s,s],s:f,s:[i]}", "name", "n", "size", 12, "flag",
                               1, "v", "a", "b", "lr", 0.5, "bad", 1);
    const char *s = NULL;
    int64_t i = 0;
    bool b = false;
    double d = 0;
    _cleanup_strv_ char **v = NULL;
    assert_int_equal(dlc_json_get_string(j, "name", true, "obj", &s, &err), 0);
    assert_string_equal(s, "n");
    assert_int_equal(dlc_json_get_int(j, "size", true, "obj", &i, &err), 0);
    assert_int_equal(i, 12);
    assert_int_equal(dlc_json_get_bool(j, "flag", true, "obj", &b, &err), 0);
    assert_true(b);
    assert_int_equal(dlc_json_get_number(j, "size", true, "obj", &d, &err), 0);
    assert_true(d == 12.0);
    assert_int_equal(dlc_json_get_strv(j, "v", true, "obj", &v, &err), 0);
    assert_int_equal(dlc_strv_len(v), 2);
    assert_int_equal(dlc_json_get_string(j, "absent", false, "obj", &s, &err), 0);
    assert_string_equal(s, "n");
    assert_dlc_error(dlc_json_get_string(j, "absent", true, "obj", &s, &err), &err, EINVAL,
                     "obj: missing required 'absent'");
    assert_dlc_error(dlc_json_get_string(j, "size", true, "manifest", &s, &err), &err, EINVAL,
                     "manifest: 'size' must be a string");
    char **v2 = NULL;
    assert_dlc_error(dlc_json_get_strv(j, "bad", true, "obj", &v2, &err), &err, EINVAL,
                     "obj: 'bad'[0] must be a string");
    static const char *const allowed[] = {"name", "size", "flag", "v", "lr", NULL};
    assert_dlc_error(dlc_json_check_keys(j, allowed, "definition", &err), &err, EINVAL,
                     "definition: unknown key 'bad'");
}

static void test_json__from_strv(void **state)
{
    (void)state;
    _cleanup_strv_ char **v = NULL;
    v = dlc_strv_push(v, "a");
    v = dlc_strv_push(v, "b c");
    v = dlc_strv_push(v, "");
    json_auto_t *a = dlc_json_from_strv(v);
    _cleanup_free_ char *s = dlc_json_dumps(a, NULL);
    assert_string_equal(s, "[\"a\",\"b c\",\"\"]");
    json_auto_t *none = dlc_json_from_strv(NULL);
    assert_true(json_is_array(none));
    assert_int_equal(json_array_size(none), 0);
}

static void test_json__error_wrap(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    dlc_error_set(&err, ENOENT, "blob %s", "sha256:ab");
    dlc_error_set(&err, EIO, "second"); /* never overwrites */
    dlc_error_wrap(&err, "push %s", "x:y");
    assert_string_equal(err->msg, "push x:y: blob sha256:ab");
    assert_int_equal(err->code, ENOENT);
    dlc_error_free(&err);
    assert_null(err);
    dlc_error_wrap(&err, "context only");
    assert_string_equal(err->msg, "context only");
    dlc_error_free(&err);
}

static void test_json__strbuf(void **state)
{
    (void)state;
    _cleanup_strbuf_ struct dlc_strbuf sb = DLC_STRBUF_INIT;
    assert_string_equal(dlc_strbuf_str(&sb), "");
    for (int i = 0; i < 100; i++)
        dlc_strbuf_appendf(&sb, "%d,", i);
    assert_int_equal(sb.len, 290);
    dlc_strbuf_reset(&sb);
    dlc_strbuf_append(&sb, "ab");
    dlc_strbuf_appendc(&sb, 'c');
    size_t len = 0;
    _cleanup_free_ char *s = dlc_strbuf_detach(&sb, &len);
    assert_string_equal(s, "abc");
    assert_int_equal(len, 3);
    assert_null(sb.buf);
}

static void test_json__strv_bsearch(void **state)
{
    (void)state;
    char a[] = "a", c[] = "c", e[] = "e";
    char *v[] = {a, c, e};
    bool found = true;
    assert_int_equal(dlc_strv_bsearch(v, 3, "c", &found), 1);
    assert_true(found);
    assert_int_equal(dlc_strv_bsearch(v, 3, "d", &found), 2);
    assert_false(found);
    assert_int_equal(dlc_strv_bsearch(v, 3, "z", &found), 3);
    assert_int_equal(dlc_strv_bsearch(v, 0, "a", &found), 0);
    assert_false(found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_json__load_errors),
            cmocka_unit_test(test_json__dumps_sorted_compact),
            cmocka_unit_test(test_json__getters),
            cmocka_unit_test(test_json__from_strv),
            cmocka_unit_test(test_json__error_wrap),
            cmocka_unit_test(test_json__strbuf),
            cmocka_unit_test(test_json__strv_bsearch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
