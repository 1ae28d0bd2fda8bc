/* Public keys and signature verification: the PublicKey type, verify_many,
 * and Ed25519 signing.
 *
 * A PublicKey parses its key material once, at construction; verification
 * then touches no Python object, so it runs with the GIL released.
 *
 * Key material rules (the pure-Python core follows the same ones):
 *   - `public` is ASCII and at most MAX_PUBLIC_CHARS characters.
 *   - Hex (Ed25519 keys, ECDSA points): [0-9a-fA-F] only, even length.
 *   - PEM: optional surrounding space/tab/CR/LF, "-----BEGIN PUBLIC KEY-----",
 *     canonical base64 (mandatory '=' padding, zero unused bits) with ASCII
 *     whitespace (space, tab, CR, LF, FF, VT) allowed anywhere,
 *     "-----END PUBLIC KEY-----".  The DER inside must be a canonical
 *     SubjectPublicKeyInfo.
 *   - ECDSA: an id-ecPublicKey SPKI naming P-256 or P-384, or a hex SEC1
 *     point, compressed (02/03) or uncompressed (04), on the curve of the
 *     scheme (a key on the other curve is a FormatError).
 *   - RSA: an rsaEncryption SPKI (PEM only), odd modulus of 1024 to 16384
 *     bits, odd public exponent e with 3 <= e < 2**64 (refused keys load as
 *     unsupported in tufc.keys.Key: fail closed on weak or odd keys).
 *     Signature lengths are OpenSSL's rules: PKCS#1 v1.5 exactly the modulus
 *     length, PSS at most that (leading zero bytes may be stripped).
 */
#define OPENSSL_API_COMPAT 30000
#include "tufc.h"

#include <sodium.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <string.h>

#define MAX_PUBLIC_CHARS 65536
#define RSA_MIN_BITS 1024
#define RSA_MAX_BITS 16384
#define RSA_MAX_E_BITS 64
#define MAX_POINT_LEN 97 /* uncompressed P-384 */

/* Py_NewRef is Python 3.10+. */
static inline PyObject *
new_ref(PyObject *obj)
{
    Py_INCREF(obj);
    return obj;
}

typedef enum { ALG_ED25519, ALG_ECDSA, ALG_RSA_PSS, ALG_RSA_PKCS1 } key_alg;

typedef enum { HASH_NONE, HASH_SHA256, HASH_SHA384, HASH_SHA512 } key_hash;

typedef struct {
    const char *keytype;
    const char *scheme;
    key_alg alg;
    key_hash hash;
    int curve; /* ECDSA: index into CURVES */
} scheme_entry;

typedef struct {
    const char *label;      /* fingerprint prefix, before ':' */
    const char *group_name; /* OpenSSL group name */
    int nid;
    size_t coord_len;       /* bytes per coordinate */
    /* DER SubjectPublicKeyInfo headers that precede the point */
    const unsigned char *spki_uncompressed;
    const unsigned char *spki_compressed;
    size_t spki_header_len;
} curve_entry;

static const unsigned char P256_SPKI_U[] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
    0x42, 0x00};
static const unsigned char P256_SPKI_C[] = {
    0x30, 0x39, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
    0x22, 0x00};
static const unsigned char P384_SPKI_U[] = {
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00};
static const unsigned char P384_SPKI_C[] = {
    0x30, 0x46, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x32, 0x00};

enum { CURVE_P256 = 0, CURVE_P384 = 1, N_CURVES = 2 };

static const curve_entry CURVES[N_CURVES] = {
    {"P-256", "P-256", NID_X9_62_prime256v1, 32, P256_SPKI_U, P256_SPKI_C,
     sizeof(P256_SPKI_U)},
    {"P-384", "P-384", NID_secp384r1, 48, P384_SPKI_U, P384_SPKI_C,
     sizeof(P384_SPKI_U)},
};

static const scheme_entry SCHEMES[] = {
    {"ed25519", "ed25519", ALG_ED25519, HASH_NONE, 0},
    {"ecdsa", "ecdsa-sha2-nistp256", ALG_ECDSA, HASH_SHA256, CURVE_P256},
    {"ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256", ALG_ECDSA, HASH_SHA256,
     CURVE_P256},
    {"ecdsa", "ecdsa-sha2-nistp384", ALG_ECDSA, HASH_SHA384, CURVE_P384},
    {"ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384", ALG_ECDSA, HASH_SHA384,
     CURVE_P384},
    {"rsa", "rsassa-pss-sha256", ALG_RSA_PSS, HASH_SHA256, 0},
    {"rsa", "rsassa-pss-sha384", ALG_RSA_PSS, HASH_SHA384, 0},
    {"rsa", "rsassa-pss-sha512", ALG_RSA_PSS, HASH_SHA512, 0},
    {"rsa", "rsa-pkcs1v15-sha256", ALG_RSA_PKCS1, HASH_SHA256, 0},
    {"rsa", "rsa-pkcs1v15-sha384", ALG_RSA_PKCS1, HASH_SHA384, 0},
    {"rsa", "rsa-pkcs1v15-sha512", ALG_RSA_PKCS1, HASH_SHA512, 0},
};

