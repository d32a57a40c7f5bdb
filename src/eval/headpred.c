/* headpred.c -- a head's probabilities on an evaluation set's rows. */
#include <stdlib.h>
#include <string.h>

#include "nightshift/evalset.h"

/* Rows gathered per predict call: a few MB of embeddings at d = 512. */
#define NS_HEADPRED_BATCH 2048

ns_status ns_eval_pred_from_head(const ns_eval_set *es, const ns_dataset *ds, const ns_head *h,
                                 ns_eval_pred *out)
{
    ns_status st;
    float *emb = NULL, *prob = NULL;
    size_t d = (size_t)ds->d;
    memset(out, 0, sizeof *out);
    if ((st = ns_head_check_model(h, ds->model_id, ds->d)) != NS_OK)
        return st;
    emb = malloc(sizeof *emb * NS_HEADPRED_BATCH * d);
    prob = malloc(sizeof *prob * es->n * (size_t)h->n_classes);
    if (!emb || !prob) {
        st = ns_error(NS_ERR_NOMEM, "out of memory predicting %zu frames", es->n);
        goto done;
    }
    for (size_t i0 = 0; i0 < es->n; i0 += NS_HEADPRED_BATCH) {
        size_t m = es->n - i0 < NS_HEADPRED_BATCH ? es->n - i0 : NS_HEADPRED_BATCH;
        for (size_t i = 0; i < m; i++)
            memcpy(emb + i * d, ds->emb + es->ds_row[i0 + i] * d, sizeof *emb * d);
        st = ns_head_predict(h, emb, m, prob + i0 * (size_t)h->n_classes);
        if (st != NS_OK)
            goto done;
    }
    st = ns_eval_pred_from_probs(es, ds, prob, h->n_classes,
                                 (const char(*)[NS_LABEL_LEN])h->classes, out);
done:
    free(emb);
    free(prob);
    return st;
}
