/* predict.c -- ns_predict_store: a head over a store's nights, as CSV
 * (format in include/nightshift/predict.h).
 *
 * Night by night, so memory holds one night's embeddings; rows stream to a
 * temporary file that is fsync'd and renamed, so a crash leaves no half CSV.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nightshift/csv.h"
#include "nightshift/frameset.h"
#include "nightshift/fsutil.h"
#include "nightshift/predict.h"
#include "nightshift/strbuf.h"

void ns_predict_summary_release(ns_predict_summary *sum)
{
    if (!sum)
        return;
    free(sum->per_class);
    memset(sum, 0, sizeof *sum);
}

static void append_rows(ns_strbuf *b, const ns_head *h, const ns_frameset *fs, const int32_t *top,
                        const float *p, const float *margin)
{
    for (size_t i = 0; i < fs->n; i++) {
        const ns_fs_clip *c = &fs->clips[fs->clip[i]];
        ns_csv_cell(b, c->sha256);
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, fs->member[i]);
        ns_strbuf_printf(b, ",%u,", fs->index[i]);
        ns_csv_cell(b, c->camera);
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, c->night);
        ns_strbuf_append(b, ",", 1);
        ns_csv_cell(b, h->classes[top[i]]);
        ns_strbuf_printf(b, ",%.6f,%.6f\n", (double)p[i], (double)margin[i]);
    }
}

/* One night: load, predict, append its rows to f. */
static ns_status one_night(ns_store *s, const ns_head *h, char night[NS_NIGHT_LEN], FILE *f,
                           const char *tmp, ns_predict_summary *sum, double *top_sum)
{
    ns_status st;
    ns_frameset fs;
    ns_strbuf b = {0};
    size_t *rows = NULL, n_rows = 0;
    float *prob = NULL, *p = NULL, *margin = NULL;
    int32_t *top = NULL;
    memset(&fs, 0, sizeof fs);
    st = ns_nights_clips(s, (char (*)[NS_NIGHT_LEN])night, 1, &rows, &n_rows);
    if (st == NS_ERR_NOT_FOUND || (st == NS_OK && n_rows == 0)) {
        st = NS_OK; /* a night of empty clips: nothing to predict */
        goto done;
    }
    if (st != NS_OK)
        goto done;
    if ((st = ns_frameset_load(s, h->model_id, h->d, rows, n_rows, &fs)) != NS_OK) {
        st = ns_error_wrap(st, "night %s (head %.12s expects embeddings of model %.12s)", night,
                           h->head_id, h->model_id);
        goto done;
    }
    if ((st = ns_head_check_model(h, fs.model_id, fs.d)) != NS_OK)
        goto done;
    const size_t n = fs.n, C = (size_t)h->n_classes;
    prob = malloc((n ? n : 1) * C * sizeof *prob);
    p = malloc((n ? n : 1) * sizeof *p);
    margin = malloc((n ? n : 1) * sizeof *margin);
    top = malloc((n ? n : 1) * sizeof *top);
    if (!prob || !p || !margin || !top) {
        st = ns_error(NS_ERR_NOMEM, "predict: out of memory for %zu frames of night %s", n,
                      night);
        goto done;
    }
    if ((st = ns_head_predict(h, fs.emb, n, prob)) != NS_OK)
        goto done;
    ns_head_top(prob, n, h->n_classes, top, p, margin);
    append_rows(&b, h, &fs, top, p, margin);
    if ((st = ns_strbuf_status(&b)) != NS_OK)
        goto done;
    if (b.len && fwrite(b.data, 1, b.len, f) != b.len) {
        st = ns_error(NS_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        sum->per_class[top[i]]++;
        *top_sum += p[i];
    }
    sum->n_frames += n;
    sum->n_clips += fs.n_clips;
done:
    ns_strbuf_release(&b);
    ns_frameset_release(&fs);
    free(rows);
    free(prob);
    free(p);
    free(margin);
    free(top);
    return st;
}

ns_status ns_predict_store(ns_store *s, const ns_head *h, const char *spec, const char *out_csv,
                           ns_predict_progress_fn progress, void *ctx, ns_predict_summary *sum)
{
    ns_status st;
    char (*nights)[NS_NIGHT_LEN] = NULL;
    size_t n_nights = 0;
    char tmp[PATH_MAX];
    FILE *f = NULL;
    double top_sum = 0.0;
    tmp[0] = '\0';
    memset(sum, 0, sizeof *sum);
    if ((st = ns_nights_select(s, spec, &nights, &n_nights)) != NS_OK)
        goto done;
    if (!(sum->per_class = calloc((size_t)h->n_classes, sizeof *sum->per_class))) {
        st = ns_error(NS_ERR_NOMEM, "predict: out of memory");
        goto done;
    }
    if ((st = ns_tmp_name(out_csv, tmp, sizeof tmp)) != NS_OK)
        goto done;
    if (!(f = fopen(tmp, "wb"))) {
        st = ns_error(NS_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        goto done;
    }
    fputs("clip,member,index,camera,night,class,probability,margin\n", f);
    for (size_t k = 0; k < n_nights; k++) {
        if ((st = one_night(s, h, nights[k], f, tmp, sum, &top_sum)) != NS_OK)
            goto done;
        if (progress)
            progress(ctx, k + 1, n_nights, sum->n_frames);
    }
    sum->n_nights = n_nights;
    sum->mean_top = sum->n_frames ? top_sum / (double)sum->n_frames : 0.0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        st = ns_error(NS_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
        goto done;
    }
    int rc = fclose(f);
    f = NULL;
    if (rc != 0) {
        st = ns_error(NS_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
        goto done;
    }
    st = ns_atomic_rename(tmp, out_csv);
done:
    if (f)
        fclose(f);
    if (st != NS_OK && tmp[0])
        unlink(tmp);
    if (st != NS_OK)
        ns_predict_summary_release(sum);
    free(nights);
    return st;
}
