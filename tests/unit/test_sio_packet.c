/* test_sio_packet.c - src/sio/packet.c: Socket.IO v5 "Packet encoding" (every example of
 * docs/socket.io-protocol/v5-current.md, its test suite and socket.io-parser's tests), the
 * packets the reference rejects, event names and arguments, the encoders, and the RFC 8259
 * validator (numbers, strings, escapes, UTF-8, nesting limit, whitespace, trailing bytes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/json.h"
#include "sio/packet.h"

#define S(lit) lit, sizeof(lit) - 1

/* Decode from an exact-size heap copy so ASan sees any read past the end. */
static int decode(const char *s, size_t len, struct hr_sio_packet *p, char **copy)
{
    *copy = malloc(len); /* exact size, even 0 */
    assert_non_null(*copy);
    if (len)
        memcpy(*copy, s, len);
    memset(p, 0x5A, sizeof(*p));
    return hr_sio_decode(*copy, len, p);
}

/* ---------------------------------------------------------------------------------------
 * Valid packets */

struct ok_case {
    const char *in;
    int type;
    const char *nsp;
    int64_t ack;
    uint32_t att;
    const char *data; /* NULL: absent */
    const char *name; /* EVENT / BINARY_EVENT */
    const char *args;
    int canonical; /* encoding the decoded fields gives back the input */
};

#define PH0 "{\"_placeholder\":true,\"num\":0}"
#define PH1 "{\"_placeholder\":true,\"num\":1}"

