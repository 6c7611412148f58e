/* client-auth.c: credentials (options, DLC_REGISTRY_USER/PASSWORD, the auth file in docker's
 * config.json format), WWW-Authenticate challenges, bearer tokens, login and logout. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "registry-internal.h"

#define MAX_AUTH_FILE      (1u << 20)
#define MAX_TOKEN_RESPONSE (1u << 20)

void rcreds_release(struct rcreds *c)
{
    if (c->password)
        explicit_bzero(c->password, strlen(c->password));
    free(c->user);
    free(c->password);
    c->user = c->password = NULL;
}

char *registry_auth_file_default(void)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (xdg && xdg[0] == '/')
        return xasprintf("%s/dlc/auth.json", xdg);
    const char *home = getenv("HOME");
    return xasprintf("%s/.config/dlc/auth.json", home && home[0] ? home : "/");
}

/* Loads the auth file: NULL with no error when it does not exist. EPERM when group or
 * others may read it: it holds passwords. */
static json_t *auth_file_load(const char *path, struct dlc_error **err)
{
    struct stat sb;
    if (stat(path, &sb) < 0) {
        if (errno == ENOENT)
            return NULL;
        dlc_error_set_errno(err, errno, "auth file %s", path);
        return NULL;
    }
    if (sb.st_mode & 077) {
        dlc_error_set(err, EPERM,
                      "auth file %s is accessible by group or others (mode %04o): run "
                      "'chmod 600 %s'",
                      path, (unsigned)(sb.st_mode & 07777), path);
        return NULL;
    }
    json_t *j = dlc_json_load_file(path, MAX_AUTH_FILE, err);
    if (j && !json_is_object(j)) {
        json_decref(j);
        dlc_error_set(err, EINVAL, "auth file %s: not a JSON object", path);
        return NULL;
    }
    return j;
}

/* Whether an "auths" key names registry; docker also writes keys with a scheme and path. */
static bool auth_entry_matches(const char *key, const char *registry)
{
    const char *p;
    if ((p = dlc_startswith(key, "https://")) || (p = dlc_startswith(key, "http://")))
        key = p;
    size_t n = strcspn(key, "/");
    return strlen(registry) == n && strncmp(key, registry, n) == 0;
}

static json_t *auth_entry(json_t *auths, const char *registry)
{
    const char *key;
    json_t *v;
    json_object_foreach(auths, key, v) {
        if (auth_entry_matches(key, registry))
            return v;
    }
    return NULL;
}

static int creds_from_file(const char *path, const char *registry, struct rcreds *ret,
                           struct dlc_error **err)
{
    _cleanup_error_ struct dlc_error *e = NULL;
    json_auto_t *j = auth_file_load(path, &e);
    if (j == NULL)
        return e ? dlc_error_move(err, &e) : 0;
    const char *b64 = json_string_value(
            json_object_get(auth_entry(json_object_get(j, "auths"), registry), "auth"));
    if (b64 == NULL)
        return 0;
    size_t len = 0;
    _cleanup_free_ char *plain = registry_base64_decode(b64, &len);
    char *colon = plain ? strchr(plain, ':') : NULL;
    if (colon == NULL)
        return dlc_error_set(err, EINVAL, "auth file %s: the entry for %s is malformed", path,
                             registry);
    ret->user = xstrndup(plain, (size_t)(colon - plain));
    ret->password = xstrdup(colon + 1);
    explicit_bzero(plain, len);
    return 0;
}

int rcreds_lookup(const char *registry, const struct registry_client_options *o, struct rcreds *ret,
                  struct dlc_error **err)
{
    memset(ret, 0, sizeof(*ret));
    const char *user = o->user ? o->user : getenv("DLC_REGISTRY_USER");
    const char *password = o->password ? o->password : getenv("DLC_REGISTRY_PASSWORD");
    if (user && password) {
        ret->user = xstrdup(user);
        ret->password = xstrdup(password);
        return 0;
    }
    _cleanup_free_ char *def = o->auth_file ? NULL : registry_auth_file_default();
    return creds_from_file(o->auth_file ? o->auth_file : def, registry, ret, err);
}

/* ---- challenges and tokens ----------------------------------------------------------------- */

void rchallenge_release(struct rchallenge *c)
{
    free(c->scheme);
    free(c->realm);
    free(c->service);
    free(c->scope);
    memset(c, 0, sizeof(*c));
}

