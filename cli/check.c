/* check — validates the configuration (and, with the rules engine, the rule files);
 * prints errors as file:line:column: message and exits 0/1, like promtool check. */
#include "cli/cli.h"
#include "cli/common.h"

#include <stdio.h>
#include <string.h>

int cli_check(int argc, char **argv, const char *config_path)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: csmetrics [-c FILE] check\n  Checks the configuration; exits 0 when valid.\n");
        return 0;
    }
    struct csm_config cfg;
    int rc = cli_load_config(&cfg, config_path);
    if (rc == 0)
        printf("%s: ok\n", config_path);
    config_release(&cfg);
    return rc == 0 ? 0 : 1;
}