static const struct ok_case ok_cases[] = {
    /* v5-current.md, "Packet encoding" */
    {"0", 0, "/", -1, 0, NULL, NULL, NULL, 1},
    {"0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", 0, "/admin", -1, 0,
     "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", NULL, NULL, 1},
    {"4{\"message\":\"Not authorized\"}", 4, "/", -1, 0, "{\"message\":\"Not authorized\"}", NULL,
     NULL, 1},
    {"2[\"foo\"]", 2, "/", -1, 0, "[\"foo\"]", "foo", "", 1},
    {"2/admin,[\"bar\"]", 2, "/admin", -1, 0, "[\"bar\"]", "bar", "", 1},
    {"51-[\"baz\"," PH0 "]", 5, "/", -1, 1, "[\"baz\"," PH0 "]", "baz", PH0, 1},
    {"52-/admin,[\"baz\"," PH0 "," PH1 "]", 5, "/admin", -1, 2, "[\"baz\"," PH0 "," PH1 "]", "baz",
     PH0 "," PH1, 1},
    {"212[\"foo\"]", 2, "/", 12, 0, "[\"foo\"]", "foo", "", 1},
    {"3/admin,13[\"bar\"]", 3, "/admin", 13, 0, "[\"bar\"]", NULL, NULL, 1},
    {"61-15[\"bar\"," PH0 "]", 6, "/", 15, 1, "[\"bar\"," PH0 "]", NULL, NULL, 1},
    {"1", 1, "/", -1, 0, NULL, NULL, NULL, 1},
    {"1/admin,", 1, "/admin", -1, 0, NULL, NULL, NULL, 1},
    /* v5-current.md, "Sample session" */
    {"0{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}", 0, "/", -1, 0, "{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}",
     NULL, NULL, 1},
    {"2[\"hey\",\"Jude\"]", 2, "/", -1, 0, "[\"hey\",\"Jude\"]", "hey", "\"Jude\"", 1},
    {"2[\"hello\"]", 2, "/", -1, 0, "[\"hello\"]", "hello", "", 1},
    {"2[\"world\"]", 2, "/", -1, 0, "[\"world\"]", "world", "", 1},
    {"0/admin,", 0, "/admin", -1, 0, NULL, NULL, NULL, 1},
    {"0/admin,{\"sid\":\"-G5j-67EZFp-q59rADQM\"}", 0, "/admin", -1, 0,
     "{\"sid\":\"-G5j-67EZFp-q59rADQM\"}", NULL, NULL, 1},
    {"2/admin,1[\"tellme\"]", 2, "/admin", 1, 0, "[\"tellme\"]", "tellme", "", 1},
    {"61-/admin,1[" PH0 "]", 6, "/admin", 1, 1, "[" PH0 "]", NULL, NULL, 1},
    /* v5-current.md, "Difference between v5 and v4" and the brief's examples */
    {"0/admin,{\"token\":\"123\"}", 0, "/admin", -1, 0, "{\"token\":\"123\"}", NULL, NULL, 1},
    {"2[\"hello\",1]", 2, "/", -1, 0, "[\"hello\",1]", "hello", "1", 1},
    {"2/admin,456[\"project:delete\",123]", 2, "/admin", 456, 0, "[\"project:delete\",123]",
     "project:delete", "123", 1},
    {"3/admin,456[]", 3, "/admin", 456, 0, "[]", NULL, NULL, 1},
    {"51-[\"hello\"," PH0 "]", 5, "/", -1, 1, "[\"hello\"," PH0 "]", "hello", PH0, 1},
    {"61-/admin,456[" PH0 "]", 6, "/admin", 456, 1, "[" PH0 "]", NULL, NULL, 1},
    /* v5-test-suite */
    {"0{\"token\":\"123\"}", 0, "/", -1, 0, "{\"token\":\"123\"}", NULL, NULL, 1},
    {"0/custom,", 0, "/custom", -1, 0, NULL, NULL, NULL, 1},
    {"0/custom,{\"token\":\"abc\"}", 0, "/custom", -1, 0, "{\"token\":\"abc\"}", NULL, NULL, 1},
    {"0/random", 0, "/random", -1, 0, NULL, NULL, NULL, 0}, /* no comma: the rest is the nsp */
    {"4/random,{\"message\":\"Invalid namespace\"}", 4, "/random", -1, 0,
     "{\"message\":\"Invalid namespace\"}", NULL, NULL, 1},
    {"0/custom", 0, "/custom", -1, 0, NULL, NULL, NULL, 0},
    {"1/custom", 1, "/custom", -1, 0, NULL, NULL, NULL, 0},
    {"2[\"auth\",{}]", 2, "/", -1, 0, "[\"auth\",{}]", "auth", "{}", 1},
    {"2[\"auth\",{\"token\":\"123\"}]", 2, "/", -1, 0, "[\"auth\",{\"token\":\"123\"}]", "auth",
     "{\"token\":\"123\"}", 1},
    {"2/custom,[\"auth\",{}]", 2, "/custom", -1, 0, "[\"auth\",{}]", "auth", "{}", 1},
    {"2[\"message\",\"message to main namespace\"]", 2, "/", -1, 0,
     "[\"message\",\"message to main namespace\"]", "message", "\"message to main namespace\"", 1},
    {"2[\"message\",1,\"2\",{\"3\":[true]}]", 2, "/", -1, 0, "[\"message\",1,\"2\",{\"3\":[true]}]",
     "message", "1,\"2\",{\"3\":[true]}", 1},
    {"52-[\"message\"," PH0 "," PH1 "]", 5, "/", -1, 2, "[\"message\"," PH0 "," PH1 "]", "message",
     PH0 "," PH1, 1},
    {"2456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", 2, "/", 456, 0,
     "[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", "message-with-ack",
     "1,\"2\",{\"3\":[false]}", 1},
    {"3456[1,\"2\",{\"3\":[false]}]", 3, "/", 456, 0, "[1,\"2\",{\"3\":[false]}]", NULL, NULL, 1},
    {"52-789[\"message-with-ack\"," PH0 "," PH1 "]", 5, "/", 789, 2,
     "[\"message-with-ack\"," PH0 "," PH1 "]", "message-with-ack", PH0 "," PH1, 1},
    {"62-789[" PH0 "," PH1 "]", 6, "/", 789, 2, "[" PH0 "," PH1 "]", NULL, NULL, 1},
    /* socket.io-parser test/parser.js */
    {"0/woot,{\"token\":\"123\"}", 0, "/woot", -1, 0, "{\"token\":\"123\"}", NULL, NULL, 1},
    {"1/woot,", 1, "/woot", -1, 0, NULL, NULL, NULL, 1},
    {"2[\"a\",1,{}]", 2, "/", -1, 0, "[\"a\",1,{}]", "a", "1,{}", 1},
    {"2[1,\"a\",{}]", 2, "/", -1, 0, "[1,\"a\",{}]", "1", "\"a\",{}", 1}, /* a number name */
    {"2/test,1[\"a\",1,{}]", 2, "/test", 1, 0, "[\"a\",1,{}]", "a", "1,{}", 1},
    {"3123[\"a\",1,{}]", 3, "/", 123, 0, "[\"a\",1,{}]", NULL, NULL, 1},
    {"4\"Unauthorized\"", 4, "/", -1, 0, "\"Unauthorized\"", NULL, NULL, 1},
    {"4{\"message\":\"Unauthorized\"}", 4, "/", -1, 0, "{\"message\":\"Unauthorized\"}", NULL, NULL,
     1},
    /* number names as the reference takes them */
    {"2[1]", 2, "/", -1, 0, "[1]", "1", "", 1},
    {"2[-1.5e3,2]", 2, "/", -1, 0, "[-1.5e3,2]", "-1.5e3", "2", 1},
    {"2[0]", 2, "/", -1, 0, "[0]", "0", "", 1},
    /* whitespace, ids, namespaces */
    {"2[ \"x\" , 1 ]", 2, "/", -1, 0, "[ \"x\" , 1 ]", "x", "1", 1},
    {"2[\"x\"]", 2, "/", -1, 0, "[\"x\"]", "x", "", 1},
    {"2[\"x\" ]", 2, "/", -1, 0, "[\"x\" ]", "x", "", 1},
    {"2 [\"x\",\t2 ] \n", 2, "/", -1, 0, " [\"x\",\t2 ] \n", "x", "2", 1},
    {"2[\"x\",[1,2],{\"a\":[]}]", 2, "/", -1, 0, "[\"x\",[1,2],{\"a\":[]}]", "x",
     "[1,2],{\"a\":[]}", 1},
    {"2[\"x\",\"]\"]", 2, "/", -1, 0, "[\"x\",\"]\"]", "x", "\"]\"", 1},
    {"2007[\"x\"]", 2, "/", 7, 0, "[\"x\"]", "x", "", 0},
    {"20[\"x\"]", 2, "/", 0, 0, "[\"x\"]", "x", "", 1},
    {"29223372036854775807[\"x\"]", 2, "/", INT64_MAX, 0, "[\"x\"]", "x", "", 1},
    {"2/,[\"x\"]", 2, "/", -1, 0, "[\"x\"]", "x", "", 0},
    {"0/", 0, "/", -1, 0, NULL, NULL, NULL, 0},
    {"2/a b/\xc3\xa9,[\"x\"]", 2, "/a b/\xc3\xa9", -1, 0, "[\"x\"]", "x", "", 1},
    {"2/a/[x],[\"x\"]", 2, "/a/[x]", -1, 0, "[\"x\"]", "x", "", 1},
    {"1/admin,5", 1, "/admin", 5, 0, NULL, NULL, NULL, 1}, /* ids are not type-checked */
    {"01", 0, "/", 1, 0, NULL, NULL, NULL, 1},
    {"3[]", 3, "/", -1, 0, "[]", NULL, NULL, 1},
    {"0{}", 0, "/", -1, 0, "{}", NULL, NULL, 1},
    {"4\"\"", 4, "/", -1, 0, "\"\"", NULL, NULL, 1},
    {"2[\"Connect\"]", 2, "/", -1, 0, "[\"Connect\"]", "Connect", "", 1},
    {"2[\"connect \"]", 2, "/", -1, 0, "[\"connect \"]", "connect ", "", 1},
    {"2[\"\"]", 2, "/", -1, 0, "[\"\"]", "", "", 1},
    /* placeholders: one per attachment, anywhere in the arguments, in any order */
    {"601-[" PH0 "]", 6, "/", -1, 1, "[" PH0 "]", NULL, NULL, 0},
    {"52-[\"x\"," PH1 "," PH0 "]", 5, "/", -1, 2, "[\"x\"," PH1 "," PH0 "]", "x", PH1 "," PH0, 1},
    {"51-[\"x\",{\"a\":[1,{\"b\":" PH0 "}]}]", 5, "/", -1, 1, "[\"x\",{\"a\":[1,{\"b\":" PH0 "}]}]",
     "x", "{\"a\":[1,{\"b\":" PH0 "}]}", 1},
    {"51-[\"x\",{\"num\":0,\"_placeholder\":true}]", 5, "/", -1, 1,
     "[\"x\",{\"num\":0,\"_placeholder\":true}]", "x", "{\"num\":0,\"_placeholder\":true}", 1},
    {"51-[\"x\",{ \"_placeholder\" : true , \"num\" : 0 }]", 5, "/", -1, 1,
     "[\"x\",{ \"_placeholder\" : true , \"num\" : 0 }]", "x",
     "{ \"_placeholder\" : true , \"num\" : 0 }", 1},
    /* keys as JSON.parse reads them: an escaped "_placeholder" is one */
    {"51-[\"x\",{\"\\u005fplaceholder\":true,\"n\\u0075m\":0}]", 5, "/", -1, 1,
     "[\"x\",{\"\\u005fplaceholder\":true,\"n\\u0075m\":0}]", "x",
     "{\"\\u005fplaceholder\":true,\"n\\u0075m\":0}", 1},
    /* "_placeholder" other than true: an ordinary object, num or not */
    {"51-[\"x\"," PH0 ",{\"_placeholder\":false,\"num\":99}]", 5, "/", -1, 1,
     "[\"x\"," PH0 ",{\"_placeholder\":false,\"num\":99}]", "x",
     PH0 ",{\"_placeholder\":false,\"num\":99}", 1},
    {"51-[\"x\"," PH0 ",{\"_placeholder\":\"true\",\"num\":-1,\"y\":1}]", 5, "/", -1, 1,
     "[\"x\"," PH0 ",{\"_placeholder\":\"true\",\"num\":-1,\"y\":1}]", "x",
     PH0 ",{\"_placeholder\":\"true\",\"num\":-1,\"y\":1}", 1},
    /* "_placeholder" as text, or under another key */
    {"51-[\"x\"," PH0 ",\"{\\\"_placeholder\\\":true,\\\"num\\\":9}\"]", 5, "/", -1, 1,
     "[\"x\"," PH0 ",\"{\\\"_placeholder\\\":true,\\\"num\\\":9}\"]", "x",
     PH0 ",\"{\\\"_placeholder\\\":true,\\\"num\\\":9}\"", 1},
    {"51-[\"x\"," PH0 ",{\"_placeholderx\":true,\"num\":9}]", 5, "/", -1, 1,
     "[\"x\"," PH0 ",{\"_placeholderx\":true,\"num\":9}]", "x",
     PH0 ",{\"_placeholderx\":true,\"num\":9}", 1},
    /* the most attachments socket.io-parser's Decoder takes */
    {"510-[\"x\"," PH0 "," PH1
     ",{\"_placeholder\":true,\"num\":2},{\"_placeholder\":true,\"num\":3},"
     "{\"_placeholder\":true,\"num\":4},{\"_placeholder\":true,\"num\":5},{\"_placeholder\":true,"
     "\"num\":6},"
     "{\"_placeholder\":true,\"num\":7},{\"_placeholder\":true,\"num\":8},{\"_placeholder\":true,"
     "\"num\":9}]",
     5, "/", -1, 10,
     "[\"x\"," PH0 "," PH1 ",{\"_placeholder\":true,\"num\":2},{\"_placeholder\":true,\"num\":3},"
     "{\"_placeholder\":true,\"num\":4},{\"_placeholder\":true,\"num\":5},{\"_placeholder\":true,"
     "\"num\":6},"
     "{\"_placeholder\":true,\"num\":7},{\"_placeholder\":true,\"num\":8},{\"_placeholder\":true,"
     "\"num\":9}]",
     "x",
     PH0 "," PH1 ",{\"_placeholder\":true,\"num\":2},{\"_placeholder\":true,\"num\":3},"
         "{\"_placeholder\":true,\"num\":4},{\"_placeholder\":true,\"num\":5},{\"_placeholder\":"
         "true,\"num\":6},"
         "{\"_placeholder\":true,\"num\":7},{\"_placeholder\":true,\"num\":8},{\"_placeholder\":"
         "true,\"num\":9}",
     1},
    /* without attachments a placeholder is a plain object to every parser: relayed as is */
    {"2[\"message\",{\"_placeholder\":true,\"num\":99}]", 2, "/", -1, 0,
     "[\"message\",{\"_placeholder\":true,\"num\":99}]", "message",
     "{\"_placeholder\":true,\"num\":99}", 1},
    {"3[{\"_placeholder\":true,\"num\":-1}]", 3, "/", -1, 0, "[{\"_placeholder\":true,\"num\":-1}]",
     NULL, NULL, 1},
};

