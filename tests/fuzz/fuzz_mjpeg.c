/* fuzz_mjpeg.c -- libFuzzer target: the raw MJPEG stream splitter of src/io/clip_stream.c
 * over the input as a whole mapped clip file. */
#include "fuzz_clip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    ns_fuzz_clip_stream(data, n, "fuzz.mjpeg", NS_CLIP_MJPEG, ns_clip_parse_mjpeg_, 1);
    return 0;
}
