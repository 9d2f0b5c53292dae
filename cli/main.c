/* csmetrics — the operator's tool: dispatches to one command per file in cli/. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv, const char *config_path);
    const char *help;
} commands[] = {
    {.name = "check", .run = cli_check, .help = "check the configuration and rule files"},
    {.name = "test", .run = cli_test, .help = "run rule unit tests (rule test files)"},
    {.name = "show", .run = cli_show, .help = "an agent's live KPIs from Redis"},
    {.name = "top", .run = cli_top, .help = "live leaderboard of every shop's agents"},
    {.name = "snapshots", .run = cli_snapshots, .help = "the final snapshots in Redis"},
    {.name = "simulate",
     .run = cli_simulate,
     .help = "synthetic shop traffic into Kafka or as JSON lines"},
    {.name = "kafka-mock",
     .run = cli_kafka_mock,
     .help = "run a local Kafka (librdkafka mock cluster)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: csmetrics [-c FILE] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\n-c FILE (before or after COMMAND) names the configuration; default "
                 "$CSMETRICS_CONFIG, else /etc/csmetrics/csmetrics.yaml.\n"
                 "'csmetrics COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    const char *config = getenv("CSMETRICS_CONFIG");
    if (!config || !*config)
        config = "/etc/csmetrics/csmetrics.yaml";
    /* Pull -c FILE out wherever it stands, so commands see only their own flags. */
    char **args = calloc((size_t)argc + 1, sizeof(*args));
    if (!args)
        return 1;
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            config = argv[++i];
            continue;
        }
        args[n++] = argv[i];
    }
    if (n == 0 || strcmp(args[0], "--help") == 0 || strcmp(args[0], "-h") == 0 ||
        strcmp(args[0], "help") == 0) {
        usage(n == 0 ? stderr : stdout);
        free(args);
        return n == 0 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(args[0], commands[i].name) == 0) {
            int rc = commands[i].run(n, args, config);
            free(args);
            return rc;
        }
    }
    fprintf(stderr, "csmetrics: unknown command '%s'\n", args[0]);
    usage(stderr);
    free(args);
    return 2;
}
