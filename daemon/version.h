/* version — csmetrics' release version, written into snapshots and --version. */
#ifndef CSM_DAEMON_VERSION_H
#define CSM_DAEMON_VERSION_H
#define CSM_VERSION "0.1.0"
#endif
