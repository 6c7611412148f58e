/* compress.c: the compressed layer stream, deterministic whatever the thread count.
 *
 * gzip follows pigz: the input is cut into 1 MiB blocks, each deflated on its own (raw
 * deflate primed with the previous block's last 32 KiB as dictionary, ended with a sync
 * flush, the last with the final block), and the results are concatenated into one gzip
 * member (mtime 0, no name, OS 3) with the CRC combined from the blocks'. The bytes depend
 * on the input and the level only, so blocks can be compressed on several cores.
 * zstd uses libzstd's own workers, whose output does not depend on their number (>= 1).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>

#include "builder-internal.h"

#define GZ_BLOCK    (1u << 20)
#define GZ_DICT     32768u
#define MAX_THREADS 8

enum job_state { JOB_FREE, JOB_READY, JOB_BUSY, JOB_DONE, JOB_FAILED };

struct gz_job {
    unsigned char *in;
    size_t in_len;
    unsigned char dict[GZ_DICT];
    size_t dict_len;
    bool last;
    unsigned char *out;
    size_t out_len, out_cap;
    uint32_t crc;
    enum job_state state;
};

struct bcompress {
    enum builder_compression kind;
    int level;
    bsink_fn sink;
    void *ctx;
    bool failed;
    /* gzip */
    pthread_t *tids;
    size_t n_tids;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    bool stop;
    struct gz_job *jobs;
    size_t n_jobs;
    uint64_t next_submit, next_take, next_write;
    unsigned char *cur;
    size_t cur_len;
    unsigned char tail[GZ_DICT];
    size_t tail_len;
    uint32_t crc;
    uint64_t total_in;
    /* zstd */
    ZSTD_CCtx *zc;
    unsigned char *zout;
    size_t zout_cap;
};

const char *bcompress_media_type(enum builder_compression c)
{
    return c == BUILDER_COMPRESS_ZSTD ? OCI_MT_LAYER_ZSTD : OCI_MT_LAYER_GZIP;
}

int bcompress_default_level(enum builder_compression c)
{
    return c == BUILDER_COMPRESS_ZSTD ? 9 : 6;
}

int builder_compression_parse(const char *s, enum builder_compression *ret, struct dlc_error **err)
{
    if (dlc_streq(s, "gzip"))
        *ret = BUILDER_COMPRESS_GZIP;
    else if (dlc_streq(s, "zstd"))
        *ret = BUILDER_COMPRESS_ZSTD;
    else
        return dlc_error_set(err, EINVAL, "compression '%s' is not one of gzip, zstd", s ? s : "");
    return 0;
}

/* ---- gzip blocks ------------------------------------------------------------------- */

