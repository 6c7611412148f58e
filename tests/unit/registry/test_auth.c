/* Unit tests: base64, htpasswd (bcrypt via libcrypt) and WWW-Authenticate parsing. */
#include <errno.h>
#include <string.h>

#include "unit.h"

#include "../../../registry/src/registry-internal.h"

/* `htpasswd -nbB -C 5 alice s3cret` */
#define ALICE "alice:$2y$05$UvAcQ1U11FPcbhVt7fY0GOXgJYwRsCz0I4UO73M4yZDFg8auDYowW\n"

static char *write_tmp(const char *dir, const char *name, const char *content)
{
    char *p = dlc_path_join(dir, name);
    struct dlc_error *err = NULL;
    assert_int_equal(dlc_write_file_atomic(p, content, strlen(content), 0600, &err), 0);
    return p;
}

static char *basic(const char *userpass)
{
    _cleanup_free_ char *b = registry_base64_encode(userpass, strlen(userpass));
    return xasprintf("Basic %s", b);
}

static void test_auth__base64(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
            {"", ""},        {"f", "Zg=="},        {"fo", "Zm8="},
            {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"alice:s3cret", "YWxpY2U6czNjcmV0"},
    };
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *e = registry_base64_encode(cases[i][0], strlen(cases[i][0]));
        assert_string_equal(e, cases[i][1]);
        size_t len = 99;
        _cleanup_free_ char *d = registry_base64_decode(cases[i][1], &len);
        assert_non_null(d);
        assert_int_equal(len, strlen(cases[i][0]));
        assert_string_equal(d, cases[i][0]);
    }
    static const char *const bad[] = {"Zg=", "Z===", "Zm9v!", "=Zm9", "Zg==Zg==", "Zm=v"};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(bad); i++) {
        size_t len = 0;
        char *d = registry_base64_decode(bad[i], &len);
        if (d != NULL)
            fail_msg("'%s' decoded", bad[i]);
    }
}

static void test_auth__htpasswd(void **state)
{
    (void)state;
    char *dir = unit_tmpdir();
    _cleanup_free_ char *path = write_tmp(dir, "htpasswd", "# users\n\n" ALICE);
    struct dlc_error *err = NULL;
    struct htpasswd *h = NULL;
    assert_int_equal(htpasswd_load(path, &h, &err), 0);
    _cleanup_free_ char *good = basic("alice:s3cret");
    _cleanup_free_ char *bad = basic("alice:wrong");
    _cleanup_free_ char *nobody = basic("bob:s3cret");
    _cleanup_free_ char *nocolon = basic("alices3cret");
    for (int round = 0; round < 2; round++) { /* the second round hits the cache */
        char *user = NULL;
        assert_true(htpasswd_check(h, good, &user));
        assert_string_equal(user, "alice");
        free(user);
        user = NULL;
        assert_false(htpasswd_check(h, bad, &user));
        assert_false(htpasswd_check(h, nobody, &user));
        assert_false(htpasswd_check(h, nocolon, &user));
        assert_false(htpasswd_check(h, "Bearer abc", &user));
        assert_false(htpasswd_check(h, "Basic !!!", &user));
        assert_false(htpasswd_check(h, NULL, &user));
        assert_null(user);
    }
    htpasswd_free(h);

    _cleanup_free_ char *md5 = write_tmp(dir, "md5", "bob:$apr1$abcdefgh$0123456789abcdefghijkl\n");
    assert_dlc_error(htpasswd_load(md5, &h, &err), &err, EINVAL,
                     "md5:1: user 'bob': only bcrypt entries are supported");
    _cleanup_free_ char *empty = write_tmp(dir, "empty", "# nobody\n");
    assert_dlc_error(htpasswd_load(empty, &h, &err), &err, EINVAL, "no users");
    _cleanup_free_ char *junk = write_tmp(dir, "junk", ALICE "nocolon\n");
    assert_dlc_error(htpasswd_load(junk, &h, &err), &err, EINVAL, "junk:2: expected 'user:hash'");
    assert_dlc_error(htpasswd_load("/nonexistent/htpasswd", &h, &err), &err, ENOENT, "htpasswd");
    unit_tmpdir_free(dir);
}

static void test_auth__challenge(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    struct rchallenge c;
    assert_int_equal(rchallenge_parse("Bearer realm=\"https://auth.example/token\","
                                      "service=\"registry.example\","
                                      "scope=\"repository:a/b:pull,push\"",
                                      &c, &err),
                     0);
    assert_string_equal(c.scheme, "bearer");
    assert_string_equal(c.realm, "https://auth.example/token");
    assert_string_equal(c.service, "registry.example");
    assert_string_equal(c.scope, "repository:a/b:pull,push");
    rchallenge_release(&c);
    assert_int_equal(rchallenge_parse("Basic realm=\"dlc \\\"x\\\"\"", &c, &err), 0);
    assert_string_equal(c.scheme, "basic");
    assert_string_equal(c.realm, "dlc \"x\"");
    assert_null(c.service);
    rchallenge_release(&c);
    assert_int_equal(rchallenge_parse("BEARER realm=r, service=s", &c, &err), 0);
    assert_string_equal(c.realm, "r");
    assert_string_equal(c.service, "s");
    rchallenge_release(&c);
    assert_dlc_error(rchallenge_parse("Negotiate abc", &c, &err), &err, ENOTSUP,
                     "unsupported authentication scheme 'negotiate'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_auth__base64),
            cmocka_unit_test(test_auth__htpasswd),
            cmocka_unit_test(test_auth__challenge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
