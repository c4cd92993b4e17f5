/*
 * test_quarantine.c - the quarantine store on real SQLite files: counting
 * to quarantine, clear, export/import round trip, concurrent writers,
 * writers killed mid-write, corrupt and foreign files, bad specs and ids,
 * and the Redis store's local fallback when Redis cannot be reached.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/quarantine.h"
#include "unit.h"

static char dir[] = "/tmp/memfence-qtest.XXXXXX";

static struct mf_qstore *open_store(const char *spec)
{
	struct mf_qstore_opts o = {.state_dir = dir, .timeout_ms = 300};
	struct mf_qstore *s = NULL;
	char err[512];
	int rc = mf_qstore_open(spec, &o, &s, err, sizeof(err));

	if (rc != 0)
		fprintf(stderr, "open %s: %s\n", spec != NULL ? spec : "(default)", err);
	return s;
}

static struct mf_quarantine_death death(const char *id, enum mf_quarantine_cause cause,
					uint64_t peak)
{
	struct mf_quarantine_death d = {0};

	d.id = id;
	d.name = "tasks.resize";
	d.host = "worker-1";
	d.cause = cause;
	d.peak = peak;
	d.allocated = MF_QUARANTINE_UNKNOWN;
	d.net = MF_QUARANTINE_UNKNOWN;
	return d;
}

static void test_counting(void)
{
	struct mf_qstore *s = open_store(NULL);
	struct mf_quarantine_record r;
	struct mf_quarantine_death d = death("job-1", MF_QCAUSE_OOM_KILL, 300u << 20);

	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK_EQ_U64(mf_qstore_get(s, "job-1", &r), (uint64_t)-ENOENT);

	d.at_ms = 1000;
	CHECK_EQ_U64(mf_qstore_record(s, &d, &r), 0);
	CHECK_EQ_U64(r.deaths, 1);
	CHECK(r.state == MF_QSTATE_COUNTING);
	CHECK(!mf_quarantine_is_quarantined(&r, 0));

	d.at_ms = 2000;
	d.cause = MF_QCAUSE_SIGKILL;
	d.name = NULL; /* keeps the name recorded before */
	d.peak = 310u << 20;
	d.net = 7;
	CHECK_EQ_U64(mf_qstore_record(s, &d, &r), 0);
	CHECK_EQ_U64(r.deaths, 2);
	CHECK(r.state == MF_QSTATE_QUARANTINED);
	CHECK_STR(r.name, "tasks.resize");
	CHECK_STR(r.host, "worker-1");
	CHECK(r.cause == MF_QCAUSE_SIGKILL);
	CHECK_EQ_U64(r.first_death_ms, 1000);
	CHECK_EQ_U64(r.last_death_ms, 2000);
	CHECK_EQ_U64(r.peak, 310u << 20);
	CHECK_EQ_U64(r.net, 7);
	CHECK_EQ_U64(r.allocated, MF_QUARANTINE_UNKNOWN);
	/* A caller may apply a higher threshold than the stored one. */
	CHECK(!mf_quarantine_is_quarantined(&r, 3));

	/* A late death (replayed) counts but does not become the "last". */
	d.at_ms = 500;
	d.cause = MF_QCAUSE_EXIT;
	CHECK_EQ_U64(mf_qstore_record(s, &d, &r), 0);
	CHECK_EQ_U64(r.deaths, 3);
	CHECK(r.cause == MF_QCAUSE_SIGKILL);
	CHECK_EQ_U64(r.first_death_ms, 500);
	CHECK_EQ_U64(r.last_death_ms, 2000);

	/* Threshold 3: counting until the third death. */
	d = death("job-2", MF_QCAUSE_ALLOC_FAILURE, MF_QUARANTINE_UNKNOWN);
	d.threshold = 3;
	for (int i = 1; i <= 3; i++) {
		CHECK_EQ_U64(mf_qstore_record(s, &d, &r), 0);
		CHECK(r.state == (i < 3 ? MF_QSTATE_COUNTING : MF_QSTATE_QUARANTINED));
	}
	CHECK_EQ_U64(r.threshold, 3);
	mf_qstore_close(s);

	/* It is all still there after reopening. */
	s = open_store(NULL);
	CHECK(s != NULL && mf_qstore_get(s, "job-1", &r) == 0 && r.deaths == 3);
	mf_qstore_close(s);
}