typedef struct {
    PyObject_HEAD
    key_alg alg;
    key_hash hash;
    size_t max_sig_len;              /* ECDSA and RSA: longer is never valid */
    unsigned char ed25519[crypto_sign_PUBLICKEYBYTES];
    EVP_PKEY *pkey;                  /* ECDSA and RSA */
    PyObject *keytype;               /* str */
    PyObject *scheme;                /* str */
    PyObject *fingerprint;           /* bytes */
} PublicKeyObject;

/* ------------------------------------------------------------------------ */
/* Verification: pure C, safe to call without the GIL.                       */

static const EVP_MD *
hash_md(key_hash hash)
{
    switch (hash) {
    case HASH_SHA256: return EVP_sha256();
    case HASH_SHA384: return EVP_sha384();
    case HASH_SHA512: return EVP_sha512();
    default: return NULL;
    }
}

static const unsigned char EMPTY[1] = {0};

/* Ed25519 messages of this size or more are verified with OpenSSL, whose
 * SHA-512 is faster than libsodium's portable one (0.83 against 1.28 ns a
 * byte here) but whose curve arithmetic is slower (60 against 36 us): the
 * two cross near 58 KB, and a half-megabyte snapshot verifies in 0.49 ms
 * instead of 0.69 (bench/README.rst, client round 4).
 * The verdict stays libsodium 1.0.18's: its checks of the key and the
 * signature alone are made first (strict_ed25519_inputs), after which
 * OpenSSL computes the same cofactorless equation on the same values.
 * OpenSSL on its own would accept what those checks refuse: a small-order
 * R or public key, which lets a signature hold for chosen messages. */
#define OPENSSL_VERIFY_MIN 65536

/* The y encodings (sign bit aside) libsodium 1.0.18 refuses as small order,
 * from their definitions: y = 0, 1, the two y of the points of order 8
 * (little-endian), and y = p - 1, p, p + 1 (near_p). */
static const unsigned char SMALL_ORDER_Y[4][32] = {
    {0},
    {0x01},
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
     0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
     0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
     0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
     0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
};

/* L, the order of the base point, little-endian. */
static const unsigned char ORDER_L[32] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
    0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
};

/* Keys and signatures are public: these need not run in constant time. */

/* Whether y, the sign bit aside, is p + d for lowest <= d <= highest, all
 * within one low byte (p = 2^255 - 19: 0xed, 30 bytes 0xff, then 0x7f). */
static int
near_p(const unsigned char *e, int lowest, int highest)
{
    if ((e[31] & 0x7f) != 0x7f) {
        return 0;
    }
    for (int i = 30; i > 0; i--) {
        if (e[i] != 0xff) {
            return 0;
        }
    }
    return e[0] >= 0xed + lowest && e[0] <= 0xed + highest;
}

static int
small_order(const unsigned char *e)
{
    for (int k = 0; k < 4; k++) {
        if (memcmp(e, SMALL_ORDER_Y[k], 31) == 0
            && (e[31] & 0x7f) == SMALL_ORDER_Y[k][31]) {
            return 1;
        }
    }
    return near_p(e, -1, 1);
}

static int
canonical_y(const unsigned char *e)  /* y < p, the sign bit aside */
{
    return !near_p(e, 0, 0x12);  /* y >= p: p + 0 .. p + 18 (0xff) */
}

static int
canonical_scalar(const unsigned char *s)  /* s < L */
{
    for (int i = 31; i >= 0; i--) {
        if (s[i] != ORDER_L[i]) {
            return s[i] < ORDER_L[i];
        }
    }
    return 0;
}

/* libsodium 1.0.18's checks before its equation: canonical S, R not of small
 * order, the public key a canonical y and not of small order. */
static int
strict_ed25519_inputs(const unsigned char *pk, const unsigned char *sig)
{
    return canonical_scalar(sig + 32) && !small_order(sig)
           && canonical_y(pk) && !small_order(pk);
}

/* 1 valid, 0 not, -1 OpenSSL could not tell (allocation): ask libsodium. */
static int
openssl_ed25519_verify(const unsigned char *pk, const unsigned char *sig,
                       const unsigned char *data, size_t datalen)
{
    int r = -1;
    EVP_MD_CTX *ctx = NULL;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk,
                                                 crypto_sign_PUBLICKEYBYTES);
    if (pkey != NULL && (ctx = EVP_MD_CTX_new()) != NULL
        && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1) {
        int v = EVP_DigestVerify(ctx, sig, crypto_sign_BYTES, data, datalen);
        r = v == 1 ? 1 : v == 0 ? 0 : -1;
    }
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return r;
}