static void check_ok(size_t ci, const struct ok_case *c, const struct hr_sio_packet *p,
                     const char *base, size_t len)
{
    size_t nl = strlen(c->nsp);
    assert_int_equal(p->type, c->type);
    assert_int_equal(p->nsp_len, nl);
    assert_memory_equal(p->nsp, c->nsp, nl);
    assert_true(p->ack_id == c->ack);
    assert_int_equal(p->attachments, c->att);
    if (!c->data) {
        assert_null(p->data);
        assert_int_equal(p->data_len, 0);
    } else {
        if (p->data_len != strlen(c->data) || memcmp(p->data, c->data, p->data_len) != 0)
            fail_msg("case %zu: data \"%.*s\"", ci, (int)p->data_len, p->data);
        assert_true(p->data >= base && p->data + p->data_len == base + len);
    }
    if (c->name) {
        assert_string_equal(p->name, c->name);
        if (p->args_len != strlen(c->args) || memcmp(p->args, c->args, p->args_len) != 0)
            fail_msg("case %zu: args \"%.*s\"", ci, (int)p->args_len, p->args);
        assert_true(p->args >= p->data && p->args + p->args_len <= p->data + p->data_len);
    } else {
        assert_string_equal(p->name, "");
        assert_null(p->args);
        assert_int_equal(p->args_len, 0);
    }
}

