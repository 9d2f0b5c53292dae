/* cli — the `csmetrics` operator tool's commands. Each takes the arguments after its
 * name (argv[0] is the command name) and the config path chosen by main (-c FILE
 * before or after the command, else $CSMETRICS_CONFIG, else /etc/csmetrics/csmetrics.yaml),
 * and returns the process exit status. */
#ifndef CSM_CLI_CLI_H
#define CSM_CLI_CLI_H

int cli_kafka_mock(int argc, char **argv, const char *config_path);
int cli_simulate(int argc, char **argv, const char *config_path);
int cli_show(int argc, char **argv, const char *config_path);
int cli_check(int argc, char **argv, const char *config_path);
int cli_top(int argc, char **argv, const char *config_path);
int cli_test(int argc, char **argv, const char *config_path);
int cli_snapshots(int argc, char **argv, const char *config_path);
int cli_review(int argc, char **argv, const char *config_path);
int cli_target(int argc, char **argv, const char *config_path);

#endif
