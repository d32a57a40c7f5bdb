/* fuzz_avi.c -- libFuzzer target: the RIFF AVI (MJPEG video) parser of src/io/clip_stream.c
 * over the input as a whole mapped clip file. */
#include "fuzz_clip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    ns_fuzz_clip_stream(data, n, "fuzz.avi", NS_CLIP_AVI, ns_clip_parse_avi_, 0);
    return 0;
}
