/* serve.c: `attngan serve`: an HTTP server that draws birds from text (the API of the original
 * AttnGAN/ZSL server, POST /api/v1.0/bird), with a web page (web/index.html, embedded at build
 * time by web_assets.c) and a health check. docs/SERVE.md describes the API.
 *
 * Threads. libmicrohttpd runs with MHD_USE_THREAD_PER_CONNECTION (one internal thread accepts,
 * each connection gets its own thread). A generation takes from a fraction of a second to
 * seconds of CPU; with MHD's select/poll thread pool (MHD_OPTION_THREAD_POOL_SIZE) a handler
 * waiting for the model would stall every other connection served by the same pool thread
 * (health checks, the page, uploads). With a thread per connection a request that waits for the
 * model blocks only its own thread. The model itself runs on a fixed pool of --workers generator
 * threads fed by a FIFO queue (mutex + condition variables): at most --workers generations (and
 * their PNG/JSON encoding) run at once, each with --threads OpenMP threads, and the connection
 * threads only parse, wait and send. The queue is bounded (--max-queue: 503 beyond it) and so is
 * the number of connections (--max-connections, MHD_OPTION_CONNECTION_LIMIT, and per client
 * address --max-connections-per-ip), so threads, descriptors and memory stay bounded.
 *
 * Slow clients. libmicrohttpd's MHD_OPTION_CONNECTION_TIMEOUT (--idle-timeout) closes a
 * connection only after that long without any traffic, so a client that trickles one header byte
 * a second (slowloris) would hold its connection and thread for ever. A reaper thread enforces
 * --request-timeout: every connection is registered (MHD_OPTION_NOTIFY_CONNECTION) with a deadline
 * by which its next request, headers and body, must be in; the deadline restarts when a reply has
 * been sent and stops while a generation is queued or running. A connection past its deadline is
 * shut down (shutdown(2) on its socket, which wakes its thread; libmicrohttpd then closes it), after
 * a 408 reply when its body was being read. NOTIFY_CLOSED comes before libmicrohttpd closes the
 * socket and takes the same mutex, so the reaper never touches a descriptor that was reused.
 *
 * Shutdown. SIGINT and SIGTERM are blocked in every thread and taken by the main thread with
 * sigwaitinfo: the listening socket is closed (MHD_quiesce_daemon), queued and running
 * generations finish and their responses are sent, new requests on kept-alive connections get
 * 503, then the daemon stops, the workers join and everything is freed. A second signal cancels
 * the requests still queued (503) and waits only for the running generations. */
#include "app.h"
#include "../io/figure.h"
#include "../gen/gen.h"
#include "../io/image.h"
#include "../io/locate.h"
#include "../io/request_body.h"
#include "../data/text_notice.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SERVE_MAX_N 8                  /* images per request */
#define SERVE_MAX_SEED 9007199254740991.0   /* 2^53 - 1: every such integer is exact in JSON */
#define SERVE_FD_RESERVE 64            /* descriptors kept for the model, logs, the listening socket */
#define SERVE_REAPER_TICK_MS 200       /* how often --request-timeout is checked */
#define SERVE_SHUTDOWN_GRACE_S 10      /* longest wait for requests that are not generating */

/* web/index.html, embedded by web_assets.c */
extern const char serve_index_html[];
extern const char serve_index_html_end[];

static const char *USAGE =
    "usage: attngan serve [--model DIR] [--host ADDR] [--port N] [--workers N] [--threads N]\n"
    "                     [--max-body BYTES] [--max-caption CHARS] [--max-queue N] [--quiet]\n"
    "                     [--max-connections N] [--max-connections-per-ip N]\n"
    "                     [--request-timeout S] [--idle-timeout S] [--device D]\n"
    "                     [--seed-api [--image-ttl S] [--image-cache-mb N] [--public-url URL]]\n"
    "\n"
    "Serves the bird generator over HTTP (the API of the original AttnGAN/ZSL server):\n"
    "  POST /api/v1.0/bird   body {\"caption\": \"...\"} with optional \"seed\" (integer, default random),\n"
    "                        \"n\" (images, 1..8, default 1), \"stage\" (1..stages, default the last;\n"
    "                        the PNG's stage), \"format\" (\"png\" or \"json\"; default png, or json when\n"
    "                        the Accept header prefers application/json).\n"
    "                        png: the image (n > 1: a grid), headers X-Seed, X-Unknown-Words and\n"
    "                        X-Changed-Words (words losing letters outside ASCII, %XX-escaped).\n"
    "                        json: caption, seed, words, unknown_words, changed_words, segments, every stage's\n"
    "                        images and the attention figures as base64 PNGs, model, ms.\n"
    "  GET  /                a web page to try it\n"
    "  GET  /healthz         {\"status\": \"ok\", \"model\": ..., \"stages\": N, ...}\n"
    "Statuses: 200 ok; 400 bad JSON, missing or non-string caption, empty caption, invalid UTF-8,\n"
    "no word of the caption in the vocabulary (the error names them), a field of the wrong type\n"
    "or out of range, an unknown field; 404 unknown path; 405 wrong method (with Allow);\n"
    "413 body over --max-body or caption over --max-caption; 503 queue full or shutting down;\n"
    "500 internal failure. Every error is JSON {\"error\": \"...\"}.\n"
    "\n"
    "  --model DIR        model directory (attngan export); without it $ATTNGAN_MODEL, then\n"
    "                     models/bird64 next to the binary, in PREFIX/share/attngan (make install), in\n"
    "                     the binary's repository, in the working directory. A model that cannot be\n"
    "                     loaded exits 2, as in attngan generate\n"
    "  --host ADDR        address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 or ::\n"
    "                     for every interface)\n"
    "  --port N           TCP port (default 8080; 0 picks a free one, printed at start)\n"
    "  --workers N        generations at once (default 1); other requests wait in a FIFO queue\n"
    "  --threads N        math threads per generation (default: cores / workers, at least 1; the\n"
    "                     server's OpenMP threads wait passively, so a busy machine costs it its\n"
    "                     fair share only: docs/PERFORMANCE.md, threads on a busy machine)\n"
    "  --max-body BYTES   largest request body (default 65536); larger ones get 413 unread\n"
    "  --max-caption CHARS  longest caption in characters (default 4096)\n"
    "  --max-queue N      requests that may wait for a worker (default 256); more get 503\n"
    "  --max-connections N  open connections at most (default 2048; more are accepted and closed at\n"
    "                     once). The open-file limit is raised to fit, else N is lowered and said so\n"
    "  --max-connections-per-ip N  open connections from one client address (default 0: no limit;\n"
    "                     behind a proxy all clients share its address). Set it when --host is public\n"
    "  --request-timeout S  a connection has S seconds (default 30), from its opening or from the end\n"
    "                     of its previous reply, to send a whole request, headers and body; a slower\n"
    "                     one (slowloris) is closed, with 408 when its body was being read\n"
    "  --idle-timeout S   seconds without traffic after which a connection is closed (default 60;\n"
    "                     it also bounds a client that stops reading its reply)\n"
    "  --seed-api         the seed's API, drop-in (AttnGAN's eval server, eval/main.py): POST\n"
    "                     /api/v1.0/bird {\"caption\"} answers 201 {\"bird\": {\"small\", \"medium\",\n"
    "                     \"large\", \"map1\", \"map2\": image URLs, \"caption\", \"elapsed\"}}, and POST\n"
    "                     /api/v1.0/birds answers 201 {\"bird\": {\"bird1\".. \"bird6\": {\"small\",\n"
    "                     \"medium\", \"large\"}, \"caption\", \"elapsed\"}}; other fields of the body are\n"
    "                     ignored, as there. The URLs (GET /api/v1.0/images/TOKEN/NAME.png) are served\n"
    "                     by this server from a bounded, expiring cache in place of the seed's cloud\n"
    "                     storage. A model with fewer than 3 stages gives its largest image for the\n"
    "                     sizes it lacks, and null maps for the stages without attention\n"
    "  --image-ttl S      --seed-api: seconds an image stays (default 600); then GET gives 404\n"
    "  --image-cache-mb N --seed-api: MiB of PNGs kept at most (default 64); the oldest go first\n"
    "  --public-url URL   --seed-api: the start of the image URLs (default http://<the request's Host>)\n"
    "  --quiet            no log line per request (errors are still printed)\n"
    "  --device D         cpu (default), cuda (a `make CUDA=1` build with a GPU) or hostdev (the\n"
    "                     device path on the CPU, for tests); or ATTNGAN_DEVICE. On a device the\n"
    "                     workers take turns on it (one generation at a time; the PNG and JSON\n"
    "                     encoding still overlap)\n"
    "Logs one line per request to stderr: time, client, method, path, status, bytes, ms.\n"
    "SIGINT or SIGTERM: stops accepting, finishes the requests in flight, exits 0\n"
    "(a second signal cancels the queued ones). More: docs/SERVE.md.\n";