/* One key="value" (or key=token) pair at *p; advances past it and a comma. */
static bool next_param(const char **p, char **key, char **value)
{
    const char *s = *p + strspn(*p, " ,");
    size_t klen = strcspn(s, "= ,");
    if (klen == 0 || s[klen] != '=')
        return false;
    *key = xstrndup(s, klen);
    s += klen + 1;
    struct dlc_strbuf v = DLC_STRBUF_INIT;
    if (*s == '"') {
        for (s++; *s && *s != '"'; s++) {
            if (*s == '\\' && s[1])
                s++;
            dlc_strbuf_appendc(&v, *s);
        }
        if (*s == '"')
            s++;
    } else {
        size_t n = strcspn(s, " ,");
        dlc_strbuf_append_len(&v, s, n);
        s += n;
    }
    *value = dlc_strbuf_detach(&v, NULL);
    *p = s;
    return true;
}

int rchallenge_parse(const char *header, struct rchallenge *ret, struct dlc_error **err)
{
    memset(ret, 0, sizeof(*ret));
    size_t n = strcspn(header, " ");
    ret->scheme = xstrndup(header, n);
    for (char *c = ret->scheme; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    if (strcmp(ret->scheme, "basic") != 0 && strcmp(ret->scheme, "bearer") != 0) {
        int r = dlc_error_set(err, ENOTSUP, "unsupported authentication scheme '%s'", ret->scheme);
        rchallenge_release(ret);
        return r;
    }
    const char *p = header + n;
    char *k = NULL, *v = NULL;
    while (next_param(&p, &k, &v)) {
        char **slot = strcmp(k, "realm") == 0     ? &ret->realm
                      : strcmp(k, "service") == 0 ? &ret->service
                      : strcmp(k, "scope") == 0   ? &ret->scope
                                                  : NULL;
        if (slot) {
            free(*slot);
            *slot = TAKE_PTR(v);
        }
        free(k);
        free(v);
        k = v = NULL;
    }
    return 0;
}

static size_t collect(char *buf, size_t size, size_t n, void *ud)
{
    struct dlc_strbuf *sb = ud;
    if (sb->len + size * n > MAX_TOKEN_RESPONSE)
        return 0;
    dlc_strbuf_append_len(sb, buf, size * n);
    return size * n;
}

static char *token_url(const struct rchallenge *ch, const char *scope)
{
    CURL *e = curl_easy_init();
    struct dlc_strbuf u = DLC_STRBUF_INIT;
    dlc_strbuf_append(&u, ch->realm);
    char sep = strchr(ch->realm, '?') ? '&' : '?';
    if (ch->service) {
        char *s = curl_easy_escape(e, ch->service, 0);
        dlc_strbuf_appendf(&u, "%cservice=%s", sep, s);
        curl_free(s);
        sep = '&';
    }
    if (scope) {
        char *s = curl_easy_escape(e, scope, 0);
        dlc_strbuf_appendf(&u, "%cscope=%s", sep, s);
        curl_free(s);
    }
    curl_easy_cleanup(e);
    return dlc_strbuf_detach(&u, NULL);
}

/* GET <realm>?service=..&scope=.. with basic credentials; returns the token. */
static char *fetch_token(struct rclient *c, const struct rchallenge *ch, struct dlc_error **err)
{
    _cleanup_free_ char *scope = ch->scope ? xstrdup(ch->scope) : rclient_scope(c);
    _cleanup_free_ char *url = token_url(ch, scope);
    _cleanup_strbuf_ struct dlc_strbuf body = DLC_STRBUF_INIT;
    const struct rcreds *cr = rclient_creds(c);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
    rclient_tls_setup(e, rclient_options(c)->insecure);
    if (cr->user) {
        curl_easy_setopt(e, CURLOPT_USERNAME, cr->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, cr->password);
    }
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    if (rc != CURLE_OK) {
        dlc_error_set(err, EIO, "registry %s: token from %s: %s", rclient_registry(c), ch->realm,
                      curl_easy_strerror(rc));
        return NULL;
    }
    if (status != 200) {
        dlc_error_set(err, status == 401 ? EACCES : EPROTO, "registry %s: token from %s: HTTP %ld",
                      rclient_registry(c), ch->realm, status);
        return NULL;
    }
    json_auto_t *j = dlc_json_loadb(dlc_strbuf_str(&body), body.len, "token response", err);
    const char *tok = json_string_value(json_object_get(j, "token"));
    if (tok == NULL || tok[0] == '\0')
        tok = json_string_value(json_object_get(j, "access_token"));
    if (j && (tok == NULL || tok[0] == '\0'))
        dlc_error_set(err, EPROTO, "registry %s: token response has no token", rclient_registry(c));
    return j && tok && tok[0] ? xstrdup(tok) : NULL;
}

int rclient_reauth(struct rclient *c, const char *challenge, bool *changed, struct dlc_error **err)
{
    *changed = false;
    struct rchallenge ch;
    if (rchallenge_parse(challenge, &ch, err) < 0)
        return dlc_error_wrap(err, "registry %s", rclient_registry(c));
    int r = 0;
    const struct rcreds *cr = rclient_creds(c);
    _cleanup_free_ char *cur = rclient_authorization(c);
    if (dlc_streq(ch.scheme, "basic")) {
        if (cr->user && (cur == NULL || !dlc_startswith(cur, "Basic "))) {
            _cleanup_free_ char *up = xasprintf("%s:%s", cr->user, cr->password);
            _cleanup_free_ char *b64 = registry_base64_encode(up, strlen(up));
            _cleanup_free_ char *v = xasprintf("Basic %s", b64);
            rclient_set_authorization(c, v);
            explicit_bzero(up, strlen(up));
            *changed = true;
        }
    } else if (ch.realm == NULL) {
        r = dlc_error_set(err, EPROTO, "registry %s: bearer challenge without a realm",
                          rclient_registry(c));
    } else {
        _cleanup_free_ char *tok = fetch_token(c, &ch, err);
        if (tok == NULL) {
            r = -1;
        } else {
            _cleanup_free_ char *v = xasprintf("Bearer %s", tok);
            rclient_set_authorization(c, v);
            *changed = true;
        }
    }
    rchallenge_release(&ch);
    return r;
}

/* ---- login / logout ---------------------------------------------------------------------- */

static int auth_file_store(const char *path, json_t *j, struct dlc_error **err)
{
    _cleanup_free_ char *dir = dlc_path_dirname(path);
    if (dlc_mkdir_p(dir, 0700, err) < 0)
        return -1;
    _cleanup_free_ char *s = dlc_json_dumps_pretty(j);
    return dlc_write_file_atomic(path, s, strlen(s), 0600, err);
}

int registry_login(const char *registry, const char *user, const char *password,
                   const struct registry_client_options *o, struct dlc_error **err)
{
    struct registry_client_options lo = *o;
    lo.user = user;
    lo.password = password;
    _cleanup_(rclient_freep) struct rclient *c = NULL;
    if (rclient_new(registry, NULL, false, &lo, &c, err) < 0)
        return dlc_error_wrap(err, "login to %s", registry);
    _cleanup_free_ char *def = o->auth_file ? NULL : registry_auth_file_default();
    const char *path = o->auth_file ? o->auth_file : def;
    _cleanup_error_ struct dlc_error *e = NULL;
    json_auto_t *j = auth_file_load(path, &e);
    if (e)
        return dlc_error_move(err, &e);
    if (j == NULL)
        j = json_object();
    json_t *auths = json_object_get(j, "auths");
    if (!json_is_object(auths)) {
        auths = json_object();
        json_object_set_new(j, "auths", auths);
    }
    _cleanup_free_ char *up = xasprintf("%s:%s", user, password);
    _cleanup_free_ char *b64 = registry_base64_encode(up, strlen(up));
    explicit_bzero(up, strlen(up));
    json_object_set_new(auths, registry, json_pack("{s:s}", "auth", b64));
    if (auth_file_store(path, j, err) < 0)
        return dlc_error_wrap(err, "login to %s", registry);
    return 0;
}

int registry_logout(const char *registry, const char *auth_file, struct dlc_error **err)
{
    _cleanup_free_ char *def = auth_file ? NULL : registry_auth_file_default();
    const char *path = auth_file ? auth_file : def;
    _cleanup_error_ struct dlc_error *e = NULL;
    json_auto_t *j = auth_file_load(path, &e);
    if (e)
        return dlc_error_move(err, &e);
    json_t *auths = json_object_get(j, "auths");
    const char *key;
    json_t *v;
    bool found = false;
    void *tmp;
    json_object_foreach_safe(auths, tmp, key, v) {
        if (auth_entry_matches(key, registry)) {
            json_object_del(auths, key);
            found = true;
        }
    }
    if (!found)
        return dlc_error_set(err, ENOENT, "not logged in to %s", registry);
    return auth_file_store(path, j, err);
}
