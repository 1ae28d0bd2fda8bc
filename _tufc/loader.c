/* Metadata loader: JSON bytes -> (envelope objects, canonical bytes of
 * "signed") in one strict pass.
 *
 * The parser is a recursive descent over the input bytes (RFC 8259, UTF-8
 * only, integers only, no duplicate keys, nesting <= TUFC_MAX_DEPTH).
 * While it walks envelope["signed"] it also writes that value's canonical
 * JSON: every member is written in input order and its output span
 * recorded; an object whose keys were not already sorted (by UTF-8 bytes) has
 * its member spans permuted in place when it closes.  Strings without escapes
 * are copied verbatim (a raw '"' or '\\' cannot occur inside a JSON string).
 *
 * The two big per-entry maps (signed["meta"] of a snapshot, signed["targets"]
 * of a targets role) are not turned into Python objects: the parser records
 * each entry's key, value span and a summary of the fields the schema checks
 * ("version", "length", "hashes"), and the map becomes an EntryMap that keeps
 * the input bytes alive and builds an entry's dict on lookup.  Which schema
 * applies is known only once "_type" is read, so the summaries are checked
 * after the "signed" object is complete; a map under another role type is
 * parsed again into a plain dict.  An entry of the usual snapshot shape,
 * "name":{"version":N} written compactly, is recorded in one step
 * (usual_meta_entry); anything else about it goes the general way.
 *
 * Parser buffers are plain PyMem arrays grown by doubling with checked
 * size arithmetic; everything is freed on every path.  No global state.
 */
#include "tufc.h"

#include <stdint.h>
#include <string.h>

/* Longest integer literal accepted (CPython's default int/str limit). */
#define MAX_INT_DIGITS 4300

enum {
    CTX_PLAIN,    /* any value */
    CTX_ENVELOPE, /* the top-level object */
    CTX_SIGNED,   /* envelope["signed"] */
    CTX_ENTRIES,  /* signed["meta"] / signed["targets"]: becomes an EntryMap */
    CTX_ENTRY,    /* one entry of such a map: its fields are summarized */
    CTX_HASHES,   /* an entry's "hashes" */
    CTX_DIGEST,   /* a value of "hashes": its hex form is checked */
};

/* entry flags */
#define E_OBJECT      0x01u
#define E_VERSION     0x02u  /* has "version" */
#define E_VERSION_OK  0x04u  /* ... an integer >= 1 */
#define E_VERSION_BIG 0x08u  /* ... beyond int64: "version" holds the offset
                                of its digits, flags >> 8 their count */
#define E_LENGTH      0x10u
#define E_LENGTH_OK   0x20u  /* "length" is an integer >= 0 */
#define E_HASHES      0x40u
#define E_HASHES_OK   0x80u  /* "hashes" is a non-empty object of hex strings */

/* Offsets are 32-bit: an input is at most TUFC_MAX_INPUT bytes, and the key and
 * output buffers are never longer than the input.  A snapshot of 16,384
 * entries then fills 128 fresh pages of entries rather than 224, and a
 * fresh page is the costly part of a first load in a new process. */
#define TUFC_MAX_INPUT ((Py_ssize_t)UINT32_MAX)

typedef struct {
    uint32_t key_off, key_len;     /* decoded key, in parser.keys (a big map's
                                      keys: in the input, see keys_in_input) */
    uint32_t seg_start, seg_end;   /* canonical "key":value, in parser.out */
} member;

/* An entry of a big map is also the member of its object (first field), so
 * the map's members are not recorded twice. */
typedef struct {
    member m;
    int64_t version;
    uint32_t val_start;            /* the value in the input */
    uint32_t flags;
} entry;

/* The members of one object: n structs of size stride at base. */
typedef struct {
    const char *base;
    size_t stride;
    Py_ssize_t n;
} members_view;

#define MEMBER(v, i) ((const member *)(const void *)((v)->base + (size_t)(i) * (v)->stride))

typedef struct {
    char *data;
    Py_ssize_t len, cap;   /* bytes */
    int fixed;             /* data is a bytes object's: never grown or freed */
    /* Comparing, not writing (the canonical output only): while ref is not
     * NULL the output so far is ref[0:len], a span of the input, and data
     * holds nothing yet.  The first write that differs copies that prefix
     * into data (materialize) and writing goes on from there. */
    const char *ref;
    Py_ssize_t ref_len;
} buffer;

/* What a parsed value was, for the checks of its parent. */
typedef struct {
    char kind;             /* 'o' object, 'a' array, 's' string, 'n' number, 'l' literal */
    int negative, zero, big;
    int64_t value;
    Py_ssize_t digits_start, digits_len;
    int hex;               /* string: a non-empty even-length hex string;
                              object under CTX_HASHES: non-empty, all hex */
} vinfo;

typedef struct {
    tufc_state *st;
    PyObject *source;      /* the input bytes (borrowed) */
    const unsigned char *buf;
    Py_ssize_t len, pos;
    int depth;
    int emit;              /* writing canonical output */
    buffer out, keys, members, entries, scratch;
    Py_ssize_t cur_entry;  /* index into entries while a CTX_ENTRY is open */
} parser;

typedef struct {
    PyObject_HEAD
    PyObject *source;      /* bytes the spans point into */
    const char *keys;      /* decoded key bytes of every entry: key_arena, or
                              the bytes of source when no key has an escape */
    char *key_arena;       /* owned; NULL when keys are in source */
    entry *entries;        /* sorted by key bytes */
    Py_ssize_t n;
    Py_ssize_t span_start, span_end;  /* the whole map in source */
    char kind;             /* 0 until validated; 'm' meta, 't' targets */
} EntryMapObject;

static inline PyObject *
tufc_new_ref(PyObject *o)
{
    Py_INCREF(o);
    return o;
}

static int parse_value(parser *p, int ctx, int build, PyObject **out,
                       vinfo *info);

/* ---- buffers ------------------------------------------------------------ */

/* Leave comparing mode: the output so far is copied out of the input. */
static void
buf_materialize(buffer *b)
{
    if (b->ref != NULL) {
        if (b->len > 0) {
            memcpy(b->data, b->ref, (size_t)b->len);
        }
        b->ref = NULL;
    }
}

