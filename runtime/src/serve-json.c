/* serve-json.c: the fast path for the JSON bodies nearly every client sends,
 * {"instances": [[1.5, 2], ...]} or [[1.5, 2], ...] with plain numbers, read straight into a
 * float matrix without building a jansson tree (which costs an allocation per number).
 * Anything else (other keys, objects as rows, strings, ragged rows, numbers jansson would
 * refuse or round differently) is left to the full parser in serve-codec.c, which also
 * writes the error messages; the values read here are the ones it would read (strtod, as
 * jansson, then the same conversion to float). */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "serve.h"

#define MAX_NUMBER_LEN 63
#define MAX_INT_DIGITS 18 /* jansson reads integers as int64: longer ones go to it */

struct scan {
    const char *p, *end;
    float *vals;
    size_t n, cap;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool eat(struct scan *s, char c)
{
    skip_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The length of a JSON number at p (RFC 8259 grammar), 0 if there is none; *ret_int says
 * whether it has neither fraction nor exponent. */
static size_t number_len(const char *p, const char *end, bool *ret_int)
{
    const char *q = p;
    if (q < end && *q == '-')
        q++;
    if (q >= end || !is_digit(*q))
        return 0;
    if (*q == '0')
        q++;
    else
        while (q < end && is_digit(*q))
            q++;
    *ret_int = true;
    if (q < end && *q == '.') {
        *ret_int = false;
        if (++q >= end || !is_digit(*q))
            return 0;
        while (q < end && is_digit(*q))
            q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        *ret_int = false;
        if (++q < end && (*q == '+' || *q == '-'))
            q++;
        if (q >= end || !is_digit(*q))
            return 0;
        while (q < end && is_digit(*q))
            q++;
    }
    return (size_t)(q - p);
}

/* One number into s->vals; false when it is not one the fast path takes. */
static bool number(struct scan *s)
{
    skip_ws(s);
    bool integer = false;
    size_t len = number_len(s->p, s->end, &integer);
    if (len == 0 || len > MAX_NUMBER_LEN || (integer && len - (s->p[0] == '-') > MAX_INT_DIGITS))
        return false;
    char buf[MAX_NUMBER_LEN + 1];
    memcpy(buf, s->p, len);
    buf[len] = '\0';
    errno = 0;
    /* jansson reads an integer as int64 (so "-0" is 0), anything else with strtod. */
    double v = integer ? (double)strtoll(buf, NULL, 10) : strtod(buf, NULL);
    if (errno == ERANGE || !isfinite(v))
        return false;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->vals = xrealloc(s->vals, s->cap * sizeof(float));
    }
    s->vals[s->n++] = (float)v;
    s->p += len;
    return true;
}

/* [n, n, ...]: the number of values, 0 when it is not such a row. */
static int64_t row(struct scan *s)
{
    if (!eat(s, '['))
        return 0;
    int64_t n = 0;
    do {
        if (!number(s))
            return 0;
        n++;
    } while (eat(s, ','));
    return eat(s, ']') ? n : 0;
}

/* [[...], [...], ...] with rows of one width: their count, 0 otherwise. */
static int64_t rows(struct scan *s, int64_t *ret_cols)
{
    if (!eat(s, '['))
        return 0;
    int64_t n = 0, cols = 0;
    do {
        int64_t c = row(s);
        if (c == 0 || (n > 0 && c != cols))
            return 0;
        cols = c;
        n++;
    } while (eat(s, ','));
    *ret_cols = cols;
    return eat(s, ']') ? n : 0;
}

static bool instances_key(struct scan *s)
{
    static const char key[] = "\"instances\"";
    skip_ws(s);
    if ((size_t)(s->end - s->p) < sizeof(key) - 1 || memcmp(s->p, key, sizeof(key) - 1) != 0)
        return false;
    s->p += sizeof(key) - 1;
    return eat(s, ':');
}

int serve_json_fast(const char *body, size_t len, struct tensor_array *ret)
{
    struct scan s = {.p = body, .end = body + len};
    bool object = eat(&s, '{');
    int64_t n = 0, cols = 0;
    if ((!object || instances_key(&s)) && (n = rows(&s, &cols)) > 0 && (!object || eat(&s, '}'))) {
        skip_ws(&s);
        struct dlc_error *ignored = NULL;
        if (s.p == s.end && tensor_array_alloc(ret, n, cols, &ignored) == 0) {
            memcpy(ret->data, s.vals, s.n * sizeof(float));
            free(s.vals);
            return 0;
        }
        dlc_error_free(&ignored);
    }
    free(s.vals);
    return 1;
}