static void test_valid_packets(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const struct ok_case *c = &ok_cases[i];
        struct hr_sio_packet p;
        char *copy;
        size_t len = strlen(c->in);
        int rc = decode(c->in, len, &p, &copy);
        if (rc != 0)
            fail_msg("case %zu \"%s\": rc %d", i, c->in, rc);
        check_ok(i, c, &p, copy, len);
        free(copy);
    }
}

/* Re-encoding the decoded fields gives a packet that decodes to the same fields, and, for
 * the canonical examples, exactly the input text. */
static void test_encode_round_trip(void **state)
{
    (void)state;
    long live = hr_buf_live;
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const struct ok_case *c = &ok_cases[i];
        struct hr_sio_packet p, q;
        char *copy, *copy2;
        size_t len = strlen(c->in);
        assert_int_equal(decode(c->in, len, &p, &copy), 0);
        struct hr_buf *b =
            hr_sio_encode(p.type, p.nsp, p.nsp_len, p.ack_id, p.attachments, p.data, p.data_len);
        assert_non_null(b);
        if (c->canonical && (b->len != len || memcmp(b->data, c->in, len) != 0))
            fail_msg("case %zu: encoded \"%.*s\", want \"%s\"", i, (int)b->len, b->data, c->in);
        assert_int_equal(decode(b->data, b->len, &q, &copy2), 0);
        check_ok(i, c, &q, copy2, b->len);
        hr_buf_unref(b);
        free(copy);
        free(copy2);
    }
    assert_int_equal(hr_buf_live, live);
}

/* ---------------------------------------------------------------------------------------
 * Invalid packets */

struct bad_case {
    const char *in;
    size_t len;
};

static const struct bad_case bad_cases[] = {
    /* empty, and unknown types ("abc" is what the server sees of the suite's "4abc") */
    {S("")},
    {S("abc")},
    {S("7")},
    {S("9")},
    {S("999")},
    {S(" 2[\"x\"]")},
    {S("-1")},
    {S("/admin,")},
    {S("\x00")},
    /* v5-test-suite: "4abc" is a CONNECT_ERROR whose payload is not JSON */
    {S("4abc")},
    {S("2{}")},                                                /* invalid payload format */
    {S("2abc[\"message-with-ack\",1,\"2\",{\"3\":[false]}]")}, /* invalid ack id */
    /* socket.io-parser test/parser.js: "invalid payload" */
    {S("442[\"some\",\"data\"")},
    {S("0/admin,\"invalid\"")},
    {S("0[]")},
    {S("1/admin,{}")},
    {S("2/admin,\"invalid")},
    {S("2/admin,{}")},
    {S("2[{\"toString\":\"foo\"}]")},
    {S("2[true,\"foo\"]")},
    {S("2[null,\"bar\"]")},
    {S("2[\"connect\"]")},
    {S("2[\"disconnect\",\"123\"]")},
    /* ... "Illegal attachments" */
    {S("5")},
    {S("51")},
    {S("50-")},
    {S("5a-")},
    {S("51.23-")},
    /* reserved event names, also when escaped or in a binary event */
    {S("2[\"connect_error\"]")},
    {S("2[\"disconnecting\"]")},
    {S("2[\"newListener\",1]")},
    {S("2[\"removeListener\"]")},
    {S("2[\"\\u0063onnect\"]")},
    {S("51-[\"disconnect\"," PH0 "]")},
    {S("2/admin,1[\"connect\"]")},
    /* EVENT: a non-empty array whose first element is a string or a number */
    {S("2[]")},
    {S("2[ ]")},
    {S("2[[\"x\"]]")},
    {S("2[{}]")},
    {S("2[false]")},
    {S("2\"x\"")},
    {S("21")},
    {S("2")},
    {S("2/admin,")},
    {S("212")},
    {S("5-[\"x\"]")},
    {S("51-[]")},
    {S("51-")},
    {S("51-{}")},
    /* ACK: an array, present */
    {S("3")},
    {S("3/admin,456")},
    {S("3{}")},
    {S("3\"x\"")},
    {S("3null")},
    {S("61-")},
    {S("61-15")},
    {S("61-{}")},
    /* CONNECT: an object or nothing; DISCONNECT: nothing; CONNECT_ERROR: object or string */
    {S("0null")},
    {S("0\"x\"")},
    {S("0true")},
    {S("0 ")},
    {S("1[]")},
    {S("1\"x\"")},
    {S("1 ")},
    {S("4")},
    {S("4[]")},
    {S("4null")},
    {S("4/admin,")},
    /* not exactly one JSON value */
    {S("2[\"a\"] x")},
    {S("2[\"a\"]]")},
    {S("2[\"a\"][")},
    {S("2[\"a\"")},
    {S("2[\"a\",]")},
    {S("2[\"a\" 1]")},
    {S("0{}{}")},
    {S("2[\"a\"]\x00")},
    {S("0{\"a\"}")},
    {S("2[\"x\",01]")},
    /* attachments: digits, 1..HR_SIO_MAX_ATTACHMENTS, then '-' */
    {S("511-[\"x\"]")},
    {S("51000-[\"x\"]")},
    {S("51001-[\"x\"]")},
    {S("599999999999999999999-[\"x\"]")},
    {S("5 1-[\"x\"]")},
    {S("5+1-[\"x\"]")},
    {S("5-1-[\"x\"]")},
    {S("51e1-[\"x\"]")},
    {S("50x1-[\"x\"]")},
    /* ack id beyond int64 */
    {S("29223372036854775808[\"x\"]")},
    {S("299999999999999999999999[\"x\"]")},
    /* namespace not UTF-8 */
    {S("2/ad\xffmin,[\"x\"]")},
    {S("0/\xc3")},
    {S("0/\xed\xa0\x80,")},
    /* namespace with a control character: 0x1E would split the polling payload it is sent in */
    {S("2/a\x1e"
       "b,[\"x\"]")},
    {S("0/\x01,")},
    {S("0/a\x1f")},
    {S("0/a\nb,{}")},
    {S("4/a\x1e"
       "4,\"x\"")},
    /* names that cannot be a C string of UTF-8, or are too long (checked below too) */
    {S("2[\"\\u0000\"]")},
    {S("2[\"a\\u0000b\"]")},
    {S("2[\"\\ud83d\"]")},
    {S("2[\"\\ude00\"]")},
    {S("2[\"\\ud83d\\u0041\"]")},
    {S("2[\"\\ud83dx\"]")},
    {S("2[\"\\ude00\\ud83d\"]")},
    /* bad JSON inside the arguments */
    {S("2[\"x\",\"\xff\"]")},
    {S("2[\"x\",\"a\nb\"]")},
    {S("2[\"x\",tru]")},
    {S("2[\"x\",\"\\x\"]")},
    {S("2[\"\xc0\xaf\"]")},
};