static int count_cb(const struct mf_quarantine_record *r, void *arg)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

static void test_clear(void)
{
	struct mf_qstore *s = open_store(NULL);
	struct mf_quarantine_record r;
	struct mf_quarantine_death d = death("job-c", MF_QCAUSE_OOM_KILL, 1);
	uint64_t n = 0;
	int count = 0;

	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK_EQ_U64(mf_qstore_record(s, &d, &r), 0);
	CHECK_EQ_U64(mf_qstore_clear(s, "job-c"), 0);
	CHECK_EQ_U64(mf_qstore_get(s, "job-c", &r), (uint64_t)-ENOENT);
	CHECK_EQ_U64(mf_qstore_clear(s, "job-c"), (uint64_t)-ENOENT);
	CHECK(strstr(mf_qstore_error(s), "job-c") != NULL);
	/* Cleared means forgiven: counting starts again. */
	CHECK_EQ_U64(mf_qstore_record(s, &d, &r), 0);
	CHECK_EQ_U64(r.deaths, 1);

	CHECK_EQ_U64(mf_qstore_list(s, count_cb, &count), 0);
	CHECK(count >= 2);
	CHECK_EQ_U64(mf_qstore_clear_all(s, &n), 0);
	CHECK_EQ_U64(n, (uint64_t)count);
	count = 0;
	CHECK_EQ_U64(mf_qstore_list(s, count_cb, &count), 0);
	CHECK_EQ_U64(count, 0);
	mf_qstore_close(s);
}

struct collect {
	json_t *arr;
};

static int collect_cb(const struct mf_quarantine_record *r, void *arg)
{
	struct collect *c = arg;

	return json_array_append_new(c->arr, mf_quarantine_to_json(r));
}

static void test_export_round_trip(void)
{
	struct mf_qstore *a = open_store(NULL), *b;
	struct mf_quarantine_record r, r2;
	struct mf_quarantine_death d;
	struct collect c = {json_array()};
	char path[256], spec[300], err[256], *text, *text2;
	json_t *back;

	CHECK(a != NULL);
	if (a == NULL)
		return;
	d = death("id,with \"quotes\" and ünïcode", MF_QCAUSE_OOM_KILL, 123456789);
	d.allocated = 1ull << 33;
	d.net = 0;
	d.at_ms = 1700000000123;
	mf_qstore_record(a, &d, &r);
	mf_qstore_record(a, &d, &r);
	d = death("b", MF_QCAUSE_SIGNAL, MF_QUARANTINE_UNKNOWN);
	d.name = "";
	mf_qstore_record(a, &d, &r);
	CHECK_EQ_U64(mf_qstore_list(a, collect_cb, &c), 0);
	CHECK_EQ_U64(json_array_size(c.arr), 2);
	text = json_dumps(c.arr, JSON_SORT_KEYS);

	/* Through text, into another file, and out again: the same records. */
	back = json_loads(text, 0, NULL);
	snprintf(path, sizeof(path), "%s/other.db", dir);
	snprintf(spec, sizeof(spec), "sqlite:%s", path);
	b = open_store(spec);
	CHECK(b != NULL && back != NULL);
	if (b == NULL || back == NULL)
		return;
	for (size_t i = 0; i < json_array_size(back); i++) {
		CHECK_EQ_U64(mf_quarantine_from_json(json_array_get(back, i), &r2, err, sizeof(err)), 0);
		CHECK_EQ_U64(mf_qstore_put(b, &r2), 0);
	}
	json_decref(c.arr);
	c.arr = json_array();
	CHECK_EQ_U64(mf_qstore_list(b, collect_cb, &c), 0);
	text2 = json_dumps(c.arr, JSON_SORT_KEYS);
	CHECK_STR(text2, text);
	CHECK_EQ_U64(mf_qstore_get(b, "id,with \"quotes\" and ünïcode", &r2), 0);
	CHECK_EQ_U64(r2.deaths, 2);
	CHECK_EQ_U64(r2.allocated, 1ull << 33);
	CHECK_EQ_U64(r2.net, 0);
	CHECK(r2.state == MF_QSTATE_QUARANTINED);
	free(text);
	free(text2);
	json_decref(c.arr);
	json_decref(back);

	/* Bad records are refused with the field named. */
	back = json_loads("{\"id\": \"x\", \"deaths\": -1}", 0, NULL);
	CHECK(mf_quarantine_from_json(back, &r2, err, sizeof(err)) != 0 && strstr(err, "deaths"));
	json_decref(back);
	back = json_loads("{\"deaths\": 1}", 0, NULL);
	CHECK(mf_quarantine_from_json(back, &r2, err, sizeof(err)) != 0 && strstr(err, "id"));
	json_decref(back);
	back = json_loads("{\"id\": \"x\", \"deaths\": 1, \"cause\": \"bored\"}", 0, NULL);
	CHECK(mf_quarantine_from_json(back, &r2, err, sizeof(err)) != 0 && strstr(err, "cause"));
	json_decref(back);
	mf_qstore_close(a);
	mf_qstore_close(b);
}

