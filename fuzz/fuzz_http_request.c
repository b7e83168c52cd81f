/* fuzz_http_request.c - libFuzzer target for the HTTP/1.1 request parser (src/http/parser.c
 * on llhttp).
 *
 * Input: bytes 0 and 1 pick two split points (as fractions of the rest); the rest is what a
 * client sends. It is fed in up to three reads, the way a connection does: on
 * HR_HTTP_REQUEST the request is read through the accessors, hr_http_parser_next() is called
 * and parsing goes on with the unconsumed bytes; HR_HTTP_UPGRADE and HR_HTTP_ERROR end the
 * connection's HTTP. Limits are small (head 1024, body 4096) so that they are reached.
 * Every result must keep the parser's promises: consumed within the input, every field
 * NUL-terminated inside the head, the head and body within their limits, an error with one
 * of the documented statuses.
 *
 * Built with -DHR_FUZZ_SPLIT_EQUIVALENCE, it also parses the input in one read and checks
 * that both runs give the same requests and the same outcome (unless one met the head
 * limit, whose exact position depends on the reads). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "http/parser.h"
#include "http/static.h"

#define MAX_HEAD 1024
#define MAX_BODY 4096

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A digest of what a run reported, to compare runs. */
struct digest {
    uint64_t h;
    unsigned requests;
    int end; /* 0: input used up, else HR_HTTP_UPGRADE or HR_HTTP_ERROR */
    uint16_t status;
};

static void mix(struct digest *d, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        d->h = (d->h ^ b[i]) * 0x100000001b3ULL;
    d->h = (d->h ^ n) * 0x100000001b3ULL;
}

static void check_request(const struct hr_http_parser *p, struct digest *d)
{
    const struct hr_http_request *r = &p->req;

    CHECK(!hr_http_parser_busy(p));
    CHECK(hr_http_parser_head_done(p));
    CHECK(r->head != NULL);
    CHECK(r->head_len < r->head_cap);
    CHECK(r->head_len <= MAX_HEAD + 256);
    CHECK(r->target_len > 0 && r->target_len < r->head_len);
    const char *target = hr_http_target(r);
    CHECK(target == r->head);
    CHECK(target[r->target_len] == '\0');
    /* the target's query and path as the handlers read them (core/text.c's decoder) */
    char q[16 + 1];
    q[16] = '#';
    long ql = hr_http_query(r, "a", q, 16);
    CHECK(q[16] == '#');
    CHECK(ql == HR_ENOTFOUND || ql == HR_ETOOBIG || (ql >= 0 && ql < 16 && q[ql] == '\0'));
    char rel[64];
    int st = hr_static_resolve(hr_http_path(r), rel, sizeof rel);
    CHECK(st == 0 || st == 400 || st == 414);
    CHECK(st != 0 || (memchr(rel, '\0', sizeof rel) && !strstr(rel, "/../") && rel[0] != '/'));
    CHECK(r->path_off <= r->target_len);
    const char *path = hr_http_path(r);
    CHECK(strlen(path) == r->target_len - r->path_off);
    CHECK(hr_http_method_str(r) != NULL);
    CHECK(r->nheaders <= HR_HTTP_MAX_HEADERS);
    mix(d, &r->method, 1);
    mix(d, target, r->target_len);
    mix(d, &r->http_major, 1);
    mix(d, &r->http_minor, 1);
    mix(d, &r->keep_alive, 1);
    mix(d, &r->upgrade, 1);
    for (unsigned i = 0; i < r->nheaders; i++) {
        const struct hr_http_header *h = &r->headers[i];
        CHECK(h->name_off > r->target_len);
        CHECK((uint64_t)h->name_off + h->name_len < r->head_len);
        CHECK((uint64_t)h->value_off + h->value_len < r->head_len);
        const char *name = r->head + h->name_off, *value = r->head + h->value_off;
        CHECK(name[h->name_len] == '\0');
        CHECK(value[h->value_len] == '\0');
        if (h->value_len)
            CHECK(value[h->value_len - 1] != ' ' && value[h->value_len - 1] != '\t');
        /* the lookup finds a field of this name, the first one */
        size_t len = SIZE_MAX;
        const char *v = hr_http_header_get(r, name, &len);
        CHECK(v != NULL && v >= r->head && v + len < r->head + r->head_len);
        CHECK(v <= value);
        CHECK(v[len] == '\0');
        /* every element of a list is found as a token of its field */
        char tok[64];
        size_t k = 0, j = 0;
        while (j < h->value_len && (value[j] == ' ' || value[j] == '\t' || value[j] == ','))
            j++;
        while (j < h->value_len && value[j] != ',' && k < sizeof tok - 1)
            tok[k++] = value[j++];
        while (k && (tok[k - 1] == ' ' || tok[k - 1] == '\t'))
            k--;
        tok[k] = '\0';
        if (k && (j == h->value_len || value[j] == ',') && memchr(tok, '\0', k) == NULL)
            CHECK(hr_http_header_has_token(r, name, tok));
        mix(d, name, h->name_len);
        mix(d, value, h->value_len);
    }
    CHECK(r->body_len <= MAX_BODY);
    if (r->body_len) {
        CHECK(r->body != NULL && r->body_len < r->body_cap);
        CHECK(r->body[r->body_len] == '\0');
    }
    mix(d, r->body ? r->body : "", r->body_len);
    d->requests++;
}

