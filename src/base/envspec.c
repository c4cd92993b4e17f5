/*
 * envspec.c - the MEMFENCE_* table as data (base/envspec.h).
 */
#include "base/envspec.h"

const struct mf_env_spec mf_env_specs[MF_ENV_COUNT] = {
#define MF_ENV_ROW_(id_, type_, def_, set_by_, read_by_)                                 \
	[MF_ENVID_##id_] = {.id = #id_, .name = MF_ENV(id_), .type = type_, .def = def_, \
			    .set_by = set_by_, .read_by = read_by_},
	MF_ENV_TABLE(MF_ENV_ROW_)
#undef MF_ENV_ROW_
};
