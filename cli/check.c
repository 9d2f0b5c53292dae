/* check — validates the configuration and the rule files, like promtool check rules:
 * "FILE: ok (...)" per good file on stdout, "file:line:column: message" per bad one on
 * stderr, exit 0 when everything is valid and 1 otherwise. Without RULEFILEs it checks
 * every rule file of the configured rules_dir, then loads them as one set exactly as
 * csmetricsd does (rule_set_load_dir), so `check` passing means the daemon accepts them. */
#include "cli/cli.h"
#include "cli/common.h"
#include "common/buf.h"
#include "rules/rule.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/csmetrics/csmetrics.yaml"

static void check_usage(FILE *out)
{
    fprintf(out, "usage: csmetrics [-c FILE] check [RULEFILE...]\n"
                 "  Checks the configuration, then every rule file (*.yaml) of its rules_dir as\n"
                 "  csmetricsd loads them, or only the RULEFILEs given. Prints \"FILE: ok (...)\"\n"
                 "  per valid file and \"file:line:column: message\" per error; exits 0 when all\n"
                 "  are valid, 1 otherwise. With RULEFILEs and without -c, when the default\n"
                 "  configuration ($CSMETRICS_CONFIG, else " DEFAULT_CONFIG ") does not\n"
                 "  exist, only the rule files are checked.\n");
}

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* "FILE: ok (rule NAME, period P, ...)" */
static void check_print_ok(const struct rule *r)
{
    printf("%s: ok (rule %s, period %s, %zu score %s, %zu %s, %zu %s, %zu %s, %zu %s)\n", r->path,
           r->name, period_kind_name(r->period), r->nscore, plural(r->nscore, "line", "lines"),
           r->ngrades, plural(r->ngrades, "grade", "grades"), r->nquotas,
           plural(r->nquotas, "quota", "quotas"), r->npayouts,
           plural(r->npayouts, "payout", "payouts"), r->nalerts,
           plural(r->nalerts, "alert", "alerts"));
}

/* Loads each file; prints its result; rule names must be unique across them, as in a
 * rules directory. Returns the number of bad files. */
static size_t check_files(char **paths, size_t n)
{
    struct rule **rules = xcalloc(n + 1, sizeof(*rules));
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        char err[2048];
        rules[i] = rule_load_file(paths[i], err, sizeof(err));
        if (!rules[i]) {
            fprintf(stderr, "%s\n", err);
            bad++;
            continue;
        }
        const struct rule *dup = NULL;
        for (size_t k = 0; k < i && !dup; k++)
            if (rules[k] && strcmp(rules[k]->name, rules[i]->name) == 0)
                dup = rules[k];
        if (dup) {
            fprintf(stderr, "%s: rule name '%s' already used by %s\n", paths[i], rules[i]->name,
                    dup->path);
            bad++;
            continue;
        }
        check_print_ok(rules[i]);
    }
    for (size_t i = 0; i < n; i++)
        rule_destroy(rules[i]);
    free(rules);
    return bad;
}

static int check_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The rule files of dir as rule_set_load_dir picks them (*.yaml not starting with '.',
 * rule tests *.test.yaml excluded),
 * sorted; NULL with a message when the directory cannot be read. */
static char **check_list_dir(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **out = NULL;
    size_t cap = 0;
    *n = 0;
    if (!d) {
        fprintf(stderr, "csmetrics: cannot open rules directory '%s': %s\n", dir, strerror(errno));
        return NULL;
    }
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len <= 5 || strcmp(e->d_name + len - 5, ".yaml") != 0 ||
            (len > 10 && strcmp(e->d_name + len - 10, ".test.yaml") == 0))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            out = xrealloc(out, cap * sizeof(*out));
        }
        struct buf p;
        buf_init(&p);
        buf_printf(&p, "%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name);
        out[(*n)++] = p.data;
    }
    closedir(d);
    if (*n)
        qsort(out, *n, sizeof(*out), check_name_cmp);
    return out ? out : xcalloc(1, sizeof(*out));
}

static int check_dir(const char *dir)
{
    size_t n;
    char **paths = check_list_dir(dir, &n);
    if (!paths)
        return 1;
    size_t bad = check_files(paths, n);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    if (bad)
        return 1;
    /* The daemon's own view of the whole set: what it loads at start and on SIGHUP. */
    char err[2048];
    struct rule_set *s = rule_set_load_dir(dir, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (s->n == 0)
        printf("%s: ok (no rule files)\n", dir);
    rule_set_destroy(s);
    return 0;
}

int cli_check(int argc, char **argv, const char *config_path)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            check_usage(stdout);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1] && strcmp(argv[i], "--") != 0) {
            fprintf(stderr, "csmetrics: check: unknown option '%s'\n", argv[i]);
            check_usage(stderr);
            return 2;
        }
    }
    int first = argc > 1 && strcmp(argv[1], "--") == 0 ? 2 : 1;
    size_t nfiles = argc > first ? (size_t)(argc - first) : 0;
    char **files = argv + first;

    /* The configuration is implicit when it is the default main chose ($CSMETRICS_CONFIG,
     * else the system path): then, with rule files to check, its absence is no error. */
    const char *env = getenv("CSMETRICS_CONFIG");
    const char *implicit = env && *env ? env : DEFAULT_CONFIG;
    if (nfiles && strcmp(config_path, implicit) == 0 && access(config_path, F_OK) != 0 &&
        errno == ENOENT) {
        fprintf(stderr, "csmetrics: no configuration at '%s': checking the rule files only\n",
                config_path);
        return check_files(files, nfiles) ? 1 : 0;
    }
    struct csm_config cfg;
    int status = 0;
    if (cli_load_config(&cfg, config_path) < 0) {
        status = 1;
    } else {
        printf("%s: ok\n", config_path);
    }
    if (nfiles)
        status |= check_files(files, nfiles) ? 1 : 0;
    else if (status == 0)
        status = check_dir(cfg.rules_dir);
    config_release(&cfg);
    return status;
}