/* 1 if sig is a valid signature of data by key, else 0.  Never fails
 * otherwise: an allocation failure inside OpenSSL is "not verified". */
static int
key_verify(const PublicKeyObject *key, const unsigned char *sig,
           size_t siglen, const unsigned char *data, size_t datalen)
{
    if (data == NULL) {
        data = EMPTY;
    }
    if (key->alg == ALG_ED25519) {
        if (siglen != crypto_sign_BYTES) {
            return 0;
        }
        if (datalen >= OPENSSL_VERIFY_MIN) {
            if (!strict_ed25519_inputs(key->ed25519, sig)) {
                return 0;
            }
            int r = openssl_ed25519_verify(key->ed25519, sig, data, datalen);
            if (r >= 0) {
                return r;
            }
        }
        return crypto_sign_verify_detached(sig, data, datalen,
                                           key->ed25519) == 0;
    }
    if (siglen == 0 || siglen > key->max_sig_len) {
        return 0;
    }
    int ok = 0;
    EVP_PKEY_CTX *pctx = NULL;
    const EVP_MD *md = hash_md(key->hash);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || md == NULL) {
        goto done;
    }
    if (EVP_DigestVerifyInit(ctx, &pctx, md, NULL, key->pkey) != 1) {
        goto done;
    }
    if (key->alg == ALG_RSA_PSS) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0
            || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) <= 0
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO)
                   <= 0) {
            goto done;
        }
    }
    else if (key->alg == ALG_RSA_PKCS1) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
            goto done;
        }
    }
    ok = EVP_DigestVerify(ctx, sig, siglen, data, datalen) == 1;
done:
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Parsing key material.                                                      */

static int
hex_nibble(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Strict hex: even length, hex digits only.  out has room for len / 2. */
static int
hex_decode(const char *s, size_t len, unsigned char *out)
{
    if (len % 2 != 0) {
        return -1;
    }
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_nibble((unsigned char)s[i]);
        int lo = hex_nibble((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i / 2] = (unsigned char)((hi << 4) | lo);
    }
    return 0;
}

static int
b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Around the PEM block. */
static int
is_pem_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Inside the base64 body. */
static int
is_body_space(char c)
{
    return is_pem_space(c) || c == '\f' || c == '\v';
}

static const char PEM_BEGIN[] = "-----BEGIN PUBLIC KEY-----";
static const char PEM_END[] = "-----END PUBLIC KEY-----";

static int
looks_like_pem(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && is_pem_space(s[i])) {
        i++;
    }
    return len - i >= 5 && memcmp(s + i, "-----", 5) == 0;
}

/* Decode a strict "PUBLIC KEY" PEM block into *der (PyMem_Malloc'ed).
 * Returns 0, or -1 with a reason in *why. */
static int
pem_decode(const char *s, size_t len, unsigned char **der, size_t *der_len,
           const char **why)
{
    size_t begin_len = sizeof(PEM_BEGIN) - 1, end_len = sizeof(PEM_END) - 1;
    while (len > 0 && is_pem_space(s[0])) {
        s++;
        len--;
    }
    while (len > 0 && is_pem_space(s[len - 1])) {
        len--;
    }
    if (len < begin_len + end_len || memcmp(s, PEM_BEGIN, begin_len) != 0
        || memcmp(s + len - end_len, PEM_END, end_len) != 0) {
        *why = "not a single '-----BEGIN PUBLIC KEY-----' PEM block";
        return -1;
    }
    const char *body = s + begin_len;
    size_t body_len = len - begin_len - end_len;
    unsigned char *out = PyMem_Malloc(body_len / 4 * 3 + 3);
    if (out == NULL) {
        *why = NULL;
        return -1;
    }
    size_t n = 0, data_syms = 0, pads = 0;
    unsigned long acc = 0;
    for (size_t i = 0; i < body_len; i++) {
        char c = body[i];
        if (is_body_space(c)) {
            continue;
        }
        if (c == '=') {
            pads++;
            continue;
        }
        int v = b64_value((unsigned char)c);
        if (v < 0 || pads > 0) {
            *why = "invalid base64 in PEM body";
            goto fail;
        }
        acc = (acc << 6) | (unsigned long)v;
        if (++data_syms % 4 == 0) {
            out[n++] = (unsigned char)(acc >> 16);
            out[n++] = (unsigned char)(acc >> 8);
            out[n++] = (unsigned char)acc;
            acc = 0;
        }
    }
    switch (data_syms % 4) {
    case 0:
        if (pads != 0) goto bad_padding;
        break;
    case 2:
        if (pads != 2 || (acc & 0xf) != 0) goto bad_padding;
        out[n++] = (unsigned char)(acc >> 4);
        break;
    case 3:
        if (pads != 1 || (acc & 0x3) != 0) goto bad_padding;
        out[n++] = (unsigned char)(acc >> 10);
        out[n++] = (unsigned char)(acc >> 2);
        break;
    default:
        goto bad_padding;
    }
    if (n == 0) {
        *why = "empty PEM body";
        goto fail;
    }
    *der = out;
    *der_len = n;
    return 0;
bad_padding:
    *why = "invalid base64 padding in PEM body";
fail:
    PyMem_Free(out);
    return -1;
}

