/* test_safetensors.c: safetensors round trip over every dtype, half-precision conversions, and
 * one test per kind of bad file (each must give a clear error, never a crash). */
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[256];

static void write_raw(const char *path, const char *header, const void *data, size_t data_len, long long claimed_len) {
    FILE *f = fopen(path, "wb");
    CHECK(f, "cannot write %s", path);
    unsigned long long n = claimed_len >= 0 ? (unsigned long long)claimed_len : strlen(header);
    unsigned char h8[8];
    for (int i = 0; i < 8; i++) h8[i] = (unsigned char)(n >> (8 * i));
    fwrite(h8, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    if (data_len) fwrite(data, 1, data_len, f);
    fclose(f);
}

/* Expects st_open to fail with a message containing `needle`. */
static void expect_bad(const char *what, const char *path, const char *needle) {
    SafeTensors st;
    int rc = st_open(&st, path);
    if (rc == 0) st_close(&st);
    EXPECT(rc == -1 && strstr(err_msg(), needle) && strstr(err_msg(), path), "%s: rc %d, message '%s' (want '%s')", what, rc,
           rc ? err_msg() : "", needle);
}

static void test_round_trip(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/ok.safetensors", g_dir);
    StWriter *w = st_writer_new();
    float f32[6] = {1.5f, -2.25f, 0.0f, 3.0e-5f, 65504.0f, -1e-8f};
    st_writer_add_f32(w, "f32", 2, (int[]){2, 3}, f32);
    uint16_t f16[6], bf16[6];
    for (int i = 0; i < 6; i++) { f16[i] = st_f32_to_f16(f32[i]); bf16[i] = st_f32_to_bf16(f32[i]); }
    st_writer_add(w, "f16", ST_F16, 1, (int64_t[]){6}, f16);
    st_writer_add(w, "bf16", ST_BF16, 2, (int64_t[]){3, 2}, bf16);
    int64_t i64[3] = {-5, 0, 1LL << 40};
    st_writer_add(w, "i64", ST_I64, 1, (int64_t[]){3}, i64);
    int32_t i32[2] = {7, -9};
    st_writer_add(w, "i32", ST_I32, 1, (int64_t[]){2}, i32);
    uint8_t u8[4] = {0, 1, 200, 255};
    st_writer_add(w, "u8", ST_U8, 3, (int64_t[]){1, 2, 2}, u8);
    double f64[2] = {0.1, -3.5};
    st_writer_add(w, "f64", ST_F64, 1, (int64_t[]){2}, f64);
    float scalar = 4.0f;
    st_writer_add(w, "scalar", ST_F32, 0, NULL, &scalar);
    st_writer_meta(w, "format", "pt");
    st_writer_meta(w, "config", "{\"a\": 1}");
    EXPECT(st_writer_write(w, path) == 0, "write: %s", err_msg());
    st_writer_free(w);

    SafeTensors st;
    if (!EXPECT(st_open(&st, path) == 0, "open: %s", err_msg())) return;
    EXPECT(st.n == 8, "tensor count %d", st.n);
    float got[6];
    EXPECT(st_read_f32(&st, "f32", got, 6) == 0 && memcmp(got, f32, sizeof got) == 0, "f32 round trip");
    EXPECT(st_read_f32(&st, "f16", got, 6) == 0, "f16 read");
    double mx;
    EXPECT(rel_err(got, f32, 6, &mx) < 1e-3, "f16 values (max err %g)", mx);
    EXPECT(st_read_f32(&st, "bf16", got, 6) == 0 && rel_err(got, f32, 6, &mx) < 1e-2, "bf16 values (max err %g)", mx);
    int64_t gi[3];
    EXPECT(st_read_i64(&st, "i64", gi, 3) == 0 && gi[0] == -5 && gi[2] == (1LL << 40), "i64 values");
    EXPECT(st_read_i64(&st, "i32", gi, 2) == 0 && gi[0] == 7 && gi[1] == -9, "i32 values");
    EXPECT(st_read_f32(&st, "u8", got, 4) == 0 && got[2] == 200.0f && got[3] == 255.0f, "u8 values");
    EXPECT(st_read_f32(&st, "f64", got, 2) == 0 && got[0] == 0.1f && got[1] == -3.5f, "f64 values");
    EXPECT(st_read_f32(&st, "scalar", got, 1) == 0 && got[0] == 4.0f && st_find(&st, "scalar")->ndim == 0, "0-d tensor");
    const StTensor *t = st_find(&st, "u8");
    EXPECT(t && t->ndim == 3 && t->shape[0] == 1 && t->shape[2] == 2 && t->dtype == ST_U8, "u8 shape and dtype");
    EXPECT(st_meta(&st, "format") && !strcmp(st_meta(&st, "format"), "pt") && st_meta(&st, "config"), "metadata");
    /* misuse: wrong count, absent tensor, float read of an integer request */
    EXPECT(st_read_f32(&st, "f32", got, 5) == -1 && strstr(err_msg(), "6 elements"), "element-count mismatch: %s", err_msg());
    EXPECT(st_read_f32(&st, "nope", got, 1) == -1 && strstr(err_msg(), "no tensor 'nope'"), "absent tensor: %s", err_msg());
    EXPECT(st_read_i64(&st, "f32", gi, 6) == -1 && strstr(err_msg(), "integer"), "integer read of F32: %s", err_msg());
    /* alignment: every tensor's offset is a multiple of its element size */
    int bad = 0;
    for (int i = 0; i < st.n; i++) bad += st.tensors[i].begin % st_dtype_size(st.tensors[i].dtype) != 0;
    EXPECT(bad == 0, "writer leaves %d tensors unaligned", bad);
    st_close(&st);
}

static void test_half(void) {
    EXPECT(st_f32_to_f16(1.0f) == 0x3c00 && st_f32_to_f16(-2.0f) == 0xc000 && st_f32_to_f16(65504.0f) == 0x7bff, "f16 encodings");
    EXPECT(st_f32_to_f16(1e6f) == 0x7c00 && st_f32_to_f16(5.9604645e-8f) == 0x0001 && st_f32_to_f16(1e-9f) == 0, "f16 overflow/subnormal");
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* NaN payloads */
        if (st_f32_to_f16(st_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    EXPECT(bad == 0, "f16 -> f32 -> f16 changes %d of 65536 values", bad);
    EXPECT(st_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00 && st_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02, "f16 rounds to nearest even");
    EXPECT(st_f32_to_bf16(1.0f) == 0x3f80 && st_bf16_to_f32(0x3f80) == 1.0f && st_bf16_to_f32(0xc040) == -3.0f, "bf16 encodings");
}

static void test_bad_files(void) {
    char p[300];
    float data[4] = {1, 2, 3, 4};
    const char *good = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";

    snprintf(p, sizeof p, "%s/missing.safetensors", g_dir);
    expect_bad("missing file", p, "cannot open");

    snprintf(p, sizeof p, "%s/short.safetensors", g_dir);
    FILE *f = fopen(p, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    expect_bad("file shorter than 8 bytes", p, "too short");

    snprintf(p, sizeof p, "%s/truncated.safetensors", g_dir);
    write_raw(p, good, data, 10, -1);
    expect_bad("truncated data", p, "beyond the data area");

    snprintf(p, sizeof p, "%s/liar.safetensors", g_dir);
    write_raw(p, good, data, 16, 100000);
    expect_bad("header length beyond the file", p, "exceeds");

    snprintf(p, sizeof p, "%s/liar_short.safetensors", g_dir);
    write_raw(p, good, data, 16, 20); /* claims a shorter header: cut JSON */
    expect_bad("header length shorter than the JSON", p, "not valid JSON");

    snprintf(p, sizeof p, "%s/range.safetensors", g_dir);
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,32]}}", data, 16, -1);
    expect_bad("offsets out of range", p, "beyond the data area");

    snprintf(p, sizeof p, "%s/backwards.safetensors", g_dir);
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", data, 16, -1);
    expect_bad("end before begin", p, "end before begin");

    snprintf(p, sizeof p, "%s/overlap.safetensors", g_dir);
    write_raw(p,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
              data, 16, -1);
    expect_bad("overlapping tensors", p, "overlap");

    snprintf(p, sizeof p, "%s/dtype.safetensors", g_dir);
    write_raw(p, "{\"a\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,4]}}", data, 16, -1);
    expect_bad("unknown dtype", p, "unknown dtype 'Q4'");

    snprintf(p, sizeof p, "%s/size.safetensors", g_dir);
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", data, 16, -1);
    expect_bad("shape and byte count disagree", p, "need 12");

    snprintf(p, sizeof p, "%s/json.safetensors", g_dir);
    write_raw(p, "{\"a\": [1, 2", data, 16, -1);
    expect_bad("broken JSON", p, "not valid JSON");

    snprintf(p, sizeof p, "%s/shape.safetensors", g_dir);
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", data, 16, -1);
    expect_bad("negative dimension", p, "non-negative integer");

    snprintf(p, sizeof p, "%s/nodtype.safetensors", g_dir);
    write_raw(p, "{\"a\":{\"shape\":[4],\"data_offsets\":[0,16]}}", data, 16, -1);
    expect_bad("missing dtype", p, "dtype");

    snprintf(p, sizeof p, "%s/meta.safetensors", g_dir);
    write_raw(p, "{\"__metadata__\":{\"k\":3},\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", data, 16, -1);
    expect_bad("non-string metadata", p, "not a string");

    /* found by fuzzing (tests/fuzz/regress/safetensors): a second __metadata__ overran the first
     * one's arrays and leaked them; a name twice made two tensors under one name */
    snprintf(p, sizeof p, "%s/dupmeta.safetensors", g_dir);
    write_raw(p, "{\"__metadata__\":{\"k\":\"1\",\"l\":\"3\",\"m\":\"4\"},\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
              "\"__metadata__\":{\"k\":\"2\"}}", data, 16, -1);
    expect_bad("__metadata__ twice", p, "duplicate key \"__metadata__\"");
    snprintf(p, sizeof p, "%s/dupname.safetensors", g_dir);
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
              data, 16, -1);
    expect_bad("a tensor name twice", p, "duplicate key \"a\"");
    snprintf(p, sizeof p, "%s/dupinner.safetensors", g_dir);
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"dtype\":\"F16\",\"data_offsets\":[0,16]}}", data, 16, -1);
    expect_bad("a field twice", p, "duplicate key \"dtype\" (in \"a\")");
    /* offsets beyond 2^64 (an undefined cast before), fractions, negatives */
    snprintf(p, sizeof p, "%s/huge_off.safetensors", g_dir);
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[1e20,1e20]}}", data, 16, -1);
    expect_bad("an offset beyond 2^64", p, "data_offsets[0] = 1e+20 is not a whole number");
    snprintf(p, sizeof p, "%s/frac_off.safetensors", g_dir);
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,15.5]}}", data, 16, -1);
    expect_bad("a fractional offset", p, "data_offsets[1] = 15.5 is not a whole number");
    snprintf(p, sizeof p, "%s/neg_off.safetensors", g_dir);
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[-1,0]}}", data, 16, -1);
    expect_bad("a negative offset", p, "data_offsets[0] = -1 is not a whole number");

    snprintf(p, sizeof p, "%s/notst.safetensors", g_dir);
    write_raw(p, "[1,2,3]", data, 16, -1);
    expect_bad("not an object", p, "does not start with '{'");
}

int main(void) {
    test_begin("test_safetensors");
    snprintf(g_dir, sizeof g_dir, "%s/attngan_st_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(g_dir), "mkdtemp");
    test_round_trip();
    test_half();
    test_bad_files();
    char cmd[320];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", g_dir);
    return test_end();
}