static void test_invalid_packets(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        struct hr_sio_packet p;
        char *copy;
        int rc = decode(bad_cases[i].in, bad_cases[i].len, &p, &copy);
        if (rc != HR_EINVAL)
            fail_msg("case %zu \"%.*s\": rc %d", i, (int)bad_cases[i].len, bad_cases[i].in, rc);
        free(copy);
    }
    struct hr_sio_packet p;
    assert_int_equal(hr_sio_decode(NULL, 0, &p), HR_EINVAL);
}

/* Placeholders socket.io-parser's reconstructPacket refuses ("illegal attachments"), or that
 * are not of the one shape its encoder writes: herald would relay them, and every official
 * client receiving the packet would fail with "parse error" and reconnect. */
#define PH(n) "{\"_placeholder\":true,\"num\":" #n "}"
static const struct bad_case bad_placeholders[] = {
    /* num out of range: the reported poison packet and its variants */
    {S("51-[\"message\"," PH(99) "]")},
    {S("51-[\"message\"," PH(-1) "]")},
    {S("51-[\"message\"," PH(1) "]")},
    {S("52-[\"message\"," PH0 "," PH(2) "]")},
    {S("510-[\"x\"," PH(0) "," PH(1) "," PH(2) "," PH(3) "," PH(4) "," PH(5) "," PH(6) "," PH(
        7) "," PH(8) "," PH(10) "]")},
    {S("51-[\"message\"," PH(4294967296) "]")},
    {S("51-[\"message\"," PH(99999999999999999999) "]")},
    {S("51-/admin,7[\"message\"," PH(99) "]")},
    {S("61-[" PH(99) "]")},
    {S("61-15[" PH(1) "]")},
    {S("62-[" PH0 ",[" PH(2) "]]")},
    /* num not a plain integer */
    {S("51-[\"x\"," PH("0") "]")},
    {S("51-[\"x\"," PH(0.5) "]")},
    {S("51-[\"x\"," PH(0.0) "]")},
    {S("51-[\"x\"," PH(0e0) "]")},
    {S("51-[\"x\"," PH(-0) "]")},
    {S("51-[\"x\"," PH(null) "]")},
    {S("51-[\"x\"," PH(true) "]")},
    {S("51-[\"x\"," PH([0]) "]")},
    {S("51-[\"x\"," PH({}) "]")},
    {S("51-[\"x\",{\"_placeholder\":true,\"num\":" PH0 "}]")}, /* nested in num */
    /* not exactly {"_placeholder":true,"num":N} */
    {S("51-[\"x\",{\"_placeholder\":true}]")},
    {S("51-[\"x\",{\"_placeholder\":true,\"num\":0,\"extra\":1}]")},
    {S("51-[\"x\",{\"extra\":" PH0 ",\"_placeholder\":true,\"num\":0}]")},
    {S("51-[\"x\",{\"_placeholder\":true,\"num\":0,\"num\":0}]")},
    {S("51-[\"x\",{\"_placeholder\":true,\"num\":99,\"num\":0}]")},
    {S("51-[\"x\",{\"_placeholder\":true,\"num\":0,\"num\":99}]")},
    {S("51-[\"x\",{\"_placeholder\":true,\"_placeholder\":true,\"num\":0}]")},
    /* "_placeholder" twice: JSON.parse keeps the last, so this is a placeholder for num 99 */
    {S("51-[\"x\"," PH0 ",{\"_placeholder\":false,\"_placeholder\":true,\"num\":99}]")},
    {S("51-[\"x\"," PH0 ",{\"_placeholder\":true,\"_placeholder\":false,\"num\":99}]")},
    /* keys as JSON.parse reads them */
    {S("51-[\"x\",{\"\\u005fplaceholder\":true,\"num\":99}]")},
    {S("51-[\"x\",{"
       "\"\\u005f\\u0070\\u006c\\u0061\\u0063\\u0065\\u0068\\u006f\\u006c\\u0064\\u0065\\u0072\":"
       "true,"
       "\"num\":99}]")},
    {S("51-[\"x\",{\"_placeholder\":true,\"n\\u0075m\":99}]")},
    {S("51-[\"x\",{\"_placeholder\":true,\"\\u006e\\u0075\\u006d\":-1}]")},
    /* an attachment named by no placeholder, or by two */
    {S("51-[\"hello\"]")},
    {S("51-[\"x\",{\"_placeholder\":false,\"num\":0}]")},
    {S("52-[\"x\"," PH0 "]")},
    {S("52-[\"x\"," PH0 "," PH0 "]")},
    {S("52-[\"x\"," PH1 "," PH1 "]")},
    {S("601-[]")},
    {S("62-[" PH1 "]")},
    /* the event name is never a placeholder (nor an object at all) */
    {S("51-[" PH0 "]")},
};

