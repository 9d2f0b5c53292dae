/* cli/common — see common.h. */
#include "cli/common.h"

#include <stdio.h>

int cli_load_config(struct csm_config *cfg, const char *path)
{
    char err[1024];
    config_init(cfg);
    if (config_load(cfg, path, err, sizeof(err)) < 0 ||
        config_validate(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "csmetrics: %s\n", err);
        return -1;
    }
    return 0;
}

struct rconn *cli_redis(const struct csm_config *cfg)
{
    char err[512];
    struct rconn_opts o = {
        .url = cfg->redis_url, .password = cfg->redis_password, .function_lib = store_lua_library};
    struct rconn *rc = rconn_new(&o, err, sizeof(err));
    if (!rc || rconn_connect(rc, err, sizeof(err)) < 0) {
        fprintf(stderr, "csmetrics: %s\n", err);
        rconn_destroy(rc);
        return NULL;
    }
    return rc;
}