/* Feed in[0..n) in reads ending at the cut points. */
static void run(const uint8_t *in, size_t n, const size_t *cuts, int ncuts, struct digest *d)
{
    struct hr_http_parser p;
    size_t start = 0;

    memset(d, 0, sizeof(*d));
    hr_http_parser_init(&p, MAX_HEAD, MAX_BODY);
    for (int i = 0; i <= ncuts && !d->end; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        size_t len = end - start, off = 0;
        /* an exact-size copy per read: ASan sees any read past it */
        char *buf = malloc(len ? len : 1);
        CHECK(buf != NULL);
        if (len)
            memcpy(buf, in + start, len);
        while (!d->end) {
            size_t used = SIZE_MAX;
            int rc = hr_http_parse(&p, buf + off, len - off, &used);
            CHECK(used <= len - off);
            if (rc == HR_AGAIN) {
                CHECK(used == len - off);
                break;
            }
            if (rc == HR_HTTP_ERROR) {
                CHECK(p.status == 400 || p.status == 413 || p.status == 431 || p.status == 501 ||
                      p.status == 505);
                CHECK(p.error != NULL);
                /* sticky */
                CHECK(hr_http_parse(&p, buf + off, len - off, &used) == HR_HTTP_ERROR);
                d->end = rc;
                d->status = p.status;
                break;
            }
            CHECK(rc == HR_HTTP_REQUEST || rc == HR_HTTP_UPGRADE);
            check_request(&p, d);
            off += used;
            if (rc == HR_HTTP_UPGRADE) {
                CHECK(p.req.upgrade);
                /* what follows belongs to the new protocol: the rest of this read and
                 * all later ones (mixed as one range, as a whole-input run sees it) */
                CHECK(memcmp(buf + off, in + start + off, len - off) == 0);
                mix(d, in + start + off, n - start - off);
                d->end = rc;
                break;
            }
            hr_http_parser_next(&p);
            CHECK(!hr_http_parser_busy(&p) && !hr_http_parser_head_done(&p));
            CHECK(p.req.head == NULL && p.req.body == NULL && p.req.nheaders == 0);
            if (off == len)
                break;
        }
        free(buf);
        start = end;
    }
    hr_http_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const uint8_t *in = data + 2;
    size_t n = size - 2;
    size_t a = n * data[0] / 255, b = n * data[1] / 255;
    if (a > b) {
        size_t t = a;
        a = b;
        b = t;
    }
    size_t cuts[2];
    int ncuts = 0;
    if (a > 0 && a < n)
        cuts[ncuts++] = a;
    if (b > a && b < n)
        cuts[ncuts++] = b;

    struct digest split;
    run(in, n, cuts, ncuts, &split);
#ifdef HR_FUZZ_SPLIT_EQUIVALENCE
    struct digest whole;
    run(in, n, NULL, 0, &whole);
    /* Where the head limit (431) falls depends on how much of the head a read shows, and
     * an error may be seen before or after it: runs that met 431 are not compared. */
    if (whole.status != 431 && split.status != 431) {
        CHECK(whole.h == split.h && whole.requests == split.requests);
        CHECK(whole.end == split.end && whole.status == split.status);
    }
#endif
    return 0;
}
