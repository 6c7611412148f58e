/* elf.c: the dynamic-linking facts of an ELF file, read from its headers (PT_INTERP,
 * PT_DYNAMIC: DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME) like ld.so would, without ever
 * running the file; and the run path tokens ld.so expands. Every offset and size is checked
 * against the file: a malformed ELF is an error, never a crash. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"

#define MAX_DYNAMIC_SIZE (16u << 20)
#define MAX_STRTAB_SIZE  (64u << 20)
#define MAX_INTERP_SIZE  4096

struct efile {
    int fd;
    uint64_t size;
    const char *path;
    int cls; /* ELFCLASS32 / ELFCLASS64 */
};

struct ephdr {
    uint32_t type;
    uint64_t offset, vaddr, filesz;
};

void dlc_elf_free(struct dlc_elf *e)
{
    if (e == NULL)
        return;
    free(e->interp);
    dlc_strv_free(e->needed);
    dlc_strv_free(e->rpath);
    dlc_strv_free(e->runpath);
    free(e->soname);
    free(e);
}

static int bad(const struct efile *f, struct dlc_error **err, const char *why)
{
    dlc_error_set(err, EINVAL, "%s: malformed ELF: %s", f->path, why);
    return -1;
}

static int rd(const struct efile *f, uint64_t off, void *buf, size_t len, const char *what,
              struct dlc_error **err)
{
    if (off > f->size || len > f->size - off)
        return dlc_error_set(err, EINVAL, "%s: malformed ELF: %s lies outside the file", f->path,
                             what);
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(f->fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return dlc_error_set_errno(err, n < 0 ? errno : EIO, "read %s", f->path);
        done += (size_t)n;
    }
    return 0;
}

static bool ident_native(const unsigned char *ident)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return ident[EI_DATA] == ELFDATA2LSB;
#else
    return ident[EI_DATA] == ELFDATA2MSB;
#endif
}

/* Program headers -> normalised array. */
static int read_phdrs(const struct efile *f, uint64_t phoff, unsigned phentsize, unsigned phnum,
                      struct ephdr **ret, struct dlc_error **err)
{
    size_t want = f->cls == ELFCLASS64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    if (phnum == 0) {
        *ret = NULL;
        return 0;
    }
    if (phentsize != want || phnum == PN_XNUM)
        return bad(f, err, "unexpected program header size or count");
    _cleanup_free_ unsigned char *raw = xmalloc((size_t)phnum * want);
    if (rd(f, phoff, raw, (size_t)phnum * want, "program header table", err) < 0)
        return -1;
    struct ephdr *ph = xcalloc(phnum, sizeof(*ph));
    for (unsigned i = 0; i < phnum; i++) {
        if (f->cls == ELFCLASS64) {
            Elf64_Phdr p;
            memcpy(&p, raw + i * want, sizeof(p));
            ph[i] = (struct ephdr){p.p_type, p.p_offset, p.p_vaddr, p.p_filesz};
        } else {
            Elf32_Phdr p;
            memcpy(&p, raw + i * want, sizeof(p));
            ph[i] = (struct ephdr){p.p_type, p.p_offset, p.p_vaddr, p.p_filesz};
        }
    }
    *ret = ph;
    return 0;
}

/* A virtual address -> file offset through the PT_LOAD segments. */
static int vaddr_to_offset(const struct ephdr *ph, unsigned n, uint64_t addr, uint64_t *ret)
{
    for (unsigned i = 0; i < n; i++) {
        if (ph[i].type == PT_LOAD && addr >= ph[i].vaddr && addr - ph[i].vaddr < ph[i].filesz) {
            *ret = ph[i].offset + (addr - ph[i].vaddr);
            return 0;
        }
    }
    return -1;
}

static int read_interp(const struct efile *f, const struct ephdr *p, struct dlc_elf *e,
                       struct dlc_error **err)
{
    if (p->filesz == 0 || p->filesz > MAX_INTERP_SIZE)
        return bad(f, err, "PT_INTERP has a bad size");
    _cleanup_free_ char *s = xcalloc(1, p->filesz + 1);
    if (rd(f, p->offset, s, p->filesz, "PT_INTERP", err) < 0)
        return -1;
    if (s[0] != '/')
        return bad(f, err, "PT_INTERP is not an absolute path");
    e->interp = TAKE_PTR(s);
    return 0;
}

struct dyninfo {
    uint64_t strtab, strsz;
    bool has_strtab, has_strsz;
    uint64_t *needed;
    size_t n_needed;
    int64_t rpath, runpath, soname; /* string offsets, -1 when absent */
};