static int
buf_reserve(buffer *b, Py_ssize_t extra)
{
    if (extra > PY_SSIZE_T_MAX - b->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t need = b->len + extra;
    if (need <= b->cap) {
        return 0;
    }
    if (b->fixed) {  /* cannot happen: canonical JSON is never longer */
        PyErr_SetString(PyExc_SystemError, "canonical output overflow");
        return -1;
    }
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        cap = cap > PY_SSIZE_T_MAX / 2 ? need : cap * 2;
    }
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline int
buf_put(buffer *b, const void *s, Py_ssize_t n)
{
    if (n == 0) {
        return 0;  /* memcpy from a NULL source is undefined even for 0 */
    }
    if (b->ref != NULL) {
        /* canonical input writes each piece from where it already is */
        const char *at = b->ref + b->len;
        if (n <= b->ref_len - b->len && (s == at || memcmp(at, s, (size_t)n) == 0)) {
            b->len += n;
            return 0;
        }
        buf_materialize(b);
    }
    if (b->cap - b->len < n && buf_reserve(b, n) < 0) {
        return -1;
    }
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

static inline int
buf_byte(buffer *b, char c)
{
    if (b->ref != NULL) {
        if (b->len < b->ref_len && b->ref[b->len] == c) {
            b->len++;
            return 0;
        }
        buf_materialize(b);
    }
    if (b->cap == b->len && buf_reserve(b, 1) < 0) {
        return -1;
    }
    b->data[b->len++] = c;
    return 0;
}

/* Room for one more zeroed element of size sz; returns its offset or -1.
 * Inlined so that each call site's constant sz becomes a few stores rather
 * than a variable-length memset (measurable: one call per snapshot entry). */
static inline Py_ssize_t
buf_push(buffer *b, size_t sz)
{
    if (b->cap - b->len < (Py_ssize_t)sz &&
        buf_reserve(b, (Py_ssize_t)sz) < 0) {
        return -1;
    }
    Py_ssize_t off = b->len;
    memset(b->data + off, 0, sz);
    b->len += (Py_ssize_t)sz;
    return off;
}

/* Set up p over source; every buffer is allocated (never NULL). */
static int
parser_init(parser *p, tufc_state *st, PyObject *source, Py_ssize_t pos,
            int depth)
{
    memset(p, 0, sizeof(*p));
    p->st = st;
    p->source = source;
    p->buf = (const unsigned char *)PyBytes_AS_STRING(source);
    p->len = PyBytes_GET_SIZE(source);
    p->pos = pos;
    p->depth = depth;
    if (p->len > TUFC_MAX_INPUT) {
        PyErr_SetString(st->FormatError,
                        "not valid metadata JSON: longer than 4 GiB");
        return -1;
    }
    if (buf_reserve(&p->out, 64) < 0 || buf_reserve(&p->keys, 64) < 0 ||
        buf_reserve(&p->members, 16 * (Py_ssize_t)sizeof(member)) < 0 ||
        buf_reserve(&p->entries, 16 * (Py_ssize_t)sizeof(entry)) < 0 ||
        buf_reserve(&p->scratch, 64) < 0) {
        return -1;
    }
    return 0;
}

static void
parser_free(parser *p)
{
    if (!p->out.fixed) {
        PyMem_Free(p->out.data);
    }
    PyMem_Free(p->keys.data);
    PyMem_Free(p->members.data);
    PyMem_Free(p->entries.data);
    PyMem_Free(p->scratch.data);
}

#define ENTRIES(p) ((entry *)(void *)(p)->entries.data)

/* ---- errors ------------------------------------------------------------- */

static int
fail(parser *p, const char *what)
{
    PyErr_Format(p->st->FormatError, "not valid metadata JSON: %s at byte %zd",
                 what, p->pos);
    return -1;
}

/* ---- lexing ------------------------------------------------------------- */

static inline void
skip_ws(parser *p)
{
    const unsigned char *b = p->buf;
    Py_ssize_t i = p->pos, n = p->len;
    while (i < n && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' ||
                     b[i] == '\t')) {
        i++;
    }
    p->pos = i;
}

/* After a container member: 1 if a ',' follows (consumed and emitted),
 * 0 if the closing bracket does (consumed), -1 with FormatError else. */
static int
next_member(parser *p, char close)
{
    skip_ws(p);
    if (p->pos < p->len && p->buf[p->pos] == ',') {
        p->pos++;
        return p->emit && buf_byte(&p->out, ',') < 0 ? -1 : 1;
    }
    if (p->pos < p->len && p->buf[p->pos] == (unsigned char)close) {
        p->pos++;
        return 0;
    }
    return fail(p, close == ']' ? "expected ',' or ']'" : "expected ',' or '}'");
}

/* 1 for bytes that stand for themselves in a JSON string: printable
 * ASCII other than '"' and '\\' (a constant table, not state). */
static const unsigned char PLAIN[256] = {
#define R8(x) x, x, x, x, x, x, x, x
    R8(0), R8(0), R8(0), R8(0),                       /* 0x00-0x1f */
    1, 1, 0, 1, 1, 1, 1, 1, R8(1), R8(1), R8(1),      /* 0x20-0x3f */
    R8(1), R8(1), R8(1), 1, 1, 1, 1, 0, 1, 1, 1,      /* 0x40-0x5f */
    R8(1), R8(1), R8(1), R8(1),                       /* 0x60-0x7f */
    R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0),
    R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0),
#undef R8
};

#define ONES  UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Whether all 8 bytes at s are PLAIN, tested a word at a time: no byte
 * >= 0x80, < 0x20, '"' or '\\' (the "has a byte less than n" trick is exact
 * for n <= 128). */
static inline int
plain8(const unsigned char *s)
{
    uint64_t w;
    memcpy(&w, s, 8);
    uint64_t q = w ^ (ONES * 0x22), bs = w ^ (ONES * 0x5C);
    uint64_t bad = (w & HIGHS) | ((w - ONES * 0x20) & ~w & HIGHS) |
                   ((q - ONES) & ~q & HIGHS) | ((bs - ONES) & ~bs & HIGHS);
    return bad == 0;
}

/* Length of the valid UTF-8 sequence of 2-4 bytes at s, or 0. */
static Py_ssize_t
utf8_seq(const unsigned char *s, Py_ssize_t avail)
{
    unsigned c = s[0];
    if (c >= 0xC2 && c <= 0xDF) {
        return (avail >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (s[2] & 0xC0) != 0x80) {
            return 0;
        }
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return (s[1] >= lo && s[1] <= hi) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) {
            return 0;
        }
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return (s[1] >= lo && s[1] <= hi) ? 4 : 0;
    }
    return 0;
}

static int
hex4(const unsigned char *s, unsigned *cp)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned c = s[k], d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        }
        else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        }
        else if (c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        }
        else {
            return -1;
        }
        v = v * 16 + d;
    }
    *cp = v;
    return 0;
}

static int
put_utf8(buffer *b, unsigned cp)
{
    char tmp[4];
    Py_ssize_t n;
    if (cp < 0x80) {
        tmp[0] = (char)cp;
        n = 1;
    }
    else if (cp < 0x800) {
        tmp[0] = (char)(0xC0 | (cp >> 6));
        tmp[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    }
    else if (cp < 0x10000) {
        tmp[0] = (char)(0xE0 | (cp >> 12));
        tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    }
    else {
        tmp[0] = (char)(0xF0 | (cp >> 18));
        tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return buf_put(b, tmp, n);
}

/* The string at p->pos (a '"'): its decoded UTF-8 bytes in *s and *n, pointing
 * into the input when it has no escapes (*escaped = 0), else into
 * p->scratch (valid until the next string). */
static int
lex_string(parser *p, const char **s, Py_ssize_t *n, int *escaped)
{
    const unsigned char *b = p->buf;
    Py_ssize_t len = p->len, start = p->pos + 1, i = start;
    for (;;) {
        while (len - i >= 8 && plain8(b + i)) {
            i += 8;
        }
        while (i < len && PLAIN[b[i]]) {
            i++;
        }
        if (i >= len) {
            p->pos = i;
            return fail(p, "unterminated string");
        }
        unsigned c = b[i];
        if (c == '"') {
            *s = (const char *)b + start;
            *n = i - start;
            *escaped = 0;
            p->pos = i + 1;
            return 0;
        }
        if (c == '\\') {
            break;
        }
        if (c < 0x20) {
            p->pos = i;
            return fail(p, "control character in string");
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        Py_ssize_t k = utf8_seq(b + i, len - i);
        if (k == 0) {
            p->pos = i;
            return fail(p, "invalid UTF-8");
        }
        i += k;
    }
    buffer *sc = &p->scratch;
    sc->len = 0;
    if (buf_put(sc, b + start, i - start) < 0) {
        return -1;
    }
    for (;;) {
        if (i >= len) {
            p->pos = i;
            return fail(p, "unterminated string");
        }
        unsigned c = b[i];
        if (c == '"') {
            break;
        }
        if (c == '\\') {
            if (i + 1 >= len) {
                p->pos = i;
                return fail(p, "unterminated string");
            }
            unsigned e = b[i + 1], cp;
            char out;
            switch (e) {
            case '"': out = '"'; break;
            case '\\': out = '\\'; break;
            case '/': out = '/'; break;
            case 'b': out = '\b'; break;
            case 'f': out = '\f'; break;
            case 'n': out = '\n'; break;
            case 'r': out = '\r'; break;
            case 't': out = '\t'; break;
            case 'u':
                if (len - i < 6 || hex4(b + i + 2, &cp) < 0) {
                    p->pos = i;
                    return fail(p, "bad \\u escape");
                }
                i += 6;
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    p->pos = i - 6;
                    return fail(p, "lone surrogate escape");
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (len - i < 6 || b[i] != '\\' || b[i + 1] != 'u' ||
                        hex4(b + i + 2, &lo) < 0 || lo < 0xDC00 ||
                        lo > 0xDFFF) {
                        p->pos = i - 6;
                        return fail(p, "lone surrogate escape");
                    }
                    i += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (put_utf8(sc, cp) < 0) {
                    return -1;
                }
                continue;
            default:
                p->pos = i;
                return fail(p, "bad escape");
            }
            if (buf_byte(sc, out) < 0) {
                return -1;
            }
            i += 2;
            continue;
        }
        if (c < 0x20) {
            p->pos = i;
            return fail(p, "control character in string");
        }
        Py_ssize_t k = 1;
        if (c >= 0x80) {
            k = utf8_seq(b + i, len - i);
            if (k == 0) {
                p->pos = i;
                return fail(p, "invalid UTF-8");
            }
        }
        if (buf_put(sc, b + i, k) < 0) {
            return -1;
        }
        i += k;
    }
    *s = sc->data;
    *n = sc->len;
    *escaped = 1;
    p->pos = i + 1;
    return 0;
}

/* Canonical form of a decoded string: quoted, only '"' and '\\' escaped.
 * Exactly the bytes written are reserved: the output buffer is the input's
 * size, and only the exact canonical length is known to fit (each '"' or
 * '\\' here came from a two-byte escape in the input). */
static int
put_escaped(buffer *out, const char *s, Py_ssize_t n)
{
    Py_ssize_t quoted = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        quoted += s[i] == '"' || s[i] == '\\';
    }
    if (n > PY_SSIZE_T_MAX - 2 - quoted) {
        PyErr_NoMemory();
        return -1;
    }
    if (out->ref != NULL) {
        /* comparing: canonical JSON keeps \" and \\, so the input may
         * still match; byte by byte, materialized at the first difference */
        if (buf_byte(out, '"') < 0) {
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if ((s[i] == '"' || s[i] == '\\') && buf_byte(out, '\\') < 0) {
                return -1;
            }
            if (buf_byte(out, s[i]) < 0) {
                return -1;
            }
        }
        return buf_byte(out, '"');
    }
    if (buf_reserve(out, n + quoted + 2) < 0) {
        return -1;
    }
    char *w = out->data + out->len;
    *w++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            *w++ = '\\';
        }
        *w++ = s[i];
    }
    *w++ = '"';
    out->len = w - out->data;
    return 0;
}

