/* repair.c -- verify --repair: damaged shards aside into quarantine/, the
 * catalog and view rebuilt from the good shards' own rows. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "nightshift/fsutil.h"
#include "nightshift/strbuf.h"
#include "store_internal.h"

/* The note beside a quarantined shard: why, its catalog entry, its clips. */
static ns_status write_note(ns_store *s, size_t k, const char *why, const char *note)
{
    const ns_shard_entry *e = &s->shards[k];
    char line[4 * NS_SOURCE_LEN + 512], src[4 * NS_SOURCE_LEN + 4], cam[4 * NS_CAMERA_LEN + 4];
    char ck[4 * NS_CHECKSUM_LEN + 4];
    ns_strbuf b = {0};
    ns_status st;
    ns_text_show(ck, sizeof ck, e->checksum, NS_CHECKSUM_LEN - 1);
    snprintf(line, sizeof line,
             "nightshift verify --repair moved this shard out of store '%s' at unix time %.0f.\n"
             "why: %s\n"
             "catalog entry: id %u, night %.10s, path %.255s, %u clips, %llu frames, %llu bytes, "
             "checksum %s\n"
             "what to do: ingest the source files of the clips below again (they are no longer "
             "in the catalog), or restore a good copy of the shard (its checksum is above) from "
             "a backup and ingest from it; then delete this file and the shard.\n"
             "clips (sha256, camera, source):\n",
             s->dir, (double)time(NULL), why, e->id, e->night, e->path, e->n_clips,
             (unsigned long long)e->n_frames, (unsigned long long)e->file_bytes, ck);
    ns_strbuf_append(&b, line, strlen(line));
    for (size_t i = 0; i < s->n_clips; i++) {
        const ns_catalog_clip *c = &s->clips[i];
        ns_clip_record rec;
        if (c->shard != k)
            continue;
        /* The source is in the shard's own /clips: often still readable. */
        if (ns_store_clip_record(s, i, &rec) == NS_OK && !strncmp(rec.sha256, c->sha256, 64))
            ns_text_show(src, sizeof src, rec.source, NS_SOURCE_LEN - 1);
        else
            snprintf(src, sizeof src, "(unreadable)");
        ns_text_show(cam, sizeof cam, c->camera, NS_CAMERA_LEN - 1);
        snprintf(line, sizeof line, "%.64s %s %s\n", c->sha256, cam, src);
        ns_strbuf_append(&b, line, strlen(line));
    }
    ns_error_clear();
    if ((st = ns_strbuf_status(&b)) == NS_OK)
        st = ns_write_file_atomic(note, b.data, b.len);
    ns_strbuf_release(&b);
    return st;
}

/* Moves shard k into DIR/quarantine/ with its note. */
static ns_status quarantine(ns_store *s, size_t k, ns_repair_report *rep)
{
    const ns_shard_entry *e = &s->shards[k];
    char qdir[PATH_MAX], from[PATH_MAX], to[PATH_MAX], note[PATH_MAX + 8], why[1024];
    const char *base = strrchr(e->path, '/');
    struct stat sb;
    ns_status st;
    why[0] = '\0';
    if (ns_store_shard_check(s, k) != NS_OK)
        ns_errmsg_copy(why, sizeof why);
    else
        snprintf(why, sizeof why, "its checksum matches, but it cannot be read as a shard");
    if ((st = ns_store_path(s, "quarantine", qdir, sizeof qdir)) != NS_OK ||
        (st = ns_store_path(s, e->path, from, sizeof from)) != NS_OK ||
        (st = ns_mkdir_p(qdir)) != NS_OK)
        return st;
    base = base ? base + 1 : e->path;
    if ((size_t)snprintf(to, sizeof to, "%s/%.10s-%s", qdir, e->night, base) >= sizeof to)
        return ns_error(NS_ERR_USAGE, "store path too long: '%s'", s->dir);
    snprintf(note, sizeof note, "%s.txt", to);
    if ((st = write_note(s, k, why, note)) != NS_OK)
        return st;
    if (stat(from, &sb) != 0) {
        ns_warn(&rep->actions, "shard '%s' is missing: dropped from the catalog (note '%s')",
                from, note);
        return NS_OK;
    }
    if (stat(to, &sb) == 0)
        return ns_error(NS_ERR_EXISTS, "cannot quarantine '%s': '%s' exists", from, to);
    if ((st = ns_atomic_rename(from, to)) != NS_OK)
        return st;
    ns_warn(&rep->actions, "moved damaged shard '%s' to '%s' (%u clips, %llu frames; why and "
            "what to do: '%s')", from, to, e->n_clips, (unsigned long long)e->n_frames, note);
    return NS_OK;
}

