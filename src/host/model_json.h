/*
 * model_json.h - the model (model.h) as JSON, for the state directory and
 * `memfence diagnose`.
 */
#ifndef MF_MODEL_JSON_H
#define MF_MODEL_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "host/model.h"

/* A new JSON document of the model (caller decrefs). */
json_t *mf_model_json(const struct mf_model *m);
/* Fill m from a document; 0, or -1 with the reason in err. */
int mf_model_from_json(json_t *j, struct mf_model *m, char *err, size_t errlen);

#endif
