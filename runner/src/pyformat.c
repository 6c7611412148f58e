/* pyformat.c: Python's json.dumps() and str() renderings of JSON values.
 *
 * SageMaker's contract is defined by Python code: the SDK writes hyperparameters with
 * json.dumps(v), the training toolkit renders SM_* variables with
 * json.dumps(v, sort_keys=True, separators=(",", ":")) and command-line values with str(v).
 * Reproducing them byte for byte needs Python's float repr (shortest round-trip digits,
 * exponent outside 1e-4..1e16), its ASCII escaping and its list/dict reprs. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runner-internal.h"

/* Shortest decimal digits that read back as x: "d1d2..dn" and the position of the
 * decimal point (x = 0.d1d2.. * 10^decpt). x is finite and > 0. */
static void shortest_digits(double x, char digits[32], int *decpt)
{
    char buf[48];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec - 1, x);
        if (strtod(buf, NULL) == x || prec == 17)
            break;
    }
    /* buf is "d.ddde[+-]XX" */
    size_t n = 0;
    const char *p = buf;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[n++] = *p;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    *decpt = (int)strtol(p + 1, NULL, 10) + 1;
}

static void append_zeros(struct dlc_strbuf *sb, int n)
{
    for (int i = 0; i < n; i++)
        dlc_strbuf_appendc(sb, '0');
}

