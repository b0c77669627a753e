/* relevance.h: gen.h's relevance centroids, as `attngan export` and `attngan import --data`
 * measure them: the normalised mean of the unit LSTM codes of one caption per training image, and
 * of the training classes' Wikipedia sentences labelled not visual; model.json keeps them as
 * "relevance" (src/gen/gen.c reads them to score the pieces of a long text). */
#ifndef ATTNGAN_RELEVANCE_H
#define ATTNGAN_RELEVANCE_H

#include "../data/cub.h"
#include "../data/text.h"
#include "../data/wikipedia.h"
#include "../nn/text_encoder.h"

#include <cjson/cJSON.h>

/* Both centroids (E floats each) and how many texts made them; 0, or -1 with err_msg(). */
int relevance_centroids(const TextEncoder *te, const Vocab *v, const Cub *cub, const Wiki *w, float *cap, float *noise,
                        int *n_cap, int *n_noise);
/* model.json's "relevance" object: the centroids to 6 digits, the counts and the formula. */
void relevance_add_json(cJSON *mj, const float *cap, const float *noise, int E, int n_cap, int n_noise);
/* Opens the data (and DATA/../wikipedia unless wiki_dir), measures, adds "relevance" to mj. */
int relevance_measure(const TextEncoder *te, const Vocab *v, const char *data, const char *wiki_dir, cJSON *mj);

#endif
