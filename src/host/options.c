/*
 * options.c - parser, help and values from an option table.
 */
#include "base/envspec.h"
#include "host/options.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/env.h"
#include "host/msg.h"

void mf_opts_init(struct mf_opts *o, const char *mode, const struct mf_option *const tabs[])
{
	size_t n = 0, s = 0;

	memset(o, 0, sizeof(*o));
	for (const char *m = mode; *m; m++)
		o->shortopts[s++] = *m;
	for (size_t t = 0; tabs[t] != NULL; t++) {
		for (const struct mf_option *e = tabs[t]; e->name != NULL; e++) {
			if (n == MF_OPTS_MAX) {
				mf_err("internal error: option table too large");
				abort();
			}
			o->longopts[n++] = (struct option){e->name, e->has_arg, NULL, e->key};
			if (e->key >= MF_OPT_KEY_BASE || strchr(o->shortopts, e->key) != NULL)
				continue;
			o->shortopts[s++] = (char)e->key;
			if (e->has_arg != no_argument)
				o->shortopts[s++] = ':';
			if (e->has_arg == optional_argument)
				o->shortopts[s++] = ':';
		}
	}
	o->longopts[n] = (struct option){NULL, 0, NULL, 0};
	o->shortopts[s] = '\0';
}

const struct mf_option mf_help_options[] = {
	{.name = "help", .key = 'h', .help = "show this help"},
	{0},
};

const struct mf_option mf_log_options[] = {
	{.name = "log-format", .key = MF_OPT_LOG_FORMAT, .has_arg = required_argument,
	 .arg = "F", .env = MF_ENV(LOG_FORMAT), .def = "text",
	 .help = "memfence's lines on stderr, those of its\n"
		 "library and Python package in the program\n"
		 "too: text, or json (one object a line)"},
	{0},
};

const struct mf_option *mf_opts_find(const struct mf_option *const tabs[], int key)
{
	for (size_t t = 0; tabs[t] != NULL; t++)
		for (const struct mf_option *e = tabs[t]; e->name != NULL; e++)
			if (e->key == key)
				return e;
	return NULL;
}

/* Left column width: two spaces, then the option and its argument. */
#define HELP_LEFT 26

static void help_text(FILE *f, const char *text)
{
	const char *nl;

	while ((nl = strchr(text, '\n')) != NULL) {
		fprintf(f, "%.*s\n%*s", (int)(nl - text), text, HELP_LEFT + 3, "");
		text = nl + 1;
	}
	fprintf(f, "%s\n", text);
}

void mf_opts_help(FILE *f, const char *title, const struct mf_option *tab)
{
	char left[96];

	if (title != NULL)
		fprintf(f, "%s:\n", title);
	for (const struct mf_option *e = tab; e->name != NULL; e++) {
		const char *def = e->shown_fn ? e->shown_fn() : e->shown ? e->shown : e->def;
		int n = 0;

		/* A long option with no letter lines up with the others' long names. */
		n = e->key < MF_OPT_KEY_BASE ? snprintf(left, sizeof(left), "-%c, ", e->key)
					     : snprintf(left, sizeof(left), "    ");
		if (e->has_arg == required_argument)
			snprintf(left + n, sizeof(left) - (size_t)n, "--%s %s", e->name, e->arg);
		else if (e->has_arg == optional_argument)
			snprintf(left + n, sizeof(left) - (size_t)n, "--%s[=%s]", e->name, e->arg);
		else
			snprintf(left + n, sizeof(left) - (size_t)n, "--%s", e->name);
		if (strlen(left) < HELP_LEFT)
			fprintf(f, "  %-*s ", HELP_LEFT, left);
		else
			fprintf(f, "  %s\n%*s", left, HELP_LEFT + 3, "");
		help_text(f, e->help);
		if (e->env != NULL && e->has_arg == no_argument)
			fprintf(f, "%*s[%s=%s]\n", HELP_LEFT + 3, "", e->env, e->env_is);
		else if (e->env != NULL && def != NULL)
			fprintf(f, "%*s[%s; default %s]\n", HELP_LEFT + 3, "", e->env, def);
		else if (e->env != NULL)
			fprintf(f, "%*s[%s]\n", HELP_LEFT + 3, "", e->env);
		else if (def != NULL)
			fprintf(f, "%*s[default %s]\n", HELP_LEFT + 3, "", def);
	}
}

const char *mf_opt_env(const struct mf_option *o)
{
	const char *v;

	if (o->env == NULL)
		return NULL;
	v = getenv(o->env);
	return v != NULL && *v != '\0' ? v : NULL;
}

int mf_opt_env_bool(const struct mf_option *o, int *on)
{
	const char *v = mf_opt_env(o);

	*on = -1;
	if (v == NULL)
		return 0;
	if (mf_env_bool(v, on) != 0) {
		*on = -1;
		mf_err("invalid %s '%s': expected " MF_ENV_BOOL_WORDS, o->env, v);
		return -1;
	}
	return 0;
}

const char *mf_opt_value(const struct mf_option *o, const char *given, char *who, size_t wlen)
{
	const char *v;

	if (given == NULL && (v = mf_opt_env(o)) != NULL) {
		snprintf(who, wlen, "%s", o->env);
		return v;
	}
	snprintf(who, wlen, "--%s", o->name);
	if (given != NULL)
		return given;
	return o->def;
}

const char *mf_opt_names(const struct mf_option *o, char *buf, size_t len)
{
	if (o->env != NULL)
		snprintf(buf, len, "--%s, %s", o->name, o->env);
	else
		snprintf(buf, len, "--%s", o->name);
	return buf;
}

int mf_duration_parse(const char *s, uint64_t *ms)
{
	char *end;
	double v = strtod(s, &end), mul = 1000;

	if (end == s || !isfinite(v) || v < 0)
		return -1;
	if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mul = 1000;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		mul = 60000;
	else if (strcmp(end, "h") == 0)
		mul = 3600000;
	else if (strcmp(end, "d") == 0)
		mul = 86400000;
	else
		return -1;
	if (v * mul > 3.2e12)
		return -1;
	*ms = (uint64_t)(v * mul + 0.5);
	return 0;
}