typedef struct ServeOpts {
    const char *model, *host, *public_url;
    int port, workers, threads, max_caption, max_queue, quiet;
    int seed_api, image_ttl, image_cache_mb;
    int max_conns, max_conns_per_ip, request_timeout, idle_timeout;
    long long max_body;
} ServeOpts;

/* ---------------------------------------------------------------------------------------------
 * small helpers */

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding (RFC 4648), NUL-terminated, malloc'ed. */
static char *base64_encode(const uint8_t *p, size_t n) {
    size_t out_len = 4 * ((n + 2) / 3);
    char *o = malloc(out_len + 1), *q = o;
    if (!o) return NULL;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *q++ = B64[v >> 18];
        *q++ = B64[(v >> 12) & 63];
        *q++ = B64[(v >> 6) & 63];
        *q++ = B64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *q++ = B64[v >> 18];
        *q++ = B64[(v >> 12) & 63];
        *q++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        *q++ = '=';
    }
    *q = 0;
    return o;
}

/* A user-supplied string (n bytes, or up to its NUL) made safe to quote in a message or a log:
 * printable ASCII only (others become '?'), at most max bytes (then "..."). */
static void sanitize_n(char *dst, size_t cap, const char *src, size_t n, size_t max) {
    size_t o = 0;
    if (max + 4 > cap) max = cap > 4 ? cap - 4 : 0;
    for (size_t i = 0; i < n && src[i]; i++) {
        if (i >= max) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char c = (unsigned char)src[i];
        dst[o++] = c >= 0x20 && c < 0x7F ? (char)c : '?';
    }
    dst[o] = 0;
}
static void sanitize(char *dst, size_t cap, const char *src, size_t max) { sanitize_n(dst, cap, src, (size_t)-1, max); }

/* The q-value that an Accept header gives the media type `type` ("application/json"): that of
 * the most specific matching range (exact > type/ * > * / *), 0 when none matches; a missing
 * or empty header accepts everything (1). */
static double accept_q(const char *accept, const char *type) {
    if (!accept || !*accept) return 1.0;
    const char *slash = strchr(type, '/');
    size_t tlen = (size_t)(slash - type);
    int best_spec = 0;
    double best_q = 0.0;
    const char *p = accept;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (!*p) break;
        const char *end = p;
        while (*end && *end != ',') end++;
        const char *semi = p;
        while (semi < end && *semi != ';') semi++;
        const char *re = semi;
        while (re > p && (re[-1] == ' ' || re[-1] == '\t')) re--;
        size_t rlen = (size_t)(re - p);
        int spec = 0;
        if (rlen == 3 && !strncmp(p, "*/*", 3)) spec = 1;
        else if (rlen == tlen + 2 && !strncasecmp(p, type, tlen) && p[tlen] == '/' && p[tlen + 1] == '*') spec = 2;
        else if (rlen == strlen(type) && !strncasecmp(p, type, rlen)) spec = 3;
        if (spec > best_spec) {
            double q = 1.0;
            for (const char *s = semi; s < end; s++) {
                if (*s != ';') continue;
                const char *k = s + 1;
                while (k < end && (*k == ' ' || *k == '\t')) k++;
                if (k + 1 < end && (k[0] == 'q' || k[0] == 'Q') && k[1] == '=') {
                    char num[16];
                    size_t nl = 0;
                    for (const char *v = k + 2; v < end && *v != ';' && nl < sizeof num - 1; v++) num[nl++] = *v;
                    num[nl] = 0;
                    char *e;
                    double qq = strtod(num, &e);
                    q = e != num && qq >= 0 && qq <= 1 ? qq : 0.0;
                }
            }
            best_spec = spec;
            best_q = q;
        }
        p = end;
    }
    return best_q;
}

/* ---------------------------------------------------------------------------------------------
 * the server, its job queue and workers */

typedef struct Job {
    /* in */
    char *caption;
    GenOptions opt;
    int stage;             /* 0-based stage of the PNG */
    int json;
    int seed_birds;        /* --seed-api: 1 (/api/v1.0/bird) or 6 (/api/v1.0/birds); 0 otherwise */
    char base[400];        /* --seed-api: the start of the image URLs */
    double t_enqueue;
    /* out */
    int done, cancelled;
    int status;
    char *body;            /* malloc'ed response body */
    size_t len;
    const char *ctype;
    char unknown[256];     /* X-Unknown-Words of a PNG reply (sanitized, may be cut) */
    char changed[256];     /* X-Changed-Words: words that lost letters outside ASCII (%XX-escaped) */
    double gen_ms, queue_ms;
    pthread_cond_t cv;
    struct Job *next;
} Job;

/* A connection as the --request-timeout reaper sees it. */
enum { CONN_WAITING, CONN_BODY, CONN_BUSY };
typedef struct Conn {
    int fd;
    int phase;             /* WAITING: for a request (or the reply of one answered early); BODY:
                              reading a request's body; BUSY: a generation (no deadline) */
    double deadline;       /* now_ms() by which the request must be in (WAITING, BODY) */
    int reaped;            /* shut down by the reaper */
    struct Conn *prev, *next;
} Conn;

typedef struct Server {
    ServeOpts o;
    GenModel model;
    int stages, size;
    char name[256];
    char *health_base;     /* {"status":"ok", ...} without the live counters, built at start */

    pthread_mutex_t mu;
    pthread_cond_t work_cv;
    Job *head, *tail;
    int n_queued, n_running;
    int stopping;          /* shutting down: new requests get 503 */
    int cancel;            /* second signal: queued and new generations get 503 */
    int workers_exit;
    int inflight;          /* requests between their first callback and completion */
    uint64_t seed_ctr;
    pthread_t *workers;
    int n_workers;
    int device;            /* where the model runs (--device) */
    pthread_mutex_t dev_mu; /* on a device other than the CPU: one generation at a time */

    pthread_mutex_t conn_mu; /* the open connections, for the reaper */
    Conn *conns;
    int n_conns;
    long long n_reaped;    /* connections closed by --request-timeout */
    int reaper_exit;
    pthread_t reaper;
    char *reply_408;       /* the raw HTTP reply the reaper sends */
    size_t reply_408_len;

    /* --seed-api: the images behind the URLs, oldest first, bounded in bytes and age */
    pthread_mutex_t img_mu;
    struct ImgEntry *img_head, *img_tail;
    size_t img_bytes;
    long long img_evicted;
    char listen_addr[300]; /* host:port as listened on, for URLs without a Host header */
} Server;

typedef struct ImgEntry {
    char key[96];          /* TOKEN/NAME */
    uint8_t *png;
    size_t len;
    double expires;        /* now_ms() */
    struct ImgEntry *next;
} ImgEntry;

static char *json_error_body(const char *msg, const char *unknown_csv) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    if (unknown_csv) {
        cJSON *a = cJSON_AddArrayToObject(o, "unknown_words");
        const char *p = unknown_csv;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            char w[128];
            sanitize_n(w, sizeof w, p, l, 100);
            cJSON_AddItemToArray(a, cJSON_CreateString(w));
            p += l + (e ? 1 : 0);
        }
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void job_fail(Job *j, int status, const char *msg) {
    free(j->body);
    j->status = status;
    j->body = json_error_body(msg, NULL);
    j->len = j->body ? strlen(j->body) : 0;
    j->ctype = "application/json";
}

static char *image_b64(const Image *img) {
    uint8_t *png = NULL;
    size_t len = 0;
    if (image_encode_png(img, &png, &len)) return NULL;
    char *b = base64_encode(png, len);
    free(png);
    return b;
}