static void test_bad_input(void)
{
	struct mf_qstore_opts o = {.state_dir = dir};
	struct mf_qstore *s;
	struct mf_quarantine_record r;
	struct mf_quarantine_death d;
	char err[512], id[MF_QUARANTINE_ID_MAX + 2];
	static const char *const bad[] = {
		"redis://", "redis://:6379/0", "redis://host:0", "redis://host:65536",
		"redis://host:x", "redis://host:12/db", "redis://host/0?timeout=1",
		"redis://ho st", "redis://[::1", "redis://user@host", "rediss://host",
		"http://host", "sqlite:", "redis:host",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = NULL;
		err[0] = '\0';
		CHECK_EQ_U64(mf_qstore_open(bad[i], &o, &s, err, sizeof(err)), (uint64_t)-EINVAL);
		CHECK(s == NULL && strstr(err, bad[i]) != NULL);
	}
	/* Valid URLs open without touching the network. */
	CHECK_EQ_U64(mf_qstore_open("redis://:p%40ss@[::1]:7000/15", &o, &s, err, sizeof(err)), 0);
	CHECK_STR(mf_qstore_describe(s), "redis://[::1]:7000/15");
	mf_qstore_close(s);
	CHECK_EQ_U64(mf_qstore_open("redis://cache.internal", &o, &s, err, sizeof(err)), 0);
	CHECK_STR(mf_qstore_describe(s), "redis://cache.internal:6379/0");
	mf_qstore_close(s);

	memset(id, 'a', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	CHECK(mf_quarantine_id_check(id, err, sizeof(err)) == -EINVAL && strstr(err, "too long"));
	id[MF_QUARANTINE_ID_MAX] = '\0';
	CHECK_EQ_U64(mf_quarantine_id_check(id, err, sizeof(err)), 0);
	CHECK(mf_quarantine_id_check("", err, sizeof(err)) == -EINVAL);
	CHECK(mf_quarantine_id_check("a\nb", err, sizeof(err)) == -EINVAL);
	CHECK(mf_quarantine_id_check("caf\xe9", err, sizeof(err)) == -EINVAL && strstr(err, "UTF-8"));
	CHECK(mf_quarantine_id_check("\xc0\xaf", err, sizeof(err)) == -EINVAL);
	CHECK_EQ_U64(mf_quarantine_id_check("caf\xc3\xa9-\xf0\x9f\x90\x8d", err, sizeof(err)), 0);

	s = open_store(NULL);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	id[MF_QUARANTINE_ID_MAX] = 'a';
	d = death(id, MF_QCAUSE_OOM_KILL, 1);
	CHECK_EQ_U64(mf_qstore_record(s, &d, &r), (uint64_t)-EINVAL);
	CHECK(strstr(mf_qstore_error(s), "too long") != NULL);
	d = death("ok", MF_QCAUSE_OOM_KILL, 1);
	d.threshold = MF_QUARANTINE_THRESHOLD_MAX + 1;
	CHECK_EQ_U64(mf_qstore_record(s, &d, &r), (uint64_t)-EINVAL);
	mf_qstore_close(s);
}

static void write_file(const char *path, const void *buf, size_t n, off_t at)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(pwrite(fd, buf, n, at) == (ssize_t)n);
	close(fd);
}

