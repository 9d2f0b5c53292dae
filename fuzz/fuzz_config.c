/* fuzz_config — libFuzzer harness for config/config.c: the input is a csmetrics.yaml.
 * Loads it with config_load_buffer, then config_validate and config_dump. Oracle beyond
 * the sanitizers: a configuration that loads dumps to YAML that loads again and dumps to
 * the very same text (the dump is what `csmetricsd --dump-config` shows an operator).
 * Inputs naming /dev, /proc or /sys are skipped: an `@file:` value or password_file
 * reading /dev/stdin would block the fuzzer, and reading files is not what is tested. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    unsetenv("CREDENTIALS_DIRECTORY"); /* no systemd credential sneaks in */
    return 0;
}

static char *dump_of(const struct csm_config *c, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    CHECK(f != NULL);
    config_dump(c, f);
    CHECK(fclose(f) == 0);
    return text;
}

/* An error message is "fuzz.yaml:line:column: text" or "fuzz.yaml: text", one line. */
static void check_error(const char *err, size_t cap)
{
    size_t n = strnlen(err, cap);
    CHECK(n > 0 && n < cap);
    CHECK(strncmp(err, "fuzz.yaml:", 10) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct csm_config c, again;
    char err[2048];
    size_t len1, len2;

    if (memmem(data, size, "/dev", 4) || memmem(data, size, "/proc", 5) ||
        memmem(data, size, "/sys", 4))
        return 0;
    config_init(&c);
    if (config_load_buffer(&c, "fuzz.yaml", (const char *)data, size, err, sizeof(err)) != 0) {
        check_error(err, sizeof(err));
        config_release(&c);
        return 0;
    }
    if (config_validate(&c, err, sizeof(err)) != 0)
        check_error(err, sizeof(err));

    char *dump = dump_of(&c, &len1);
    config_init(&again);
    if (config_load_buffer(&again, "fuzz.yaml", dump, len1, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_config: the dump does not load: %s\n--- dump\n%s---\n", err, dump);
        abort();
    }
    char *dump2 = dump_of(&again, &len2);
    if (len1 != len2 || memcmp(dump, dump2, len1) != 0) {
        fprintf(stderr, "fuzz_config: the dump changes on reload\n--- first\n%s--- second\n%s---\n",
                dump, dump2);
        abort();
    }
    free(dump);
    free(dump2);
    config_release(&again);
    config_release(&c);
    return 0;
}
