/*
 * options.h - one table per option set: the getopt_long parser, the --help
 * text and the MEMFENCE_* environment names all come from it.
 *
 * An option is written once, in a table next to the code that gives it a
 * meaning (the limits' in plan.c, the supervisor's in supervisor/config.c,
 * ...); its default is written once too, from the constants that code uses.
 * The man page is checked against --help and the parser by
 * tests/integration/options_doc.sh. Host-side rather than in the command
 * because the Python extension reads the limit options' variables too.
 */
#ifndef MF_OPTIONS_H
#define MF_OPTIONS_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A number as the text of a string literal: MF_STR(5) is "5". */
#define MF_STR_(x) #x
#define MF_STR(x) MF_STR_(x)

/* Keys of long options without a short letter start here. */
#define MF_OPT_KEY_BASE 0x100

struct mf_option {
	const char *name;   /* long name without the dashes; NULL ends a table */
	int key;            /* getopt_long's answer: the short letter, if any, else
			     * MF_OPT_KEY_BASE or more */
	int has_arg;        /* no_argument, required_argument, optional_argument */
	const char *arg;    /* the argument as --help shows it ("SIZE|PCT") */
	const char *env;    /* MEMFENCE_* equivalent, MF_ENV(ID) of
			     * base/envspec.h, or NULL */
	const char *env_is; /* a flag's env: the value that means the flag ("1") */
	const char *def;    /* default, as the parser reads it; NULL: none */
	const char *shown;  /* the default as --help says it when def cannot
			     * (a rule, a path): "max(64M, 5%)" */
	const char *(*shown_fn)(void); /* the default as --help says it, when it
					* depends on the machine */
	const char *help;   /* what it does; '\n' continues on the next line */
};

/* -h, --help: every command has it. */
extern const struct mf_option mf_help_options[];

/* --log-format: the commands that run a program (host/msg.h applies it). */
#define MF_OPT_LOG_FORMAT (MF_OPT_KEY_BASE + 0xf0)
extern const struct mf_option mf_log_options[];

/* What getopt_long needs, built from tables. */
#define MF_OPTS_MAX 64
struct mf_opts {
	struct option longopts[MF_OPTS_MAX + 1];
	char shortopts[3 * MF_OPTS_MAX + 2];
};

/*
 * Fill o from the tables (a NULL-terminated list). mode is "+" for a
 * command whose options stop at the program's name, else "". More than
 * MF_OPTS_MAX options is a bug of this program: it aborts, on the first
 * run of the command by any test.
 */
void mf_opts_init(struct mf_opts *o, const char *mode, const struct mf_option *const tabs[]);

/* The entry of key in the tables, or NULL. */
const struct mf_option *mf_opts_find(const struct mf_option *const tabs[], int key);

/* The help lines of one table under title (NULL: none): the option, its
 * argument, its help, then "[MEMFENCE_X; default D]". */
void mf_opts_help(FILE *f, const char *title, const struct mf_option *tab);

/*
 * The value of option o: given (the command line's, NULL when absent), else
 * its environment variable when set and not empty, else its default. who
 * receives the name to blame in an error message: "--name" or the variable.
 */
const char *mf_opt_value(const struct mf_option *o, const char *given, char *who, size_t wlen);

/* The environment's value of o (set and not empty), or NULL. */
const char *mf_opt_env(const struct mf_option *o);

/*
 * A boolean variable of o (its env): 0 with *on set (-1 when unset or
 * empty), or -1 after a one-line error naming the variable when the value
 * is not a boolean word (base/env.h: 1/0, true/false, yes/no, on/off).
 */
int mf_opt_env_bool(const struct mf_option *o, int *on);

/* The syntax of durations, for --help and messages. */
#define MF_DURATION_SYNTAX "500ms, 10s, 2m, 1h, 1d; a bare number is seconds"

/* A duration in that syntax -> milliseconds. 0, or -1 when malformed,
 * negative or past a century. */
int mf_duration_parse(const char *s, uint64_t *ms);

/* For an error message: "--name, MEMFENCE_NAME" (or "--name") in buf. */
const char *mf_opt_names(const struct mf_option *o, char *buf, size_t len);

#endif
