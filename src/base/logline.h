/*
 * logline.h - one log line of memfence as JSON, for log pipelines that
 * ingest JSON rather than text (--log-format json, MEMFENCE_LOG_FORMAT).
 *
 * The command, the supervisor, the shim and libmemfence-stack.so all
 * write their lines through this, so the fields are the same wherever a
 * line comes from:
 *   {"time":"2026-01-02T03:04:05.678Z","level":"warning","msg":"...",
 *    "pid":123,"source":"shim"[,"task":"..."|"request":"..."]}
 * Shim-safe: libc only, no allocation, async-signal-safe (the shim may
 * write from inside a program's malloc).
 */
#ifndef MF_LOGLINE_H
#define MF_LOGLINE_H

#include <stddef.h>

enum mf_log_level { MF_LOG_ERROR, MF_LOG_WARNING, MF_LOG_INFO };

/* The format's words, as the option and the variable take them. */
#define MF_LOG_FORMAT_WORDS "text or json"

/* 1 for "json", 0 for "text" or NULL/empty (the default), -1 for
 * anything else. */
int mf_log_format_parse(const char *v);

/*
 * The JSON line (newline included) of msg (mlen bytes, no "memfence: "
 * prefix) into buf (cap bytes, at least 256); the bytes written. A
 * message too long is cut, the line still valid JSON. key/id: an extra
 * string field ("task", "request") or NULLs.
 */
size_t mf_logline_json(char *buf, size_t cap, enum mf_log_level level, const char *source,
		       const char *key, const char *id, const char *msg, size_t mlen);

#endif
