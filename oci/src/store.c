/* store.c: opening the image store (an OCI image layout at $DLC_ROOT/images), its index.json,
 * the default root and the host architecture. */
#include <errno.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>

#include "oci-internal.h"

#define LAYOUT_VERSION "1.0.0"

char *oci_default_root(void)
{
    const char *env = getenv("DLC_ROOT");
    if (env != NULL && env[0] != '\0')
        return xstrdup(env);
    if (geteuid() == 0)
        return xstrdup("/var/lib/dlc");
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg != NULL && xdg[0] == '/')
        return dlc_path_join(xdg, "dlc");
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0') {
        struct passwd *pw = getpwuid(geteuid());
        home = pw && pw->pw_dir ? pw->pw_dir : "/";
    }
    return dlc_path_join(home, ".local/share/dlc");
}

const char *oci_host_arch(void)
{
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#elif defined(__i386__)
    return "386";
#elif defined(__arm__)
    return "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return "ppc64le";
#elif defined(__s390x__)
    return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
    return "riscv64";
#else
    return "unknown";
#endif
}

void oci_store_free(struct oci_store *s)
{
    if (s == NULL)
        return;
    oci_store_lease_release(s);
    free(s->root);
    free(s->layout);
    free(s->blobs_dir);
    free(s->index_path);
    free(s->lock_path);
    free(s->gc_lock_path);
    free(s);
}

const char *oci_store_root(const struct oci_store *s)
{
    return s->root;
}

const char *oci_store_layout_dir(const struct oci_store *s)
{
    return s->layout;
}

/* oci-layout must say imageLayoutVersion 1.0.0; a missing one is created. */
static int layout_header_check(struct oci_store *s, struct dlc_error **err)
{
    _cleanup_free_ char *path = dlc_path_join(s->layout, "oci-layout");
    if (!dlc_path_exists(path)) {
        json_auto_t *j = json_pack("{s:s}", "imageLayoutVersion", LAYOUT_VERSION);
        return dlc_json_write_file_atomic(path, j, err);
    }
    json_auto_t *j = dlc_json_load_file(path, 1 << 16, err);
    if (j == NULL)
        return -1;
    const char *version = NULL;
    if (dlc_json_get_string(j, "imageLayoutVersion", true, path, &version, err) < 0)
        return -1;
    if (strcmp(version, LAYOUT_VERSION) != 0)
        return dlc_error_set(err, EINVAL, "%s: imageLayoutVersion is '%s', want '%s'", path,
                             version, LAYOUT_VERSION);
    return 0;
}

/* A missing index.json is created under the lock, so that a process that tagged in the
 * meantime does not lose its tag to our empty one. An existing one must parse. */
static int index_check(struct oci_store *s, struct dlc_error **err)
{
    if (!dlc_path_exists(s->index_path)) {
        _cleanup_close_ int lock = dlc_lock_path(s->lock_path, true, err);
        if (lock < 0)
            return -1;
        if (!dlc_path_exists(s->index_path)) {
            struct oci_index empty = {.schema_version = 2, .media_type = (char *)OCI_MT_INDEX};
            return oci__store_write_index(s, &empty, err);
        }
    }
    _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
    return oci__store_read_index(s, &ix, err);
}

int oci_store_open(const char *root, struct oci_store **ret, struct dlc_error **err)
{
    _cleanup_(oci_store_freep) struct oci_store *s = xcalloc(1, sizeof(*s));
    s->root = xstrdup(root);
    s->layout = dlc_path_join(root, "images");
    s->blobs_dir = dlc_path_join(s->layout, "blobs/sha256");
    s->index_path = dlc_path_join(s->layout, "index.json");
    s->lock_path = dlc_path_join(root, "images.lock");
    s->gc_lock_path = dlc_path_join(root, "images.gc.lock");
    s->lease_fd = -1;
    if (dlc_mkdir_p(s->blobs_dir, 0755, err) < 0)
        return dlc_error_wrap(err, "open store %s", root);
    if (layout_header_check(s, err) < 0 || index_check(s, err) < 0)
        return -1;
    *ret = TAKE_PTR(s);
    return 0;
}

int oci__store_read_index(struct oci_store *s, struct oci_index **ret, struct dlc_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (dlc_read_file(s->index_path, OCI_MAX_INDEX_SIZE, &buf, &len, err) < 0)
        return -1;
    _cleanup_(oci_index_freep) struct oci_index *ix = NULL;
    if (oci_index_parse(buf, len, s->index_path, &ix, err) < 0)
        return -1;
    if (oci_index_validate(ix, err) < 0)
        return dlc_error_wrap(err, "%s", s->index_path);
    *ret = TAKE_PTR(ix);
    return 0;
}

int oci__store_write_index(struct oci_store *s, const struct oci_index *ix, struct dlc_error **err)
{
    json_auto_t *j = oci_index_to_json(ix);
    json_object_set_new(j, "schemaVersion", json_integer(2));
    if (ix->media_type == NULL)
        json_object_set_new(j, "mediaType", json_string(OCI_MT_INDEX));
    if (dlc_json_write_file_atomic(s->index_path, j, err) < 0)
        return dlc_error_wrap(err, "update %s", s->index_path);
    return 0;
}
