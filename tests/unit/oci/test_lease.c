/* The writer lease: gc in one process while another has stored an image's blobs but not
 * tagged it yet. The writer is a forked child with its own store object, steered through
 * pipes, so the two are separate processes as a `dlc build` and a `dlc prune` are. */
#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "oci-unit.h"

#define LAYER "layer content shared with an older, untagged build"

/* The digests a writer stores: layer, config, manifest. */
struct image_digests {
    char layer[OCI_DIGEST_BUFSZ], config[OCI_DIGEST_BUFSZ], manifest[OCI_DIGEST_BUFSZ];
};

static void image_digests(struct image_digests *d, char **ret_config, char **ret_manifest)
{
    oci_digest_buf(LAYER, strlen(LAYER), d->layer);
    char *config = xasprintf("{\"architecture\":\"%s\",\"os\":\"linux\",\"rootfs\":{\"type\":"
                             "\"layers\",\"diff_ids\":[\"%s\"]}}",
                             oci_host_arch(), d->layer);
    oci_digest_buf(config, strlen(config), d->config);
    char *manifest = xasprintf(
            "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_MANIFEST "\",\"config\":{"
            "\"mediaType\":\"" OCI_MT_CONFIG "\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[{"
            "\"mediaType\":\"" OCI_MT_LAYER_TAR "\",\"digest\":\"%s\",\"size\":%zu}]}",
            d->config, strlen(config), d->layer, strlen(LAYER));
    oci_digest_buf(manifest, strlen(manifest), d->manifest);
    *ret_config = config;
    *ret_manifest = manifest;
}

/* What a build does before its tag: the layer through a blob writer, config and manifest
 * through blob_put / put_manifest. */
static int store_image(struct oci_store *s, struct oci_descriptor *ret)
{
    struct image_digests d;
    _cleanup_free_ char *config = NULL, *manifest = NULL;
    image_digests(&d, &config, &manifest);
    struct oci_blob_writer *w = NULL;
    if (oci_store_blob_writer_new(s, NULL, -1, &w, NULL) < 0 ||
        oci_blob_writer_write(w, LAYER, strlen(LAYER), NULL) < 0 ||
        oci_blob_writer_commit(w, NULL, NULL, NULL) < 0 ||
        oci_store_blob_put(s, config, strlen(config), NULL, NULL, NULL) < 0 ||
        oci_store_put_manifest(s, manifest, strlen(manifest), NULL, ret, NULL) < 0)
        return -1;
    return 0;
}

enum child_mode {
    TAG_ON_REQUEST, /* stores, says 'w', tags when told 't', says 'd', exits when told 'x' */
    TAG_AFTER_300MS,
    EXIT_UNTAGGED, /* stores, says 'w', exits when told 'x' without tagging */
};

static void child_writer(const char *dir, enum child_mode mode, int to_parent, int from_parent)
{
    struct oci_store *s = NULL;
    struct oci_descriptor desc = {0};
    char c = 0;
    if (oci_store_open(dir, &s, NULL) < 0 || store_image(s, &desc) < 0)
        _exit(1);
    if (write(to_parent, "w", 1) != 1)
        _exit(2);
    if (mode == TAG_AFTER_300MS) {
        struct timespec ts = {0, 300 * 1000000L};
        nanosleep(&ts, NULL);
    } else if (read(from_parent, &c, 1) != 1) {
        _exit(3);
    }
    if (mode != EXIT_UNTAGGED && c != 'x') {
        if (oci_store_tag(s, "built:1", &desc, NULL) < 0)
            _exit(4);
        if (write(to_parent, "d", 1) != 1 || read(from_parent, &c, 1) != 1)
            _exit(5);
    }
    _exit(0);
}

struct child {
    pid_t pid;
    int to_child, from_child;
};

/* Starts a writer and waits until it has stored everything but the tag. */
static void child_start(struct fixture *f, enum child_mode mode, struct child *ret)
{
    int up[2], down[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        child_writer(f->dir, mode, up[1], down[0]);
    }
    close(up[1]);
    close(down[0]);
    *ret = (struct child){pid, down[1], up[0]};
    char c = 0;
    assert_int_equal(read(ret->from_child, &c, 1), 1);
    assert_int_equal(c, 'w');
}

static void child_say(struct child *c, char what)
{
    assert_int_equal(write(c->to_child, &what, 1), 1);
}

static void child_hear(struct child *c, char want)
{
    char got = 0;
    assert_int_equal(read(c->from_child, &got, 1), 1);
    assert_int_equal(got, want);
}

static void child_wait(struct child *c)
{
    int status = 0;
    assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(c->to_child);
    close(c->from_child);
}

static void assert_image_blobs(struct oci_store *s, bool present)
{
    struct image_digests d;
    _cleanup_free_ char *config = NULL, *manifest = NULL;
    image_digests(&d, &config, &manifest);
    assert_int_equal(oci_store_blob_exists(s, d.layer), present);
    assert_int_equal(oci_store_blob_exists(s, d.config), present);
    assert_int_equal(oci_store_blob_exists(s, d.manifest), present);
}

