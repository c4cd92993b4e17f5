/*
 * test_logline.c - JSON log lines: the fields, escaping, and a message
 * too long for the buffer cut so that the line stays valid JSON and UTF-8.
 */
#include "base/logline.h"
#include "unit.h"

#include <string.h>

static const char *after(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	return p != NULL ? p + strlen(key) : "";
}

int main(void)
{
	char buf[4096], msg[3000];
	size_t n;

	CHECK(mf_log_format_parse(NULL) == 0);
	CHECK(mf_log_format_parse("") == 0);
	CHECK(mf_log_format_parse("text") == 0);
	CHECK(mf_log_format_parse("json") == 1);
	CHECK(mf_log_format_parse("JSON") == -1);
	CHECK(mf_log_format_parse("xml") == -1);

	/* Fields in order; quotes, backslashes and controls escaped. */
	n = mf_logline_json(buf, sizeof(buf), MF_LOG_WARNING, "shim", "task", "t\"1",
			    "a \"q\" \\ b\n\x01", 11);
	buf[n] = '\0';
	CHECK(strncmp(buf, "{\"time\":\"", 9) == 0);
	CHECK(strlen(buf) > 33 && buf[32] == 'Z' && buf[28] == '.' && buf[19] == 'T');
	CHECK(strncmp(after(buf, "\"level\":"), "\"warning\",", 10) == 0);
	CHECK(strncmp(after(buf, "\"msg\":"), "\"a \\\"q\\\" \\\\ b\\n\\u0001\",", 23) == 0);
	CHECK(strstr(buf, ",\"pid\":") != NULL);
	CHECK(strstr(buf, ",\"source\":\"shim\",\"task\":\"t\\\"1\"}\n") != NULL);
	CHECK(buf[n - 1] == '\n' && memchr(buf, '\n', n - 1) == NULL);

	/* No key: no field. */
	n = mf_logline_json(buf, sizeof(buf), MF_LOG_INFO, "cli", NULL, NULL, "x", 1);
	buf[n] = '\0';
	CHECK(strstr(buf, "\"level\":\"info\"") != NULL);
	CHECK(strcmp(buf + n - 16, "\"source\":\"cli\"}\n") == 0);

	/* Too long: cut inside the message, between characters (é is 2
	 * bytes), the fields and the closing brace kept. */
	for (size_t i = 0; i + 1 < sizeof(msg); i += 2)
		memcpy(msg + i, "\xc3\xa9", 2);
	n = mf_logline_json(buf, 512, MF_LOG_ERROR, "supervisor", "request", "r", msg,
			    sizeof(msg) - 1);
	CHECK(n <= 512);
	buf[n] = '\0';
	CHECK(strstr(buf, ",\"source\":\"supervisor\",\"request\":\"r\"}\n") == buf + n - 38);
	{
		const char *m = after(buf, "\"msg\":\""), *end = strstr(m, "\",\"pid\":");

		CHECK(end != NULL && end > m && (end - m) % 2 == 0);
		CHECK(end != NULL && end > m && (unsigned char)end[-2] == 0xc3);
	}
	return unit_done("test_logline");
}