static int
format_error(tufc_state *st, const char *what, const char *why)
{
    ERR_clear_error();
    PyErr_Format(st->FormatError, "invalid %s public key: %s", what, why);
    return -1;
}

/* Build an EC key from a SEC1 point on curve; sets the fingerprint. */
static int
ecdsa_from_point(tufc_state *st, PublicKeyObject *self, int curve,
                 const unsigned char *point, size_t len)
{
    const curve_entry *c = &CURVES[curve];
    unsigned char full[MAX_POINT_LEN];
    size_t full_len = 1 + 2 * c->coord_len;
    int rc = -1;
    EC_GROUP *group = NULL;
    EC_POINT *pt = NULL;
    EVP_PKEY_CTX *ctx = NULL;

    int compressed = len == 1 + c->coord_len
                     && (point[0] == 0x02 || point[0] == 0x03);
    int uncompressed = len == full_len && point[0] == 0x04;
    if (!compressed && !uncompressed) {
        PyErr_Format(st->FormatError,
                     "invalid ECDSA public key: not a SEC1 point encoding "
                     "for %s", c->label);
        goto done;
    }
    group = EC_GROUP_new_by_curve_name(c->nid);
    pt = group == NULL ? NULL : EC_POINT_new(group);
    if (pt == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (EC_POINT_oct2point(group, pt, point, len, NULL) != 1
        || EC_POINT_is_at_infinity(group, pt)
        || EC_POINT_point2oct(group, pt, POINT_CONVERSION_UNCOMPRESSED, full,
                              full_len, NULL) != full_len) {
        PyErr_Format(st->FormatError,
                     "invalid ECDSA public key: not a point on %s", c->label);
        goto done;
    }
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_utf8_string(
        OSSL_PKEY_PARAM_GROUP_NAME, (char *)c->group_name, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                  full, full_len);
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &self->pkey, EVP_PKEY_PUBLIC_KEY, params)
               != 1) {
        PyErr_Format(st->FormatError,
                     "invalid ECDSA public key: OpenSSL refused the %s point",
                     c->label);
        goto done;
    }
    self->max_sig_len = (size_t)EVP_PKEY_get_size(self->pkey);
    size_t label_len = strlen(c->label);
    self->fingerprint = PyBytes_FromStringAndSize(NULL,
                                                  label_len + 1 + full_len);
    if (self->fingerprint == NULL) {
        goto done;
    }
    char *fp = PyBytes_AS_STRING(self->fingerprint);
    memcpy(fp, c->label, label_len);
    fp[label_len] = ':';
    memcpy(fp + label_len + 1, full, full_len);
    rc = 0;
done:
    EVP_PKEY_CTX_free(ctx);
    EC_POINT_free(pt);
    EC_GROUP_free(group);
    ERR_clear_error();
    return rc;
}

/* ECDSA from a PEM SPKI: the DER must be exactly one of the four fixed
 * headers (named curve P-256/P-384, compressed or not) plus the point. */
static int
ecdsa_from_der(tufc_state *st, PublicKeyObject *self, int curve,
               const unsigned char *der, size_t len)
{
    for (int i = 0; i < N_CURVES; i++) {
        const curve_entry *c = &CURVES[i];
        size_t h = c->spki_header_len;
        size_t point_len = 0;
        if (len == h + 1 + 2 * c->coord_len
            && memcmp(der, c->spki_uncompressed, h) == 0) {
            point_len = 1 + 2 * c->coord_len;
        }
        else if (len == h + 1 + c->coord_len
                 && memcmp(der, c->spki_compressed, h) == 0) {
            point_len = 1 + c->coord_len;
        }
        if (point_len == 0) {
            continue;
        }
        if (i != curve) {
            PyErr_Format(st->FormatError,
                         "invalid ECDSA public key: the key is on %s but "
                         "the scheme %U needs %s", c->label, self->scheme,
                         CURVES[curve].label);
            return -1;
        }
        return ecdsa_from_point(st, self, curve, der + h, point_len);
    }
    return format_error(st, "ECDSA",
                        "not a P-256 or P-384 SubjectPublicKeyInfo");
}