static int64_t elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (int64_t)(t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* gc while the writer is between its blobs and its tag: it gives up after its wait and
 * deletes nothing, not even a blob the writer found already stored (put of an existing
 * blob takes the lease too). Once the writer has tagged, gc runs and keeps the image. */
static void test_lease__gc_spares_a_live_writers_untagged_blobs(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    /* the layer is in the store already, unreferenced, before the writer starts */
    assert_int_equal(oci_store_blob_put(f->s, LAYER, strlen(LAYER), NULL, NULL, &err), 0);
    oci_store_lease_release(f->s); /* so that the forked writer does not inherit it */
    struct child c;
    child_start(f, TAG_ON_REQUEST, &c);

    size_t blobs = 99;
    uint64_t bytes = 99;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_dlc_error(oci_store_gc_wait(f->s, 300, &blobs, &bytes, &err), &err, EBUSY,
                     "gc: another dlc process is writing to the store");
    assert_true(elapsed_ms(&t0) >= 250);
    assert_int_equal(blobs, 99); /* untouched on failure */
    assert_image_blobs(f->s, true);

    child_say(&c, 't');
    child_hear(&c, 'd');
    assert_int_equal(oci_store_gc_wait(f->s, 0, &blobs, &bytes, &err), 0);
    assert_int_equal(blobs, 0);
    assert_image_blobs(f->s, true);
    child_say(&c, 'x');
    child_wait(&c);

    assert_int_equal(oci_store_untag(f->s, "built:1", &err), 0);
    assert_int_equal(oci_store_gc(f->s, &blobs, &bytes, &err), 0);
    assert_int_equal(blobs, 3);
    assert_image_blobs(f->s, false);
}

/* A gc that starts while the writer is busy waits for its tag and then runs. */
static void test_lease__gc_waits_for_the_tag(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct child c;
    child_start(f, TAG_AFTER_300MS, &c);
    size_t blobs = 99;
    uint64_t bytes = 99;
    /* had it not waited, it would have found the image untagged and removed it */
    if (oci_store_gc_wait(f->s, 10000, &blobs, &bytes, &err) < 0)
        fail_msg("gc: %s", err->msg);
    assert_int_equal(blobs, 0);
    assert_image_blobs(f->s, true);
    struct oci_descriptor d = {0};
    assert_int_equal(oci_store_resolve(f->s, "built:1", &d, &err), 0);
    oci_descriptor_release(&d);
    child_hear(&c, 'd');
    child_say(&c, 'x');
    child_wait(&c);
}

/* A writer that exits without tagging (killed, failed) leaves no lease: gc removes its
 * blobs as it always did. */
static void test_lease__a_dead_writer_holds_nothing(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct child c;
    child_start(f, EXIT_UNTAGGED, &c);
    child_say(&c, 'x');
    child_wait(&c);
    size_t blobs = 0;
    uint64_t bytes = 0;
    assert_int_equal(oci_store_gc_wait(f->s, 0, &blobs, &bytes, &err), 0);
    assert_int_equal(blobs, 3);
    assert_image_blobs(f->s, false);
}

/* In one process: gc through the store that wrote drops that store's own lease (its blobs
 * are garbage like any untagged ones); a lease of another store object of the process is
 * EBUSY at once, not a wait on itself. */
static void test_lease__same_process(void **state)
{
    struct fixture *f = *state;
    struct dlc_error *err = NULL;
    struct oci_descriptor desc = {0};
    assert_int_equal(store_image(f->s, &desc), 0);
    size_t blobs = 0;
    uint64_t bytes = 0;
    assert_int_equal(oci_store_gc_wait(f->s, 0, &blobs, &bytes, &err), 0);
    assert_int_equal(blobs, 3);
    oci_descriptor_release(&desc);

    _cleanup_(oci_store_freep) struct oci_store *other = NULL;
    assert_int_equal(oci_store_open(f->dir, &other, &err), 0);
    assert_int_equal(store_image(other, &desc), 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_dlc_error(oci_store_gc_wait(f->s, 5000, &blobs, &bytes, &err), &err, EBUSY,
                     "gc: this process is writing to the store");
    assert_true(elapsed_ms(&t0) < 1000);
    assert_image_blobs(f->s, true);
    /* lease taking is idempotent; tagging releases it */
    assert_int_equal(oci_store_lease(other, &err), 0);
    assert_int_equal(oci_store_tag(other, "built:1", &desc, &err), 0);
    assert_int_equal(oci_store_gc_wait(f->s, 0, &blobs, &bytes, &err), 0);
    assert_int_equal(blobs, 0);
    oci_descriptor_release(&desc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_lease__gc_spares_a_live_writers_untagged_blobs,
                                            setup, teardown),
            cmocka_unit_test_setup_teardown(test_lease__gc_waits_for_the_tag, setup, teardown),
            cmocka_unit_test_setup_teardown(test_lease__a_dead_writer_holds_nothing, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_lease__same_process, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
