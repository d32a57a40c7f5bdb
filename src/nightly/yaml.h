/* yaml.h -- libcyaml behind one call, shared by src/nightly only.
 *
 * libcyaml reports a problem as a log message followed by a backtrace of
 * "(line: N, column: M)" frames; ns_yaml_load collects them and returns one
 * message "FILE:LINE:COL: <problem> (in a.b.c)" that names the innermost
 * place, which is what a person editing the file needs.
 */
#ifndef NIGHTSHIFT_NIGHTLY_YAML_H
#define NIGHTSHIFT_NIGHTLY_YAML_H

#include <cyaml/cyaml.h>

#include "nightshift/status.h"

/* Loads path against schema into *out (free with ns_yaml_free).  With
 * ignore_unknown, keys the schema lacks are skipped (files other tools
 * write and may extend); otherwise they are errors.  NS_ERR_USAGE for a
 * config file that does not fit, bad_status for other files (NS_ERR_FORMAT
 * for a report someone else wrote, say); NS_ERR_NOT_FOUND when missing. */
ns_status ns_yaml_load(const char *path, const cyaml_schema_value_t *schema, void **out,
                       int ignore_unknown, ns_status bad_status);

void ns_yaml_free(const cyaml_schema_value_t *schema, void *data);

#endif