static void dyn_entry(struct dyninfo *d, int64_t tag, uint64_t val)
{
    switch (tag) {
    case DT_NEEDED:
        d->needed = xrealloc(d->needed, (d->n_needed + 1) * sizeof(*d->needed));
        d->needed[d->n_needed++] = val;
        break;
    case DT_STRTAB:
        d->strtab = val;
        d->has_strtab = true;
        break;
    case DT_STRSZ:
        d->strsz = val;
        d->has_strsz = true;
        break;
    case DT_RPATH:
        d->rpath = (int64_t)val;
        break;
    case DT_RUNPATH:
        d->runpath = (int64_t)val;
        break;
    case DT_SONAME:
        d->soname = (int64_t)val;
        break;
    default:
        break;
    }
}

static int read_dynamic(const struct efile *f, const struct ephdr *p, struct dyninfo *d,
                        struct dlc_error **err)
{
    size_t esz = f->cls == ELFCLASS64 ? sizeof(Elf64_Dyn) : sizeof(Elf32_Dyn);
    if (p->filesz > MAX_DYNAMIC_SIZE)
        return bad(f, err, "PT_DYNAMIC is too large");
    size_t n = p->filesz / esz;
    _cleanup_free_ unsigned char *raw = xmalloc(n ? n * esz : 1);
    if (rd(f, p->offset, raw, n * esz, "PT_DYNAMIC", err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int64_t tag;
        uint64_t val;
        if (f->cls == ELFCLASS64) {
            Elf64_Dyn dy;
            memcpy(&dy, raw + i * esz, sizeof(dy));
            tag = dy.d_tag;
            val = dy.d_un.d_val;
        } else {
            Elf32_Dyn dy;
            memcpy(&dy, raw + i * esz, sizeof(dy));
            tag = dy.d_tag;
            val = dy.d_un.d_val;
        }
        if (tag == DT_NULL)
            break;
        dyn_entry(d, tag, val);
    }
    return 0;
}

static int dyn_string(const struct efile *f, const char *strtab, uint64_t strsz, uint64_t off,
                      char **ret, struct dlc_error **err)
{
    if (off >= strsz || memchr(strtab + off, '\0', strsz - off) == NULL)
        return bad(f, err, "a dynamic string lies outside DT_STRTAB");
    *ret = xstrdup(strtab + off);
    return 0;
}

static char **split_path_list(const char *s)
{
    char **v = NULL;
    for (const char *p = s;;) {
        size_t len = strcspn(p, ":");
        _cleanup_free_ char *item = xstrndup(p, len);
        if (item[0] != '\0')
            v = dlc_strv_push(v, item);
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    return v;
}

static int dyn_strings(const struct efile *f, const struct ephdr *ph, unsigned phnum,
                       const struct dyninfo *d, struct dlc_elf *e, struct dlc_error **err)
{
    if (d->n_needed == 0 && d->rpath < 0 && d->runpath < 0 && d->soname < 0)
        return 0;
    uint64_t off = 0;
    if (!d->has_strtab || !d->has_strsz || d->strsz == 0 || d->strsz > MAX_STRTAB_SIZE)
        return bad(f, err, "PT_DYNAMIC lacks a usable DT_STRTAB/DT_STRSZ");
    if (vaddr_to_offset(ph, phnum, d->strtab, &off) < 0)
        return bad(f, err, "DT_STRTAB is not in a loaded segment");
    _cleanup_free_ char *strtab = xmalloc(d->strsz);
    if (rd(f, off, strtab, d->strsz, "DT_STRTAB", err) < 0)
        return -1;
    for (size_t i = 0; i < d->n_needed; i++) {
        _cleanup_free_ char *s = NULL;
        if (dyn_string(f, strtab, d->strsz, d->needed[i], &s, err) < 0)
            return -1;
        e->needed = dlc_strv_push(e->needed, s);
    }
    _cleanup_free_ char *rp = NULL, *rup = NULL;
    if ((d->rpath >= 0 && dyn_string(f, strtab, d->strsz, (uint64_t)d->rpath, &rp, err) < 0) ||
        (d->runpath >= 0 && dyn_string(f, strtab, d->strsz, (uint64_t)d->runpath, &rup, err) < 0) ||
        (d->soname >= 0 &&
         dyn_string(f, strtab, d->strsz, (uint64_t)d->soname, &e->soname, err) < 0))
        return -1;
    e->rpath = rp ? split_path_list(rp) : NULL;
    e->runpath = rup ? split_path_list(rup) : NULL;
    return 0;
}

static int parse_segments(const struct efile *f, const struct ephdr *ph, unsigned phnum,
                          struct dlc_elf *e, struct dlc_error **err)
{
    struct dyninfo d = {.rpath = -1, .runpath = -1, .soname = -1};
    int r = 0;
    for (unsigned i = 0; i < phnum && r == 0; i++) {
        if (ph[i].type == PT_INTERP && e->interp == NULL)
            r = read_interp(f, &ph[i], e, err);
        else if (ph[i].type == PT_DYNAMIC && !e->dynamic) {
            e->dynamic = true;
            r = read_dynamic(f, &ph[i], &d, err);
        }
    }
    if (r == 0)
        r = dyn_strings(f, ph, phnum, &d, e, err);
    free(d.needed);
    return r;
}

static int parse_header(struct efile *f, const unsigned char *hdr, struct dlc_elf *e,
                        struct dlc_error **err)
{
    uint64_t phoff;
    unsigned phentsize, phnum;
    if (f->cls == ELFCLASS64) {
        Elf64_Ehdr h;
        memcpy(&h, hdr, sizeof(h));
        phoff = h.e_phoff, phentsize = h.e_phentsize, phnum = h.e_phnum;
        e->machine = h.e_machine;
    } else {
        Elf32_Ehdr h;
        memcpy(&h, hdr, sizeof(h));
        phoff = h.e_phoff, phentsize = h.e_phentsize, phnum = h.e_phnum;
        e->machine = h.e_machine;
    }
    _cleanup_free_ struct ephdr *ph = NULL;
    if (read_phdrs(f, phoff, phentsize, phnum, &ph, err) < 0)
        return -1;
    return parse_segments(f, ph, phnum, e, err);
}

/* Reads the identification and the whole ELF header; 0 with *is_elf false for non-ELF. */
static int read_ident(struct efile *f, unsigned char hdr[sizeof(Elf64_Ehdr)], bool *is_elf,
                      struct dlc_error **err)
{
    *is_elf = false;
    if (f->size < EI_NIDENT)
        return 0;
    if (rd(f, 0, hdr, EI_NIDENT, "ELF identification", err) < 0)
        return -1;
    if (memcmp(hdr, ELFMAG, SELFMAG) != 0)
        return 0;
    *is_elf = true;
    f->cls = hdr[EI_CLASS];
    if (f->cls != ELFCLASS32 && f->cls != ELFCLASS64)
        return bad(f, err, "unknown ELF class");
    if (!ident_native(hdr))
        return bad(f, err, "byte order differs from this host's");
    size_t hsize = f->cls == ELFCLASS64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
    return rd(f, 0, hdr, hsize, "ELF header", err);
}

int dlc_elf_read(const char *path, struct dlc_elf **ret, struct dlc_error **err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dlc_error_set_errno(err, errno, "%s", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return dlc_error_set_errno(err, errno, "stat %s", path);
    if (!S_ISREG(st.st_mode))
        return dlc_error_set(err, EINVAL, "%s: not a regular file", path);
    struct efile f = {fd, (uint64_t)st.st_size, path, 0};
    unsigned char hdr[sizeof(Elf64_Ehdr)] = {0};
    bool is_elf = false;
    if (read_ident(&f, hdr, &is_elf, err) < 0)
        return -1;
    if (!is_elf) {
        *ret = NULL;
        return 0;
    }
    _cleanup_(dlc_elf_freep) struct dlc_elf *e = xcalloc(1, sizeof(*e));
    e->elf_class = f.cls;
    if (parse_header(&f, hdr, e, err) < 0)
        return -1;
    *ret = TAKE_PTR(e);
    return 0;
}

bool dlc_elf_matches(const char *path, int elf_class, int machine)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    unsigned char hdr[sizeof(Elf64_Ehdr)];
    ssize_t n = pread(fd, hdr, sizeof(hdr), 0);
    if (n < (ssize_t)sizeof(Elf32_Ehdr) || memcmp(hdr, ELFMAG, SELFMAG) != 0 ||
        hdr[EI_CLASS] != elf_class || !ident_native(hdr))
        return false;
    uint16_t m;
    memcpy(&m, hdr + offsetof(Elf64_Ehdr, e_machine), sizeof(m)); /* same offset in Elf32 */
    return m == machine;
}

/* ld.so's dynamic string tokens, each also written ${NAME}; ORIGIN's value is the caller's. */
char *dlc_elf_expand_dst(const char *entry, const char *origin)
{
    struct dlc_strbuf sb = DLC_STRBUF_INIT;
    static const char *const names[][2] = {
            {"ORIGIN", NULL}, {"LIB", "lib/" DLC_MULTIARCH}, {"PLATFORM", DLC_LD_PLATFORM}};
    for (const char *p = entry; *p;) {
        bool done = false;
        for (size_t i = 0; i < DLC_ARRAY_SIZE(names) && *p == '$' && !done; i++) {
            size_t nl = strlen(names[i][0]);
            const char *v = names[i][1] ? names[i][1] : origin;
            if (strncmp(p + 1, names[i][0], nl) == 0) {
                dlc_strbuf_append(&sb, v);
                p += 1 + nl;
                done = true;
            } else if (p[1] == '{' && strncmp(p + 2, names[i][0], nl) == 0 && p[2 + nl] == '}') {
                dlc_strbuf_append(&sb, v);
                p += 3 + nl;
                done = true;
            }
        }
        if (!done)
            dlc_strbuf_appendc(&sb, *p++);
    }
    return dlc_strbuf_detach(&sb, NULL);
}
