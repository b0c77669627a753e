/* config.c: model hyper-parameters; see config.h. */
#include "config.h"
#include "../core/error.h"
#include "../io/json_check.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>

void model_config_default(ModelConfig *c) {
    memset(c, 0, sizeof *c);
    c->gf_dim = 32;
    c->df_dim = 64;
    c->condition_dim = 256;
    c->r_num = 2;
    c->embedding_dim = 256;
    c->words_num = 18;
    c->n_words = 5450;
    c->word_dim = 300;
    c->rnn_drop = 0.5f;
    c->zsl_rdc = 1000;
    c->zsl_z = 100;
    c->zsl_h = 4096;
    c->zsl_z_std = 1.0f;
    c->zsl_g_lr_scale = 1.0f;
    c->zsl_critic_steps = 1;
    c->zsl_gp_lambda = 10.0f;
    c->num_classes = 200;
    c->zsl_lambda = 1.0f;
    c->lambda_zsl = 1.0f;
    c->gamma1 = 4.0f;
    c->gamma2 = 5.0f;
    c->gamma3 = 10.0f;
    c->lambda = 5.0f;
    c->g_lr = 2e-4f;
    c->d_lr = 2e-4f;
    c->encoder_lr = 2e-3f;
    c->beta1 = 0.5f;
    c->beta2 = 0.999f;
    c->rnn_grad_clip = 0.25f;
    c->ema = 0.999f;
    c->branch_num = 3;
    c->correct_mask = 0;
    c->g_variant = G_VARIANT_NET;
    c->ca_net = 0;
    c->no_zsl_g = 0;
    c->z_dim = 100;
}

static int get_int(cJSON *root, const char *key, int *dst) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsBool(v)) { *dst = cJSON_IsTrue(v); return 0; }
    int64_t x;
    if (!cJSON_IsNumber(v)) return err_set("config key %s: expected an integer", key);
    if (!json_whole(v, INT_MIN, INT_MAX, &x))
        return err_set("config key %s: expected an integer from %d to %d, got %.17g", key, INT_MIN, INT_MAX, v->valuedouble);
    *dst = (int)x;
    return 0;
}

/* A double that fits a float (checked before the cast). */
static int to_float(const cJSON *v, const char *key, float *dst) {
    if (!cJSON_IsNumber(v)) return err_set("config key %s: expected a number", key);
    if (!(fabs(v->valuedouble) <= FLT_MAX)) return err_set("config key %s: %.17g is out of a float's range", key, v->valuedouble);
    *dst = (float)v->valuedouble;
    return 0;
}

static int get_float(cJSON *root, const char *key, float *dst) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    return to_float(v, key, dst);
}

int model_config_from_json(ModelConfig *c, const char *json) {
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set("config is not a JSON object");
    }
    if (json_no_duplicate_keys(root)) {
        cJSON_Delete(root);
        return err_prefix("config");
    }
    int rc = 0;
    rc |= get_int(root, "GF_DIM", &c->gf_dim);
    rc |= get_int(root, "DF_DIM", &c->df_dim);
    rc |= get_int(root, "CONDITION_DIM", &c->condition_dim);
    rc |= get_int(root, "R_NUM", &c->r_num);
    rc |= get_int(root, "EMBEDDING_DIM", &c->embedding_dim);
    rc |= get_int(root, "WORDS_NUM", &c->words_num);
    rc |= get_int(root, "N_WORDS", &c->n_words);
    rc |= get_int(root, "WORD_DIM", &c->word_dim);
    rc |= get_float(root, "RNN_DROP", &c->rnn_drop);
    rc |= get_int(root, "ZSL_RDC", &c->zsl_rdc);
    rc |= get_int(root, "ZSL_Z", &c->zsl_z);
    rc |= get_int(root, "ZSL_H", &c->zsl_h);
    rc |= get_float(root, "ZSL_Z_STD", &c->zsl_z_std);
    rc |= get_int(root, "NUM_CLASSES", &c->num_classes);
    rc |= get_float(root, "ZSL_LAMBDA", &c->zsl_lambda);
    rc |= get_float(root, "LAMBDA_ZSL", &c->lambda_zsl);
    rc |= get_float(root, "GAMMA1", &c->gamma1);
    rc |= get_float(root, "GAMMA2", &c->gamma2);
    rc |= get_float(root, "GAMMA3", &c->gamma3);
    rc |= get_float(root, "LAMBDA", &c->lambda);
    rc |= get_float(root, "G_LR", &c->g_lr);
    rc |= get_float(root, "D_LR", &c->d_lr);
    rc |= get_float(root, "ENCODER_LR", &c->encoder_lr);
    rc |= get_float(root, "RNN_GRAD_CLIP", &c->rnn_grad_clip);
    rc |= get_float(root, "EMA", &c->ema);
    rc |= get_int(root, "branch", &c->branch_num);
    rc |= get_int(root, "correct_mask", &c->correct_mask);
    rc |= get_int(root, "CA_NET", &c->ca_net);
    rc |= get_int(root, "Z_DIM", &c->z_dim);
    cJSON *betas = cJSON_GetObjectItemCaseSensitive(root, "BETAS");
    if (betas) {
        if (!cJSON_IsArray(betas) || cJSON_GetArraySize(betas) != 2 || !cJSON_IsNumber(betas->child) ||
            !cJSON_IsNumber(betas->child->next))
            rc = err_set("config key BETAS: expected two numbers");
        else {
            float b1 = c->beta1, b2 = c->beta2;
            rc |= to_float(betas->child, "BETAS[0]", &b1) || to_float(betas->child->next, "BETAS[1]", &b2);
            if (!rc) c->beta1 = b1, c->beta2 = b2;
        }
    }
    cJSON_Delete(root);
    return rc ? -1 : 0;
}
