/* paths.c - an installed herald's default pages and data directory, found beside the binary
 * (PREFIX/bin/herald -> PREFIX/share/herald/public) rather than compiled in, so the same build
 * serves from /usr (the .deb, which cpack installs without recompiling), /usr/local or a
 * temporary prefix alike. */
#include "paths.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char public_dir[PATH_MAX], data_dir[PATH_MAX], admin_dir[PATH_MAX];
static int installed;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* PREFIX's system data directory: FHS puts /usr's variable data in /var, any other prefix's
 * under PREFIX/var (as GNUInstallDirs' LOCALSTATEDIR does). Returns 0, or -1 if too long. */
static int system_data(const char *prefix, char *out, size_t outlen)
{
    if (strcmp(prefix, "/usr") == 0)
        prefix = "";
    int n = snprintf(out, outlen, "%s/var/lib/herald", prefix);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* A directory the caller may write into, or whose nearest existing parent it may write into
 * (herald creates the missing part). */
static int writable(const char *dir)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", dir);
    for (;;) {
        if (access(p, F_OK) == 0)
            return access(p, W_OK | X_OK) == 0;
        char *slash = strrchr(p, '/');
        if (!slash || slash == p)
            return access("/", W_OK | X_OK) == 0;
        *slash = '\0';
    }
}

static void find(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/'); /* PREFIX/bin/herald -> PREFIX/bin */
    if (!slash)
        return;
    *slash = '\0';
    slash = strrchr(exe, '/');
    if (!slash || strcmp(slash, "/bin") != 0)
        return;
    *slash = '\0'; /* PREFIX ("" for /bin/herald) */
    const char *prefix = exe[0] ? exe : "/";
    /* Debian's merged /usr: /bin is /usr/bin, so /bin/herald is the .deb's /usr/bin/herald */
    if (strcmp(prefix, "/") == 0 && is_dir("/usr/share/herald/public"))
        prefix = "/usr";
    int len = snprintf(public_dir, sizeof public_dir, "%s/share/herald/public",
                       strcmp(prefix, "/") == 0 ? "" : prefix);
    if (len <= 0 || (size_t)len >= sizeof public_dir || !is_dir(public_dir))
        return;
    installed = 1;
    snprintf(admin_dir, sizeof admin_dir, "%.*s/admin-ui",
             (int)(strlen(public_dir) - strlen("/public")), public_dir);

    const char *state = getenv("STATE_DIRECTORY"); /* systemd: one or more, ':'-separated */
    if (state && state[0] == '/') {
        snprintf(data_dir, sizeof data_dir, "%.*s", (int)strcspn(state, ":"), state);
        return;
    }
    if (system_data(strcmp(prefix, "/") == 0 ? "" : prefix, data_dir, sizeof data_dir) < 0) {
        installed = 0; /* a prefix this long: the relative defaults */
        return;
    }
    if (geteuid() == 0 || writable(data_dir))
        return;
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/')
        snprintf(data_dir, sizeof data_dir, "%s/herald", xdg);
    else if (home && home[0] == '/')
        snprintf(data_dir, sizeof data_dir, "%s/.local/state/herald", home);
}

const char *hr_paths_public(void)
{
    pthread_once(&once, find);
    return installed ? public_dir : NULL;
}

const char *hr_paths_data(void)
{
    pthread_once(&once, find);
    return installed ? data_dir : NULL;
}

const char *hr_paths_admin_ui(void)
{
    pthread_once(&once, find);
    return installed ? admin_dir : NULL;
}
