/* fuzz_serve_body: the body of `attngan serve`'s POST /api/v1.0/bird (src/io/request_body.c, the
 * function the server calls). The input is the body; the model's stage count (1..3) comes from
 * its length. On success the fields must be in range, the caption valid, NUL-free UTF-8 and the
 * body free of NUL bytes (a raw NUL in a caption used to be accepted, the caption cut at it); on
 * error the status must be 400 or 413 with a printable message. The same bytes also go through
 * seed_request_parse (`serve --seed-api`). */
#include "fuzz.h"
#include "../../src/io/request_body.h"

#include <stdlib.h>
#include <string.h>

/* --seed-api's parser (seed_request_parse): the same invariants, other fields ignored */
static void seed_api(const uint8_t *data, size_t size, const BirdLimits *lim) {
    BirdRequest r;
    char msg[512];
    int st = seed_request_parse((const char *)data, size, lim, &r, msg, sizeof msg);
    if (st) {
        if ((st != 400 && st != 413) || !msg[0] || r.caption) abort();
        for (const char *p = msg; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7F) abort();
        return;
    }
    if (!r.caption || !r.caption[0] || r.n != 1 || r.has_seed || memchr(data, 0, size)) abort();
    bird_request_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    BirdLimits lim = {200, 65536, 8, 9007199254740991.0, 1 + (int)(size % 3)};
    BirdRequest r;
    char msg[512];
    seed_api(data, size, &lim);
    int st = bird_request_parse((const char *)data, size, &lim, &r, msg, sizeof msg);
    if (st) {
        if ((st != 400 && st != 413) || !msg[0] || r.caption) abort();
        for (const char *p = msg; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7F) abort();
        return 0;
    }
    if (!r.caption || !r.caption[0] || r.n < 1 || r.n > lim.max_n || r.stage < 1 || r.stage > lim.stages) abort();
    if (r.has_seed && r.seed > 9007199254740991ULL) abort();
    if (memchr(data, 0, size)) abort();
    bird_request_free(&r);
    return 0;
}
