/* seedgen — writes the inline fixtures of a unit test as seed files of a fuzz corpus, so
 * that the corpus follows the tests: `make fuzz-seeds` builds it once per harness with
 * -DSEED_<HARNESS> and runs it as `seedgen DIR`. It compiles the test file itself (its
 * tables are static) with the test's main renamed. Not part of the daemon. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define main unit_test_main
#if defined(SEED_DECODE)
#include "tests/unit/test_decode.c"
#elif defined(SEED_CONFIG)
#include "tests/unit/test_config.c"
#elif defined(SEED_RULES)
#include "tests/unit/test_rule.c"
#elif defined(SEED_EXPR)
#include "tests/unit/test_expr.c"
#else
#error "define SEED_DECODE, SEED_CONFIG, SEED_RULES or SEED_EXPR"
#endif
#undef main

int main(int argc, char **argv);

static void seed_put(const char *dir, const char *name, size_t i, const void *head, size_t headlen,
                     const char *text, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s-%03zu", dir, name, i);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(head, 1, headlen, f) != headlen || fwrite(text, 1, len, f) != len ||
        fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seedgen DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    (void)unit_test_main;
#if defined(SEED_DECODE)
    /* One topic byte, then the message (the q() of the table). */
    for (size_t i = 0; i < N(bad_cases); i++) {
        char *j = q(bad_cases[i].json, bad_cases[i].raw);
        unsigned char t = (unsigned char)bad_cases[i].topic;
        seed_put(dir, "bad", i, &t, 1, j, strlen(j));
        free(j);
    }
    for (size_t i = 0; i < N(good_cases); i++) {
        char *j = q(good_cases[i].json, false);
        unsigned char t = (unsigned char)good_cases[i].topic;
        seed_put(dir, "good", i, &t, 1, j, strlen(j));
        free(j);
    }
#elif defined(SEED_CONFIG)
    seed_put(dir, "full-dump", 0, "", 0, full_dump, strlen(full_dump));
#elif defined(SEED_RULES)
    /* Inputs that are not fixture file names are rule files' text. */
    for (size_t i = 0; i < COUNT_OF(bad_cases); i++)
        if (strchr(bad_cases[i].input, '\n'))
            seed_put(dir, "bad-inline", i, "", 0, bad_cases[i].input, strlen(bad_cases[i].input));
    for (size_t i = 0; i < COUNT_OF(inline_cases); i++)
        seed_put(dir, "inline", i, "", 0, inline_cases[i].input, strlen(inline_cases[i].input));
#elif defined(SEED_EXPR)
    for (size_t i = 0; i < N(eval_cases); i++)
        seed_put(dir, "eval", i, "", 0, eval_cases[i].src, strlen(eval_cases[i].src));
    for (size_t i = 0; i < N(err_cases); i++)
        seed_put(dir, "err", i, "", 0, err_cases[i].src, strlen(err_cases[i].src));
    for (size_t i = 0; i < N(soup); i++)
        seed_put(dir, "soup", i, "", 0, soup[i], strlen(soup[i]));
#endif
    return 0;
}