static void test_illegal_placeholders(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_placeholders) / sizeof(bad_placeholders[0]); i++) {
        struct hr_sio_packet p;
        char *copy;
        int rc = decode(bad_placeholders[i].in, bad_placeholders[i].len, &p, &copy);
        if (rc != HR_EINVAL)
            fail_msg("case %zu \"%.*s\": rc %d", i, (int)bad_placeholders[i].len,
                     bad_placeholders[i].in, rc);
        free(copy);
        /* the same arguments with no attachments are plain objects: a valid EVENT or ACK,
         * unless the text is refused for another reason (the name) */
        const char *text = bad_placeholders[i].in;
        const char *open = strchr(text, '[');
        if (text[0] == '5' && open[1] != '{') {
            char plain[512];
            int n = snprintf(plain, sizeof plain, "2%s", open);
            assert_true(n > 0 && (size_t)n < sizeof plain);
            assert_int_equal(decode(plain, (size_t)n, &p, &copy), 0);
            free(copy);
        }
    }
}

/* The check on its own, as herald's sender uses it (all_used off: an attachment no
 * placeholder names is not a parse error), and on text that is not the valid JSON it
 * expects: refused, never read out of bounds. */
static void test_check_placeholders(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        uint32_t att;
        int all_used, rc;
    } cases[] = {
        {"[\"x\"," PH0 "]", 1, 1, 0},
        {"[\"x\"," PH0 "]", 1, 0, 0},
        {"[\"x\"]", 1, 0, 0},
        {"[\"x\"]", 1, 1, HR_EINVAL},
        {"[\"x\"," PH0 "," PH0 "]", 2, 0, 0},
        {"[\"x\"," PH0 "," PH0 "]", 2, 1, HR_EINVAL},
        {"[\"x\"," PH(2) "]", 2, 0, HR_EINVAL},
        {"[\"x\"," PH(-1) "]", 2, 0, HR_EINVAL},
        {"[\"x\",{\"_placeholder\":true,\"num\":0,\"y\":0}]", 1, 0, HR_EINVAL},
        {PH0, 1, 1, 0},
        {"{\"a\":" PH0 ",\"b\":[[" PH1 "]]}", 2, 1, 0},
        {"[\"_placeholder\",{\"x\":\"_placeholder\"}]", 1, 0, 0},
        {"[]", 0, 1, 0},
        {"[" PH0 "]", 0, 0, HR_EINVAL},
        {"[" PH0 "]", HR_SIO_MAX_ATTACHMENTS + 1, 0, HR_EINVAL},
        /* not JSON */
        {"]", 1, 0, HR_EINVAL},
        {"}", 1, 0, HR_EINVAL},
        {"[", 1, 0, HR_EINVAL},
        {"{\"_placeholder\":true,\"num\":0", 1, 0, HR_EINVAL},
        {"[x]", 1, 0, HR_EINVAL},
        {"[\"abc", 1, 0, HR_EINVAL},
        {"[tru", 1, 0, HR_EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].json);
        char *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, cases[i].json, len);
        int rc = hr_sio_check_placeholders(copy, len, cases[i].att, cases[i].all_used);
        if (rc != cases[i].rc)
            fail_msg("case %zu \"%s\": rc %d, want %d", i, cases[i].json, rc, cases[i].rc);
        free(copy);
    }
    /* 128 levels of objects under a placeholder-free array: the walk's stack holds them */
    char deep[1024];
    size_t n = 0;
    for (int d = 0; d < 127; d++)
        n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"a\":");
    n += (size_t)snprintf(deep + n, sizeof deep - n, PH0);
    for (int d = 0; d < 127; d++)
        deep[n++] = '}';
    assert_int_equal(hr_json_check(deep, n), '{');
    assert_int_equal(hr_sio_check_placeholders(deep, n, 1, 1), 0);
}

/* Every byte as the type: only '0'..'6' can start a packet. */
static void test_type_bytes(void **state)
{
    (void)state;
    for (int b = 0; b < 256; b++) {
        char s[3] = {(char)b, '[', ']'};
        struct hr_sio_packet p;
        int rc = hr_sio_decode(s, 3, &p);
        /* "3[]" and "0" forms: ACK takes "[]"; the others reject it or are not types */
        if (b == '3')
            assert_int_equal(rc, 0);
        else
            assert_int_equal(rc, HR_EINVAL);
        rc = hr_sio_decode(s, 1, &p);
        if (b == '0' || b == '1')
            assert_int_equal(rc, 0);
        else
            assert_int_equal(rc, HR_EINVAL);
    }
}

/* ---------------------------------------------------------------------------------------
 * Event names */

struct name_case {
    const char *in;
    const char *name;
    size_t name_len;
};