static int add_b64_image(cJSON *arr, Image *img) {
    char *b = image_b64(img);
    image_free(img);
    if (!b) return -1;
    cJSON *s = cJSON_CreateString(b);
    free(b);
    if (!s) return err_set("out of memory");
    cJSON_AddItemToArray(arr, s);
    return 0;
}

static cJSON *model_json(const Server *s) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", s->name);
    cJSON_AddNumberToObject(m, "stages", s->stages);
    cJSON_AddNumberToObject(m, "size", s->size);
    if (s->model.trained_on[0]) cJSON_AddStringToObject(m, "trained_on", s->model.trained_on);
    else cJSON_AddNullToObject(m, "trained_on");
    if (s->model.steps >= 0) cJSON_AddNumberToObject(m, "steps", (double)s->model.steps);
    else cJSON_AddNullToObject(m, "steps");
    return m;
}

/* Each item of a list "a<sep>b<sep>c" (NULL: none) as a string of arr. -1 (err_msg()) when out of memory. */
static int add_list(cJSON *arr, const char *list, const char *sep) {
    size_t sl = strlen(sep);
    for (const char *p = list; p && *p;) {
        const char *e = strstr(p, sep);
        size_t l = e ? (size_t)(e - p) : strlen(p);
        char *w = malloc(l + 1);
        if (!w) return err_set("out of memory");
        memcpy(w, p, l);
        w[l] = 0;
        cJSON_AddItemToArray(arr, cJSON_CreateString(w));
        free(w);
        p += l + (e ? sl : 0);
    }
    return 0;
}

/* o printed as the job's JSON reply. */
static int json_reply(Job *j, const cJSON *o) {
    j->body = cJSON_PrintUnformatted(o);
    if (!j->body) return err_set("out of memory printing the JSON reply");
    j->len = strlen(j->body);
    j->ctype = "application/json";
    return 0;
}

/* The JSON reply of a finished generation. -1 (err_msg()) on an encoding failure. */
static int build_json(const Server *s, Job *j, const GenResult *r) {
    int rc = -1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "caption", j->caption);
    cJSON_AddNumberToObject(o, "seed", (double)j->opt.seed);
    cJSON_AddNumberToObject(o, "n", r->n);
    cJSON *words = cJSON_AddArrayToObject(o, "words");
    for (int k = 0; k < r->L; k++) cJSON_AddItemToArray(words, cJSON_CreateString(r->words[k] ? r->words[k] : ""));
    if (add_list(cJSON_AddArrayToObject(o, "unknown_words"), r->unknown, ",")) goto out;
    /* words that lose letters outside ASCII in AttnGAN's tokenizer ("weißen -> weien") */
    char *changed = text_changed_words(j->caption);
    int bad = add_list(cJSON_AddArrayToObject(o, "changed_words"), changed, ", ");
    free(changed);
    if (bad) goto out;
    cJSON *segs = cJSON_AddArrayToObject(o, "segments");
    for (int k = 0; k < r->n_segments; k++) {
        cJSON *g = cJSON_CreateObject();
        cJSON_AddStringToObject(g, "text", r->segments[k].text ? r->segments[k].text : "");
        cJSON_AddNumberToObject(g, "relevance", isfinite(r->segments[k].relevance) ? r->segments[k].relevance : 0.0);
        cJSON_AddBoolToObject(g, "used", r->segments[k].used != 0);
        cJSON_AddItemToArray(segs, g);
    }
    cJSON *stages = cJSON_AddArrayToObject(o, "stages");
    for (int st = 0; st < r->n_stages; st++) {
        cJSON *so = cJSON_CreateObject();
        cJSON_AddItemToArray(stages, so);
        cJSON_AddNumberToObject(so, "size", r->size[st]);
        cJSON *imgs = cJSON_AddArrayToObject(so, "images");
        for (int i = 0; i < r->n; i++) {
            Image img = {0};
            if (gen_result_image(r, st, i, &img) || add_b64_image(imgs, &img)) goto out;
        }
    }
    if (r->n_att > 0) {
        cJSON *att = cJSON_AddArrayToObject(o, "attention");
        for (int i = 0; i < r->n; i++) {
            Image img = {0};
            if (gen_result_attention(r, i, &img) || add_b64_image(att, &img)) goto out;
        }
    }
    cJSON_AddItemToObject(o, "model", model_json(s));
    cJSON_AddNumberToObject(o, "ms", round(j->gen_ms * 10) / 10);
    cJSON_AddNumberToObject(o, "queue_ms", round(j->queue_ms * 10) / 10);
    rc = json_reply(j, o);
out:
    cJSON_Delete(o);
    return rc;
}

/* The PNG reply: stage j->stage of the single image, or a grid of the n images. */
static int build_png(Job *j, const GenResult *r) {
    Image img = {0};
    int st = j->stage;
    if (r->n == 1) {
        if (gen_result_image(r, st, 0, &img)) return -1;
    } else {
        int S = r->size[st];
        const float *ptrs[SERVE_MAX_N];
        for (int i = 0; i < r->n && i < SERVE_MAX_N; i++) ptrs[i] = r->imgs[st] + (size_t)i * 3 * S * S;
        int cols = r->n <= 4 ? r->n : 4;
        if (figure_grid(ptrs, r->n, S, cols, 2, &img)) return -1;
    }
    uint8_t *png = NULL;
    size_t len = 0;
    int rc = image_encode_png(&img, &png, &len);
    image_free(&img);
    if (rc) return -1;
    j->body = (char *)png;
    j->len = len;
    j->ctype = "image/png";
    if (r->unknown) sanitize(j->unknown, sizeof j->unknown, r->unknown, 200);
    char *changed = text_changed_words(j->caption);
    if (changed) { /* a header is ASCII: bytes outside it as %XX (UTF-8, RFC 3986) */
        size_t o = 0;
        for (const unsigned char *p = (const unsigned char *)changed; *p && o + 4 < sizeof j->changed; p++) {
            if (*p >= 0x20 && *p < 0x7f && *p != '%') j->changed[o++] = (char)*p;
            else o += (size_t)snprintf(j->changed + o, sizeof j->changed - o, "%%%02X", *p);
        }
        j->changed[o] = 0;
        free(changed);
    }
    return 0;
}

/* ---- --seed-api: the image cache and the seed's reply */

static void img_drop_head(Server *s) {
    ImgEntry *e = s->img_head;
    s->img_head = e->next;
    if (!s->img_head) s->img_tail = NULL;
    s->img_bytes -= e->len;
    free(e->png);
    free(e);
}

/* Keeps png (taken over) under key; the expired and, past --image-cache-mb, the oldest go. */
static void img_put(Server *s, const char *key, uint8_t *png, size_t len) {
    ImgEntry *e = calloc(1, sizeof *e);
    if (!e) { free(png); return; }
    snprintf(e->key, sizeof e->key, "%s", key);
    e->png = png;
    e->len = len;
    double now = now_ms();
    e->expires = now + s->o.image_ttl * 1e3;
    size_t cap = (size_t)s->o.image_cache_mb << 20;
    pthread_mutex_lock(&s->img_mu);
    while (s->img_head && (s->img_head->expires <= now || s->img_bytes + len > cap)) {
        if (s->img_head->expires > now) s->img_evicted++;
        img_drop_head(s);
    }
    if (s->img_tail) s->img_tail->next = e;
    else s->img_head = e;
    s->img_tail = e;
    s->img_bytes += len;
    pthread_mutex_unlock(&s->img_mu);
}

/* A copy of the PNG under key and its seconds left; -1 when unknown, expired or evicted. */
static int img_get(Server *s, const char *key, uint8_t **png, size_t *len, int *left) {
    int rc = -1;
    double now = now_ms();
    pthread_mutex_lock(&s->img_mu);
    while (s->img_head && s->img_head->expires <= now) img_drop_head(s);
    for (ImgEntry *e = s->img_head; e; e = e->next)
        if (!strcmp(e->key, key)) {
            *png = malloc(e->len ? e->len : 1);
            if (*png) {
                memcpy(*png, e->png, e->len);
                *len = e->len;
                *left = (int)((e->expires - now) / 1e3);
                rc = 0;
            }
            break;
        }
    pthread_mutex_unlock(&s->img_mu);
    return rc;
}

