/* oci-unit.h: the fixture the oci unit tests share: a fresh store in a temporary dir. */
#ifndef DLC_OCI_UNIT_H
#define DLC_OCI_UNIT_H

#include "unit.h"
#include "oci.h"

struct fixture {
    char *dir;
    struct oci_store *s;
};

static inline int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    struct dlc_error *err = NULL;
    f->dir = unit_tmpdir();
    if (oci_store_open(f->dir, &f->s, &err) < 0)
        fail_msg("open: %s", err->msg);
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    struct fixture *f = *state;
    oci_store_free(f->s);
    unit_tmpdir_free(f->dir);
    free(f);
    return 0;
}
#endif
