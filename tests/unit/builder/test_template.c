#include <errno.h>
#include <string.h>

#include "unit.h"
#include "../../../builder/src/builder-internal.h"

static const struct btemplate_vars vars = {.name = "tensor-runtime",
                                           .version = "1.2.3",
                                           .device = "cpu",
                                           .backend = "openblas",
                                           .os = "debian12",
                                           .variant = "cpu",
                                           .job = "general",
                                           .arch = "amd64"};

static void test_template__expand(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
            {"{version}-{device}-{backend}-{os}", "1.2.3-cpu-openblas-debian12"},
            {"{version}-{device}", "1.2.3-cpu"},
            {"{major}.{minor}-{device}", "1.2-cpu"},
            {"{device}", "cpu"},
            {"v{major}", "v1"},
            {"{patch}", "3"},
            {"latest", "latest"},
            {"{arch}-{job}-{variant}", "amd64-general-cpu"},
    };
    struct dlc_error *err = NULL;
    for (size_t i = 0; i < DLC_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *tag = NULL;
        assert_int_equal(btemplate_check(cases[i][0], "tags[0]", &err), 0);
        assert_int_equal(btemplate_expand(cases[i][0], &vars, "tags[0]", &tag, &err), 0);
        assert_string_equal(tag, cases[i][1]);
    }
}

static void test_template__errors(void **state)
{
    (void)state;
    struct dlc_error *err = NULL;
    assert_dlc_error(btemplate_check("{version}-{flavour}", "tags[1]", &err), &err, EINVAL,
                     "tags[1]: unknown field '{flavour}' in '{version}-{flavour}' (fields: name, "
                     "version, major, minor, patch, device, backend, os, variant, job, arch)");
    assert_dlc_error(btemplate_check("{version", "tags[0]", &err), &err, EINVAL,
                     "tags[0]: unbalanced '{' in '{version'");
    assert_dlc_error(btemplate_check("version}", "tags[0]", &err), &err, EINVAL,
                     "tags[0]: unbalanced '}' in 'version}'");
    assert_dlc_error(btemplate_check("", "tags[0]", &err), &err, EINVAL, "empty tag template");

    char *tag = NULL;
    struct btemplate_vars v = vars;
    v.backend = NULL;
    assert_dlc_error(btemplate_expand("{backend}", &v, "tags[0]", &tag, &err), &err, EINVAL,
                     "tags[0]: '{backend}' uses {backend}, which this image does not define");
    v = vars;
    v.version = "7";
    assert_dlc_error(btemplate_expand("{major}.{minor}", &v, "tags[0]", &tag, &err), &err, EINVAL,
                     "uses {minor}, but version '7' has no minor part");
    assert_dlc_error(btemplate_expand("a/{device}", &vars, "tags[0]", &tag, &err), &err, EINVAL,
                     "'a/{device}' gives 'a/cpu', which is not a valid tag");
    assert_null(tag);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_template__expand),
            cmocka_unit_test(test_template__errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
