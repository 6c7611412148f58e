/* tree.c: a layer's entries, keyed by path (an open-addressing hash table), and the
 * operations that turn what a definition asks for into what a layer must contain:
 * sorting in tar order, hashing, finalising on top of lower layers, applying a layer. */
#include <errno.h>
#include <string.h>

#include "builder-internal.h"

#define MAX_SYMLINK_FOLLOW 40

struct btree {
    struct bnode **slots;
    size_t cap;   /* power of two */
    size_t n;     /* live nodes */
    size_t tombs; /* removed slots */
};

/* A removed slot: lookups go on past it, inserts may reuse it. */
static struct bnode tomb_node;
#define TOMB (&tomb_node)

static void node_free(struct bnode *n)
{
    if (n == NULL || n == TOMB)
        return;
    free(n->path);
    free(n->src);
    free(n->data);
    free(n->link);
    free(n->where);
    free(n);
}

static struct bnode *node_dup(const struct bnode *n, const char *path)
{
    struct bnode *c = xmalloc(sizeof(*c));
    *c = *n;
    c->path = xstrdup(path ? path : n->path);
    c->src = n->src ? xstrdup(n->src) : NULL;
    c->data = NULL;
    if (n->data) {
        c->data = xmalloc(n->size + 1);
        memcpy(c->data, n->data, n->size);
        c->data[n->size] = '\0';
    }
    c->link = n->link ? xstrdup(n->link) : NULL;
    c->where = n->where ? xstrdup(n->where) : NULL;
    return c;
}

struct btree *btree_new(void)
{
    struct btree *t = xcalloc(1, sizeof(*t));
    t->cap = 64;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
    t->slots = xcalloc(t->cap, sizeof(*t->slots));
    return t;
}

void btree_free(struct btree *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->cap; i++)
        node_free(t->slots[i]);
    free(t->slots);
    free(t);
}

size_t btree_count(const struct btree *t)
{
    return t->n;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* The slot holding path, or -1 (and *free_slot: where it would go). */
static ssize_t find_slot(const struct btree *t, const char *path, size_t *free_slot)
{
    size_t mask = t->cap - 1;
    size_t i = hash_str(path) & mask;
    ssize_t first_tomb = -1;
    for (;; i = (i + 1) & mask) {
        struct bnode *s = t->slots[i];
        if (s == NULL) {
            if (free_slot)
                *free_slot = first_tomb >= 0 ? (size_t)first_tomb : i;
            return -1;
        }
        if (s == TOMB) {
            if (first_tomb < 0)
                first_tomb = (ssize_t)i;
        } else if (strcmp(s->path, path) == 0) {
            return (ssize_t)i;
        }
    }
}

static void grow(struct btree *t)
{
    struct bnode **old = t->slots;
    size_t old_cap = t->cap;
    if ((t->n + 1) * 2 > t->cap)
        t->cap *= 2;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
    t->slots = xcalloc(t->cap, sizeof(*t->slots));
    t->tombs = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i] == NULL || old[i] == TOMB)
            continue;
        size_t slot = 0;
        find_slot(t, old[i]->path, &slot);
        t->slots[slot] = old[i];
    }
    free(old);
}

struct bnode *btree_get(const struct btree *t, const char *path)
{
    ssize_t i = find_slot(t, path, NULL);
    return i < 0 ? NULL : t->slots[i];
}

/* Inserts or replaces; takes ownership of n. */
static void put(struct btree *t, struct bnode *n)
{
    if ((t->n + t->tombs + 1) * 10 > t->cap * 7)
        grow(t);
    size_t slot = 0;
    ssize_t i = find_slot(t, n->path, &slot);
    if (i >= 0) {
        node_free(t->slots[i]);
        t->slots[i] = n;
        return;
    }
    if (t->slots[slot] == TOMB)
        t->tombs--;
    t->slots[slot] = n;
    t->n++;
}

static void remove_slot(struct btree *t, size_t i)
{
    node_free(t->slots[i]);
    t->slots[i] = TOMB;
    t->n--;
    t->tombs++;
}

void btree_remove_children(struct btree *t, const char *path)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < t->cap; i++) {
        struct bnode *s = t->slots[i];
        if (s != NULL && s != TOMB && strncmp(s->path, path, len) == 0 && s->path[len] == '/')
            remove_slot(t, i);
    }
}

void btree_remove(struct btree *t, const char *path)
{
    ssize_t i = find_slot(t, path, NULL);
    if (i >= 0)
        remove_slot(t, (size_t)i);
    btree_remove_children(t, path);
}

/* ---- adding ------------------------------------------------------------------------- */

static const char *type_name(enum bnode_type type)
{
    switch (type) {
    case BN_FILE:
        return "file";
    case BN_DIR:
        return "directory";
    case BN_SYMLINK:
        return "symlink";
    case BN_WHITEOUT:
        return "whiteout";
    }
    return "?";
}