/* Reads good shard k's entry and clip rows from the file itself into the new
 * tables (sh, cl at *n_cl); first is its first view row. */
static ns_status read_good(ns_store *s, size_t k, ns_shard_entry *sh, ns_catalog_clip *cl,
                           size_t cap_cl, size_t *n_cl, uint32_t new_k, uint64_t first)
{
    ns_shard_handle *h = NULL;
    char path[PATH_MAX], night[64] = "";
    ns_clip_record *recs = NULL;
    uint32_t *fclip = NULL, id = 0;
    uint64_t rows = 0, frames = 0;
    hid_t t = H5I_INVALID_HID, d = H5I_INVALID_HID;
    struct stat sb;
    ns_status st;
    *sh = s->shards[k];
    if ((st = ns_store_path(s, sh->path, path, sizeof path)) != NS_OK ||
        (st = ns_store_shard_open(s, k, &h)) != NS_OK ||
        (st = ns_h5_rows(h->clips, path, "/clips", &rows)) != NS_OK ||
        (st = ns_h5_rows(h->frames, path, "/frames", &frames)) != NS_OK ||
        (st = ns_h5_read_attr(h->file, path, "shard_id", H5T_NATIVE_UINT32, &id)) != NS_OK ||
        (st = ns_h5_read_str_attr(h->file, path, "night", night, sizeof night)) != NS_OK)
        goto done;
    if (rows > cap_cl - *n_cl || rows > UINT32_MAX || stat(path, &sb) != 0) {
        st = ns_error(NS_ERR_CORRUPT, "shard '%s': %llu clip rows do not fit", path,
                      (unsigned long long)rows);
        goto done;
    }
    recs = calloc(rows ? rows : 1, sizeof *recs);
    fclip = calloc(frames ? frames : 1, sizeof *fclip);
    if (!recs || !fclip) {
        st = ns_error(NS_ERR_NOMEM, "no memory to read shard '%s'", path);
        goto done;
    }
    if ((t = ns_h5_clip_record_type()) < 0 ||
        (rows && H5Dread(h->clips, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, recs) < 0) ||
        (d = H5Dopen2(h->file, "frame/clip", H5P_DEFAULT)) < 0 ||
        (frames && H5Dread(d, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, fclip) < 0)) {
        st = ns_h5_error(NS_ERR_CORRUPT, "shard '%s': cannot read /clips or /frame/clip", path);
        goto done;
    }
    sh->id = id;
    snprintf(sh->night, sizeof sh->night, "%.10s", night);
    sh->n_clips = (uint32_t)rows;
    sh->n_frames = frames;
    sh->file_bytes = (uint64_t)sb.st_size;
    for (uint64_t i = 0; i < rows; i++) {
        ns_catalog_clip *c = &cl[*n_cl + i];
        const ns_clip_record *r = &recs[i];
        memset(c, 0, sizeof *c);
        memcpy(c->sha256, r->sha256, NS_SHA256_HEX - 1);
        c->shard = new_k;
        c->row = (uint32_t)i;
        memcpy(c->night, r->night, NS_NIGHT_LEN - 1);
        memcpy(c->camera, r->camera, NS_CAMERA_LEN - 1);
        c->n_damaged = r->frames_damaged;
        c->n_failed = r->frames_failed;
        c->qc_flags = r->qc_flags;
    }
    /* Frames of a clip are contiguous, in clip order (the writer appends them so). */
    for (uint64_t f = 0; f < frames; f++) {
        if (fclip[f] >= rows || (f > 0 && fclip[f] < fclip[f - 1])) {
            st = ns_error(NS_ERR_CORRUPT, "shard '%s': frame %llu names clip row %u of %llu",
                          path, (unsigned long long)f, fclip[f], (unsigned long long)rows);
            goto done;
        }
        cl[*n_cl + fclip[f]].n_frames++;
    }
    for (uint64_t i = 0; i < rows; i++) {
        cl[*n_cl + i].first_frame = first;
        first += cl[*n_cl + i].n_frames;
    }
    *n_cl += rows;
done:
    if (d >= 0) H5Dclose(d);
    if (t >= 0) H5Tclose(t);
    free(recs);
    free(fclip);
    return st;
}

