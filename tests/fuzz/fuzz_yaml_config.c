/* fuzz_yaml_config: a training config file (src/nn/train_config.c: YAML through libyaml) and the
 * `--set KEY=VALUE` overrides. The input is the YAML file; each of its first 16 lines is also
 * tried as a --set assignment. On success the config must survive the round trips a run relies
 * on: JSON (config.json, read back on --resume) exactly, and the YAML dump. */
#include "fuzz.h"
#include "../../src/nn/train_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void round_trips(const TrainConfig *c) {
    char *js = train_config_to_json(c);
    TrainConfig *back = malloc(sizeof *back);
    train_config_default(back);
    if (train_config_from_json(back, js) != 0 || train_config_diff(c, back)) abort();
    free(js);
    char *yml = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&yml, &len);
    train_config_print(c, f);
    fclose(f);
    const char *path = fuzz_write("dump.yml", yml, len);
    free(yml);
    train_config_default(back);
    if (train_config_load(back, path) != 0 || train_config_diff(c, back)) abort();
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    TrainConfig *c = malloc(sizeof *c);
    train_config_default(c);
    const char *path = fuzz_write("in.yml", data, size);
    if (train_config_load(c, path) == 0) round_trips(c);
    char *text = fuzz_cstr(data, size), *save = NULL;
    int lines = 0;
    for (char *line = strtok_r(text, "\n", &save); line && lines < 16; line = strtok_r(NULL, "\n", &save), lines++)
        if (train_config_set(c, line) == 0) round_trips(c);
    free(text);
    free(c);
    return 0;
}