static bool same_content(const struct bnode *a, const struct bnode *b)
{
    if (a->hash[0] && b->hash[0])
        return strcmp(a->hash, b->hash) == 0;
    if (a->src && b->src)
        return strcmp(a->src, b->src) == 0;
    if (a->data && b->data)
        return a->size == b->size && memcmp(a->data, b->data, a->size) == 0;
    return false;
}

/* Whether b, put where a is, would change nothing. */
static bool node_same(const struct bnode *a, const struct bnode *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case BN_FILE:
        return a->mode == b->mode && same_content(a, b);
    case BN_DIR:
        return a->mode == b->mode && a->opaque == b->opaque;
    case BN_SYMLINK:
        return strcmp(a->link, b->link) == 0;
    case BN_WHITEOUT:
        return true;
    }
    return false;
}

static int conflict(const struct bnode *n, const struct bnode *old, const char *path,
                    struct dlc_error **err)
{
    return dlc_error_set(err, EEXIST, "%s: '/%s' is already a %s (from %s)",
                         n->where ? n->where : "layer", path, type_name(old->type),
                         old->where ? old->where : "an earlier entry");
}

/* Makes every parent of path a directory (implicit where missing). */
static int add_parents(struct btree *t, const struct bnode *n, struct dlc_error **err)
{
    _cleanup_free_ char *p = xstrdup(n->path);
    for (char *slash = strchr(p, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        struct bnode *old = btree_get(t, p);
        if (old == NULL) {
            struct bnode dir = {.type = BN_DIR, .mode = 0755, .implicit = true, .where = n->where};
            put(t, node_dup(&dir, p));
        } else if (old->type != BN_DIR) {
            return conflict(n, old, p, err);
        }
        *slash = '/';
    }
    return 0;
}

int btree_add(struct btree *t, const struct bnode *n, struct dlc_error **err)
{
    if (add_parents(t, n, err) < 0)
        return -1;
    struct bnode *old = btree_get(t, n->path);
    if (old == NULL) {
        put(t, node_dup(n, NULL));
        return 0;
    }
    if (old->type == BN_DIR && n->type == BN_DIR) {
        if (n->implicit)
            return 0;
        if (!old->implicit && !node_same(old, n))
            return dlc_error_set(err, EEXIST,
                                 "%s: directory '/%s' is also given by %s with "
                                 "other attributes",
                                 n->where ? n->where : "layer", n->path,
                                 old->where ? old->where : "an earlier entry");
        put(t, node_dup(n, NULL));
        return 0;
    }
    if (node_same(old, n))
        return 0;
    return conflict(n, old, n->path, err);
}

/* ---- order, hashing, key ------------------------------------------------------------ */

static bool is_whiteout_name(const char *c, size_t len)
{
    return len >= 4 && memcmp(c, ".wh.", 4) == 0;
}

/* Tar order: component by component (a directory before its contents), and within a
 * directory whiteouts (".wh.x", as written for BN_WHITEOUT nodes and opaque markers)
 * before everything else, as the image spec asks of generators. */
static int cmp_nodes(const void *pa, const void *pb)
{
    const struct bnode *na = *(const struct bnode *const *)pa;
    const struct bnode *nb = *(const struct bnode *const *)pb;
    const char *a = na->path, *b = nb->path;
    for (;;) {
        size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
        bool wa = (a[la] == '\0' && na->type == BN_WHITEOUT) || is_whiteout_name(a, la);
        bool wb = (b[lb] == '\0' && nb->type == BN_WHITEOUT) || is_whiteout_name(b, lb);
        if (wa != wb)
            return wa ? -1 : 1;
        int c = memcmp(a, b, la < lb ? la : lb);
        if (c != 0)
            return c;
        if (la != lb)
            return la < lb ? -1 : 1;
        bool end_a = a[la] == '\0', end_b = b[lb] == '\0';
        if (end_a || end_b) /* the shorter path is the parent */
            return end_a == end_b ? 0 : end_a ? -1 : 1;
        a += la + 1;
        b += lb + 1;
    }
}

struct bnode **btree_sorted(const struct btree *t, size_t *ret_n)
{
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
    struct bnode **v = xcalloc(t->n ? t->n : 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i] != NULL && t->slots[i] != TOMB)
            v[k++] = t->slots[i];
    qsort(v, k, sizeof(*v), cmp_nodes); /* NOLINT(bugprone-sizeof-expression): pointers */
    *ret_n = k;
    return v;
}