/* 1 for the ASCII hex digits (a constant table, not state) */
static const unsigned char HEX_DIGIT[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
    ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
};

static int
is_hex(const char *s, Py_ssize_t n)
{
    if (n == 0 || n % 2) {
        return 0;
    }
    Py_ssize_t i = 0;
    /* 8 at a time: every byte ASCII and in '0'-'9' or, case folded, 'a'-'f'
     * (for ASCII c, c + (0x80 - lo) has its high bit set iff c >= lo, and
     * c + (0x7f - hi) iff c > hi; no carry crosses a byte) */
    for (; n - i >= 8; i += 8) {
        uint64_t w, f;
        memcpy(&w, s + i, 8);
        f = w | (ONES * 0x20);
        uint64_t digits = (w + ONES * (0x80 - '0')) & ~(w + ONES * (0x7f - '9'));
        uint64_t alpha = (f + ONES * (0x80 - 'a')) & ~(f + ONES * (0x7f - 'f'));
        if ((w & HIGHS) || ((digits | alpha) & HIGHS) != HIGHS) {
            return 0;
        }
    }
    unsigned ok = 1;
    for (; i < n; i++) {
        ok &= HEX_DIGIT[(unsigned char)s[i]];
    }
    return (int)ok;
}

/* ---- values ------------------------------------------------------------- */

static int
parse_string(parser *p, int build, int digest, PyObject **out, vinfo *info)
{
    Py_ssize_t start = p->pos;
    const char *s;
    Py_ssize_t n;
    int escaped;
    if (lex_string(p, &s, &n, &escaped) < 0) {
        return -1;
    }
    info->kind = 's';
    info->hex = digest && is_hex(s, n);
    if (p->emit) {
        int r = escaped ? put_escaped(&p->out, s, n)
                        : buf_put(&p->out, p->buf + start, p->pos - start);
        if (r < 0) {
            return -1;
        }
    }
    if (build) {
        *out = PyUnicode_DecodeUTF8(s, n, NULL);
        if (*out == NULL) {
            return -1;
        }
    }
    return 0;
}

static int
parse_number(parser *p, int build, PyObject **out, vinfo *info)
{
    const unsigned char *b = p->buf;
    Py_ssize_t start = p->pos, i = start, len = p->len;
    int negative = 0;
    if (b[i] == '-') {
        negative = 1;
        i++;
    }
    if (i >= len || b[i] < '0' || b[i] > '9') {
        p->pos = i;
        return fail(p, "bad number");
    }
    Py_ssize_t digits = i;
    if (b[i] == '0') {
        i++;
    }
    else {
        while (i < len && b[i] >= '0' && b[i] <= '9') {
            i++;
        }
    }
    p->pos = i;
    if (i < len && (b[i] == '.' || b[i] == 'e' || b[i] == 'E')) {
        return fail(p, "floating point numbers are not allowed");
    }
    Py_ssize_t nd = i - digits;
    if (nd > MAX_INT_DIGITS) {
        return fail(p, "integer literal too long");
    }
    info->kind = 'n';
    info->negative = negative;
    info->zero = nd == 1 && b[digits] == '0';
    info->big = nd > 18;
    info->digits_start = digits;
    info->digits_len = nd;
    int64_t v = 0;
    if (!info->big) {
        for (Py_ssize_t k = digits; k < i; k++) {
            v = v * 10 + (b[k] - '0');
        }
    }
    info->value = negative ? -v : v;
    if (p->emit) {
        int r = (negative && info->zero)
                    ? buf_byte(&p->out, '0')
                    : buf_put(&p->out, b + start, i - start);
        if (r < 0) {
            return -1;
        }
    }
    if (build) {
        if (!info->big) {
            *out = PyLong_FromLongLong(info->value);
        }
        else {
            buffer *sc = &p->scratch;
            sc->len = 0;
            if (buf_put(sc, b + start, i - start) < 0 || buf_byte(sc, 0) < 0) {
                return -1;
            }
            *out = PyLong_FromString(sc->data, NULL, 10);
            if (*out == NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
                PyErr_Clear();  /* over a lowered int/str digit limit */
                return fail(p, "integer literal too long");
            }
        }
        if (*out == NULL) {
            return -1;
        }
    }
    return 0;
}

static int
parse_literal(parser *p, int build, PyObject **out, vinfo *info)
{
    static const char *const words[3] = {"true", "false", "null"};
    const unsigned char *b = p->buf;
    for (int k = 0; k < 3; k++) {
        Py_ssize_t n = (Py_ssize_t)strlen(words[k]);
        if (p->len - p->pos >= n && memcmp(b + p->pos, words[k], (size_t)n) == 0) {
            if (p->emit && buf_put(&p->out, words[k], n) < 0) {
                return -1;
            }
            p->pos += n;
            info->kind = 'l';
            if (build) {
                *out = k == 0 ? Py_True : k == 1 ? Py_False : Py_None;
                Py_INCREF(*out);
            }
            return 0;
        }
    }
    return fail(p, "unexpected character");
}

static int
parse_array(parser *p, int build, PyObject **out, vinfo *info)
{
    if (++p->depth > TUFC_MAX_DEPTH) {
        return fail(p, "nesting too deep");
    }
    p->pos++;
    info->kind = 'a';
    PyObject *list = NULL;
    if (build && (list = PyList_New(0)) == NULL) {
        return -1;
    }
    if (p->emit && buf_byte(&p->out, '[') < 0) {
        goto error;
    }
    skip_ws(p);
    if (p->pos < p->len && p->buf[p->pos] == ']') {
        p->pos++;
    }
    else {
        for (;;) {
            PyObject *item = NULL;
            vinfo sub;
            if (parse_value(p, CTX_PLAIN, build, &item, &sub) < 0) {
                goto error;
            }
            if (list != NULL) {
                int r = PyList_Append(list, item);
                Py_DECREF(item);
                if (r < 0) {
                    goto error;
                }
            }
            int more = next_member(p, ']');
            if (more < 0) {
                goto error;
            }
            if (!more) {
                break;
            }
        }
    }
    if (p->emit && buf_byte(&p->out, ']') < 0) {
        goto error;
    }
    p->depth--;
    if (build) {
        *out = list;
    }
    return 0;
error:
    Py_XDECREF(list);
    return -1;
}

