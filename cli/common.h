/* cli/common — what several csmetrics commands share: loading the configuration and
 * connecting to Redis with the function library, reading one owner's KPIs. */
#ifndef CSM_CLI_COMMON_H
#define CSM_CLI_COMMON_H

#include "config/config.h"
#include "daemon/rconn.h"
#include "daemon/store.h"

/* Loads and validates path (selects its time zone); prints the error and returns -1. */
int cli_load_config(struct csm_config *cfg, const char *path);
/* Connects to the configured Redis; prints the error and returns NULL. */
struct rconn *cli_redis(const struct csm_config *cfg);

#endif
