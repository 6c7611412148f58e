/* client-cache.c: mount hints: which repository of a registry a blob was last pushed to or
 * pulled from, so a push to another repository of that registry can mount it instead of
 * sending it. One append-only file per registry: $DLC_ROOT/registry-blobs/<registry>,
 * lines "<digest> <repository>". Hints are only hints: a failed mount falls back to an
 * upload. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "registry-internal.h"

#define MAX_CACHE_FILE (4u << 20)

static char *cache_path(const char *store_root, const char *registry)
{
    _cleanup_free_ char *name = xstrdup(registry);
    for (char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == ':'))
            *p = '_';
    return xasprintf("%s/registry-blobs/%s", store_root, name);
}

char *blobcache_lookup(const char *store_root, const char *registry, const char *digest,
                       const char *not_repo)
{
    _cleanup_free_ char *path = cache_path(store_root, registry);
    _cleanup_free_ char *buf = NULL;
    if (dlc_read_file(path, MAX_CACHE_FILE, &buf, NULL, NULL) < 0)
        return NULL;
    char *found = NULL;
    size_t dlen = strlen(digest);
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, digest, dlen) == 0 && line[dlen] == ' ') {
            const char *repo = line + dlen + 1;
            if (strcmp(repo, not_repo) != 0 && oci_name_is_valid(repo)) {
                free(found);
                found = xstrdup(repo);
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return found;
}

void blobcache_record(const char *store_root, const char *registry, const char *digest,
                      const char *repo)
{
    _cleanup_free_ char *path = cache_path(store_root, registry);
    _cleanup_free_ char *dir = dlc_path_dirname(path);
    if (dlc_mkdir_p(dir, 0755, NULL) < 0)
        return;
    struct stat sb;
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
    if (stat(path, &sb) == 0 && (uint64_t)sb.st_size > MAX_CACHE_FILE / 2)
        flags |= O_TRUNC; /* start over rather than grow without bound */
    _cleanup_close_ int fd = open(path, flags, 0644);
    if (fd < 0)
        return;
    _cleanup_free_ char *line = xasprintf("%s %s\n", digest, repo);
    /* one write(2) per line: concurrent appenders do not interleave */
    if (write(fd, line, strlen(line)) < 0)
        dlc_debug("mount hints %s: %s", path, strerror(errno));
}
