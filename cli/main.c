/* csmetrics — the operator's tool: dispatches to one command per file in cli/. */
#include "cli/cli.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* `example` is printed after the command's own --help when that has none. */
static const struct command {
    const char *name;
    int (*run)(int argc, char **argv, const char *config_path);
    const char *help;
    const char *example;
} commands[] = {
    {.name = "check",
     .run = cli_check,
     .help = "check the configuration and rule files",
     .example = "csmetrics -c /etc/csmetrics/csmetrics.yaml check\n"
                "  csmetrics check rules/examples/plan2.yaml"},
    {.name = "test",
     .run = cli_test,
     .help = "run rule unit tests (rule test files)",
     .example = "csmetrics test rules/examples/*.test.yaml"},
    {.name = "show",
     .run = cli_show,
     .help = "an agent's live KPIs from Redis",
     .example = "csmetrics show --shop shop-1 --agent a07 --period 2026-11\n"
                "  csmetrics show --shop shop-1 --team --json"},
    {.name = "top", .run = cli_top, .help = "live leaderboard of every shop's agents"},
    {.name = "snapshots",
     .run = cli_snapshots,
     .help = "the final snapshots in Redis",
     .example = "csmetrics snapshots --shop shop-1 --period 2026-10"},
    {.name = "review", .run = cli_review, .help = "write review events (scores) to Kafka"},
    {.name = "target", .run = cli_target, .help = "write target events (sales plans) to Kafka"},
    {.name = "simulate",
     .run = cli_simulate,
     .help = "synthetic shop traffic into Kafka or as JSON lines",
     .example = "csmetrics simulate --agents 50 --shops 2 --bootstrap-file /tmp/bootstrap "
                "--speed 3600"},
    {.name = "kafka-mock",
     .run = cli_kafka_mock,
     .help = "run a local Kafka (librdkafka mock cluster)",
     .example = "csmetrics kafka-mock --partitions 8 --bootstrap-file /tmp/bootstrap"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: csmetrics [-c FILE] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "  %-11s %s\n", "help", "describe a command: csmetrics help COMMAND");
    fprintf(out, "\n-c FILE (before or after COMMAND) names the configuration; default "
                 "$CSMETRICS_CONFIG, else /etc/csmetrics/csmetrics.yaml.\n"
                 "'csmetrics COMMAND --help' (or 'csmetrics help COMMAND') describes a command.\n"
                 "\nExample: csmetrics -c /etc/csmetrics/csmetrics.yaml top --shop shop-1\n");
}

static const struct command *lookup(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0)
            return &commands[i];
    return NULL;
}

/* Runs cmd with --help, then its example when its own text has none. */
static int help(const struct command *cmd, const char *config)
{
    char *argv[] = {(char *)cmd->name, "--help", NULL};
    int rc = cmd->run(2, argv, config);
    if (rc == 0 && cmd->example)
        printf("\n%s:\n  %s\n", strchr(cmd->example, '\n') ? "Examples" : "Example", cmd->example);
    return rc;
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
    int rc;
    const struct command *cmd;
    if (n == 0) {
        usage(stderr);
        rc = 2;
    } else if (strcmp(args[0], "--help") == 0 || strcmp(args[0], "-h") == 0 ||
               (strcmp(args[0], "help") == 0 && n == 1)) {
        usage(stdout);
        rc = 0;
    } else if (strcmp(args[0], "help") == 0) {
        cmd = lookup(args[1]);
        if (cmd) {
            rc = help(cmd, config);
        } else {
            fprintf(stderr, "csmetrics: unknown command '%s'\n", args[1]);
            usage(stderr);
            rc = 2;
        }
    } else if ((cmd = lookup(args[0])) != NULL) {
        bool want_help = false;
        for (int i = 1; i < n && strcmp(args[i], "--") != 0; i++)
            want_help |= strcmp(args[i], "--help") == 0 || strcmp(args[i], "-h") == 0;
        rc = want_help ? help(cmd, config) : cmd->run(n, args, config);
    } else {
        fprintf(stderr, "csmetrics: unknown command '%s'\n", args[0]);
        usage(stderr);
        rc = 2;
    }
    free(args);
    return rc;
}