/* float.__repr__ (what json.dumps writes for a float) */
static void py_float(struct dlc_strbuf *sb, double x)
{
    if (isnan(x)) {
        dlc_strbuf_append(sb, "NaN");
        return;
    }
    if (isinf(x)) {
        dlc_strbuf_append(sb, x < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (signbit(x))
        dlc_strbuf_appendc(sb, '-');
    x = fabs(x);
    if (x == 0) {
        dlc_strbuf_append(sb, "0.0");
        return;
    }
    char d[32];
    int decpt;
    shortest_digits(x, d, &decpt);
    int n = (int)strlen(d);
    if (decpt <= -4 || decpt > 16) {
        dlc_strbuf_appendc(sb, d[0]);
        if (n > 1)
            dlc_strbuf_appendf(sb, ".%s", d + 1);
        int e = decpt - 1;
        dlc_strbuf_appendf(sb, "e%c%02d", e < 0 ? '-' : '+', abs(e));
    } else if (decpt <= 0) {
        dlc_strbuf_append(sb, "0.");
        append_zeros(sb, -decpt);
        dlc_strbuf_append(sb, d);
    } else if (decpt >= n) {
        dlc_strbuf_append(sb, d);
        append_zeros(sb, decpt - n);
        dlc_strbuf_append(sb, ".0");
    } else {
        dlc_strbuf_appendf(sb, "%.*s.%s", decpt, d, d + decpt);
    }
}

/* Decodes one code point of valid UTF-8 (jansson validates its strings). */
static uint32_t utf8_next(const char *s, size_t len, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t c = u[*i];
    int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    if (extra)
        c &= 0x3fu >> extra;
    (*i)++;
    for (int k = 0; k < extra && *i < len; k++, (*i)++)
        c = (c << 6) | (u[*i] & 0x3f);
    return c;
}

/* json.dumps of a str with ensure_ascii=True */
static void py_json_string(struct dlc_strbuf *sb, const char *s, size_t len)
{
    dlc_strbuf_appendc(sb, '"');
    for (size_t i = 0; i < len;) {
        uint32_t c = utf8_next(s, len, &i);
        const char *esc = c == '"'    ? "\\\""
                          : c == '\\' ? "\\\\"
                          : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t"
                          : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f"
                                      : NULL;
        if (esc) {
            dlc_strbuf_append(sb, esc);
        } else if (c >= 0x20 && c <= 0x7e) {
            dlc_strbuf_appendc(sb, (char)c);
        } else if (c < 0x10000) {
            dlc_strbuf_appendf(sb, "\\u%04x", c);
        } else {
            c -= 0x10000;
            dlc_strbuf_appendf(sb, "\\u%04x\\u%04x", 0xd800 | (c >> 10), 0xdc00 | (c & 0x3ff));
        }
    }
    dlc_strbuf_appendc(sb, '"');
}

/* repr() of a str */
static void py_repr_string(struct dlc_strbuf *sb, const char *s, size_t len)
{
    char q = memchr(s, '\'', len) && !memchr(s, '"', len) ? '"' : '\'';
    dlc_strbuf_appendc(sb, q);
    for (size_t i = 0; i < len;) {
        size_t start = i;
        uint32_t c = utf8_next(s, len, &i);
        if (c == (uint32_t)q || c == '\\')
            dlc_strbuf_appendf(sb, "\\%c", (char)c);
        else if (c == '\t' || c == '\n' || c == '\r')
            dlc_strbuf_append(sb, c == '\t' ? "\\t" : c == '\n' ? "\\n" : "\\r");
        else if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad)
            dlc_strbuf_appendf(sb, "\\x%02x", c);
        else
            dlc_strbuf_append_len(sb, s + start, i - start);
    }
    dlc_strbuf_appendc(sb, q);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The object's keys, sorted if asked (by code point, which strcmp of UTF-8 matches). */
const char **runner_json_keys(const json_t *obj, bool sort, size_t *ret_n)
{
    size_t n = json_object_size(obj), i = 0;
    const char **keys = xcalloc(n + 1, sizeof(*keys));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        (void)v;
        keys[i++] = k;
    }
    if (sort)
        qsort(keys, n, sizeof(*keys), cmp_str);
    *ret_n = n;
    return keys;
}

static void py_json(struct dlc_strbuf *sb, const json_t *v, bool compact, bool sort)
{
    const char *item_sep = compact ? "," : ", ";
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n;
        _cleanup_free_ const char **keys = runner_json_keys(v, sort, &n);
        dlc_strbuf_appendc(sb, '{');
        for (size_t i = 0; i < n; i++) {
            if (i)
                dlc_strbuf_append(sb, item_sep);
            py_json_string(sb, keys[i], strlen(keys[i]));
            dlc_strbuf_append(sb, compact ? ":" : ": ");
            py_json(sb, json_object_get(v, keys[i]), compact, sort);
        }
        dlc_strbuf_appendc(sb, '}');
        break;
    }
    case JSON_ARRAY:
        dlc_strbuf_appendc(sb, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                dlc_strbuf_append(sb, item_sep);
            py_json(sb, json_array_get(v, i), compact, sort);
        }
        dlc_strbuf_appendc(sb, ']');
        break;
    case JSON_STRING:
        py_json_string(sb, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        dlc_strbuf_appendf(sb, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        py_float(sb, json_real_value(v));
        break;
    default:
        dlc_strbuf_append(sb, json_is_true(v) ? "true" : json_is_false(v) ? "false" : "null");
    }
}

char *runner_py_json(const json_t *v, bool compact, bool sort_keys)
{
    struct dlc_strbuf sb = DLC_STRBUF_INIT;
    py_json(&sb, v, compact, sort_keys);
    return dlc_strbuf_detach(&sb, NULL);
}

/* repr(v) of the Python value json.loads would give */
static void py_repr(struct dlc_strbuf *sb, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n;
        _cleanup_free_ const char **keys = runner_json_keys(v, false, &n);
        dlc_strbuf_appendc(sb, '{');
        for (size_t i = 0; i < n; i++) {
            dlc_strbuf_append(sb, i ? ", " : "");
            py_repr_string(sb, keys[i], strlen(keys[i]));
            dlc_strbuf_append(sb, ": ");
            py_repr(sb, json_object_get(v, keys[i]));
        }
        dlc_strbuf_appendc(sb, '}');
        break;
    }
    case JSON_ARRAY:
        dlc_strbuf_appendc(sb, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            dlc_strbuf_append(sb, i ? ", " : "");
            py_repr(sb, json_array_get(v, i));
        }
        dlc_strbuf_appendc(sb, ']');
        break;
    case JSON_STRING:
        py_repr_string(sb, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
    case JSON_REAL:
        py_json(sb, v, true, false);
        break;
    default:
        dlc_strbuf_append(sb, json_is_true(v) ? "True" : json_is_false(v) ? "False" : "None");
    }
}

/* str(v): a str is itself, everything else its repr */
static void py_str(struct dlc_strbuf *sb, const json_t *v)
{
    if (json_is_string(v))
        dlc_strbuf_append_len(sb, json_string_value(v), json_string_length(v));
    else
        py_repr(sb, v);
}

char *runner_py_str(const json_t *v)
{
    struct dlc_strbuf sb = DLC_STRBUF_INIT;
    py_str(&sb, v);
    return dlc_strbuf_detach(&sb, NULL);
}

char *runner_py_cmd_arg(const json_t *v)
{
    struct dlc_strbuf sb = DLC_STRBUF_INIT;
    if (json_is_object(v)) { /* mapping.to_cmd_args: "k=v,k2=v2", sorted */
        size_t n;
        _cleanup_free_ const char **keys = runner_json_keys(v, true, &n);
        for (size_t i = 0; i < n; i++) {
            dlc_strbuf_appendf(&sb, "%s%s=", i ? "," : "", keys[i]);
            py_str(&sb, json_object_get(v, keys[i]));
        }
    } else if (!json_is_null(v)) { /* _decode(None) is "" */
        py_str(&sb, v);
    }
    return dlc_strbuf_detach(&sb, NULL);
}

json_t *runner_py_json_loads(const char *s)
{
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(s);
}