/* ---- objects: key order, duplicates, canonical member order ------------- */

static inline int
key_cmp(const char *keys, const member *a, const member *b)
{
    Py_ssize_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int r = n ? memcmp(keys + a->key_off, keys + b->key_off, (size_t)n) : 0;
    if (r) {
        return r;
    }
    return (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

/* Stable bottom-up merge sort of idx[0..n) by key; tmp has room for n. */
static void
sort_members(const char *keys, const members_view *v, Py_ssize_t *idx,
             Py_ssize_t *tmp)
{
    Py_ssize_t n = v->n;
    for (Py_ssize_t width = 1; width < n; width *= 2) {
        for (Py_ssize_t lo = 0; lo < n; lo += 2 * width) {
            Py_ssize_t mid = lo + width < n ? lo + width : n;
            Py_ssize_t hi = mid + width < n ? mid + width : n;
            Py_ssize_t a = lo, b = mid, w = lo;
            while (a < mid && b < hi) {
                tmp[w++] = key_cmp(keys, MEMBER(v, idx[b]), MEMBER(v, idx[a])) < 0
                               ? idx[b++] : idx[a++];
            }
            while (a < mid) {
                tmp[w++] = idx[a++];
            }
            while (b < hi) {
                tmp[w++] = idx[b++];
            }
        }
        memcpy(idx, tmp, (size_t)n * sizeof(Py_ssize_t));
    }
}

/* The sorted order of the n members at m (NULL *order: already sorted),
 * failing on a duplicate key. */
static int
member_order(parser *p, const members_view *v, const char *keys,
             Py_ssize_t **order)
{
    Py_ssize_t n = v->n;
    *order = NULL;
    Py_ssize_t k = 1;
    while (k < n && key_cmp(keys, MEMBER(v, k - 1), MEMBER(v, k)) < 0) {
        k++;
    }
    if (k >= n) {
        return 0;
    }
    if ((size_t)n > PY_SSIZE_T_MAX / (2 * sizeof(Py_ssize_t))) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t *idx = PyMem_Malloc((size_t)n * 2 * sizeof(Py_ssize_t));
    if (idx == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        idx[i] = i;
    }
    sort_members(keys, v, idx, idx + n);
    for (Py_ssize_t i = 1; i < n; i++) {
        if (key_cmp(keys, MEMBER(v, idx[i - 1]), MEMBER(v, idx[i])) == 0) {
            PyMem_Free(idx);
            return fail(p, "duplicate key in object");
        }
    }
    *order = idx;
    return 0;
}

/* Rewrite the members' canonical spans in sorted order. */
static int
reorder_output(parser *p, const members_view *v, const Py_ssize_t *order)
{
    Py_ssize_t n = v->n;
    Py_ssize_t first = MEMBER(v, 0)->seg_start;
    Py_ssize_t total = MEMBER(v, n - 1)->seg_end - first;
    buf_materialize(&p->out);  /* the input's members were out of order */
    char *tmp = PyMem_Malloc((size_t)total);
    if (tmp == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(tmp, p->out.data + first, (size_t)total);
    char *w = p->out.data + first;
    for (Py_ssize_t i = 0; i < n; i++) {
        const member *x = MEMBER(v, order[i]);
        if (i) {
            *w++ = ',';
        }
        size_t sz = (size_t)(x->seg_end - x->seg_start);
        memcpy(w, tmp + (x->seg_start - first), sz);
        w += sz;
    }
    PyMem_Free(tmp);
    return 0;
}

static inline int
key_is(const char *s, Py_ssize_t n, const char *word)
{
    size_t wn = strlen(word);
    return (size_t)n == wn && memcmp(s, word, wn) == 0;
}

static PyObject *entrymap_new(parser *p, Py_ssize_t n,
                              const Py_ssize_t *order, Py_ssize_t keys_base,
                              Py_ssize_t span_start, int keys_in_input);

/* Record what a CTX_ENTRY member tells about its entry. */
static void
summarize_field(parser *p, const char *key, Py_ssize_t key_len,
                const vinfo *sub)
{
    entry *e = &ENTRIES(p)[p->cur_entry];
    if (key_is(key, key_len, "version")) {
        e->flags |= E_VERSION;
        if (sub->kind == 'n' && !sub->negative && !sub->zero) {
            e->flags |= E_VERSION_OK;
            if (sub->big) {
                /* at most MAX_INT_DIGITS digits: the count fits */
                e->flags |= E_VERSION_BIG | ((uint32_t)sub->digits_len << 8);
                e->version = sub->digits_start;
            }
            else {
                e->version = sub->value;
            }
        }
    }
    else if (key_is(key, key_len, "length")) {
        e->flags |= E_LENGTH;
        if (sub->kind == 'n' && (!sub->negative || sub->zero)) {
            e->flags |= E_LENGTH_OK;
        }
    }
    else if (key_is(key, key_len, "hashes")) {
        e->flags |= E_HASHES;
        if (sub->kind == 'o' && sub->hex) {
            e->flags |= E_HASHES_OK;
        }
    }
}

/* A big map's keys stay where they are in the input (its 16,384 keys would
 * fill 56 fresh pages of arena) until one has an escape: then the keys
 * recorded so far are copied into the key arena, where the rest go too. */
static int
keys_to_arena(parser *p, Py_ssize_t members_base)
{
    Py_ssize_t first = members_base / (Py_ssize_t)sizeof(entry);
    Py_ssize_t end = p->entries.len / (Py_ssize_t)sizeof(entry);
    for (Py_ssize_t i = first; i < end; i++) {
        member *m = &ENTRIES(p)[i].m;
        Py_ssize_t off = p->keys.len;
        if (buf_put(&p->keys, p->buf + m->key_off, m->key_len) < 0) {
            return -1;
        }
        m->key_off = (uint32_t)off;
    }
    return 0;
}

/* The usual snapshot entry, "name":{"version":N} with a key of PLAIN bytes,
 * no whitespace and 1 <= N < 10^18, recorded exactly as the general path
 * records it (entry, key, output span) without walking it value by value:
 * a snapshot is 16,384 of these.  Returns 1 if the entry at p->pos was one
 * (p->pos is then after its '}'), 0 if not (nothing changed: the general
 * path parses it, and reports its errors), -1 on error. */
static int
usual_meta_entry(parser *p, int keys_in_input)
{
    static const char VERSION[] = ":{\"version\":";
    const Py_ssize_t vlen = (Py_ssize_t)sizeof(VERSION) - 1;
    const unsigned char *b = p->buf;
    Py_ssize_t len = p->len, start = p->pos, i = start + 1;
    while (len - i >= 8 && plain8(b + i)) {
        i += 8;
    }
    while (i < len && PLAIN[b[i]]) {
        i++;
    }
    if (i >= len || b[i] != '"') {
        return 0;
    }
    Py_ssize_t key_len = i - (start + 1), val_start = i + 2;
    i++;
    if (len - i < vlen + 2 || memcmp(b + i, VERSION, (size_t)vlen) != 0) {
        return 0;
    }
    i += vlen;
    Py_ssize_t digits = i;
    if (b[i] < '1' || b[i] > '9') {
        return 0;
    }
    int64_t version = 0;
    while (i < len && i - digits < 18 && b[i] >= '0' && b[i] <= '9') {
        version = version * 10 + (b[i] - '0');
        i++;
    }
    if (i >= len || b[i] != '}' || p->depth + 1 > TUFC_MAX_DEPTH) {
        return 0;  /* a 19th digit, a fraction, whitespace, more fields */
    }
    i++;
    Py_ssize_t off = buf_push(&p->entries, sizeof(entry));
    if (off < 0) {
        return -1;
    }
    Py_ssize_t key_off = start + 1;
    if (!keys_in_input) {
        key_off = p->keys.len;
        if (buf_put(&p->keys, b + start + 1, key_len) < 0) {
            return -1;
        }
    }
    entry *e = (entry *)(void *)(p->entries.data + off);
    e->m.key_off = (uint32_t)key_off;
    e->m.key_len = (uint32_t)key_len;
    e->val_start = (uint32_t)val_start;
    e->version = version;
    e->flags = E_OBJECT | E_VERSION | E_VERSION_OK;
    if (p->emit) {
        e->m.seg_start = (uint32_t)p->out.len;
        if (buf_put(&p->out, b + start, i - start) < 0) {
            return -1;
        }
        e->m.seg_end = (uint32_t)p->out.len;
    }
    p->cur_entry = off / (Py_ssize_t)sizeof(entry);
    p->pos = i;
    return 1;
}

static int
parse_object(parser *p, int ctx, int build, PyObject **out, vinfo *info)
{
    if (++p->depth > TUFC_MAX_DEPTH) {
        return fail(p, "nesting too deep");
    }
    Py_ssize_t span_start = p->pos;
    p->pos++;
    info->kind = 'o';
    Py_ssize_t keys_base = p->keys.len;
    /* a big map's members are its entries */
    buffer *mbuf = ctx == CTX_ENTRIES ? &p->entries : &p->members;
    size_t msize = ctx == CTX_ENTRIES ? sizeof(entry) : sizeof(member);
    Py_ssize_t members_base = mbuf->len;
    Py_ssize_t *order = NULL;
    int all_hex = 1;
    int keys_in_input = ctx == CTX_ENTRIES;  /* until an escaped key */
    PyObject *dict = NULL;
    if (build && ctx != CTX_ENTRIES && (dict = PyDict_New()) == NULL) {
        return -1;
    }
    if (p->emit && buf_byte(&p->out, '{') < 0) {
        goto error;
    }
    skip_ws(p);
    if (p->pos < p->len && p->buf[p->pos] == '}') {
        p->pos++;
    }
    else {
        for (;;) {
            skip_ws(p);
            if (p->pos >= p->len || p->buf[p->pos] != '"') {
                fail(p, "expected a string key");
                goto error;
            }
            if (ctx == CTX_ENTRIES) {
                int usual = usual_meta_entry(p, keys_in_input);
                if (usual < 0) {
                    goto error;
                }
                if (usual) {
                    int more = next_member(p, '}');
                    if (more < 0) {
                        goto error;
                    }
                    if (!more) {
                        break;
                    }
                    continue;
                }
            }
            Py_ssize_t key_start = p->pos;
            const char *key;
            Py_ssize_t key_len;
            int escaped;
            if (lex_string(p, &key, &key_len, &escaped) < 0) {
                goto error;
            }
            Py_ssize_t key_end = p->pos;
            if (keys_in_input && escaped) {
                if (keys_to_arena(p, members_base) < 0) {
                    goto error;
                }
                keys_in_input = 0;
            }
            Py_ssize_t moff = ctx == CTX_ENTRIES
                                  ? buf_push(mbuf, sizeof(entry))
                                  : buf_push(mbuf, sizeof(member));
            if (moff < 0) {
                goto error;
            }
            Py_ssize_t key_off = key_start + 1;  /* in the input: unescaped */
            if (!keys_in_input) {
                key_off = p->keys.len;
                if (buf_put(&p->keys, key, key_len) < 0) {
                    goto error;
                }
                key = p->keys.data + key_off;  /* stable until the next push */
            }
#define THIS_MEMBER ((member *)(void *)(mbuf->data + moff))
            THIS_MEMBER->key_off = (uint32_t)key_off;
            THIS_MEMBER->key_len = (uint32_t)key_len;
            skip_ws(p);
            if (p->pos >= p->len || p->buf[p->pos] != ':') {
                fail(p, "expected ':'");
                goto error;
            }
            p->pos++;
            skip_ws(p);

            int child_ctx = CTX_PLAIN;
            int child_build = build && ctx != CTX_ENTRIES;
            int saved_emit = p->emit;
            if (ctx == CTX_ENVELOPE && key_is(key, key_len, "signed")) {
                child_ctx = CTX_SIGNED;
                p->emit = 1;
                p->out.len = 0;
                if (p->out.fixed) {  /* compare with the input until it differs */
                    p->out.ref = (const char *)p->buf + p->pos;
                    p->out.ref_len = p->len - p->pos;
                }
            }
            else if (ctx == CTX_SIGNED && p->pos < p->len &&
                     p->buf[p->pos] == '{' &&
                     (key_is(key, key_len, "meta") ||
                      key_is(key, key_len, "targets"))) {
                child_ctx = CTX_ENTRIES;
            }
            else if (ctx == CTX_ENTRIES) {
                child_ctx = CTX_ENTRY;
                p->cur_entry = moff / (Py_ssize_t)sizeof(entry);
                ENTRIES(p)[p->cur_entry].val_start = (uint32_t)p->pos;
            }
            else if (ctx == CTX_ENTRY && key_is(key, key_len, "hashes")) {
                child_ctx = CTX_HASHES;
            }
            else if (ctx == CTX_HASHES) {
                child_ctx = CTX_DIGEST;
            }
            if (saved_emit) {
                Py_ssize_t seg = p->out.len;
                int r = escaped ? put_escaped(&p->out, key, key_len)
                                : buf_put(&p->out, p->buf + key_start,
                                          key_end - key_start);
                if (r < 0 || buf_byte(&p->out, ':') < 0) {
                    goto error;
                }
                THIS_MEMBER->seg_start = (uint32_t)seg;
            }
            PyObject *value = NULL;
            vinfo sub;
            if (parse_value(p, child_ctx, child_build, &value, &sub) < 0) {
                p->emit = saved_emit;
                goto error;
            }
            p->emit = saved_emit;
            if (p->emit) {
                THIS_MEMBER->seg_end = (uint32_t)p->out.len;
            }
            /* key may have moved if p->keys grew during the value */
            if (!keys_in_input) {
                key = p->keys.data + key_off;
            }
#undef THIS_MEMBER
            if (ctx == CTX_ENTRIES && sub.kind == 'o') {
                ENTRIES(p)[moff / (Py_ssize_t)sizeof(entry)].flags |= E_OBJECT;
            }
            else if (ctx == CTX_ENTRY) {
                summarize_field(p, key, key_len, &sub);
            }
            else if (ctx == CTX_HASHES) {
                all_hex &= sub.kind == 's' && sub.hex;
            }
            if (dict != NULL) {
                PyObject *k = PyUnicode_DecodeUTF8(key, key_len, NULL);
                int r = k == NULL ? -1 : PyDict_SetItem(dict, k, value);
                Py_XDECREF(k);
                Py_DECREF(value);
                if (r < 0) {
                    goto error;
                }
            }
            else {
                Py_XDECREF(value);
            }
            int more = next_member(p, '}');
            if (more < 0) {
                goto error;
            }
            if (!more) {
                break;
            }
        }
    }
    members_view v = {mbuf->data + members_base, msize,
                      (mbuf->len - members_base) / (Py_ssize_t)msize};
    Py_ssize_t n = v.n;
    if (n > 1) {
        const char *keys = keys_in_input ? (const char *)p->buf : p->keys.data;
        if (member_order(p, &v, keys, &order) < 0) {
            goto error;
        }
        if (order != NULL && p->emit && reorder_output(p, &v, order) < 0) {
            goto error;
        }
    }
    if (p->emit && buf_byte(&p->out, '}') < 0) {
        goto error;
    }
    if (ctx == CTX_HASHES) {
        info->hex = n > 0 && all_hex;
    }
    if (ctx == CTX_ENTRIES) {
        dict = entrymap_new(p, n, order, keys_base, span_start, keys_in_input);
        if (dict == NULL) {
            goto error;
        }
        ((EntryMapObject *)dict)->span_end = p->pos;
    }
    PyMem_Free(order);
    p->keys.len = keys_base;
    mbuf->len = members_base;  /* 0 for a map (its array went to the map) */
    p->depth--;
    if (dict != NULL) {
        *out = dict;
    }
    return 0;
error:
    PyMem_Free(order);
    Py_XDECREF(dict);
    return -1;
}

static int
parse_value(parser *p, int ctx, int build, PyObject **out, vinfo *info)
{
    skip_ws(p);
    memset(info, 0, sizeof(*info));
    if (p->pos >= p->len) {
        return fail(p, "unexpected end of data");
    }
    unsigned char c = p->buf[p->pos];
    if (c == '{') {
        return parse_object(p, ctx, build, out, info);
    }
    if (c == '[') {
        return parse_array(p, build, out, info);
    }
    if (c == '"') {
        return parse_string(p, build, ctx == CTX_DIGEST, out, info);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        return parse_number(p, build, out, info);
    }
    return parse_literal(p, build, out, info);
}

/* ---- EntryMap ----------------------------------------------------------- */

static PyObject *
entrymap_new(parser *p, Py_ssize_t n, const Py_ssize_t *order,
             Py_ssize_t keys_base, Py_ssize_t span_start, int keys_in_input)
{
    EntryMapObject *self = PyObject_New(EntryMapObject, p->st->EntryMapType);
    if (self == NULL) {
        return NULL;
    }
    self->source = tufc_new_ref(p->source);
    self->keys = NULL;
    self->key_arena = NULL;
    self->entries = NULL;
    self->n = n;
    self->span_start = span_start;
    self->span_end = span_start;
    self->kind = 0;
    if (keys_in_input) {
        self->keys = PyBytes_AS_STRING(p->source);  /* kept alive by the map */
    }
    else {
        /* The map takes the key arena (entries keep their offsets into it);
         * the parser goes on with a copy of the keys before the map's. */
        buffer rest;
        memset(&rest, 0, sizeof(rest));
        if (buf_reserve(&rest, keys_base > 64 ? keys_base : 64) < 0) {
            Py_DECREF(self);
            return NULL;
        }
        memcpy(rest.data, p->keys.data, (size_t)keys_base);
        rest.len = keys_base;
        self->key_arena = p->keys.data;
        self->keys = self->key_arena;
        p->keys = rest;
    }
    entry *src = ENTRIES(p);
    if (order == NULL) {
        /* already in key order: the map takes the parser's array too */
        self->entries = src;
        memset(&p->entries, 0, sizeof(p->entries));
        return (PyObject *)self;
    }
    self->entries = PyMem_Malloc(n > 0 ? (size_t)n * sizeof(entry) : 1);
    if (self->entries == NULL) {
        Py_DECREF(self);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        self->entries[i] = src[order[i]];
    }
    return (PyObject *)self;
}

static void
entrymap_dealloc(EntryMapObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyMem_Free(self->key_arena);
    PyMem_Free(self->entries);
    Py_XDECREF(self->source);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
entry_key(EntryMapObject *self, Py_ssize_t i)
{
    const entry *e = &self->entries[i];
    return PyUnicode_DecodeUTF8(self->keys + e->m.key_off, e->m.key_len, NULL);
}

/* Python objects for the input bytes [start, end) (already validated). */
static PyObject *
build_span(tufc_state *st, PyObject *source, Py_ssize_t start, int depth)
{
    parser q;
    PyObject *obj = NULL;
    vinfo info;
    int r = parser_init(&q, st, source, start, depth);
    if (r == 0) {
        r = parse_value(&q, CTX_PLAIN, 1, &obj, &info);
    }
    parser_free(&q);
    return r < 0 ? NULL : obj;
}

static PyObject *
entry_value(EntryMapObject *self, Py_ssize_t i)
{
    tufc_state *st = tufc_state_from_type(Py_TYPE(self));
    if (st == NULL) {
        return NULL;
    }
    return build_span(st, self->source, self->entries[i].val_start, 3);
}

/* Index of the entry named by name, -1 if none (no exception set). */
static Py_ssize_t
entrymap_find(EntryMapObject *self, PyObject *name)
{
    if (!PyUnicode_Check(name)) {
        return -1;
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(name, &n);
    if (s == NULL) {  /* lone surrogates: no such key */
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t lo = 0, hi = self->n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        const entry *e = &self->entries[mid];
        Py_ssize_t k = e->m.key_len < n ? e->m.key_len : n;
        int r = k ? memcmp(self->keys + e->m.key_off, s, (size_t)k) : 0;
        if (r == 0) {
            r = (e->m.key_len > n) - (e->m.key_len < n);
        }
        if (r == 0) {
            return mid;
        }
        if (r < 0) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return -1;
}

/* For other C files (bins.c): the number of entries of obj if it is an
 * EntryMap of this module, -1 otherwise (no exception set). */
Py_ssize_t
tufc_entrymap_size(tufc_state *st, PyObject *obj)
{
    if (!Py_IS_TYPE(obj, st->EntryMapType)) {
        return -1;
    }
    return ((EntryMapObject *)obj)->n;
}

/* The UTF-8 name of entry i (0 <= i < size), borrowed from the map, which
 * never changes: safe to read without the GIL while a reference is held. */
const char *
tufc_entrymap_key(PyObject *obj, Py_ssize_t i, Py_ssize_t *len)
{
    const EntryMapObject *self = (const EntryMapObject *)obj;
    *len = self->entries[i].m.key_len;
    return self->keys + self->entries[i].m.key_off;
}

static Py_ssize_t
entrymap_len(EntryMapObject *self)
{
    return self->n;
}

static PyObject *
entrymap_getitem(EntryMapObject *self, PyObject *name)
{
    Py_ssize_t i = entrymap_find(self, name);
    if (i < 0) {
        PyErr_SetObject(PyExc_KeyError, name);
        return NULL;
    }
    return entry_value(self, i);
}

static int
entrymap_contains(EntryMapObject *self, PyObject *name)
{
    return entrymap_find(self, name) >= 0;
}

/* Entry i as a (name, entry) tuple: a new reference, or NULL. */
static PyObject *
entry_item(EntryMapObject *self, Py_ssize_t i)
{
    PyObject *k = entry_key(self, i);
    PyObject *v = k == NULL ? NULL : entry_value(self, i);
    PyObject *pair = v == NULL ? NULL : PyTuple_Pack(2, k, v);
    Py_XDECREF(k);
    Py_XDECREF(v);
    return pair;
}

/* A list of get(self, i) for every entry, in name order. */
static PyObject *
entry_list(EntryMapObject *self,
           PyObject *(*get)(EntryMapObject *, Py_ssize_t))
{
    PyObject *list = PyList_New(self->n);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < self->n; i++) {
        PyObject *x = get(self, i);
        if (x == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, x);
    }
    return list;
}

static PyObject *
entrymap_keys(EntryMapObject *self, PyObject *Py_UNUSED(ignored))
{
    return entry_list(self, entry_key);
}

static PyObject *
entrymap_iter(EntryMapObject *self)
{
    PyObject *list = entry_list(self, entry_key);
    if (list == NULL) {
        return NULL;
    }
    PyObject *it = PyObject_GetIter(list);
    Py_DECREF(list);
    return it;
}

static PyObject *
entrymap_values(EntryMapObject *self, PyObject *Py_UNUSED(ignored))
{
    return entry_list(self, entry_value);
}

static PyObject *
entrymap_items(EntryMapObject *self, PyObject *Py_UNUSED(ignored))
{
    return entry_list(self, entry_item);
}

static PyObject *
entrymap_to_dict(EntryMapObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < self->n; i++) {
        PyObject *k = entry_key(self, i);
        PyObject *v = k == NULL ? NULL : entry_value(self, i);
        int r = v == NULL ? -1 : PyDict_SetItem(dict, k, v);
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (r < 0) {
            Py_DECREF(dict);
            return NULL;
        }
    }
    return dict;
}

static PyObject *
entrymap_get(EntryMapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get() takes 1 or 2 arguments");
        return NULL;
    }
    Py_ssize_t i = entrymap_find(self, args[0]);
    if (i < 0) {
        return tufc_new_ref(nargs == 2 ? args[1] : Py_None);
    }
    return entry_value(self, i);
}

/* An entry's "version" as an int (the entry must be E_VERSION_OK). */
static PyObject *
entry_version(EntryMapObject *self, Py_ssize_t i)
{
    const entry *e = &self->entries[i];
    if (!(e->flags & E_VERSION_BIG)) {
        return PyLong_FromLongLong(e->version);
    }
    const char *digits = PyBytes_AS_STRING(self->source) + e->version;
    PyObject *text = PyUnicode_DecodeASCII(digits, e->flags >> 8, NULL);
    if (text == NULL) {
        return NULL;
    }
    PyObject *v = PyLong_FromUnicodeObject(text, 10);
    Py_DECREF(text);
    return v;
}

static int
check_meta_kind(EntryMapObject *self)
{
    if (self->kind != 'm') {
        PyErr_SetString(PyExc_TypeError,
                        "versions are read from a snapshot's meta only");
        return -1;
    }
    return 0;
}

static PyObject *
entrymap_version(EntryMapObject *self, PyObject *name)
{
    if (check_meta_kind(self) < 0) {
        return NULL;
    }
    Py_ssize_t i = entrymap_find(self, name);
    if (i < 0) {
        Py_RETURN_NONE;
    }
    return entry_version(self, i);
}

/* -1, 0, 1 as a's version <, ==, > b's; -2 on error. */
static int
compare_versions(EntryMapObject *a, Py_ssize_t i, EntryMapObject *b,
                 Py_ssize_t j)
{
    const entry *x = &a->entries[i], *y = &b->entries[j];
    if (!((x->flags | y->flags) & E_VERSION_BIG)) {
        return (x->version > y->version) - (x->version < y->version);
    }
    PyObject *u = entry_version(a, i);
    PyObject *v = u == NULL ? NULL : entry_version(b, j);
    int lt = v == NULL ? -1 : PyObject_RichCompareBool(u, v, Py_LT);
    int gt = lt < 0 ? -1 : PyObject_RichCompareBool(u, v, Py_GT);
    Py_XDECREF(u);
    Py_XDECREF(v);
    if (lt < 0 || gt < 0) {
        return -2;
    }
    return gt - lt;
}

static PyObject *
entrymap_rolled_back(EntryMapObject *self, PyObject *other)
{
    if (Py_TYPE(other) != Py_TYPE(self)) {
        PyErr_SetString(PyExc_TypeError, "rolled_back() needs another EntryMap");
        return NULL;
    }
    EntryMapObject *new = (EntryMapObject *)other;
    if (check_meta_kind(self) < 0 || check_meta_kind(new) < 0) {
        return NULL;
    }
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < self->n; i++) {
        const entry *x = &self->entries[i];
        int r = 1;
        while (j < new->n) {
            const entry *y = &new->entries[j];
            Py_ssize_t k = x->m.key_len < y->m.key_len ? x->m.key_len : y->m.key_len;
            r = k ? memcmp(self->keys + x->m.key_off, new->keys + y->m.key_off,
                           (size_t)k) : 0;
            if (r == 0) {
                r = (x->m.key_len > y->m.key_len) - (x->m.key_len < y->m.key_len);
            }
            if (r <= 0) {
                break;
            }
            j++;
        }
        if (r != 0) {  /* not in other */
            return entry_key(self, i);
        }
        int c = compare_versions(self, i, new, j);
        if (c == -2) {
            return NULL;
        }
        if (c > 0) {
            return entry_key(self, i);
        }
        j++;
    }
    Py_RETURN_NONE;
}

static PyObject *
entrymap_reduce(EntryMapObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *dict = entrymap_to_dict(self, NULL);
    if (dict == NULL) {
        return NULL;
    }
    return Py_BuildValue("O(N)", (PyObject *)&PyDict_Type, dict);
}

static PyObject *
entrymap_self(EntryMapObject *self, PyObject *Py_UNUSED(ignored))
{
    return tufc_new_ref((PyObject *)self);
}

static PyObject *
entrymap_repr(EntryMapObject *self)
{
    return PyUnicode_FromFormat("<EntryMap of %zd entries>", self->n);
}

/* Check every entry against the schema of kind ('m' or 't'). */
static int
entrymap_validate(tufc_state *st, EntryMapObject *self, char kind)
{
    const char *where = kind == 'm' ? "snapshot.meta" : "targets.targets";
    for (Py_ssize_t i = 0; i < self->n; i++) {
        unsigned f = self->entries[i].flags;
        const char *problem = NULL;
        if (!(f & E_OBJECT)) {
            problem = ": expected an object";
        }
        else if (kind == 'm') {
            if (!(f & E_VERSION)) {
                problem = ": missing field 'version'";
            }
            else if (!(f & E_VERSION_OK)) {
                problem = ".version: expected an integer >= 1";
            }
            else if ((f & E_LENGTH) && !(f & E_LENGTH_OK)) {
                problem = ".length: expected an integer >= 0";
            }
            else if ((f & E_HASHES) && !(f & E_HASHES_OK)) {
                problem = ".hashes: expected a non-empty object of hex digests";
            }
        }
        else {
            if (!(f & E_LENGTH)) {
                problem = ": missing field 'length'";
            }
            else if (!(f & E_LENGTH_OK)) {
                problem = ".length: expected an integer >= 0";
            }
            else if (!(f & E_HASHES)) {
                problem = ": missing field 'hashes'";
            }
            else if (!(f & E_HASHES_OK)) {
                problem = ".hashes: expected a non-empty object of hex digests";
            }
        }
        if (problem != NULL) {
            PyObject *name = entry_key(self, i);
            if (name != NULL) {
                PyErr_Format(st->FormatError, "%s[%R]%s", where, name, problem);
                Py_DECREF(name);
            }
            return -1;
        }
    }
    self->kind = kind;
    return 0;
}

PyDoc_STRVAR(entrymap_doc,
"A read-only mapping of a metadata file's per-entry map (a snapshot's meta,\n"
"a targets role's targets), sorted by name; an entry's dict is built from\n"
"the input bytes when it is looked up.");

static PyMethodDef entrymap_methods[] = {
    {"keys", (PyCFunction)entrymap_keys, METH_NOARGS,
     "The names, sorted."},
    {"values", (PyCFunction)entrymap_values, METH_NOARGS,
     "Every entry's dict, in name order."},
    {"items", (PyCFunction)entrymap_items, METH_NOARGS,
     "(name, dict) pairs, in name order."},
    {"get", (PyCFunction)(void (*)(void))entrymap_get, METH_FASTCALL,
     "get(name, default=None): the entry's dict, or default."},
    {"to_dict", (PyCFunction)entrymap_to_dict, METH_NOARGS,
     "Every entry as a plain dict, in name order."},
    {"version", (PyCFunction)entrymap_version, METH_O,
     "version(name): an entry's \"version\" (None if absent); meta only."},
    {"rolled_back", (PyCFunction)entrymap_rolled_back, METH_O,
     "rolled_back(newer): the first name (in order) missing from newer\n"
     "or with a lower version there, else None; meta only."},
    {"__reduce__", (PyCFunction)entrymap_reduce, METH_NOARGS, NULL},
    {"__copy__", (PyCFunction)entrymap_self, METH_NOARGS, NULL},
    {"__deepcopy__", (PyCFunction)entrymap_self, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

/* == and != as collections.abc.Mapping defines them (the pure twin inherits
 * them): equal to any Mapping with equal items; anything else is
 * NotImplemented.  Equality makes the map unhashable, as a Mapping is. */
static PyObject *
entrymap_richcompare(EntryMapObject *self, PyObject *other, int op)
{
    if (op != Py_EQ && op != Py_NE) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    PyObject *abc = PyImport_ImportModule("collections.abc");
    PyObject *mapping = abc == NULL ? NULL
                                    : PyObject_GetAttrString(abc, "Mapping");
    Py_XDECREF(abc);
    if (mapping == NULL) {
        return NULL;
    }
    int is_mapping = PyObject_IsInstance(other, mapping);
    Py_DECREF(mapping);
    if (is_mapping <= 0) {
        if (is_mapping < 0) {
            return NULL;
        }
        Py_RETURN_NOTIMPLEMENTED;
    }
    PyObject *result = NULL, *theirs = NULL;
    PyObject *mine = entrymap_to_dict(self, NULL);
    PyObject *items = mine == NULL ? NULL
                                   : PyObject_CallMethod(other, "items", NULL);
    if (items != NULL) {
        theirs = PyObject_CallFunctionObjArgs((PyObject *)&PyDict_Type, items,
                                              NULL);
    }
    if (theirs != NULL) {
        result = PyObject_RichCompare(mine, theirs, op);
    }
    Py_XDECREF(theirs);
    Py_XDECREF(items);
    Py_XDECREF(mine);
    return result;
}

static PyType_Slot entrymap_slots[] = {
    {Py_tp_dealloc, entrymap_dealloc},
    {Py_tp_richcompare, entrymap_richcompare},
    {Py_tp_hash, PyObject_HashNotImplemented},
    {Py_tp_methods, entrymap_methods},
    {Py_tp_iter, entrymap_iter},
    {Py_tp_repr, entrymap_repr},
    {Py_mp_length, entrymap_len},
    {Py_mp_subscript, entrymap_getitem},
    {Py_sq_length, entrymap_len},
    {Py_sq_contains, entrymap_contains},
    {Py_tp_doc, (void *)entrymap_doc},
    {0, NULL},
};

static PyType_Spec entrymap_spec = {
    .name = "tufc._tufc.EntryMap",
    .basicsize = sizeof(EntryMapObject),
    .flags = Py_TPFLAGS_DEFAULT
#ifdef Py_TPFLAGS_IMMUTABLETYPE
             | Py_TPFLAGS_IMMUTABLETYPE
#endif
#ifdef Py_TPFLAGS_DISALLOW_INSTANTIATION
             | Py_TPFLAGS_DISALLOW_INSTANTIATION
#endif
#ifdef Py_TPFLAGS_MAPPING
             | Py_TPFLAGS_MAPPING
#endif
    ,
    .slots = entrymap_slots,
};

int
tufc_loader_exec(PyObject *module, tufc_state *st)
{
    PyObject *type = PyType_FromModuleAndSpec(module, &entrymap_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    st->EntryMapType = (PyTypeObject *)type;   /* the state's reference */
    /* a collections.abc.Mapping, as the pure twin (a subclass of it) is */
    PyObject *abc = PyImport_ImportModule("collections.abc");
    PyObject *mapping = abc == NULL ? NULL
                                    : PyObject_GetAttrString(abc, "Mapping");
    PyObject *registered = mapping == NULL ? NULL
        : PyObject_CallMethod(mapping, "register", "O", type);
    Py_XDECREF(abc);
    Py_XDECREF(mapping);
    if (registered == NULL) {
        return -1;  /* type is released with the state */
    }
    Py_DECREF(registered);
    Py_INCREF(type);
    if (PyModule_AddObject(module, "EntryMap", type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

/* ---- load_metadata ------------------------------------------------------ */

/* Validate the entry maps of signed, or turn unwanted ones into dicts. */
static int
finish_signed(parser *p, PyObject *signed_obj)
{
    PyObject *kind = PyDict_GetItemString(signed_obj, "_type");  /* borrowed */
    static const char *const names[2] = {"meta", "targets"};
    for (int k = 0; k < 2; k++) {
        PyObject *v = PyDict_GetItemString(signed_obj, names[k]);
        if (v == NULL || Py_TYPE(v) != p->st->EntryMapType) {
            continue;
        }
        const char *want = k == 0 ? "snapshot" : "targets";
        if (kind != NULL && PyUnicode_Check(kind) &&
            PyUnicode_CompareWithASCIIString(kind, want) == 0) {
            if (entrymap_validate(p->st, (EntryMapObject *)v,
                                  k == 0 ? 'm' : 't') < 0) {
                return -1;
            }
            continue;
        }
        PyObject *dict = build_span(p->st, p->source,
                                    ((EntryMapObject *)v)->span_start, 2);
        if (dict == NULL) {
            return -1;
        }
        int r = PyDict_SetItemString(signed_obj, names[k], dict);
        Py_DECREF(dict);
        if (r < 0) {
            return -1;
        }
    }
    return 0;
}

/* view: when the input's "signed" is already canonical, the second result
 * is a read-only memoryview of that span of the input instead of a copy
 * (a 500 KB snapshot then touches no fresh pages for it). */
static PyObject *
load_metadata(PyObject *module, PyObject *data, int view)
{
    tufc_state *st = tufc_get_state(module);
    PyObject *source;
    if (PyBytes_CheckExact(data)) {
        source = tufc_new_ref(data);
    }
    else if (PyObject_CheckBuffer(data) && !PyUnicode_Check(data)) {
        source = PyBytes_FromObject(data);
        if (source == NULL) {
            return NULL;
        }
    }
    else {
        PyErr_Format(PyExc_TypeError, "expected bytes, got %.100s",
                     Py_TYPE(data)->tp_name);
        return NULL;
    }
    parser p;
    PyObject *envelope = NULL, *canonical = NULL, *result = NULL;
    vinfo info;
    if (parser_init(&p, st, source, 0, 0) < 0) {
        goto done;
    }
    if (p.len == 0) {
        fail(&p, "unexpected end of data");
        goto done;
    }
    /* The canonical JSON of a value is never longer than its JSON text:
     * it is written straight into a bytes object of the input's size. */
    canonical = PyBytes_FromStringAndSize(NULL, p.len);
    if (canonical == NULL) {
        goto done;
    }
    PyMem_Free(p.out.data);
    p.out.data = PyBytes_AS_STRING(canonical);
    p.out.cap = p.len;
    p.out.len = 0;
    p.out.fixed = 1;
    skip_ws(&p);
    if (p.pos >= p.len || p.buf[p.pos] != '{') {
        fail(&p, "the top level is not an object");
        goto done;
    }
    if (parse_value(&p, CTX_ENVELOPE, 1, &envelope, &info) < 0) {
        goto done;
    }
    skip_ws(&p);
    if (p.pos != p.len) {
        fail(&p, "extra data after the top-level object");
        goto done;
    }
    PyObject *signed_obj = PyDict_GetItemString(envelope, "signed");
    if (signed_obj == NULL || !PyDict_CheckExact(signed_obj)) {
        PyErr_SetString(st->FormatError,
                        signed_obj == NULL ? "metadata: missing field 'signed'"
                                           : "signed: expected an object");
        goto done;
    }
    if (finish_signed(&p, signed_obj) < 0) {
        goto done;
    }
    if (view && p.out.ref != NULL) {
        Py_ssize_t start = (const unsigned char *)p.out.ref - p.buf;
        PyObject *whole = PyMemoryView_FromObject(source);
        PyObject *span = whole == NULL ? NULL
                                       : PySequence_GetSlice(whole, start, start + p.out.len);
        Py_XDECREF(whole);
        if (span != NULL) {
            result = PyTuple_Pack(2, envelope, span);
            Py_DECREF(span);
        }
        goto done;
    }
    buf_materialize(&p.out);
    if (_PyBytes_Resize(&canonical, p.out.len) == 0) {
        result = PyTuple_Pack(2, envelope, canonical);
    }
done:
    Py_XDECREF(canonical);
    Py_XDECREF(envelope);
    Py_DECREF(source);
    parser_free(&p);
    return result;
}

PyObject *
tufc_load_metadata(PyObject *module, PyObject *data)
{
    return load_metadata(module, data, 0);
}

PyObject *
tufc_load_metadata_view(PyObject *module, PyObject *data)
{
    return load_metadata(module, data, 1);
}