/* 32 hex digits from the kernel's random source: the URLs cannot be guessed. */
static int random_token(char *out) {
    unsigned char b[16];
    FILE *f = fopen("/dev/urandom", "rb");
    int ok = f && fread(b, 1, sizeof b, f) == sizeof b;
    if (f) fclose(f);
    if (!ok) return err_set("cannot read /dev/urandom for an image token");
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

/* Encodes img (freed) as a PNG, keeps it as TOKEN/name and returns its URL in url. */
static int put_image(Server *s, const Job *j, const char *token, const char *name, Image *img, char *url, size_t cap) {
    uint8_t *png = NULL;
    size_t len = 0;
    int rc = image_encode_png(img, &png, &len);
    image_free(img);
    if (rc) return -1;
    char key[96];
    snprintf(key, sizeof key, "%s/%s", token, name);
    img_put(s, key, png, len);
    snprintf(url, cap, "%s/api/v1.0/images/%s", j->base, key);
    return 0;
}

/* The seed's reply: {"bird": {small, medium, large, map1, map2, caption, elapsed}} for one bird,
 * {"bird": {bird1..bird6: {small, medium, large}, caption, elapsed}} for six (eval/main.py). */
static int build_seed(Server *s, Job *j, const GenResult *r) {
    char token[40], url[600], name[48];
    if (random_token(token)) return -1;
    int rc = -1;
    cJSON *o = cJSON_CreateObject();
    cJSON *b = cJSON_AddObjectToObject(o, "bird");
    static const char *const sizes[3] = {"small", "medium", "large"};
    for (int i = 0; i < r->n; i++) {
        cJSON *dst = b;
        if (j->seed_birds > 1) {
            snprintf(name, sizeof name, "bird%d", i + 1);
            dst = cJSON_AddObjectToObject(b, name);
        }
        char urls[3][600];
        for (int st = 0; st < r->n_stages && st < 3; st++) {
            Image img = {0};
            if (j->seed_birds > 1) snprintf(name, sizeof name, "bird%d_g%d.png", i + 1, st);
            else snprintf(name, sizeof name, "bird_g%d.png", st);
            if (gen_result_image(r, st, i, &img) || put_image(s, j, token, name, &img, urls[st], sizeof urls[st])) goto out;
        }
        for (int k = 0; k < 3; k++) cJSON_AddStringToObject(dst, sizes[k], urls[k < r->n_stages ? k : r->n_stages - 1]);
        if (j->seed_birds == 1)
            for (int k = 0; k < 2; k++) {
                snprintf(name, sizeof name, "map%d", k + 1);
                if (k >= r->n_att) {
                    cJSON_AddNullToObject(dst, name);
                    continue;
                }
                Image img = {0};
                char fn[48];
                snprintf(fn, sizeof fn, "attmaps_a%d.png", k);
                if (gen_result_attention_stage(r, i, k, &img) || put_image(s, j, token, fn, &img, url, sizeof url)) goto out;
                cJSON_AddStringToObject(dst, name, url);
            }
    }
    cJSON_AddStringToObject(b, "caption", j->caption);
    cJSON_AddNumberToObject(b, "elapsed", j->gen_ms / 1e3);
    rc = json_reply(j, o);
out:
    cJSON_Delete(o);
    return rc;
}

/* Messages of gen_run that mean bad input rather than a failure of ours. */
static int is_input_error(const char *msg) {
    return strstr(msg, "vocabulary") || strstr(msg, "empty") || strstr(msg, "too long") || strstr(msg, "out of range");
}

static void job_run(Server *s, Job *j) {
    GenResult r;
    memset(&r, 0, sizeof r);
    double t0 = now_ms();
    j->queue_ms = t0 - j->t_enqueue;
    err_clear();
    int serial = s->device != DEVICE_CPU;
    if (serial) pthread_mutex_lock(&s->dev_mu);
    int fail = gen_run(&s->model, j->caption, &j->opt, &r);
    if (serial) pthread_mutex_unlock(&s->dev_mu);
    if (fail) {
        const char *m = err_msg();
        if (is_input_error(m)) job_fail(j, 400, m);
        else {
            fprintf(stderr, "attngan serve: generation failed: %s\n", m);
            job_fail(j, 500, m);
        }
        gen_result_free(&r);
        return;
    }
    j->gen_ms = now_ms() - t0;
    err_clear();
    int rc = j->seed_birds ? build_seed(s, j, &r) : j->json ? build_json(s, j, &r) : build_png(j, &r);
    gen_result_free(&r);
    if (rc) {
        char msg[1100];
        snprintf(msg, sizeof msg, "could not encode the reply: %s", err_msg());
        fprintf(stderr, "attngan serve: %s\n", msg);
        job_fail(j, 500, msg);
        return;
    }
    j->status = j->seed_birds ? 201 : 200; /* the seed answered 201 Created */
}

static void *worker_main(void *arg) {
    Server *s = arg;
    /* omp_set_num_threads sets the calling thread's own ICV: each worker sets its own. */
    omp_set_num_threads(s->o.threads);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->workers_exit) pthread_cond_wait(&s->work_cv, &s->mu);
        if (!s->head) break;
        Job *j = s->head;
        s->head = j->next;
        if (!s->head) s->tail = NULL;
        s->n_queued--;
        s->n_running++;
        pthread_mutex_unlock(&s->mu);
        job_run(s, j);
        pthread_mutex_lock(&s->mu);
        s->n_running--;
        j->done = 1;
        pthread_cond_signal(&j->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Queues the job and waits for it. 0 when it ran (j->status set), 503 when it was refused
 * (queue full, shutting down) or cancelled; j->body then holds nothing. */
static int job_submit(Server *s, Job *j) {
    pthread_cond_init(&j->cv, NULL);
    pthread_mutex_lock(&s->mu);
    if (s->cancel || s->n_queued >= s->o.max_queue) {
        int stopping = s->cancel;
        pthread_mutex_unlock(&s->mu);
        pthread_cond_destroy(&j->cv);
        job_fail(j, 503, stopping ? "the server is shutting down" : "the server is busy (queue full); try again shortly");
        return 503;
    }
    j->t_enqueue = now_ms();
    j->next = NULL;
    if (s->tail) s->tail->next = j;
    else s->head = j;
    s->tail = j;
    s->n_queued++;
    pthread_cond_signal(&s->work_cv);
    while (!j->done) pthread_cond_wait(&j->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&j->cv);
    if (j->cancelled) {
        job_fail(j, 503, "the server is shutting down");
        return 503;
    }
    return 0;
}

/* Second signal: the queued jobs are answered 503. */
static void cancel_queued(Server *s) {
    pthread_mutex_lock(&s->mu);
    s->cancel = 1;
    for (Job *j = s->head; j;) {
        Job *next = j->next;
        j->cancelled = 1;
        j->done = 1;
        pthread_cond_signal(&j->cv);
        j = next;
        s->n_queued--;
    }
    s->head = s->tail = NULL;
    pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------------------------------------
 * HTTP */

enum { ROUTE_NONE, ROUTE_BIRD, ROUTE_PAGE, ROUTE_HEALTH, ROUTE_IMAGE };

typedef struct Req {
    double t0;
    char method[16];
    char path[160];
    char client[64];
    int route;
    int status;            /* of the queued response; 0 before */
    size_t resp_bytes;
    char *body;            /* the upload so far (bounded by --max-body) */
    size_t len, cap;
    int too_big;
    Conn *conn;            /* its connection's entry (NULL when it could not be registered) */
    Server *srv;
    int deferred;          /* a request without a body: answered on the next call (on_request) */
    int birds;             /* --seed-api: 6 on /api/v1.0/birds, else 1 */
} Req;

/* ---- the connections and the --request-timeout reaper */

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code) {
    Server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        Conn *k = calloc(1, sizeof *k);
        if (!k) return; /* untracked: only --idle-timeout applies to it */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        k->fd = ci ? (int)ci->connect_fd : -1;
        k->phase = CONN_WAITING;
        k->deadline = now_ms() + s->o.request_timeout * 1e3;
        pthread_mutex_lock(&s->conn_mu);
        k->next = s->conns;
        if (s->conns) s->conns->prev = k;
        s->conns = k;
        s->n_conns++;
        pthread_mutex_unlock(&s->conn_mu);
        *socket_context = k;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        Conn *k = *socket_context;
        if (!k) return;
        *socket_context = NULL;
        pthread_mutex_lock(&s->conn_mu);
        if (k->prev) k->prev->next = k->next;
        else s->conns = k->next;
        if (k->next) k->next->prev = k->prev;
        s->n_conns--;
        pthread_mutex_unlock(&s->conn_mu);
        free(k);
    }
}

static Conn *conn_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Moves a connection to `phase`; CONN_WAITING from CONN_BUSY or `restart` starts a new deadline.
 * 1 when the reaper has shut the connection down already (nothing more should be done on it). */
static int conn_phase(Server *s, Conn *k, int phase, int restart) {
    if (!k) return 0;
    pthread_mutex_lock(&s->conn_mu);
    int reaped = k->reaped;
    if (!reaped) {
        if (phase == CONN_WAITING && (restart || k->phase == CONN_BUSY)) k->deadline = now_ms() + s->o.request_timeout * 1e3;
        k->phase = phase;
    }
    pthread_mutex_unlock(&s->conn_mu);
    return reaped;
}

static void *reaper_main(void *arg) {
    Server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->conn_mu);
        if (s->reaper_exit) {
            pthread_mutex_unlock(&s->conn_mu);
            break;
        }
        double now = now_ms();
        for (Conn *k = s->conns; k; k = k->next) {
            if (k->reaped || k->fd < 0 || k->phase == CONN_BUSY || now < k->deadline) continue;
            /* a body was being read and nothing was answered: say why before closing (best effort:
             * the reply is small enough for the socket's buffer, and nothing else writes now) */
            if (k->phase == CONN_BODY) (void)!send(k->fd, s->reply_408, s->reply_408_len, MSG_DONTWAIT | MSG_NOSIGNAL);
            shutdown(k->fd, SHUT_RDWR);
            k->reaped = 1;
            s->n_reaped++;
        }
        pthread_mutex_unlock(&s->conn_mu);
        struct timespec tick = {0, SERVE_REAPER_TICK_MS * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    return NULL;
}

static enum MHD_Result queue(struct MHD_Connection *c, Req *r, int status, char *body, size_t len, const char *ctype,
                             int must_free, const char *allow) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        if (must_free) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (status == 503) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 413 || status == 503) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (r->route == ROUTE_PAGE && status == 200)
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                                "script-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        r->status = status;
        r->resp_bytes = len;
    }
    /* answered: no 408 any more; the rest of the request and this reply are due by the
     * connection's deadline (a fresh one after a generation) */
    conn_phase(r->srv, r->conn, CONN_WAITING, 0);
    return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, Req *r, int status, const char *allow, const char *fmt, ...)
    ATTR_PRINTF(5, 6);
