/* csv.h -- RFC 4180 CSV reading (manifests, label imports) and cell quoting.
 *
 * The reader takes a whole file in memory; fields may be quoted, contain
 * commas, doubled quotes and newlines.  A UTF-8 BOM is skipped; CRLF and
 * LF line ends both work.  Line numbers are tracked for error messages.
 * NUL bytes are kept in place (a field then ends early in C terms) and
 * counted per record in nul_bytes, so callers can refuse such records
 * instead of silently reading a truncated value.
 */
#ifndef NIGHTSHIFT_CSV_H
#define NIGHTSHIFT_CSV_H

#include <stddef.h>

#include "nightshift/status.h"
#include "nightshift/strbuf.h"

#define NS_CSV_MAX_FIELDS 64

typedef struct ns_csv_reader {
    char *text;                 /* owned copy of the file, modified in place */
    size_t len, pos;
    size_t line;                /* 1-based line where the current record started */
    size_t next_line;           /* private: line the reader is on */
    char *fields[NS_CSV_MAX_FIELDS];
    size_t n_fields;
    size_t nul_bytes;           /* NUL bytes inside the current record */
    char path[1024];
} ns_csv_reader;

/* Reads the whole file.  NS_ERR_IO naming the file when it cannot. */
ns_status ns_csv_open(const char *path, ns_csv_reader *r);
/* Next record into r->fields; *more = 0 at end of file.  NS_ERR_FORMAT with
 * file and line for an unterminated quote (the rest of the file is that
 * field: reading is over) or too many fields (the record is skipped whole,
 * so reading can go on with the next one). */
ns_status ns_csv_next(ns_csv_reader *r, int *more);
/* Column index of name in the current record (the header), or -1. */
int ns_csv_column(const ns_csv_reader *r, const char *name);
void ns_csv_close(ns_csv_reader *r);

/* Appends one CSV cell: RFC 4180 quoting when needed, and a leading ' for
 * cells starting with = + - @, tab or CR so spreadsheets never run them. */
void ns_csv_cell(ns_strbuf *b, const char *cell);

#endif
