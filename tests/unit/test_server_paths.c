/* test_server_paths.c - src/server/paths.c: a program found as PREFIX/bin/NAME beside
 * PREFIX/share/herald/public is installed, and its default pages and data directory follow;
 * anywhere else (this test in the build tree) the table's relative defaults stand. The
 * installed cases copy this test program into a temporary prefix and run the copy, which
 * prints what it found (paths are found once per process, from /proc/self/exe). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/config.h"
#include "server/paths.h"

static char prefix[256], bin[300], public_dir[300], found[2][512];

static void mkdirs(const char *path)
{
    char p[512];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        mkdir(p, 0755);
        *s = '/';
    }
    assert_true(mkdir(p, 0755) == 0 || access(p, F_OK) == 0);
}

/* a copy of this program at PREFIX/bin/herald */
static int make_prefix(void **state)
{
    snprintf(prefix, sizeof prefix, "/tmp/herald-paths-XXXXXX");
    assert_non_null(mkdtemp(prefix));
    snprintf(bin, sizeof bin, "%s/bin", prefix);
    mkdirs(bin);
    snprintf(bin, sizeof bin, "%s/bin/herald", prefix);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp /proc/%d/exe '%s'", (int)getpid(), bin);
    assert_int_equal(system(cmd), 0);
    snprintf(public_dir, sizeof public_dir, "%s/share/herald/public", prefix);
    return 0;
}

static int remove_prefix(void **state)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'; rm -rf '%s'", prefix, prefix);
    return system(cmd) == 0 ? 0 : -1;
}

/* Runs the copy with the environment as set; found[0] its pages, found[1] its data (the
 * config's defaults, as herald --help would show them). */
static void run_copy(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' paths-child", bin);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    for (int i = 0; i < 2; i++) {
        assert_non_null(fgets(found[i], sizeof found[i], f));
        found[i][strcspn(found[i], "\n")] = '\0';
    }
    assert_int_equal(pclose(f), 0);
}

static void build_tree_keeps_relative_defaults(void **state)
{
    assert_null(hr_paths_public());
    assert_null(hr_paths_data());
    struct herald_config cfg;
    hr_config_init(&cfg);
    assert_string_equal(cfg.io.public_dir, "public");
    assert_string_equal(cfg.io.data_dir, "data");
}

/* PREFIX/bin/herald without PREFIX/share/herald/public: not an install (a build folder that
 * happens to be called bin) */
static void bin_without_pages_is_not_installed(void **state)
{
    unsetenv("STATE_DIRECTORY");
    run_copy();
    assert_string_equal(found[0], "public");
    assert_string_equal(found[1], "data");
}

static void installed_finds_pages_and_data(void **state)
{
    mkdirs(public_dir);
    char want[512];
    /* systemd's StateDirectory=: the first of its list */
    setenv("STATE_DIRECTORY", "/var/lib/herald-test:/var/lib/other", 1);
    run_copy();
    assert_string_equal(found[0], public_dir);
    assert_string_equal(found[1], "/var/lib/herald-test");
    /* without it: PREFIX/var/lib/herald, which root or PREFIX's owner may create */
    unsetenv("STATE_DIRECTORY");
    run_copy();
    snprintf(want, sizeof want, "%s/var/lib/herald", prefix);
    assert_string_equal(found[1], want);
    /* a user who may not write there: their own state directory (root may write anywhere:
     * scripts/test-install.sh runs this case as another user) */
    if (geteuid() == 0)
        return;
    assert_int_equal(chmod(prefix, 0555), 0);
    setenv("XDG_STATE_HOME", "/home/someone/state", 1);
    run_copy();
    assert_string_equal(found[1], "/home/someone/state/herald");
    unsetenv("XDG_STATE_HOME");
    setenv("HOME", "/home/someone", 1);
    run_copy();
    assert_string_equal(found[1], "/home/someone/.local/state/herald");
    assert_int_equal(chmod(prefix, 0755), 0);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "paths-child") == 0) {
        struct herald_config cfg;
        hr_config_init(&cfg);
        printf("%s\n%s\n", cfg.io.public_dir, cfg.io.data_dir);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(build_tree_keeps_relative_defaults),
        cmocka_unit_test(bin_without_pages_is_not_installed),
        cmocka_unit_test(installed_finds_pages_and_data),
    };
    return cmocka_run_group_tests(tests, make_prefix, remove_prefix);
}