static int deflate_job(struct gz_job *j, int level)
{
    z_stream s;
    memset(&s, 0, sizeof(s));
    if (deflateInit2(&s, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    if (j->dict_len > 0 && deflateSetDictionary(&s, j->dict, (uInt)j->dict_len) != Z_OK) {
        deflateEnd(&s);
        return -1;
    }
    size_t need = deflateBound(&s, j->in_len) + 64;
    if (j->out_cap < need) {
        free(j->out);
        j->out = xmalloc(need);
        j->out_cap = need;
    }
    s.next_in = j->in;
    s.avail_in = (uInt)j->in_len;
    s.next_out = j->out;
    s.avail_out = (uInt)j->out_cap;
    int rc = deflate(&s, j->last ? Z_FINISH : Z_SYNC_FLUSH);
    bool ok = j->last ? rc == Z_STREAM_END : (rc == Z_OK && s.avail_in == 0 && s.avail_out > 0);
    j->out_len = j->out_cap - s.avail_out;
    deflateEnd(&s);
    j->crc = (uint32_t)crc32(0L, j->in, (uInt)j->in_len);
    return ok ? 0 : -1;
}

static void *worker(void *arg)
{
    struct bcompress *z = arg;
    pthread_mutex_lock(&z->mu);
    for (;;) {
        while (!z->stop && !(z->next_take < z->next_submit))
            pthread_cond_wait(&z->work_cv, &z->mu);
        if (z->stop)
            break;
        struct gz_job *j = &z->jobs[z->next_take++ % z->n_jobs];
        j->state = JOB_BUSY;
        pthread_mutex_unlock(&z->mu);
        int rc = deflate_job(j, z->level);
        pthread_mutex_lock(&z->mu);
        j->state = rc == 0 ? JOB_DONE : JOB_FAILED;
        pthread_cond_broadcast(&z->done_cv);
    }
    pthread_mutex_unlock(&z->mu);
    return NULL;
}

static int write_gz_header(struct bcompress *z, struct dlc_error **err)
{
    /* magic, deflate, no flags, mtime 0, no extra flags, OS = Unix */
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    return z->sink(z->ctx, hdr, sizeof(hdr), err);
}

/* Waits for the oldest submitted block and hands its output to the sink. */
static int drain_one(struct bcompress *z, struct dlc_error **err)
{
    struct gz_job *j = &z->jobs[z->next_write % z->n_jobs];
    if (z->n_tids > 0) {
        pthread_mutex_lock(&z->mu);
        while (j->state != JOB_DONE && j->state != JOB_FAILED)
            pthread_cond_wait(&z->done_cv, &z->mu);
        pthread_mutex_unlock(&z->mu);
    }
    if (j->state == JOB_FAILED)
        return dlc_error_set(err, EIO, "gzip: deflate failed");
    z->crc = (uint32_t)crc32_combine(z->crc, j->crc, (z_off_t)j->in_len);
    j->state = JOB_FREE;
    z->next_write++;
    return z->sink(z->ctx, j->out, j->out_len, err);
}

static int gz_submit(struct bcompress *z, bool last, struct dlc_error **err)
{
    while (z->next_submit - z->next_write >= z->n_jobs)
        if (drain_one(z, err) < 0)
            return -1;
    struct gz_job *j = &z->jobs[z->next_submit % z->n_jobs];
    unsigned char *spare = j->in;
    j->in = z->cur;
    j->in_len = z->cur_len;
    memcpy(j->dict, z->tail, z->tail_len);
    j->dict_len = z->tail_len;
    j->last = last;
    size_t keep = j->in_len < GZ_DICT ? j->in_len : GZ_DICT;
    if (keep == GZ_DICT || z->tail_len == 0) {
        memcpy(z->tail, j->in + j->in_len - keep, keep);
        z->tail_len = keep;
    } else { /* a short block (only the last one): slide the window */
        size_t old = GZ_DICT - keep < z->tail_len ? GZ_DICT - keep : z->tail_len;
        memmove(z->tail, z->tail + z->tail_len - old, old);
        memcpy(z->tail + old, j->in, keep);
        z->tail_len = old + keep;
    }
    z->cur = spare ? spare : xmalloc(GZ_BLOCK);
    z->cur_len = 0;
    if (z->n_tids == 0) {
        j->state = deflate_job(j, z->level) == 0 ? JOB_DONE : JOB_FAILED;
        z->next_submit++;
        return 0;
    }
    pthread_mutex_lock(&z->mu);
    j->state = JOB_READY;
    z->next_submit++;
    pthread_cond_signal(&z->work_cv);
    pthread_mutex_unlock(&z->mu);
    return 0;
}

static int gz_write(struct bcompress *z, const unsigned char *p, size_t len, struct dlc_error **err)
{
    z->total_in += len;
    while (len > 0) {
        size_t n = GZ_BLOCK - z->cur_len < len ? GZ_BLOCK - z->cur_len : len;
        memcpy(z->cur + z->cur_len, p, n);
        z->cur_len += n;
        p += n;
        len -= n;
        if (z->cur_len == GZ_BLOCK && gz_submit(z, false, err) < 0)
            return -1;
    }
    return 0;
}

static int gz_finish(struct bcompress *z, struct dlc_error **err)
{
    if (gz_submit(z, true, err) < 0)
        return -1;
    while (z->next_write < z->next_submit)
        if (drain_one(z, err) < 0)
            return -1;
    unsigned char trailer[8];
    uint32_t isize = (uint32_t)(z->total_in & 0xffffffffu);
    for (int i = 0; i < 4; i++) {
        trailer[i] = (unsigned char)(z->crc >> (8 * i));
        trailer[4 + i] = (unsigned char)(isize >> (8 * i));
    }
    return z->sink(z->ctx, trailer, sizeof(trailer), err);
}

static void gz_start_threads(struct bcompress *z, int threads)
{
    z->n_jobs = (size_t)(threads > 1 ? 2 * threads + 2 : 1);
    z->jobs = xcalloc(z->n_jobs, sizeof(*z->jobs));
    z->cur = xmalloc(GZ_BLOCK);
    z->crc = (uint32_t)crc32(0L, Z_NULL, 0);
    if (threads <= 1)
        return;
    pthread_mutex_init(&z->mu, NULL);
    pthread_cond_init(&z->work_cv, NULL);
    pthread_cond_init(&z->done_cv, NULL);
    z->tids = xcalloc((size_t)threads, sizeof(*z->tids));
    for (int i = 0; i < threads; i++)
        if (pthread_create(&z->tids[z->n_tids], NULL, worker, z) == 0)
            z->n_tids++;
    if (z->n_tids == 0) { /* no threads to be had: compress inline, same bytes */
        free(z->jobs);
        z->n_jobs = 1;
        z->jobs = xcalloc(1, sizeof(*z->jobs));
    }
}

/* ---- zstd ---------------------------------------------------------------------------- */

static int zstd_start(struct bcompress *z, int threads, struct dlc_error **err)
{
    z->zc = ZSTD_createCCtx();
    if (z->zc == NULL)
        return dlc_error_set(err, ENOMEM, "zstd: cannot create a context");
    size_t r = ZSTD_CCtx_setParameter(z->zc, ZSTD_c_compressionLevel, z->level);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(z->zc, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(z->zc, ZSTD_c_nbWorkers, threads < 1 ? 1 : threads);
    if (ZSTD_isError(r))
        return dlc_error_set(err, EINVAL,
                             "zstd: %s (multithreading is needed for output "
                             "that does not depend on the thread count)",
                             ZSTD_getErrorName(r));
    z->zout_cap = ZSTD_CStreamOutSize();
    z->zout = xmalloc(z->zout_cap);
    return 0;
}

static int zstd_run(struct bcompress *z, const void *data, size_t len, ZSTD_EndDirective mode,
                    struct dlc_error **err)
{
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {z->zout, z->zout_cap, 0};
        size_t left = ZSTD_compressStream2(z->zc, &out, &in, mode);
        if (ZSTD_isError(left))
            return dlc_error_set(err, EIO, "zstd: %s", ZSTD_getErrorName(left));
        if (out.pos > 0 && z->sink(z->ctx, z->zout, out.pos, err) < 0)
            return -1;
        bool done = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
        if (done)
            return 0;
    }
}

/* ---- the stream -------------------------------------------------------------------------- */

int bcompress_new(enum builder_compression c, int level, int threads, bsink_fn sink, void *ctx,
                  struct bcompress **ret, struct dlc_error **err)
{
    struct bcompress *z = xcalloc(1, sizeof(*z));
    z->kind = c;
    z->level = level;
    z->sink = sink;
    z->ctx = ctx;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    int rc;
    if (c == BUILDER_COMPRESS_ZSTD) {
        rc = zstd_start(z, threads, err);
    } else {
        gz_start_threads(z, threads);
        rc = write_gz_header(z, err);
    }
    if (rc < 0) {
        bcompress_free(z);
        return -1;
    }
    *ret = z;
    return 0;
}

int bcompress_write(struct bcompress *z, const void *data, size_t len, struct dlc_error **err)
{
    if (z->failed)
        return dlc_error_set(err, EIO, "compressor: write after a failure");
    int rc = z->kind == BUILDER_COMPRESS_ZSTD ? zstd_run(z, data, len, ZSTD_e_continue, err)
                                              : gz_write(z, data, len, err);
    z->failed = rc < 0;
    return rc;
}

int bcompress_finish(struct bcompress *z, struct dlc_error **err)
{
    if (z->failed)
        return dlc_error_set(err, EIO, "compressor: finish after a failure");
    int rc = z->kind == BUILDER_COMPRESS_ZSTD ? zstd_run(z, NULL, 0, ZSTD_e_end, err)
                                              : gz_finish(z, err);
    z->failed = rc < 0;
    return rc;
}

void bcompress_free(struct bcompress *z)
{
    if (z == NULL)
        return;
    if (z->n_tids > 0) {
        pthread_mutex_lock(&z->mu);
        z->stop = true;
        pthread_cond_broadcast(&z->work_cv);
        pthread_mutex_unlock(&z->mu);
        for (size_t i = 0; i < z->n_tids; i++)
            pthread_join(z->tids[i], NULL);
        pthread_mutex_destroy(&z->mu);
        pthread_cond_destroy(&z->work_cv);
        pthread_cond_destroy(&z->done_cv);
    }
    for (size_t i = 0; i < z->n_jobs; i++) {
        free(z->jobs[i].in);
        free(z->jobs[i].out);
    }
    free(z->jobs);
    free(z->tids);
    free(z->cur);
    ZSTD_freeCCtx(z->zc);
    free(z->zout);
    free(z);
}
