/* redis_fixture — header-only helper for unit tests: a throw-away redis-server on a unix
 * socket in a fresh mkdtemp directory (no TCP port, no persistence), stopped with SIGTERM and
 * its directory removed at teardown. The binary is $REDIS_SERVER, else "redis-server" on
 * PATH. The server dies with the test process (PR_SET_PDEATHSIG) if the test crashes. */
#ifndef CSM_TESTS_REDIS_FIXTURE_H
#define CSM_TESTS_REDIS_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define REDIS_FIXTURE_FN static __attribute__((unused))

struct redis_fixture {
    char dir[80];   /* the temporary directory */
    char sock[100]; /* dir + "/redis.sock" */
    char url[120];  /* "unix://" + sock */
    pid_t pid;      /* 0 when not running */
};

REDIS_FIXTURE_FN void redis_fixture_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

REDIS_FIXTURE_FN void redis_fixture_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Writes a file into the fixture directory (e.g. an ACL file) before or after start;
 * returns its path in a static buffer, NULL on error. */
REDIS_FIXTURE_FN const char *redis_fixture_write(struct redis_fixture *f, const char *name,
                                                 const char *content)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "w");
    if (!fp)
        return NULL;
    fputs(content, fp);
    return fclose(fp) == 0 ? path : NULL;
}

/* Prints the server's log to stderr: for diagnosing a failed start. */
REDIS_FIXTURE_FN void redis_fixture_dump_log(const struct redis_fixture *f)
{
    char path[256], line[512];
    snprintf(path, sizeof(path), "%s/redis.log", f->dir);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return;
    while (fgets(line, sizeof(line), fp))
        fprintf(stderr, "redis.log: %s", line);
    fclose(fp);
}

/* Stops the server (SIGTERM, then SIGKILL after 5 s), reaps it and removes the directory.
 * Safe to call twice or on a fixture that failed to start. */
REDIS_FIXTURE_FN void redis_fixture_stop(struct redis_fixture *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        int status;
        for (int i = 0; i < 500; i++) {
            pid_t w = waitpid(f->pid, &status, WNOHANG);
            if (w == f->pid || (w < 0 && errno != EINTR))
                break;
            if (i == 499) {
                kill(f->pid, SIGKILL);
                waitpid(f->pid, &status, 0);
            }
            redis_fixture_sleep_ms(10);
        }
        f->pid = 0;
    }
    if (f->dir[0]) {
        redis_fixture_rmdir(f->dir);
        f->dir[0] = '\0';
    }
}

/* Creates the directory only (so files can be written before start). 0/-1. */
REDIS_FIXTURE_FN int redis_fixture_init(struct redis_fixture *f)
{
    memset(f, 0, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 40)
        tmp = "/tmp";
    snprintf(f->dir, sizeof(f->dir), "%s/csm-redis-XXXXXX", tmp);
    if (!mkdtemp(f->dir)) {
        fprintf(stderr, "redis_fixture: cannot create '%s': %s\n", f->dir, strerror(errno));
        f->dir[0] = '\0';
        return -1;
    }
    snprintf(f->sock, sizeof(f->sock), "%s/redis.sock", f->dir);
    snprintf(f->url, sizeof(f->url), "unix://%s", f->sock);
    return 0;
}

/* True once the server answers PING with anything (PONG, or NOAUTH when a password is set). */
REDIS_FIXTURE_FN int redis_fixture_answers(const struct redis_fixture *f)
{
    redisContext *c = redisConnectUnix(f->sock);
    int ok = 0;
    if (c && !c->err) {
        redisReply *rep = redisCommand(c, "PING");
        ok = rep != NULL;
        if (rep)
            freeReplyObject(rep);
    }
    if (c)
        redisFree(c);
    return ok;
}

/* f must be zero-initialised or prepared by redis_fixture_init (to write files first).
 * Starts redis-server in f->dir (created by redis_fixture_init when f->dir is empty) with
 * extra arguments appended as separate argv entries (NULL-terminated, may be NULL), e.g.
 * {"--requirepass", "secret", NULL} or {"--user", "app", "on", ">pw", "~csm:*", "+@all",
 * NULL}. Waits up to 10 s for PING. 0, or -1 with the fixture cleaned up and the log
 * printed. */
REDIS_FIXTURE_FN int redis_fixture_start(struct redis_fixture *f, const char *const *extra)
{
    if (!f->dir[0] && redis_fixture_init(f) != 0)
        return -1;
    char logfile[128];
    snprintf(logfile, sizeof(logfile), "%s/redis.log", f->dir);
    const char *base[] = {"--port",       "0",  "--unixsocket", f->sock, "--save",    "",
                          "--appendonly", "no", "--dir",        f->dir,  "--logfile", logfile,
                          "--daemonize",  "no"};
    size_t nbase = sizeof(base) / sizeof(base[0]), nextra = 0;
    while (extra && extra[nextra])
        nextra++;
    const char *server = getenv("REDIS_SERVER");
    if (!server || !*server)
        server = "redis-server";
    const char **argv = calloc(nbase + nextra + 2, sizeof(*argv));
    if (!argv)
        return -1;
    argv[0] = server;
    memcpy(argv + 1, base, sizeof(base));
    for (size_t i = 0; i < nextra; i++)
        argv[1 + nbase + i] = extra[i];

    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        free(argv);
        fprintf(stderr, "redis_fixture: fork: %s\n", strerror(errno));
        redis_fixture_stop(f);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        execvp(server, (char *const *)argv);
        fprintf(stderr, "redis_fixture: cannot run '%s': %s\n", server, strerror(errno));
        _exit(127);
    }
    free(argv);
    f->pid = pid;
    for (int i = 0; i < 1000; i++) {
        if (redis_fixture_answers(f))
            return 0;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            f->pid = 0;
            break;
        }
        redis_fixture_sleep_ms(10);
    }
    fprintf(stderr, "redis_fixture: redis-server did not answer PING\n");
    redis_fixture_dump_log(f);
    redis_fixture_stop(f);
    return -1;
}

#endif