static const struct name_case name_cases[] = {
    {"2[\"a\\\"b\"]", S("a\"b")},
    {"2[\"\\\\\\/\\b\\f\\n\\r\\t\"]", S("\\/\b\f\n\r\t")},
    {"2[\"\\u00e9t\\u00C9\"]", S("\xc3\xa9t\xc3\x89")},
    {"2[\"\\u0041\\u007f\\u0080\\u07ff\\u0800\\uffff\"]",
     S("A\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf")},
    {"2[\"\\ud83d\\ude00\"]", S("\xf0\x9f\x98\x80")},
    {"2[\"\\uD800\\uDC00\\uDBFF\\uDFFF\"]", S("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf")},
    {"2[\"\\u001f\"]", S("\x1f")},
    {"2[\"\xf0\x9f\x98\x80 raw \xe2\x82\xac\"]", S("\xf0\x9f\x98\x80 raw \xe2\x82\xac")},
    {"2[\"\\ud7ff\\ue000\"]", S("\xed\x9f\xbf\xee\x80\x80")},
    {"2[\"chat:message\",{\"text\":\"hi\"}]", S("chat:message")},
};

static void test_event_names(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
        struct hr_sio_packet p;
        char *copy;
        int rc = decode(name_cases[i].in, strlen(name_cases[i].in), &p, &copy);
        if (rc != 0)
            fail_msg("case %zu: rc %d", i, rc);
        assert_int_equal(strlen(p.name), name_cases[i].name_len);
        assert_memory_equal(p.name, name_cases[i].name, name_cases[i].name_len);
        free(copy);
    }
}

/* Names are NUL-terminated in name[256]: at most 255 bytes once unescaped. */
static void test_event_name_length(void **state)
{
    (void)state;
    char buf[2048];
    struct hr_sio_packet p;

    for (size_t n = 250; n <= 260; n++) {
        /* raw ASCII */
        int k = snprintf(
            buf, sizeof(buf), "2[\"%.*s\",1]", (int)n,
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        int rc = hr_sio_decode(buf, (size_t)k, &p);
        if (n <= 255) {
            assert_int_equal(rc, 0);
            assert_int_equal(strlen(p.name), n);
            assert_int_equal(p.args_len, 1);
            assert_memory_equal(p.args, "1", 1);
        } else {
            assert_int_equal(rc, HR_EINVAL);
        }
        /* the same length as escapes: each "\u00e9" is 2 bytes, "\u20ac" 3, "\ud83d\ude00" 4 */
        static const struct {
            const char *esc;
            size_t bytes;
        } unit[] = {{"\\u00e9", 2}, {"\\u20ac", 3}, {"\\ud83d\\ude00", 4}, {"\\n", 1}};
        for (size_t u = 0; u < 4; u++) {
            if (n % unit[u].bytes)
                continue;
            size_t o = 0;
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "2[\"");
            for (size_t j = 0; j < n / unit[u].bytes; j++)
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s", unit[u].esc);
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\"]");
            rc = hr_sio_decode(buf, o, &p);
            assert_int_equal(rc, n <= 255 ? 0 : HR_EINVAL);
            if (rc == 0)
                assert_int_equal(strlen(p.name), n);
        }
        /* a number name */
        k = snprintf(
            buf, sizeof(buf), "2[%.*s]", (int)n,
            "1111111111111111111111111111111111111111111111111111111111111111111111111111"
            "1111111111111111111111111111111111111111111111111111111111111111111111111111"
            "1111111111111111111111111111111111111111111111111111111111111111111111111111"
            "1111111111111111111111111111111111111111111111111111111111111111111111111111");
        rc = hr_sio_decode(buf, (size_t)k, &p);
        assert_int_equal(rc, n <= 255 ? 0 : HR_EINVAL);
    }
}

/* Nesting inside an EVENT: the packet's own array counts toward the JSON limit of 128
 * (hr_json_check's own depth cases are in test_core_json.c). */
static void test_event_depth(void **state)
{
    (void)state;
    char *buf = malloc(2 * 130 + 16);
    assert_non_null(buf);
    for (size_t depth = 126; depth <= 130; depth++) {
        size_t n = (size_t)snprintf(buf, 16, "2[\"x\",");
        for (size_t i = 0; i < depth - 1; i++)
            buf[n++] = '[';
        for (size_t i = 0; i < depth - 1; i++)
            buf[n++] = ']';
        buf[n++] = ']';
        struct hr_sio_packet p;
        assert_int_equal(hr_sio_decode(buf, n, &p), depth <= 128 ? 0 : HR_EINVAL);
    }
    free(buf);
}

/* ---------------------------------------------------------------------------------------
 * Encoders */

static void expect_buf(struct hr_buf *b, const char *want)
{
    assert_non_null(b);
    assert_int_equal(b->refs, 1);
    if (b->len != strlen(want) || memcmp(b->data, want, b->len) != 0)
        fail_msg("got \"%.*s\", want \"%s\"", (int)b->len, b->data, want);
    hr_buf_unref(b);
}

