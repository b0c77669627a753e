/* request_body.h: the body of `attngan serve`'s POST /api/v1.0/bird, parsed and checked without a
 * connection (the server calls it; tests/fuzz/fuzz_serve_body.c fuzzes it).
 *
 * The body is one JSON object {"caption": str, "seed": int, "n": int, "stage": int, "format":
 * "png"|"json"}; only caption is required. Rejected with a message the client can act on: bytes
 * that are not one JSON value (or text after it), anything but an object, an unknown field, a
 * field twice, a raw NUL byte anywhere (either would silently cut the caption), a caption that is
 * not a string, not UTF-8, blank, holds a NUL (\u0000) or is longer than the server's limit,
 * numbers that are not whole or out of range, a format other than png or json. */
#ifndef ATTNGAN_REQUEST_BODY_H
#define ATTNGAN_REQUEST_BODY_H

#include <stddef.h>
#include <stdint.h>

typedef enum { BIRD_FORMAT_ANY = 0, BIRD_FORMAT_PNG, BIRD_FORMAT_JSON } BirdFormat;

typedef struct BirdLimits {
    int max_caption;        /* code points */
    size_t max_caption_bytes;
    int max_n;              /* images per request */
    double max_seed;        /* at most 2^53 - 1 */
    int stages;             /* the model's stages (1..3): "stage" is 1..stages */
} BirdLimits;

typedef struct BirdRequest {
    char *caption;          /* malloc'ed; valid UTF-8 without NUL, not blank */
    int has_seed;
    uint64_t seed;          /* when has_seed */
    int n;                  /* 1 unless given */
    int stage;              /* 1-based; stages unless given */
    BirdFormat format;      /* ANY: not given (the server goes by the Accept header) */
} BirdRequest;

/* Parses body (len bytes, not NUL-terminated). 0 and *out filled (free with bird_request_free),
 * or the HTTP status to answer (400, or 413 for a caption over the limit) with the reason in
 * msg (printable ASCII, at most cap bytes); *out is then empty. */
int bird_request_parse(const char *body, size_t len, const BirdLimits *lim, BirdRequest *out, char *msg, size_t cap);
/* The seed's API (`attngan serve --seed-api`, AttnGAN's eval server): a JSON object with a
 * "caption"; other fields are ignored, as the seed's Flask app ignored them (a field twice is
 * still refused). The caption is checked as bird_request_parse checks it; n, stage and format are
 * the defaults (the server decides). */
int seed_request_parse(const char *body, size_t len, const BirdLimits *lim, BirdRequest *out, char *msg, size_t cap);
void bird_request_free(BirdRequest *r);

#endif