/* The new tables from the good shards, in catalog order, then installed. */
static ns_status rebuild(ns_store *s, const unsigned char *bad, ns_repair_report *rep)
{
    ns_shard_entry *sh = NULL;
    ns_catalog_clip *cl = NULL;
    size_t n_sh = 0, n_cl = 0, cap_cl = 0;
    uint64_t first = 0;
    ns_status st = NS_OK;
    for (size_t k = 0; k < s->n_shards; k++) {
        ns_shard_handle *h;
        uint64_t rows = 0;
        char path[PATH_MAX];
        if (bad[k])
            continue;
        if ((st = ns_store_path(s, s->shards[k].path, path, sizeof path)) != NS_OK ||
            (st = ns_store_shard_open(s, k, &h)) != NS_OK ||
            (st = ns_h5_rows(h->clips, path, "/clips", &rows)) != NS_OK)
            return st;
        cap_cl += (size_t)rows;
    }
    sh = calloc(s->n_shards ? s->n_shards : 1, sizeof *sh);
    cl = calloc(cap_cl ? cap_cl : 1, sizeof *cl);
    if (!sh || !cl) {
        st = ns_error(NS_ERR_NOMEM, "no memory to rebuild the catalog of '%s'", s->dir);
        goto done;
    }
    for (size_t k = 0; k < s->n_shards; k++) {
        if (bad[k]) {
            rep->shards_quarantined++;
            rep->clips_dropped += s->shards[k].n_clips;
            rep->frames_dropped += s->shards[k].n_frames;
            continue;
        }
        if ((st = read_good(s, k, &sh[n_sh], cl, cap_cl, &n_cl, (uint32_t)n_sh, first)) != NS_OK)
            goto done;
        first += sh[n_sh++].n_frames;
    }
    ns_store_cache_drop(s);
    free(s->shard_checked); /* indexed by the old rows */
    s->shard_checked = NULL;
    s->n_checked = 0;
    s->n_shards = s->n_clips = 0;
    if ((st = ns_store_reserve(s, n_sh, n_cl)) != NS_OK)
        goto done;
    memcpy(s->shards, sh, n_sh * sizeof *sh);
    memcpy(s->clips, cl, n_cl * sizeof *cl);
    s->n_shards = n_sh;
    s->n_clips = n_cl;
    rep->shards_kept = n_sh;
    if ((st = ns_store_index_rebuild(s)) != NS_OK || (st = ns_catalog_save(s, NULL)) != NS_OK)
        goto done;
    rep->rebuilt = 1;
    st = ns_view_write(s);
done:
    free(sh);
    free(cl);
    return st;
}

ns_status ns_store_repair(const char *dir, int wait, ns_repair_report *rep)
{
    ns_store *s = NULL;
    ns_verify_report v;
    ns_status st;
    char qdir[PATH_MAX];
    memset(rep, 0, sizeof *rep);
    memset(&v, 0, sizeof v);
    if ((st = ns_store_open_repair(dir, wait, &s)) != NS_OK)
        return st;
    if ((st = ns_store_verify(s, &v)) != NS_OK)
        goto done;
    rep->problems_before = v.n_errors;
    if (v.n_errors == 0 && ns_view_is_current(s)) {
        rep->shards_kept = s->n_shards;
        goto done;
    }
    /* Aside first: a crash before the new catalog leaves shards it names
     * missing, which the rerun drops; never a bad shard read as an orphan. */
    for (size_t k = 0; k < s->n_shards; k++)
        if (v.shard_bad[k] && (st = quarantine(s, k, rep)) != NS_OK)
            goto done;
    if (v.n_bad_shards > 0 && ns_store_path(s, "quarantine", qdir, sizeof qdir) == NS_OK &&
        (st = ns_fsync_dir(qdir)) != NS_OK)
        goto done;
    st = rebuild(s, v.shard_bad, rep);
done:
    ns_verify_report_release(&v);
    ns_store_close(s);
    return st;
}

void ns_repair_report_release(ns_repair_report *rep)
{
    if (!rep)
        return;
    ns_warnings_release(&rep->actions);
    memset(rep, 0, sizeof *rep);
}