static enum MHD_Result reply_error(struct MHD_Connection *c, Req *r, int status, const char *allow, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *body = json_error_body(msg, NULL);
    if (!body) return MHD_NO;
    return queue(c, r, status, body, strlen(body), "application/json", 1, allow);
}

static enum MHD_Result reply_health(struct MHD_Connection *c, Req *r, Server *s) {
    pthread_mutex_lock(&s->mu);
    int q = s->n_queued, run = s->n_running, stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&s->conn_mu);
    int conns = s->n_conns;
    long long reaped = s->n_reaped;
    pthread_mutex_unlock(&s->conn_mu);
    cJSON *o = cJSON_Parse(s->health_base);
    if (!o) return MHD_NO;
    if (stopping) cJSON_ReplaceItemInObject(o, "status", cJSON_CreateString("stopping"));
    cJSON_AddNumberToObject(o, "queued", q);
    cJSON_AddNumberToObject(o, "running", run);
    cJSON_AddNumberToObject(o, "connections", conns);
    cJSON_AddNumberToObject(o, "closed_slow", (double)reaped);
    if (s->o.seed_api) {
        pthread_mutex_lock(&s->img_mu);
        int n_img = 0;
        for (ImgEntry *e = s->img_head; e; e = e->next) n_img++;
        cJSON *im = cJSON_AddObjectToObject(o, "images");
        cJSON_AddNumberToObject(im, "kept", n_img);
        cJSON_AddNumberToObject(im, "bytes", (double)s->img_bytes);
        cJSON_AddNumberToObject(im, "evicted", (double)s->img_evicted);
        pthread_mutex_unlock(&s->img_mu);
    }
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!body) return MHD_NO;
    return queue(c, r, stopping ? 503 : 200, body, strlen(body), "application/json", 1, NULL);
}

static uint64_t next_seed(Server *s) {
    pthread_mutex_lock(&s->mu);
    uint64_t x = (s->seed_ctr += 0x9E3779B97F4A7C15ULL);
    pthread_mutex_unlock(&s->mu);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return x & 0xFFFFFFFFu;   /* a short seed that is easy to copy */
}

/* --seed-api: --public-url, or http:// and the request's Host header (a plain host[:port]), or
 * the listening address. */
static void image_base_url(struct MHD_Connection *c, const Server *s, char *out, size_t cap) {
    if (s->o.public_url) {
        snprintf(out, cap, "%s", s->o.public_url);
        size_t l = strlen(out);
        while (l && out[l - 1] == '/') out[--l] = 0;
        return;
    }
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    int ok = host && *host && strlen(host) < 256;
    for (const char *p = host; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr(".-:[]", *p);
    if (ok) snprintf(out, cap, "http://%s", host);
    else snprintf(out, cap, "http://%s", s->listen_addr);
}

static enum MHD_Result handle_bird(struct MHD_Connection *c, Req *r, Server *s) {
    char msg[1024];
    /* the body's JSON and its fields (src/io/request_body.c, fuzzed by tests/fuzz/fuzz_serve_body.c) */
    BirdLimits lim = {s->o.max_caption, GEN_MAX_TEXT, SERVE_MAX_N, SERVE_MAX_SEED, s->stages};
    BirdRequest br;
    int bad = s->o.seed_api ? seed_request_parse(r->body, r->len, &lim, &br, msg, sizeof msg)
                            : bird_request_parse(r->body, r->len, &lim, &br, msg, sizeof msg);
    if (bad) return reply_error(c, r, bad, NULL, "%s", msg);
    const char *caption = br.caption;
    int json = br.format == BIRD_FORMAT_JSON;
    if (br.format == BIRD_FORMAT_ANY && !s->o.seed_api) {
        const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
        json = accept_q(accept, "application/json") > accept_q(accept, "image/png");
    }

    /* No known word at all is the client's problem: say which words were not understood. */
    int64_t *ids = NULL;
    char *unknown = NULL;
    int n_ids = vocab_encode(&s->model.vocab, caption, &ids, &unknown);
    free(ids);
    if (n_ids <= 0) {
        char list[300];
        sanitize(list, sizeof list, unknown ? unknown : "", 200);
        for (char *p = list; *p; p++)
            if (*p == ',') *p = ' ';
        snprintf(msg, sizeof msg, "none of the words of the caption is in the model's vocabulary (unknown: %s)", list);
        char *body = json_error_body(msg, unknown);
        free(unknown);
        bird_request_free(&br);
        if (!body) return MHD_NO;
        return queue(c, r, 400, body, strlen(body), "application/json", 1, NULL);
    }
    free(unknown);

    Job j;
    memset(&j, 0, sizeof j);
    j.caption = br.caption; /* freed below, as the strdup it was */
    br.caption = NULL;
    gen_options_default(&j.opt);
    j.opt.n = br.n;
    j.opt.seed = br.has_seed ? br.seed : next_seed(s);
    j.stage = br.stage - 1;
    j.json = json;
    if (s->o.seed_api) {
        j.seed_birds = r->birds;
        j.opt.n = r->birds;
        image_base_url(c, s, j.base, sizeof j.base);
    }
    job_submit(s, &j);
    free(j.caption);
    if (!j.body) return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(j.len, j.body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(j.body);
        return MHD_NO;
    }
    char seed_s[32];
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)j.opt.seed);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, j.ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (j.status == 200 || j.status == 201) {
        MHD_add_response_header(resp, "X-Seed", seed_s);
        if (j.unknown[0]) MHD_add_response_header(resp, "X-Unknown-Words", j.unknown);
        if (j.changed[0]) MHD_add_response_header(resp, "X-Changed-Words", j.changed);
    }
    if (j.status == 503) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)j.status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        r->status = j.status;
        r->resp_bytes = j.len;
    }
    return ret;
}

