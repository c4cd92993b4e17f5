/*
 * model_json.h - the model (model.h) as JSON, for the state directory and
 * `memfence diagnose`.
 */
#ifndef MF_MODEL_JSON_H
#define MF_MODEL_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "host/model.h"

/* The model's file in a state directory. */
#define MF_MODEL_FILE "model.json"

/* Where a supervisor saves the model of the run whose stats segment is at
 * segment: DIR/model.json beside DIR/segment.seg (a state directory), else
 * the segment's path with ".model.json" for ".seg". */
void mf_model_path_for_segment(const char *segment, char *out, size_t len);

/* The JSON document in path, a regular file of at most max bytes
 * (host/file.h), parsed with jansson's flags: never waits on a FIFO, never
 * reads an endless device. NULL with the reason in err ("not a regular
 * file", "Is a directory", a parse error with its line). */
json_t *mf_json_load_file(const char *path, size_t max, size_t flags, char *err, size_t errlen);

/* A new JSON document of the model (caller decrefs). */
json_t *mf_model_json(const struct mf_model *m);
/* Fill m from a document; 0, or -1 with the reason in err. */
int mf_model_from_json(json_t *j, struct mf_model *m, char *err, size_t errlen);

#endif