static int
ecdsa_parse(tufc_state *st, PublicKeyObject *self, int curve,
            const char *s, size_t len)
{
    if (looks_like_pem(s, len)) {
        unsigned char *der = NULL;
        size_t der_len = 0;
        const char *why = NULL;
        if (pem_decode(s, len, &der, &der_len, &why) < 0) {
            if (why == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            return format_error(st, "ECDSA", why);
        }
        int rc = ecdsa_from_der(st, self, curve, der, der_len);
        PyMem_Free(der);
        return rc;
    }
    unsigned char point[MAX_POINT_LEN];
    if (len > 2 * sizeof(point) || hex_decode(s, len, point) < 0) {
        return format_error(st, "ECDSA",
                            "neither PEM nor a hex-encoded SEC1 point");
    }
    return ecdsa_from_point(st, self, curve, point, len / 2);
}

/* A strict DER reader, just enough for an RSA SubjectPublicKeyInfo. */
typedef struct {
    const unsigned char *p;
    size_t len;
} der_span;

/* Read one element with this tag from the front of *in: definite, minimal
 * length (at most 2 length bytes: our input is < 64 KiB).  On success *out
 * is its content and *in what follows it. */
static int
der_read(der_span *in, unsigned char tag, der_span *out)
{
    if (in->len < 2 || in->p[0] != tag) {
        return -1;
    }
    size_t len = in->p[1], header = 2;
    if (len == 0x81) {
        if (in->len < 3 || in->p[2] < 0x80) {
            return -1;
        }
        len = in->p[2];
        header = 3;
    }
    else if (len == 0x82) {
        if (in->len < 4 || in->p[2] == 0) {
            return -1;
        }
        len = ((size_t)in->p[2] << 8) | in->p[3];
        header = 4;
    }
    else if (len >= 0x80) {
        return -1;
    }
    if (len > in->len - header) {
        return -1;
    }
    out->p = in->p + header;
    out->len = len;
    in->p += header + len;
    in->len -= header + len;
    return 0;
}

/* A positive, minimally encoded INTEGER: *out is its magnitude without any
 * leading zero byte. */
static int
der_read_positive(der_span *in, der_span *out)
{
    if (der_read(in, 0x02, out) < 0 || out->len == 0 || (out->p[0] & 0x80)) {
        return -1;
    }
    if (out->p[0] == 0) {
        if (out->len == 1 || !(out->p[1] & 0x80)) {
            return -1; /* zero, or a superfluous leading zero */
        }
        out->p++;
        out->len--;
    }
    return 0;
}

static size_t
magnitude_bits(const der_span *v)
{
    size_t bits = 8 * v->len;
    for (unsigned char top = v->p[0]; !(top & 0x80); top <<= 1) {
        bits--;
    }
    return bits;
}

/* rsaEncryption with NULL parameters. */
static const unsigned char RSA_ALGORITHM[] = {
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
    0x01, 0x05, 0x00};

/* Split an RSA SPKI into n, e and the RSAPublicKey DER; NULL or a reason. */
static const char *
rsa_spki_read(const unsigned char *der, size_t der_len, der_span *n,
              der_span *e, der_span *pkcs1)
{
    der_span in = {der, der_len}, spki, bits, key;
    if (der_read(&in, 0x30, &spki) < 0 || in.len != 0) {
        return "not a DER SubjectPublicKeyInfo";
    }
    if (spki.len < sizeof(RSA_ALGORITHM)
        || memcmp(spki.p, RSA_ALGORITHM, sizeof(RSA_ALGORITHM)) != 0) {
        return "not an rsaEncryption SubjectPublicKeyInfo with NULL "
               "parameters";
    }
    spki.p += sizeof(RSA_ALGORITHM);
    spki.len -= sizeof(RSA_ALGORITHM);
    if (der_read(&spki, 0x03, &bits) < 0 || spki.len != 0 || bits.len < 1
        || bits.p[0] != 0) {
        return "not a DER public key BIT STRING";
    }
    bits.p++;
    bits.len--;
    *pkcs1 = bits;
    if (der_read(&bits, 0x30, &key) < 0 || bits.len != 0
        || der_read_positive(&key, n) < 0 || der_read_positive(&key, e) < 0
        || key.len != 0) {
        return "not a DER RSAPublicKey";
    }
    size_t n_bits = magnitude_bits(n);
    if (n_bits < RSA_MIN_BITS || n_bits > RSA_MAX_BITS) {
        return "the modulus must have 1024 to 16384 bits";
    }
    if (!(n->p[n->len - 1] & 1)) {
        return "the modulus must be odd";
    }
    if (magnitude_bits(e) > RSA_MAX_E_BITS || !(e->p[e->len - 1] & 1)
        || (e->len == 1 && e->p[0] < 3)) {
        return "the public exponent must be odd, at least 3 and below 2**64";
    }
    return NULL;
}

/* An OpenSSL RSA public key from big-endian n and e. */
static EVP_PKEY *
rsa_from_numbers(const der_span *n, const der_span *e)
{
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn_n = BN_bin2bn(n->p, (int)n->len, NULL);
    BIGNUM *bn_e = BN_bin2bn(e->p, (int)e->len, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (bn_n == NULL || bn_e == NULL || bld == NULL
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n)
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e)
        || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL
        || (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL
        || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_e);
    BN_free(bn_n);
    return pkey;
}

static int
rsa_parse(tufc_state *st, PublicKeyObject *self, const char *s, size_t len)
{
    unsigned char *der = NULL;
    size_t der_len = 0;
    const char *why = NULL;
    der_span n, e, pkcs1;

    if (!looks_like_pem(s, len)) {
        return format_error(st, "RSA", "not a PEM SubjectPublicKeyInfo");
    }
    if (pem_decode(s, len, &der, &der_len, &why) < 0) {
        if (why == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        return format_error(st, "RSA", why);
    }
    why = rsa_spki_read(der, der_len, &n, &e, &pkcs1);
    if (why != NULL) {
        PyMem_Free(der);
        return format_error(st, "RSA", why);
    }
    self->pkey = rsa_from_numbers(&n, &e);
    if (self->pkey == NULL) {
        PyMem_Free(der);
        return format_error(st, "RSA", "OpenSSL refused the key");
    }
    self->max_sig_len = n.len;
    self->fingerprint = PyBytes_FromStringAndSize(NULL,
                                                  4 + (Py_ssize_t)pkcs1.len);
    if (self->fingerprint != NULL) {
        memcpy(PyBytes_AS_STRING(self->fingerprint), "rsa:", 4);
        memcpy(PyBytes_AS_STRING(self->fingerprint) + 4, pkcs1.p, pkcs1.len);
    }
    PyMem_Free(der);
    ERR_clear_error();
    return self->fingerprint == NULL ? -1 : 0;
}

static int
ed25519_parse(tufc_state *st, PublicKeyObject *self, const char *s,
              size_t len)
{
    if (len != 2 * sizeof(self->ed25519)
        || hex_decode(s, len, self->ed25519) < 0) {
        return format_error(st, "ed25519", "expected 64 hex digits");
    }
    self->fingerprint = PyBytes_FromStringAndSize(
        (const char *)self->ed25519, sizeof(self->ed25519));
    return self->fingerprint == NULL ? -1 : 0;
}

/* ------------------------------------------------------------------------ */
/* The PublicKey type.                                                        */

static const scheme_entry *
find_scheme(PyObject *keytype, PyObject *scheme)
{
    for (size_t i = 0; i < sizeof(SCHEMES) / sizeof(SCHEMES[0]); i++) {
        if (PyUnicode_CompareWithASCIIString(keytype, SCHEMES[i].keytype) == 0
            && PyUnicode_CompareWithASCIIString(scheme, SCHEMES[i].scheme)
                   == 0) {
            return &SCHEMES[i];
        }
    }
    return NULL;
}

static PyObject *
PublicKey_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"keytype", "scheme", "public", NULL};
    PyObject *keytype, *scheme, *public;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "UUU:PublicKey", kwlist,
                                     &keytype, &scheme, &public)) {
        return NULL;
    }
    tufc_state *st = tufc_state_from_type(type);
    if (st == NULL) {
        return NULL;
    }
    const scheme_entry *entry = find_scheme(keytype, scheme);
    if (entry == NULL) {
        PyErr_Format(st->UnsupportedAlgorithmError,
                     "unsupported key type and scheme: %.80R / %.80R",
                     keytype, scheme);
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(public)) {
        PyErr_SetString(st->FormatError,
                        "invalid public key: key material must be ASCII");
        return NULL;
    }
    Py_ssize_t len = 0;
    const char *s = PyUnicode_AsUTF8AndSize(public, &len);
    if (s == NULL) {
        return NULL;
    }
    if (len > MAX_PUBLIC_CHARS) {
        PyErr_Format(st->FormatError,
                     "invalid public key: longer than %d characters",
                     MAX_PUBLIC_CHARS);
        return NULL;
    }

    PublicKeyObject *self = (PublicKeyObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->alg = entry->alg;
    self->hash = entry->hash;
    self->keytype = new_ref(keytype);
    self->scheme = new_ref(scheme);
    int rc;
    switch (entry->alg) {
    case ALG_ED25519:
        rc = ed25519_parse(st, self, s, (size_t)len);
        break;
    case ALG_ECDSA:
        rc = ecdsa_parse(st, self, entry->curve, s, (size_t)len);
        break;
    default:
        rc = rsa_parse(st, self, s, (size_t)len);
        break;
    }
    if (rc < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void
PublicKey_dealloc(PublicKeyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    EVP_PKEY_free(self->pkey);
    Py_XDECREF(self->keytype);
    Py_XDECREF(self->scheme);
    Py_XDECREF(self->fingerprint);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* Get a contiguous read-only view of a bytes-like object. */
static int
get_bytes(PyObject *obj, Py_buffer *view, const char *what)
{
    if (PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be bytes-like, not str", what);
        return -1;
    }
    return PyObject_GetBuffer(obj, view, PyBUF_SIMPLE);
}

static PyObject *
PublicKey_verify(PublicKeyObject *self, PyObject *const *args,
                 Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "verify() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    Py_buffer sig, data;
    if (get_bytes(args[0], &sig, "signature") < 0) {
        return NULL;
    }
    if (get_bytes(args[1], &data, "data") < 0) {
        PyBuffer_Release(&sig);
        return NULL;
    }
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = key_verify(self, sig.buf, (size_t)sig.len, data.buf,
                    (size_t)data.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&sig);
    return PyBool_FromLong(ok);
}

static PyObject *
PublicKey_get_keytype(PublicKeyObject *self, void *closure)
{
    (void)closure;
    return new_ref(self->keytype);
}

static PyObject *
PublicKey_get_scheme(PublicKeyObject *self, void *closure)
{
    (void)closure;
    return new_ref(self->scheme);
}

static PyObject *
PublicKey_get_fingerprint(PublicKeyObject *self, void *closure)
{
    (void)closure;
    return new_ref(self->fingerprint);
}

static PyObject *
PublicKey_repr(PublicKeyObject *self)
{
    return PyUnicode_FromFormat("<PublicKey %U/%U>", self->keytype,
                                self->scheme);
}

PyDoc_STRVAR(PublicKey_verify_doc,
"verify(signature, data, /) -> bool\n\n"
"True if signature is a valid signature of data by this key.  Never\n"
"raises for any signature content.");

static PyMethodDef PublicKey_methods[] = {
    {"verify", (PyCFunction)(void (*)(void))PublicKey_verify, METH_FASTCALL,
     PublicKey_verify_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef PublicKey_getset[] = {
    {"keytype", (getter)PublicKey_get_keytype, NULL, "The TUF key type.",
     NULL},
    {"scheme", (getter)PublicKey_get_scheme, NULL,
     "The TUF signature scheme.", NULL},
    {"fingerprint", (getter)PublicKey_get_fingerprint, NULL,
     "Canonical encoding of the key material, the same whatever its "
     "encoding: counts one key once.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(PublicKey_doc,
"PublicKey(keytype, scheme, public)\n\n"
"A TUF public key, parsed once.  Unknown keytype/scheme raise\n"
"UnsupportedAlgorithmError; malformed key material raises FormatError.");

static PyType_Slot PublicKey_slots[] = {
    {Py_tp_new, PublicKey_new},
    {Py_tp_dealloc, PublicKey_dealloc},
    {Py_tp_repr, PublicKey_repr},
    {Py_tp_methods, PublicKey_methods},
    {Py_tp_getset, PublicKey_getset},
    {Py_tp_doc, (void *)PublicKey_doc},
    {0, NULL},
};

static PyType_Spec PublicKey_spec = {
    .name = "tufc._tufc.PublicKey",
    .basicsize = sizeof(PublicKeyObject),
#ifdef Py_TPFLAGS_IMMUTABLETYPE
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
#else
    .flags = Py_TPFLAGS_DEFAULT,
#endif
    .slots = PublicKey_slots,
};

int
tufc_keys_exec(PyObject *module, tufc_state *st)
{
    st->PublicKeyType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &PublicKey_spec, NULL);
    if (st->PublicKeyType == NULL) {
        return -1;
    }
    return PyModule_AddType(module, st->PublicKeyType);
}

/* ------------------------------------------------------------------------ */
/* verify_many                                                                */

typedef struct {
    PublicKeyObject *key; /* strong reference */
    Py_buffer sig;
    int ok;
} verify_item;

static void
release_items(verify_item *items, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        PyBuffer_Release(&items[i].sig);
        Py_DECREF(items[i].key);
    }
    PyMem_Free(items);
}

PyObject *
tufc_verify_many(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "verify_many() takes exactly 2 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    tufc_state *st = tufc_get_state(module);
    PyObject *result = NULL;
    Py_buffer data;
    if (get_bytes(args[0], &data, "data") < 0) {
        return NULL;
    }
    /* A tuple snapshot: the buffer exports below may run Python code, which
     * must not be able to change or free what we are iterating over. */
    PyObject *seq = PyList_Check(args[1]) ? PyList_AsTuple(args[1])
                                          : PySequence_Tuple(args[1]);
    if (seq == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(seq), filled = 0;
    verify_item *items = PyMem_Calloc(n > 0 ? (size_t)n : 1,
                                      sizeof(verify_item));
    if (items == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* Collect everything while holding the GIL: strong references to the
     * keys and buffer exports of the signatures. */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyTuple_GET_ITEM(seq, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_Format(PyExc_TypeError,
                         "verify_many() pairs[%zd] must be a "
                         "(PublicKey, signature) tuple", i);
            goto done;
        }
        PyObject *key = PyTuple_GET_ITEM(pair, 0);
        if (!Py_IS_TYPE(key, st->PublicKeyType)) {
            PyErr_Format(PyExc_TypeError,
                         "verify_many() pairs[%zd][0] must be a PublicKey, "
                         "not %.80s", i, Py_TYPE(key)->tp_name);
            goto done;
        }
        if (get_bytes(PyTuple_GET_ITEM(pair, 1), &items[i].sig,
                      "signature") < 0) {
            goto done;
        }
        items[i].key = (PublicKeyObject *)new_ref(key);
        filled = i + 1;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        items[i].ok = key_verify(items[i].key, items[i].sig.buf,
                                 (size_t)items[i].sig.len, data.buf,
                                 (size_t)data.len);
    }
    Py_END_ALLOW_THREADS
    result = PyList_New(n);
    if (result == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyList_SET_ITEM(result, i, PyBool_FromLong(items[i].ok));
    }
done:
    if (items != NULL) {
        release_items(items, filled);
    }
    Py_DECREF(seq);
    PyBuffer_Release(&data);
    return result;
}

/* ------------------------------------------------------------------------ */
/* Ed25519 signing (server side and tests).                                   */

static int
get_seed(tufc_state *st, PyObject *obj, Py_buffer *view)
{
    if (get_bytes(obj, view, "seed") < 0) {
        return -1;
    }
    if (view->len != crypto_sign_SEEDBYTES) {
        PyErr_Format(st->FormatError,
                     "an Ed25519 seed is %d bytes, not %zd",
                     crypto_sign_SEEDBYTES, view->len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyObject *
tufc_ed25519_public_key(PyObject *module, PyObject *seed)
{
    tufc_state *st = tufc_get_state(module);
    Py_buffer view;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    if (get_seed(st, seed, &view) < 0) {
        return NULL;
    }
    crypto_sign_seed_keypair(pk, sk, view.buf);
    sodium_memzero(sk, sizeof(sk));
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)pk, sizeof(pk));
}

/* Ed25519 signatures are deterministic (RFC 8032), so OpenSSL and libsodium
 * give the same bytes.  Signing hashes the message twice with SHA-512, and
 * OpenSSL's SHA-512 is the faster one on large messages (a PyPI snapshot is
 * half a megabyte): above this size OpenSSL signs.  Should OpenSSL fail
 * (allocation), libsodium signs instead: the result is the same. */
#define OPENSSL_SIGN_MIN 4096

static int
openssl_ed25519_sign(const unsigned char *seed, const unsigned char *m,
                     size_t len, unsigned char *sig)
{
    int ok = 0;
    size_t siglen = crypto_sign_BYTES;
    EVP_MD_CTX *ctx = NULL;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed,
                                                  crypto_sign_SEEDBYTES);
    if (pkey != NULL && (ctx = EVP_MD_CTX_new()) != NULL
        && EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1
        && EVP_DigestSign(ctx, sig, &siglen, m, len) == 1
        && siglen == crypto_sign_BYTES) {
        ok = 1;
    }
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey); /* clears the private key */
    ERR_clear_error();
    return ok ? 0 : -1;
}

PyObject *
tufc_ed25519_sign(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "ed25519_sign() takes exactly 2 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    tufc_state *st = tufc_get_state(module);
    Py_buffer seed, msg;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    unsigned char sig[crypto_sign_BYTES];
    if (get_seed(st, args[0], &seed) < 0) {
        return NULL;
    }
    if (get_bytes(args[1], &msg, "message") < 0) {
        PyBuffer_Release(&seed);
        return NULL;
    }
    const unsigned char *m = msg.buf == NULL ? EMPTY : msg.buf;
    Py_BEGIN_ALLOW_THREADS
    if (msg.len < OPENSSL_SIGN_MIN
        || openssl_ed25519_sign(seed.buf, m, (size_t)msg.len, sig) < 0) {
        crypto_sign_seed_keypair(pk, sk, seed.buf);
        crypto_sign_detached(sig, NULL, m, (unsigned long long)msg.len, sk);
        sodium_memzero(sk, sizeof(sk));
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&msg);
    PyBuffer_Release(&seed);
    return PyBytes_FromStringAndSize((const char *)sig, sizeof(sig));
}