/* The reply to a complete request line and headers: an error, the page, the health check, or
 * MHD_YES to read a bird request's body. */
static enum MHD_Result route(struct MHD_Connection *c, Req *r, Server *s, const char *url, const char *method) {
    pthread_mutex_lock(&s->mu);
    int stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);
    int get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
    if (!strcmp(url, "/api/v1.0/bird") || (s->o.seed_api && !strcmp(url, "/api/v1.0/birds"))) {
        r->route = ROUTE_BIRD;
        r->birds = !strcmp(url, "/api/v1.0/birds") ? 6 : 1;
        if (strcmp(method, MHD_HTTP_METHOD_POST))
            return reply_error(c, r, 405, "POST", "%s is not allowed on %s; use POST with a JSON body", r->method, r->path);
    } else if (s->o.seed_api && !strncmp(url, "/api/v1.0/images/", 17)) {
        r->route = ROUTE_IMAGE;
        if (!get) return reply_error(c, r, 405, "GET, HEAD", "%s is not allowed on %s; use GET", r->method, r->path);
        uint8_t *png = NULL;
        size_t len = 0;
        int left = 0;
        if (strlen(url + 17) >= sizeof ((ImgEntry *)0)->key || img_get(s, url + 17, &png, &len, &left))
            return reply_error(c, r, 404, NULL, "no such image: %s (images are kept %d s, at most %d MiB of them: --image-ttl, "
                               "--image-cache-mb)", r->path, s->o.image_ttl, s->o.image_cache_mb);
        return queue(c, r, 200, (char *)png, len, "image/png", 1, NULL);
    } else if (!strcmp(url, "/api/v1.0/birds")) {
        return reply_error(c, r, 404, NULL, "no such path: %s (six birds at once are the seed's API: attngan serve --seed-api)", r->path);
    } else if (!strcmp(url, "/") || !strcmp(url, "/index.html")) {
        r->route = ROUTE_PAGE;
        if (!get) return reply_error(c, r, 405, "GET, HEAD", "%s is not allowed on %s; use GET", r->method, r->path);
    } else if (!strcmp(url, "/healthz")) {
        r->route = ROUTE_HEALTH;
        if (!get) return reply_error(c, r, 405, "GET, HEAD", "%s is not allowed on %s; use GET", r->method, r->path);
        return reply_health(c, r, s);
    } else {
        return reply_error(c, r, 404, NULL, "no such path: %s (the API is POST /api/v1.0/bird; see GET /)", r->path);
    }
    if (stopping) return reply_error(c, r, 503, NULL, "the server is shutting down");
    if (r->route == ROUTE_PAGE)
        return queue(c, r, 200, (char *)serve_index_html, (size_t)(serve_index_html_end - serve_index_html),
                     "text/html; charset=utf-8", 0, NULL);
    /* POST /api/v1.0/bird: refuse an announced oversized body before reading any of it */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (end == cl || *end) return reply_error(c, r, 400, NULL, "invalid Content-Length");
        if (errno || v > (unsigned long long)s->o.max_body) {
            r->too_big = 1;
            char shown[32];
            sanitize(shown, sizeof shown, cl, 20);
            return reply_error(c, r, 413, NULL, "the body is %s bytes; this server accepts at most %lld (--max-body)", shown,
                               s->o.max_body);
        }
    }
    conn_phase(s, r->conn, CONN_BODY, 0); /* a slow body gets 408 at the deadline */
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls) {
    Server *s = cls;
    Req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        r->t0 = now_ms();
        r->srv = s;
        r->conn = conn_of(c);
        sanitize(r->method, sizeof r->method, method ? method : "?", 10);
        sanitize(r->path, sizeof r->path, url ? url : "?", 120);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            char host[NI_MAXHOST];
            socklen_t alen = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
            if (!getnameinfo(ci->client_addr, alen, host, sizeof host, NULL, 0, NI_NUMERICHOST))
                snprintf(r->client, sizeof r->client, "%s", host);
        }
        pthread_mutex_lock(&s->mu);
        s->inflight++;
        pthread_mutex_unlock(&s->mu);
        /* libmicrohttpd 0.9.75 closes the connection after a reply queued before the request is
         * complete ("Connection: close"), which would end keep-alive and drop pipelined requests:
         * a request without a body is answered on the next call, once it is complete. A request
         * with a body that is refused (404, 405, 413) is answered at once, without reading it. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        int body = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) || (cl && strcmp(cl, "0"));
        int bird_path = !strcmp(url, "/api/v1.0/bird") || (s->o.seed_api && !strcmp(url, "/api/v1.0/birds"));
        if (!body && !(bird_path && !strcmp(method, MHD_HTTP_METHOD_POST))) {
            r->deferred = 1;
            return MHD_YES;
        }
        return route(c, r, s, url, method);
    }
    (void)version;
    if (r->deferred) {
        r->deferred = 0;
        *upload_size = 0;
        return route(c, r, s, url, method);
    }
    if (r->status) {           /* answered already (should not get more data): drop it */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t add = *upload_size;
        *upload_size = 0;
        if (r->too_big) return MHD_YES;
        if ((long long)(r->len + add) > s->o.max_body) {
            /* an upload without Content-Length (chunked) past the limit: drop what we have and
             * answer 413 at once; the rest of the body is not read */
            r->too_big = 1;
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            if (reply_error(c, r, 413, NULL, "the body is over %lld bytes (--max-body)", s->o.max_body) == MHD_YES) return MHD_YES;
            r->status = 413;   /* libmicrohttpd cannot answer now: close the connection */
            return MHD_NO;
        }
        if (r->len + add + 1 > r->cap) {
            size_t nc = r->cap ? r->cap : 1024;
            while (nc < r->len + add + 1) nc *= 2;
            if ((long long)nc > s->o.max_body + 1) nc = (size_t)s->o.max_body + 1;
            char *nb = realloc(r->body, nc);
            if (!nb) return MHD_NO;
            r->body = nb;
            r->cap = nc;
        }
        memcpy(r->body + r->len, upload_data, add);
        r->len += add;
        r->body[r->len] = 0;
        return MHD_YES;
    }
    /* the whole body is in: no deadline while it is answered, unless the reaper was first */
    if (conn_phase(s, r->conn, CONN_BUSY, 0)) return MHD_NO;
    return handle_bird(c, r, s);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    Server *s = cls;
    Req *r = *con_cls;
    (void)c;
    if (!r) return;
    *con_cls = NULL;
    int reaped = conn_phase(s, r->conn, CONN_WAITING, 1); /* the next request's deadline */
    if (reaped && !r->status) r->status = 408;
    if (!s->o.quiet) {
        char ts[32];
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        const char *how = reaped ? " (not received within --request-timeout: connection closed)"
                          : toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                          : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? " (timed out)"
                          : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? " (shutdown)"
                          : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? " (client closed)"
                          : r->too_big && r->status == 413 ? " (body over --max-body: connection closed)"
                                                           : " (connection error)";
        char status[8];
        if (r->status) snprintf(status, sizeof status, "%d", r->status);
        else snprintf(status, sizeof status, "-");
        fprintf(stderr, "%s %s %s %s %s %zu %.0f ms%s\n", ts, r->client[0] ? r->client : "-", r->method, r->path, status,
                r->resp_bytes, now_ms() - r->t0, how);
    }
    free(r->body);
    free(r);
    pthread_mutex_lock(&s->mu);
    s->inflight--;
    pthread_mutex_unlock(&s->mu);
}

/* URL unescaping: %HH as libmicrohttpd's default, except %00, which stays as it is: a decoded NUL
 * would cut the path short ("/%00x" would be "/"). */
