#include <errno.h>
#include <string.h>

#include "unit.h"

static void test_parse__u64(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    uint64_t v = 7;
    assert_int_equal(dlc_parse_u64("18446744073709551615", "n", &v, &err), 0);
    assert_true(v == UINT64_MAX);
    assert_dlc_error(dlc_parse_u64("18446744073709551616", "n", &v, &err), &err, ERANGE,
                     "n: '18446744073709551616' is too large");
    assert_dlc_error(dlc_parse_u64("-1", "--pids-limit", &v, &err), &err, EINVAL,
                     "--pids-limit: '-1' is not a non-negative integer");
    assert_dlc_error(dlc_parse_u64("12x", NULL, &v, &err), &err, EINVAL, "'12x'");
    assert_dlc_error(dlc_parse_u64("", NULL, &v, &err), &err, EINVAL, "not a non-negative");
    assert_dlc_error(dlc_parse_u64(" 1", NULL, &v, &err), &err, EINVAL, "not a non-negative");
    assert_true(v == UINT64_MAX);
}

static void test_parse__int_range(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    int v = 0;
    assert_int_equal(dlc_parse_int("-5", "x", -10, 10, &v, &err), 0);
    assert_int_equal(v, -5);
    assert_dlc_error(dlc_parse_int("11", "epochs", -10, 10, &v, &err), &err, ERANGE,
                     "epochs: 11 is out of range [-10, 10]");
    assert_dlc_error(dlc_parse_int("1.5", "x", 0, 10, &v, &err), &err, EINVAL, "is not an integer");
}

static void test_parse__double(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    double d = 0;
    assert_int_equal(dlc_parse_double("1e-3", "lr", &d, &err), 0);
    assert_true(d == 1e-3);
    assert_dlc_error(dlc_parse_double("abc", "lr", &d, &err), &err, EINVAL,
                     "lr: 'abc' is not a number");
    assert_dlc_error(dlc_parse_double("inf", "lr", &d, &err), &err, ERANGE, "out of range");
    assert_dlc_error(dlc_parse_double("1e999", "lr", &d, &err), &err, ERANGE, "out of range");
}

static void test_parse__size(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    uint64_t v = 0;
    static const struct {
        const char *in;
        uint64_t want;
    } ok[] = {{"1024", 1024},        {"64k", 65536},           {"64m", 67108864},
              {"256MiB", 268435456}, {"4MB", 4194304},         {"1.5g", 1610612736},
              {"2G", 2147483648ULL}, {"1t", 1099511627776ULL}, {"0", 0}};
    for (size_t i = 0; i < DLC_ARRAY_SIZE(ok); i++) {
        assert_int_equal(dlc_parse_size(ok[i].in, "--memory", &v, &err), 0);
        assert_true(v == ok[i].want);
    }
    assert_dlc_error(dlc_parse_size("12q", "--memory", &v, &err), &err, EINVAL,
                     "--memory: '12q' has an unknown unit");
    assert_dlc_error(dlc_parse_size("m", "--memory", &v, &err), &err, EINVAL, "is not a size");
    assert_dlc_error(dlc_parse_size("99999999999t", "--memory", &v, &err), &err, ERANGE,
                     "too large");
}

static void test_parse__bool(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    bool b = false;
    assert_int_equal(dlc_parse_bool("TRUE", "shuffle", &b, &err), 0);
    assert_true(b);
    assert_int_equal(dlc_parse_bool("0", "shuffle", &b, &err), 0);
    assert_false(b);
    assert_dlc_error(dlc_parse_bool("maybe", "shuffle", &b, &err), &err, EINVAL,
                     "shuffle: 'maybe' is not a boolean");
}

static void test_parse__format_size(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(dlc_format_size(999, buf, sizeof(buf)), "999 B");
    assert_string_equal(dlc_format_size(15300000, buf, sizeof(buf)), "15.3 MB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse__u64),    cmocka_unit_test(test_parse__int_range),
            cmocka_unit_test(test_parse__double), cmocka_unit_test(test_parse__size),
            cmocka_unit_test(test_parse__bool),   cmocka_unit_test(test_parse__format_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
