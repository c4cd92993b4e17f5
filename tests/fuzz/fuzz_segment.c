/*
 * A stats segment, as every reader maps it (mf_segread_open: `memfence
 * stat`, the supervisor, the journal's recovery): validated, then every
 * slot with its scopes in flight and the ring of finished scopes copied.
 */
#include "fuzz.h"
#include "host/segread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mf_seg_scope scopes[MF_SEG_DEFAULT_SCOPES];
	struct mf_seg_record rec[16];
	struct mf_seg_header h;
	struct mf_segread r;
	char path[256];
	uint64_t next = 0, lost = 0;

	fuzz_file("fuzz.seg", data, size, path, sizeof(path));
	if (mf_segread_open(&r, path, 0) != 0)
		return 0;
	mf_segread_header(&r, &h);
	for (uint32_t i = 0; i < r.hdr->nslots; i++) {
		struct mf_segread_slot v;

		if (mf_segread_slot(&r, i, &v, scopes, MF_SEG_DEFAULT_SCOPES) == 0)
			(void)mf_segread_view_name(v.view);
	}
	for (int k = 0; k < 4 && mf_segread_ring(&r, next, rec, 16, &next, &lost) == 16; k++)
		;
	mf_segread_close(&r);
	return 0;
}