static int hexval(char ch) {
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}
static size_t unescape(void *cls, struct MHD_Connection *c, char *str) {
    (void)cls;
    (void)c;
    char *w = str;
    for (const char *p = str; *p;) {
        int hi, lo;
        if (p[0] == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0 && (hi | lo)) {
            *w++ = (char)(hi << 4 | lo);
            p += 3;
        } else {
            *w++ = *p++;
        }
    }
    *w = 0;
    return (size_t)(w - str);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    const Server *s = cls;
    if (s && s->o.quiet) return;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t l = strlen(buf);
    while (l && (buf[l - 1] == '\n' || buf[l - 1] == '\r')) buf[--l] = 0;
    /* our own MHD_NO (an upload over --max-body): the request's log line says why */
    if (!strncmp(buf, "Application reported internal error", 35)) return;
    fprintf(stderr, "attngan serve: libmicrohttpd: %s\n", buf);
}

/* ---------------------------------------------------------------------------------------------
 * start, run, stop */

/* A listening TCP socket on host:port; -1 with err_msg(). *family and *bound_port are set. */
static int listen_on(const char *host, int port, int *family, int *bound_port) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int gai = getaddrinfo(host, ps, &hints, &res);
    if (gai) return err_set("--host %s: %s", host, gai_strerror(gai));
    int fd = -1, last_errno = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) { last_errno = errno; continue; }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (!bind(fd, a->ai_addr, a->ai_addrlen) && !listen(fd, SOMAXCONN)) {
            *family = a->ai_family;
            break;
        }
        last_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return err_set("cannot listen on %s port %d: %s", host, port, strerror(last_errno));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *bound_port = port;
    if (!getsockname(fd, (struct sockaddr *)&ss, &sl))
        *bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                               : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static int parse_args(int argc, char **argv, ServeOpts *o) {
    o->model = NULL; /* src/io/locate.h's search */
    o->host = "127.0.0.1";
    o->port = 8080;
    o->workers = 1;
    o->threads = 0;
    o->max_body = 64 * 1024;
    o->max_caption = 4096;
    o->max_queue = 256;
    o->max_conns = 2048;
    o->max_conns_per_ip = 0;
    o->request_timeout = 30;
    o->idle_timeout = 60;
    o->quiet = 0;
    o->seed_api = 0;
    o->image_ttl = 600;
    o->image_cache_mb = 64;
    o->public_url = NULL;
    int image_opts = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char name[64];
        const char *eq = strncmp(a, "--", 2) ? NULL : strchr(a, '=');
        if (eq && (size_t)(eq - a) < sizeof name) {   /* --name=value */
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = 0;
            a = name;
        } else eq = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            return 1;
        }
        if (!strcmp(a, "--quiet") && !eq) { o->quiet = 1; continue; }
        if (!strcmp(a, "--seed-api") && !eq) { o->seed_api = 1; continue; }
        if (!eq && i + 1 >= argc) {
            fprintf(stderr, "attngan serve: unknown option %s (or missing value; try --help)\n", a);
            return -1;
        }
        const char *v = eq ? eq + 1 : argv[++i];
        int iv = 0;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--host")) o->host = v;
        else if (!strcmp(a, "--port")) {
            if (parse_int(v, &iv, a)) return -1;
            if (iv < 0 || iv > 65535) { fprintf(stderr, "attngan serve: --port must be 0..65535\n"); return -1; }
            o->port = iv;
        } else if (!strcmp(a, "--workers")) {
            if (parse_int(v, &iv, a)) return -1;
            if (iv < 1 || iv > 64) { fprintf(stderr, "attngan serve: --workers must be 1..64\n"); return -1; }
            o->workers = iv;
        } else if (!strcmp(a, "--threads")) {
            if (parse_int(v, &iv, a)) return -1;
            if (iv < 1 || iv > 1024) { fprintf(stderr, "attngan serve: --threads must be 1..1024\n"); return -1; }
            o->threads = iv;
        } else if (!strcmp(a, "--max-body")) {
            if (parse_int(v, &iv, a)) return -1;
            if (iv < 16) { fprintf(stderr, "attngan serve: --max-body must be at least 16 bytes\n"); return -1; }
            o->max_body = iv;
        } else if (!strcmp(a, "--max-caption")) {
            if (parse_int(v, &iv, a)) return -1;
            if (iv < 1 || iv > GEN_MAX_TEXT / 4) {
                fprintf(stderr, "attngan serve: --max-caption must be 1..%d\n", GEN_MAX_TEXT / 4);
                return -1;
            }
            o->max_caption = iv;
        } else if (!strcmp(a, "--max-queue")) {
            if (parse_int(v, &iv, a)) return -1;
            if (iv < 0 || iv > 100000) { fprintf(stderr, "attngan serve: --max-queue must be 0..100000\n"); return -1; }
            o->max_queue = iv;
        } else if (!strcmp(a, "--max-connections")) {
            if (parse_int(v, &iv, a)) return -1;
            if (iv < 1 || iv > 1000000) { fprintf(stderr, "attngan serve: --max-connections must be 1..1000000\n"); return -1; }
            o->max_conns = iv;
        } else if (!strcmp(a, "--max-connections-per-ip")) {
            if (parse_int(v, &iv, a)) return -1;
            if (iv < 0 || iv > 1000000) {
                fprintf(stderr, "attngan serve: --max-connections-per-ip must be 0 (no limit)..1000000\n");
                return -1;
            }
            o->max_conns_per_ip = iv;
        } else if (!strcmp(a, "--request-timeout")) {
            if (parse_int(v, &iv, a)) return -1;
            if (iv < 1 || iv > 86400) { fprintf(stderr, "attngan serve: --request-timeout must be 1..86400 seconds\n"); return -1; }
            o->request_timeout = iv;
        } else if (!strcmp(a, "--image-ttl")) {
            if (parse_int(v, &iv, a)) return -1;
            if (iv < 1 || iv > 604800) { fprintf(stderr, "attngan serve: --image-ttl must be 1..604800 seconds\n"); return -1; }
            o->image_ttl = iv;
            image_opts = 1;
        } else if (!strcmp(a, "--image-cache-mb")) {
            if (parse_int(v, &iv, a)) return -1;
            if (iv < 1 || iv > 65536) { fprintf(stderr, "attngan serve: --image-cache-mb must be 1..65536\n"); return -1; }
            o->image_cache_mb = iv;
            image_opts = 1;
        } else if (!strcmp(a, "--public-url")) {
            if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) {
                fprintf(stderr, "attngan serve: --public-url must start with http:// or https://\n");
                return -1;
            }
            for (const char *p = v; *p; p++)
                if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == '"' || *p == '\\') {
                    fprintf(stderr, "attngan serve: --public-url holds a character a URL cannot (byte %ld)\n", (long)(p - v));
                    return -1;
                }
            if (strlen(v) > 300) { fprintf(stderr, "attngan serve: --public-url is longer than 300 characters\n"); return -1; }
            o->public_url = v;
            image_opts = 1;
        } else if (!strcmp(a, "--idle-timeout")) {
            if (parse_int(v, &iv, a)) return -1;
            if (iv < 1 || iv > 86400) { fprintf(stderr, "attngan serve: --idle-timeout must be 1..86400 seconds\n"); return -1; }
            o->idle_timeout = iv;
        } else {
            fprintf(stderr, "attngan serve: unknown option %s (try --help)\n", a);
            return -1;
        }
    }
    if (image_opts && !o->seed_api) {
        fprintf(stderr, "attngan serve: --image-ttl, --image-cache-mb and --public-url belong to --seed-api\n");
        return -1;
    }
    return 0;
}

