/* fuzz_model.c -- libFuzzer target: the model graph loader (src/store/modelfile.c
 * reading, src/embed/model.c checking and building, BatchNorm folding) over
 * an in-memory HDF5 image (ns_model_load_image: HDF5's core driver). */
#include <hdf5.h>

#include "nightshift/model.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    ns_model *m = NULL;
    if (ns_model_load_image(data, n, "fuzz.model.h5", &m) == NS_OK) {
        ns_strbuf sb = {0};
        NS_FUZZ_CHECK(m->input >= 0 && (size_t)m->input < m->n_nodes);
        NS_FUZZ_CHECK(m->output >= 0 && (size_t)m->output < m->n_nodes);
        (void)ns_model_describe(m, &sb);
        (void)ns_model_param_count(m);
        ns_strbuf_release(&sb);
        ns_model_free(m);
    } else {
        NS_FUZZ_CHECK(m == NULL);
        ns_fuzz_check_text(ns_errmsg());
    }
    /* Every HDF5 object the loader opened is closed again, on every path. */
    ssize_t open_ids = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open_ids != 0) {
        fprintf(stderr, "fuzz: %zd HDF5 objects left open by the model loader\n", open_ids);
        abort();
    }
    return 0;
}
