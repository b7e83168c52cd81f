/* fuzz_config.c - libFuzzer target for the --config file reader (src/server/config.c): an
 * input is a file's text. Invariants: it is accepted (0) or refused (HR_EINVAL) with one line
 * that starts with the file's name; an accepted file printed by --print-config (secrets left
 * out) reads back to a configuration that prints the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "server/config.h"

static char *print(const struct herald_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f || hr_config_print(f, cfg) != 0)
        abort();
    fclose(f);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct herald_config cfg, back;
    char err[256];
    err[0] = 0;
    hr_config_init(&cfg);
    int rc = hr_config_load_text(&cfg, "f", (const char *)data, size, err, sizeof err);
    if (rc != 0) {
        if (rc != HR_EINVAL || strncmp(err, "f:", 2) != 0 || strchr(err, '\n'))
            abort();
        return 0;
    }
    cfg.auth.jwt_secret = cfg.auth.publish_key = NULL; /* printed redacted: not read back */
    hr_config_quota_defaults(&cfg);
    char *one = print(&cfg);
    hr_config_init(&back);
    if (hr_config_load_text(&back, "p", one, strlen(one), err, sizeof err) != 0)
        abort();
    hr_config_quota_defaults(&back);
    char *two = print(&back);
    if (strcmp(one, two) != 0)
        abort();
    free(one);
    free(two);
    return 0;
}