int cmd_serve(int argc, char **argv) {
    ServeOpts o;
    int prc = parse_args(argc, argv, &o);
    if (prc) return prc > 0 ? 0 : 2;

    /* Every thread started from here on (OpenMP, libmicrohttpd, workers) inherits this mask, so
     * SIGINT and SIGTERM reach only the sigwaitinfo below. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (!o.threads) {
        int cores = omp_get_num_procs();
        const char *env = getenv("OMP_NUM_THREADS");
        if (env && atoi(env) > 0) cores = atoi(env);
        o.threads = cores / o.workers > 0 ? cores / o.workers : 1;
    }
    threads_set(o.threads);

    Server *s = calloc(1, sizeof *s);
    if (!s) return 1;
    s->o = o;
    double t0 = now_ms();
    char model_path[PATH_MAX];
    if (locate_resource(LOCATE_MODEL, o.model, model_path, sizeof model_path) || gen_model_load(&s->model, model_path)) {
        fprintf(stderr, "attngan serve: cannot load the model: %s\n", err_msg());
        free(s);
        return 2; /* as attngan generate: a model that cannot be loaded is bad input */
    }
    s->o.model = o.model = model_path;
    s->device = device_current(); /* loaded on the CPU, then moved there */
    if (s->device != DEVICE_CPU) gen_model_to_device(&s->model, s->device);
    pthread_mutex_init(&s->dev_mu, NULL);
    s->stages = gen_model_stages(&s->model);
    s->size = 64 << (s->stages - 1);
    {
        char tmp[1024];
        snprintf(tmp, sizeof tmp, "%s", o.model);
        size_t l = strlen(tmp);
        while (l > 1 && tmp[l - 1] == '/') tmp[--l] = 0;
        const char *base = strrchr(tmp, '/');
        snprintf(s->name, sizeof s->name, "%s", base ? base + 1 : tmp);
    }
    {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "status", "ok");
        cJSON_AddStringToObject(h, "model", s->name);
        cJSON_AddNumberToObject(h, "stages", s->stages);
        cJSON_AddNumberToObject(h, "size", s->size);
        cJSON_AddItemToObject(h, "model_info", model_json(s));
        cJSON_AddNumberToObject(h, "workers", o.workers);
        cJSON_AddNumberToObject(h, "threads", o.threads);
        cJSON_AddStringToObject(h, "device", device_name(s->device));
        s->health_base = cJSON_PrintUnformatted(h);
        cJSON_Delete(h);
    }
    if (figure_font_check() && !o.quiet)
        fprintf(stderr, "attngan serve: %s; attention figures will have no words\n", err_msg());

    int rc = 1, family = AF_INET, port = o.port;
    struct MHD_Daemon *d = NULL;
    int fd = listen_on(o.host, o.port, &family, &port);
    if (fd < 0) {
        fprintf(stderr, "attngan serve: %s\n", err_msg());
        goto out;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_mutex_init(&s->conn_mu, NULL);
    pthread_mutex_init(&s->img_mu, NULL);
    {
        int v6a = strchr(o.host, ':') != NULL;
        const char *shown = !strcmp(o.host, "0.0.0.0") || !strcmp(o.host, "::") ? "127.0.0.1" : o.host;
        snprintf(s->listen_addr, sizeof s->listen_addr, "%s%s%s:%d", v6a && shown == o.host ? "[" : "", shown,
                 v6a && shown == o.host ? "]" : "", port);
    }
    int reaper_started = 0;
    {
        /* every connection is a descriptor: raise the soft open-file limit to fit --max-connections */
        struct rlimit rl;
        rlim_t want = (rlim_t)o.max_conns + SERVE_FD_RESERVE;
        if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
            struct rlimit nl = rl;
            nl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
            if (setrlimit(RLIMIT_NOFILE, &nl) == 0) rl = nl;
            if (rl.rlim_cur < want) {
                int fit = rl.rlim_cur > 2 * SERVE_FD_RESERVE ? (int)(rl.rlim_cur - SERVE_FD_RESERVE) : (int)(rl.rlim_cur / 2);
                if (fit < 1) fit = 1;
                fprintf(stderr, "attngan serve: --max-connections %d lowered to %d: the open-file limit is %llu (ulimit -n)\n",
                        o.max_conns, fit, (unsigned long long)rl.rlim_cur);
                o.max_conns = s->o.max_conns = fit;
            }
        }
        char msg[160];
        snprintf(msg, sizeof msg, "the request did not arrive within %d s (--request-timeout); connection closed", o.request_timeout);
        char *body = json_error_body(msg, NULL);
        if (body && asprintf(&s->reply_408, "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                                            "Connection: close\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body) > 0)
            s->reply_408_len = strlen(s->reply_408);
        else
            s->reply_408 = NULL;
        free(body);
        if (!s->reply_408 || pthread_create(&s->reaper, NULL, reaper_main, s)) {
            fprintf(stderr, "attngan serve: cannot start the --request-timeout thread\n");
            close(fd);
            goto stop_workers;
        }
        reaper_started = 1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->seed_ctr = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    s->workers = calloc((size_t)o.workers, sizeof *s->workers);
    for (int i = 0; i < o.workers; i++) {
        if (pthread_create(&s->workers[i], NULL, worker_main, s)) {
            fprintf(stderr, "attngan serve: cannot start worker thread %d\n", i);
            close(fd);
            goto stop_workers;
        }
        s->n_workers++;
    }
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ITC |
                             MHD_USE_ERROR_LOG | (family == AF_INET6 ? MHD_USE_IPv6 : 0),
                         0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_LISTEN_SOCKET, fd,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)o.max_conns,
                         MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)o.max_conns_per_ip,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o.idle_timeout,
                         MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "attngan serve: cannot start the HTTP server (libmicrohttpd)\n");
        close(fd);
        goto stop_workers;
    }
    const char *h = o.host;
    int v6 = strchr(h, ':') != NULL;
    char steps[48] = "";
    if (s->model.steps >= 0) snprintf(steps, sizeof steps, ", %lld steps", s->model.steps);
    fprintf(stderr,
            "attngan serve: model %s (%d stage%s, %d px%s%s%s) loaded in %.1f s\n"
            "attngan serve: listening on http://%s%s%s:%d/ (workers %d, threads %d, device %s, max body %lld B, max caption %d,"
            " max connections %d (per address %d), request timeout %d s, idle timeout %d s)\n",
            o.model, s->stages, s->stages > 1 ? "s" : "", s->size, s->model.trained_on[0] ? ", trained on " : "",
            s->model.trained_on, steps, (now_ms() - t0) / 1e3, v6 ? "[" : "", h, v6 ? "]" : "", port, o.workers, o.threads,
            device_name(s->device), o.max_body, o.max_caption, o.max_conns, o.max_conns_per_ip, o.request_timeout,
            o.idle_timeout);
    if (o.seed_api)
        fprintf(stderr, "attngan serve: the seed's API (--seed-api): POST /api/v1.0/bird and /api/v1.0/birds answer 201 with image "
                        "URLs, kept %d s, at most %d MiB\n", o.image_ttl, o.image_cache_mb);

    /* wait for SIGINT / SIGTERM */
    int sig;
    for (;;) {
        sig = sigwaitinfo(&sigs, NULL);
        if (sig > 0) break;
        if (errno != EINTR) { sig = SIGTERM; break; }
    }
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    int busy = s->n_queued + s->n_running;
    pthread_mutex_unlock(&s->mu);
    fprintf(stderr, "attngan serve: %s: stopping; finishing %d generation%s (signal again to cancel the queued ones)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", busy, busy == 1 ? "" : "s");
    MHD_socket lfd = MHD_quiesce_daemon(d);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    double t_stop = now_ms();
    int cancelled = 0;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int inflight = s->inflight, gens = s->n_queued + s->n_running;
        pthread_mutex_unlock(&s->mu);
        if (inflight == 0 || (gens == 0 && now_ms() - t_stop > SERVE_SHUTDOWN_GRACE_S * 1e3)) break;
        struct timespec wait = {0, 50 * 1000 * 1000};
        int sg = sigtimedwait(&sigs, NULL, &wait);
        if (sg > 0 && !cancelled) {
            fprintf(stderr, "attngan serve: second signal: cancelling the queued requests\n");
            cancel_queued(s);
            cancelled = 1;
        }
    }
    MHD_stop_daemon(d);
    rc = 0;
stop_workers:
    if (reaper_started) {
        pthread_mutex_lock(&s->conn_mu);
        s->reaper_exit = 1;
        pthread_mutex_unlock(&s->conn_mu);
        pthread_join(s->reaper, NULL);
    }
    free(s->reply_408);
    pthread_mutex_destroy(&s->conn_mu);
    pthread_mutex_lock(&s->mu);
    s->workers_exit = 1;
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_workers; i++) pthread_join(s->workers[i], NULL);
    free(s->workers);
    pthread_cond_destroy(&s->work_cv);
    pthread_mutex_destroy(&s->mu);
    while (s->img_head) img_drop_head(s);
    pthread_mutex_destroy(&s->img_mu);
    if (rc == 0) fprintf(stderr, "attngan serve: stopped\n");
out:
    free(s->health_base);
    pthread_mutex_destroy(&s->dev_mu);
    gen_model_free(&s->model);
    figure_font_close();
    free(s);
    return rc;
}