static void test_encode(void **state)
{
    (void)state;
    long live = hr_buf_live;
    expect_buf(hr_sio_encode(HR_SIO_CONNECT, S("/"), -1, 0, NULL, 0), "0");
    expect_buf(hr_sio_encode(HR_SIO_CONNECT, NULL, 0, -1, 0, NULL, 0), "0");
    expect_buf(hr_sio_encode(HR_SIO_CONNECT, "", 0, -1, 0, NULL, 0), "0");
    expect_buf(hr_sio_encode(HR_SIO_CONNECT, S("/admin"), -1, 0, S("{\"sid\":\"x\"}")),
               "0/admin,{\"sid\":\"x\"}");
    expect_buf(hr_sio_encode(HR_SIO_DISCONNECT, S("/admin"), -1, 0, NULL, 0), "1/admin,");
    expect_buf(hr_sio_encode(HR_SIO_EVENT, S("/"), 12, 0, S("[\"foo\"]")), "212[\"foo\"]");
    expect_buf(hr_sio_encode(HR_SIO_ACK, S("/admin"), 13, 0, S("[\"bar\"]")),
               "3/admin,13[\"bar\"]");
    expect_buf(hr_sio_encode(HR_SIO_ACK, S("/"), 0, 0, S("[]")), "30[]");
    expect_buf(hr_sio_encode(HR_SIO_ACK, S("/"), INT64_MAX, 0, S("[]")), "39223372036854775807[]");
    expect_buf(hr_sio_encode(HR_SIO_CONNECT_ERROR, S("/random"), -1, 0,
                             S("{\"message\":\"Invalid namespace\"}")),
               "4/random,{\"message\":\"Invalid namespace\"}");
    expect_buf(
        hr_sio_encode(HR_SIO_BINARY_EVENT, S("/admin"), -1, 2, S("[\"baz\"," PH0 "," PH1 "]")),
        "52-/admin,[\"baz\"," PH0 "," PH1 "]");
    expect_buf(hr_sio_encode(HR_SIO_BINARY_ACK, S("/admin"), 1, 1, S("[" PH0 "]")),
               "61-/admin,1[" PH0 "]");
    /* attachments only on binary types */
    expect_buf(hr_sio_encode(HR_SIO_EVENT, S("/"), -1, 3, S("[\"x\"]")), "2[\"x\"]");
    /* refused: unknown type, a comma in the namespace, no leading slash */
    assert_null(hr_sio_encode(7, S("/"), -1, 0, NULL, 0));
    assert_null(hr_sio_encode(-1, S("/"), -1, 0, NULL, 0));
    assert_null(hr_sio_encode(HR_SIO_EVENT, S("/a,b"), -1, 0, S("[\"x\"]")));
    assert_null(hr_sio_encode(HR_SIO_EVENT, S("admin"), -1, 0, S("[\"x\"]")));
    /* a control character in the namespace (0x1E splits a polling payload) */
    assert_null(hr_sio_encode(HR_SIO_EVENT,
                              S("/a\x1e"
                                "b"),
                              -1, 0, S("[\"x\"]")));
    assert_null(hr_sio_encode(HR_SIO_CONNECT, S("/a\n"), -1, 0, NULL, 0));
    assert_int_equal(hr_buf_live, live);
}

/* A name written by hr_json_append_string: all 32 control characters, and every escape
 * reads back as the same bytes (its own cases are in test_core_json.c). */
static void test_event_name_escapes(void **state)
{
    (void)state;
    long live = hr_buf_live;
    char all[128];
    for (int c = 0; c < 128; c++)
        all[c] = (char)c;
    struct hr_buf *b = hr_buf_from("2[", 2);
    assert_non_null(b);
    assert_int_equal(hr_json_append_string(&b, all + 1, 127), 0); /* U+0000 can't be a name */
    assert_int_equal(hr_buf_append(&b, "]", 1), 0);
    struct hr_sio_packet p;
    assert_int_equal(hr_sio_decode(b->data, b->len, &p), 0);
    assert_int_equal(strlen(p.name), 127);
    assert_memory_equal(p.name, all + 1, 127);
    hr_buf_unref(b);
    assert_int_equal(hr_buf_live, live);
}

static void test_append_event(void **state)
{
    (void)state;
    static const struct {
        const char *name, *args, *out;
    } cases[] = {
        {"message-back", "1,\"2\",{\"3\":[true]}", "[\"message-back\",1,\"2\",{\"3\":[true]}]"},
        {"auth", "{}", "[\"auth\",{}]"},
        {"hello", "", "[\"hello\"]"},
        {"a\"b\n\xc3\xa9", "null", "[\"a\\\"b\\n\xc3\xa9\",null]"},
        {"", "", "[\"\"]"},
    };
    long live = hr_buf_live;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* as a whole packet: "2" + event, which must decode to the same name and args */
        struct hr_buf *b = hr_buf_from("2", 1);
        assert_non_null(b);
        assert_int_equal(
            hr_sio_append_event(&b, cases[i].name, cases[i].args, strlen(cases[i].args)), 0);
        assert_int_equal(b->len, 1 + strlen(cases[i].out));
        assert_memory_equal(b->data + 1, cases[i].out, b->len - 1);
        struct hr_sio_packet p;
        assert_int_equal(hr_sio_decode(b->data, b->len, &p), 0);
        assert_string_equal(p.name, cases[i].name);
        assert_int_equal(p.args_len, strlen(cases[i].args));
        assert_memory_equal(p.args, cases[i].args, p.args_len);
        hr_buf_unref(b);
    }
    struct hr_buf *b = hr_buf_from("2", 1);
    assert_int_equal(hr_sio_append_event(&b, NULL, NULL, 0), HR_EINVAL);
    assert_int_equal(hr_sio_append_event(&b, "\xff", NULL, 0), HR_EINVAL);
    /* reserved names: socket.io-parser refuses an EVENT named so */
    static const char *reserved[] = {"connect",       "connect_error", "disconnect",
                                     "disconnecting", "newListener",   "removeListener"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        assert_int_equal(hr_sio_append_event(&b, reserved[i], "1", 1), HR_EINVAL);
    assert_int_equal(hr_sio_append_event(&b, "Connect", NULL, 0), 0);
    expect_buf(b, "2[\"Connect\"]");
    b = hr_buf_from("2", 1);
    expect_buf(b, "2");
    /* a shared buffer cannot grow: the append fails and changes nothing */
    b = hr_buf_from("2", 1);
    hr_buf_ref(b);
    assert_int_equal(hr_sio_append_event(&b, "x", "1", 1), HR_ETOOBIG);
    assert_int_equal(b->len, 1);
    hr_buf_unref(b);
    expect_buf(b, "2");
    assert_int_equal(hr_buf_live, live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_packets),        cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_invalid_packets),      cmocka_unit_test(test_type_bytes),
        cmocka_unit_test(test_event_names),          cmocka_unit_test(test_event_name_length),
        cmocka_unit_test(test_event_depth),          cmocka_unit_test(test_encode),
        cmocka_unit_test(test_event_name_escapes),   cmocka_unit_test(test_append_event),
        cmocka_unit_test(test_illegal_placeholders), cmocka_unit_test(test_check_placeholders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