static int hash_node(struct bnode *n, struct btree *memo, struct dlc_error **err)
{
    if (n->src == NULL) {
        oci_digest_buf(n->data ? n->data : "", n->size, n->hash);
        return 0;
    }
    const struct bnode *m = memo ? btree_get(memo, n->src) : NULL;
    if (m != NULL) {
        memcpy(n->hash, m->hash, sizeof(n->hash));
        n->size = m->size;
        return 0;
    }
    uint64_t size = 0;
    if (oci_digest_file(n->src, n->hash, &size, err) < 0)
        return dlc_error_wrap(err, "%s", n->where ? n->where : n->src);
    n->size = size;
    if (memo != NULL) {
        struct bnode rec = {.path = n->src, .type = BN_FILE, .size = size};
        memcpy(rec.hash, n->hash, sizeof(rec.hash));
        put(memo, node_dup(&rec, NULL));
    }
    return 0;
}

int btree_hash_files_memo(struct btree *t, struct btree *memo, struct dlc_error **err)
{
    for (size_t i = 0; i < t->cap; i++) {
        struct bnode *n = t->slots[i];
        if (n == NULL || n == TOMB || n->type != BN_FILE || n->hash[0])
            continue;
        if (hash_node(n, memo, err) < 0)
            return -1;
    }
    return 0;
}

int btree_hash_files(struct btree *t, struct dlc_error **err)
{
    return btree_hash_files_memo(t, NULL, err);
}

void btree_key(const struct btree *t, const char *salt, char out[OCI_DIGEST_BUFSZ])
{
    size_t n = 0;
    _cleanup_free_ struct bnode **v = btree_sorted(t, &n);
    _cleanup_(oci_digester_freep) struct oci_digester *d = oci_digester_new();
    _cleanup_free_ char *head = xasprintf("dlc-layer-v1\n%s\n", salt);
    oci_digester_update(d, head, strlen(head));
    for (size_t i = 0; i < n; i++) {
        const struct bnode *x = v[i];
        _cleanup_free_ char *line = xasprintf(
                "%s\t%d\t%o\t%d\t%d\t%llu\t%s\t%s\n", x->path, (int)x->type, x->mode, x->implicit,
                x->opaque, (unsigned long long)x->size, x->hash, x->link ? x->link : "");
        oci_digester_update(d, line, strlen(line));
    }
    oci_digester_final(d, out);
}

uint64_t btree_tar_estimate(const struct btree *t)
{
    uint64_t total = 1024;
    for (size_t i = 0; i < t->cap; i++) {
        const struct bnode *n = t->slots[i];
        if (n != NULL && n != TOMB)
            total += 512 + (n->type == BN_FILE ? (n->size + 511) / 512 * 512 : 0);
    }
    return total;
}

/* ---- resolving paths through symlinks ------------------------------------------------- */

/* Lexically normalises a path that may climb above the root: ".." at the top stays at the
 * top, as the kernel does inside a container's root. */
char *bpath_normalize_clamped(const char *path)
{
    struct dlc_strbuf sb = DLC_STRBUF_INIT;
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            char *slash = sb.buf ? strrchr(sb.buf, '/') : NULL;
            sb.len = slash ? (size_t)(slash - sb.buf) : 0;
            if (sb.buf)
                sb.buf[sb.len] = '\0';
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (sb.len > 0)
                dlc_strbuf_appendc(&sb, '/');
            dlc_strbuf_append_len(&sb, p, len);
        }
        p += len + (p[len] == '/');
    }
    return dlc_strbuf_detach(&sb, NULL);
}

/* What a path's component is in the view "layer over lower": the layer's own explicit
 * entries first, then lower's. */
static const struct bnode *view_get(const struct btree *layer, const struct btree *lower,
                                    const char *path)
{
    const struct bnode *n = layer ? btree_get(layer, path) : NULL;
    if (n != NULL && !(n->type == BN_DIR && n->implicit))
        return n;
    return lower ? btree_get(lower, path) : NULL;
}

/* path with every parent component resolved through the view's symlinks (the last
 * component itself is kept: an entry replaces a symlink, it does not write through it). */
static int resolve_parents(const struct btree *layer, const struct btree *lower, const char *path,
                           char **ret, struct dlc_error **err)
{
    _cleanup_free_ char *todo = xstrdup(path);
    for (int follows = 0; follows <= MAX_SYMLINK_FOLLOW; follows++) {
        struct dlc_strbuf cur = DLC_STRBUF_INIT;
        const char *p = todo;
        bool restarted = false;
        for (size_t len = strcspn(p, "/"); p[len] == '/'; len = strcspn(p, "/")) {
            size_t keep = cur.len;
            if (cur.len)
                dlc_strbuf_appendc(&cur, '/');
            dlc_strbuf_append_len(&cur, p, len);
            const struct bnode *n = view_get(layer, lower, dlc_strbuf_str(&cur));
            p += len + 1;
            if (n == NULL || n->type != BN_SYMLINK)
                continue;
            cur.len = keep;
            if (cur.buf)
                cur.buf[keep] = '\0';
            _cleanup_free_ char *joined =
                    n->link[0] == '/' ? xasprintf("%s/%s", n->link, p)
                                      : xasprintf("%s/%s/%s", dlc_strbuf_str(&cur), n->link, p);
            free(todo);
            todo = bpath_normalize_clamped(joined);
            restarted = true;
            break;
        }
        dlc_strbuf_release(&cur);
        if (!restarted) {
            *ret = TAKE_PTR(todo);
            return 0;
        }
    }
    return dlc_error_set(err, ELOOP, "'/%s': too many levels of symbolic links", path);
}