static void test_corrupt(void)
{
	struct mf_qstore_opts o = {.state_dir = dir};
	struct mf_qstore *s = NULL;
	struct mf_quarantine_record r;
	struct mf_quarantine_death d;
	char path[256], spec[300], err[1024], junk[4096];
	sqlite3 *db;
	int count = 0;

	/* Not a database at all. */
	snprintf(path, sizeof(path), "%s/garbage.db", dir);
	memset(junk, 'x', sizeof(junk));
	write_file(path, junk, sizeof(junk), 0);
	snprintf(spec, sizeof(spec), "sqlite:%s", path);
	CHECK_EQ_U64(mf_qstore_open(spec, &o, &s, err, sizeof(err)), (uint64_t)-EILSEQ);
	CHECK(strstr(err, "corrupt") != NULL && strstr(err, path) != NULL);

	/* Some other program's SQLite database. */
	snprintf(path, sizeof(path), "%s/foreign.db", dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	CHECK_EQ_U64(mf_qstore_open(path, &o, &s, err, sizeof(err)), (uint64_t)-EILSEQ);
	CHECK(strstr(err, "another program") != NULL);

	/* Ours, then a page in the middle overwritten: an error, not a crash. */
	snprintf(path, sizeof(path), "%s/damaged.db", dir);
	snprintf(spec, sizeof(spec), "sqlite:%s", path);
	s = open_store(spec);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	for (int i = 0; i < 300; i++) {
		char id[64];
		snprintf(id, sizeof(id), "task-%04d-padding-padding-padding-padding", i);
		d = death(id, MF_QCAUSE_OOM_KILL, (uint64_t)i);
		CHECK_EQ_U64(mf_qstore_record(s, &d, &r), 0);
	}
	mf_qstore_close(s);
	/* Fold the WAL into the file so that the damage is what is read. */
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	write_file(path, junk, sizeof(junk), 4096 * 3);
	s = NULL;
	if (mf_qstore_open(spec, &o, &s, err, sizeof(err)) != 0) {
		CHECK(strstr(err, "corrupt") != NULL);
		if (getenv("QTEST_VERBOSE"))
			fprintf(stderr, "damaged: open said %s\n", err);
	} else {
		int rc = mf_qstore_list(s, count_cb, &count);
		CHECK(rc == -EILSEQ);
		CHECK(strstr(mf_qstore_error(s), "corrupt") != NULL);
		if (getenv("QTEST_VERBOSE"))
			fprintf(stderr, "damaged: list said %s\n", mf_qstore_error(s));
		mf_qstore_close(s);
	}
}

/* Writers in several processes: no increment is lost. */
static void test_concurrent_writers(void)
{
	enum { PROCS = 4, EACH = 40 };
	struct mf_qstore *s;
	struct mf_quarantine_record r;
	int status, ok = 1;

	for (int p = 0; p < PROCS; p++) {
		pid_t pid = fork();
		if (pid == 0) {
			struct mf_quarantine_death d = death("shared", MF_QCAUSE_OOM_KILL, 1);
			struct mf_qstore *cs = open_store(NULL);
			int bad = cs == NULL;
			for (int i = 0; i < EACH && !bad; i++)
				bad = mf_qstore_record(cs, &d, &r) != 0;
			if (bad && cs != NULL)
				fprintf(stderr, "writer: %s\n", mf_qstore_error(cs));
			mf_qstore_close(cs);
			_exit(bad);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			ok = 0;
	}
	CHECK(ok);
	s = open_store(NULL);
	CHECK(s != NULL && mf_qstore_get(s, "shared", &r) == 0);
	CHECK_EQ_U64(r.deaths, PROCS * EACH);
	mf_qstore_close(s);
}

static void integrity_ok(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;

	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_STR((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* A writer SIGKILLed while it records: what it committed is there, the
 * file is intact, and the next writer is not blocked. */
static void test_killed_writer(void)
{
	char path[256], spec[300], wal[300], c;
	struct stat sb;
	struct mf_qstore *s;
	struct mf_quarantine_record r;
	struct mf_quarantine_death d = death("crashy", MF_QCAUSE_OOM_KILL, 5);
	int fds[2], acked = 0, status;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/killed.db", dir);
	snprintf(spec, sizeof(spec), "sqlite:%s", path);
	CHECK(pipe(fds) == 0);
	pid = fork();
	if (pid == 0) {
		struct mf_qstore *cs = open_store(spec);
		close(fds[0]);
		/* Record until killed; one byte after each commit. */
		for (;;) {
			if (cs == NULL || mf_qstore_record(cs, &d, &r) != 0)
				_exit(1);
			if (write(fds[1], "x", 1) != 1)
				_exit(1);
		}
	}
	close(fds[1]);
	while (acked < 25 && read(fds[0], &c, 1) == 1)
		acked++;
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(fds[0]);
	CHECK_EQ_U64(acked, 25);
	integrity_ok(path);
	s = open_store(spec);
	CHECK(s != NULL && mf_qstore_get(s, "crashy", &r) == 0);
	/* Every acknowledged death, and at most one more not yet acknowledged. */
	CHECK(r.deaths >= 25 && r.deaths <= 26 + 1);
	CHECK(mf_qstore_record(s, &d, &r) == 0);
	mf_qstore_close(s);

	/* Killed inside an open transaction whose pages already reached the
	 * WAL: none of it is visible, the lock dies with the writer. */
	CHECK(pipe(fds) == 0);
	pid = fork();
	if (pid == 0) {
		sqlite3 *db;
		close(fds[0]);
		if (sqlite3_open(path, &db) != SQLITE_OK ||
		    sqlite3_exec(db,
				 "PRAGMA cache_size=2; BEGIN IMMEDIATE;"
				 " UPDATE quarantine SET deaths = 999999 WHERE id = 'crashy';"
				 " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)"
				 " INSERT INTO quarantine (id, deaths) SELECT 'junk-' || i || hex(randomblob(200)), 1 FROM n;",
				 NULL, NULL, NULL) != SQLITE_OK)
			_exit(1);
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	CHECK(read(fds[0], &c, 1) == 1);
	/* The scenario is only worth something if uncommitted pages are on disk. */
	snprintf(wal, sizeof(wal), "%s-wal", path);
	CHECK(stat(wal, &sb) == 0 && sb.st_size > 100 * 4096);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(fds[0]);
	integrity_ok(path);
	s = open_store(spec);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK(mf_qstore_get(s, "crashy", &r) == 0 && r.deaths >= 26 && r.deaths < 999999);
	int count = 0;
	CHECK_EQ_U64(mf_qstore_list(s, count_cb, &count), 0);
	CHECK_EQ_U64(count, 1);
	CHECK_EQ_U64(mf_qstore_record(s, &d, &r), 0);
	mf_qstore_close(s);
}

/* Redis unreachable (nothing listens on port 1): the death is kept in the
 * local copy, marked unsynced; reads answer from it and say so; a clear is
 * refused rather than done on one machine only. */
static void test_redis_unreachable(void)
{
	struct mf_qstore *s = open_store("redis://127.0.0.1:1/0");
	struct mf_quarantine_record r;
	struct mf_quarantine_death d = death("offline", MF_QCAUSE_OOM_KILL, 9);
	uint64_t n;

	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK(mf_qstore_is_redis(s));
	CHECK_EQ_U64(mf_qstore_record(s, &d, &r), 1);
	CHECK(mf_qstore_degraded(s) != NULL && strstr(mf_qstore_degraded(s), "127.0.0.1:1") != NULL);
	CHECK_EQ_U64(r.deaths, 1);
	CHECK_EQ_U64(r.unsynced, 1);
	CHECK_EQ_U64(mf_qstore_record(s, &d, &r), 1);
	CHECK(r.state == MF_QSTATE_QUARANTINED && r.unsynced == 2);
	CHECK_EQ_U64(mf_qstore_get(s, "offline", &r), 0);
	CHECK(mf_qstore_degraded(s) != NULL);
	CHECK_EQ_U64(mf_qstore_clear(s, "offline"), (uint64_t)-EHOSTUNREACH);
	CHECK(strstr(mf_qstore_error(s), "nothing cleared") != NULL);
	CHECK_EQ_U64(mf_qstore_sync(s, &n), (uint64_t)-EHOSTUNREACH);
	CHECK_EQ_U64(mf_qstore_get(s, "offline", &r), 0);
	CHECK_EQ_U64(r.deaths, 2);
	mf_qstore_close(s);
}

/* A record expires its time to live after its last death: not found, not
 * listed, not counted on by a new death; "off" keeps it; a bad value is
 * refused at open with the variable named. */
static int count_one(const struct mf_quarantine_record *r, void *arg)
{
	(void)r;
	++*(int *)arg;
	return 0;
}

static void test_expiry(void)
{
	struct mf_qstore *s = NULL;
	struct mf_qstore_opts o = {.state_dir = dir, .ttl = "1h"};
	struct mf_quarantine_record r;
	struct timespec ts;
	char spec[600], err[600];
	int64_t now;
	int n = 0;
	bool q;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000;
	snprintf(spec, sizeof(spec), "sqlite:%s/expiry.db", dir);
	CHECK(mf_qstore_open(spec, &o, &s, err, sizeof(err)) == 0);
	struct mf_quarantine_death old = {.id = "old", .at_ms = now - 2 * 3600 * 1000,
					  .peak = MF_QUARANTINE_UNKNOWN,
					  .allocated = MF_QUARANTINE_UNKNOWN,
					  .net = MF_QUARANTINE_UNKNOWN};
	struct mf_quarantine_death fresh = old;

	fresh.id = "fresh";
	fresh.at_ms = now;
	CHECK(mf_qstore_record(s, &old, &r) == 0);
	CHECK(mf_qstore_record(s, &fresh, &r) == 0 && mf_qstore_record(s, &fresh, &r) == 0);
	CHECK(mf_qstore_get(s, "old", &r) == -ENOENT);
	CHECK(mf_qstore_check(s, "old", 0, &r, &q) == 0 && !q);
	CHECK(mf_qstore_check(s, "fresh", 0, &r, &q) == 1 && q);
	CHECK(mf_qstore_list(s, count_one, &n) == 0);
	CHECK_EQ_U64(n, 1);
	/* A new death of an expired id starts a new count. */
	old.at_ms = now;
	CHECK(mf_qstore_record(s, &old, &r) == 0);
	CHECK_EQ_U64(r.deaths, 1);
	mf_qstore_close(s);
	o.ttl = "off";
	CHECK(mf_qstore_open(spec, &o, &s, err, sizeof(err)) == 0);
	mf_qstore_close(s);
	o.ttl = "10ms";
	CHECK(mf_qstore_open(spec, &o, &s, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, MF_QUARANTINE_TTL_ENV) != NULL);
}

int main(void)
{
	char cmd[300];

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	/* The deaths below happen in 1970 (at_ms 500, 1000, ...): with the
	 * default time to live they would have expired long ago. Expiry has
	 * its own test, test_expiry. */
	setenv(MF_QUARANTINE_TTL_ENV, "off", 1);
	test_expiry();
	test_counting();
	test_clear();
	test_export_round_trip();
	test_bad_input();
	test_corrupt();
	test_concurrent_writers();
	test_killed_writer();
	test_redis_unreachable();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return unit_done("test_quarantine");
}
