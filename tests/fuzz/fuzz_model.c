/*
 * The model's file (STATE_DIR/model.json), as the supervisor reads it at
 * start and `memfence diagnose` reads it: loaded, used, written back.
 */
#include <jansson.h>

#include "fuzz.h"
#include "host/model_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mf_model m;
	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	char err[256];

	if (!j)
		return 0;
	if (mf_model_from_json(j, &m, err, sizeof(err)) == 0) {
		json_t *back = mf_model_json(&m);
		const struct mf_model_name *n = mf_model_find(&m, "GET /");

		for (uint32_t i = 0; i < m.nevents; i++)
			(void)mf_model_event_name(mf_model_event_at(&m, i)->kind);
		if (n) {
			mf_model_recent_retained(n);
			mf_model_name_retains(n, 1 << 20);
		}
		mf_model_need(&m, "GET /", 0.9, 1);
		mf_model_need(&m, NULL, 0.5, 1);
		mf_model_heap(&m, 1000, 1 << 20, 1);
		json_decref(back);
	}
	json_decref(j);
	return 0;
}