/* ---- finalising and applying ------------------------------------------------------------- */

static int finalize_add(struct btree *out, const struct btree *raw, const struct btree *lower,
                        const struct bnode *n, struct dlc_error **err)
{
    _cleanup_free_ char *canon = NULL;
    if (resolve_parents(raw, lower, n->path, &canon, err) < 0)
        return dlc_error_wrap(err, "%s", n->where ? n->where : "layer");
    if (canon[0] == '\0')
        return dlc_error_set(err, EINVAL, "%s: '/%s' resolves to '/'",
                             n->where ? n->where : "layer", n->path);
    struct bnode copy = *n;
    copy.path = canon;
    return btree_add(out, &copy, err);
}

/* Drops what lower already has: implicit parents it has as directories, and entries that
 * would change nothing. */
static void drop_redundant(struct btree *t, const struct btree *lower)
{
    for (size_t i = 0; i < t->cap; i++) {
        struct bnode *n = t->slots[i];
        if (n == NULL || n == TOMB || n->type == BN_WHITEOUT)
            continue;
        const struct bnode *l = btree_get(lower, n->path);
        if (l == NULL)
            continue;
        if ((n->type == BN_DIR && n->implicit && l->type == BN_DIR) || node_same(l, n))
            remove_slot(t, i);
    }
}

int btree_finalize(const struct btree *raw, const struct btree *lower, struct btree **ret,
                   struct dlc_error **err)
{
    size_t n = 0;
    _cleanup_free_ struct bnode **v = btree_sorted(raw, &n);
    _cleanup_(btree_freep) struct btree *out = btree_new();
    for (size_t i = 0; i < n; i++) {
        if (v[i]->type == BN_DIR && v[i]->implicit)
            continue;
        if (finalize_add(out, raw, lower, v[i], err) < 0)
            return -1;
    }
    if (lower != NULL)
        drop_redundant(out, lower);
    /* Every node left is written as a tar entry: none is implicit any more. */
    for (size_t i = 0; i < out->cap; i++)
        if (out->slots[i] != NULL && out->slots[i] != TOMB)
            out->slots[i]->implicit = false;
    *ret = TAKE_PTR(out);
    return 0;
}

/* Puts n at its (resolved) place in t, replacing what is there; parents made directories. */
static int apply_entry(struct btree *t, const struct bnode *n, struct dlc_error **err)
{
    _cleanup_free_ char *canon = NULL;
    if (resolve_parents(NULL, t, n->path, &canon, err) < 0)
        return -1;
    if (canon[0] == '\0')
        return 0; /* an entry for the root itself: nothing to record */
    struct bnode *old = btree_get(t, canon);
    if (old != NULL && !(old->type == BN_DIR && n->type == BN_DIR))
        btree_remove(t, canon);
    _cleanup_free_ char *p = xstrdup(canon);
    for (char *slash = strchr(p, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        struct bnode *parent = btree_get(t, p);
        if (parent == NULL || parent->type != BN_DIR) {
            if (parent != NULL)
                btree_remove(t, p);
            struct bnode dir = {.type = BN_DIR, .mode = 0755, .implicit = true};
            put(t, node_dup(&dir, p));
        }
        *slash = '/';
    }
    struct bnode *c = node_dup(n, canon);
    c->opaque = false;
    c->implicit = false;
    put(t, c);
    return 0;
}

int btree_apply(struct btree *t, const struct btree *layer, struct dlc_error **err)
{
    size_t n = 0;
    _cleanup_free_ struct bnode **v = btree_sorted(layer, &n);
    for (size_t i = 0; i < n; i++) {
        if (v[i]->type == BN_DIR && v[i]->opaque)
            btree_remove_children(t, v[i]->path);
        else if (v[i]->type == BN_WHITEOUT)
            btree_remove(t, v[i]->path);
    }
    for (size_t i = 0; i < n; i++) {
        /* an implicit directory is a parent the layer did not contain: nothing to apply */
        if (v[i]->type == BN_WHITEOUT || (v[i]->type == BN_DIR && v[i]->implicit))
            continue;
        if (apply_entry(t, v[i], err) < 0)
            return -1;
    }
    return 0;
}
