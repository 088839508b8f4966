/*
 * bench-prep: the untimed --prepare steps of benches/run.sh that need root.
 *
 * hyperfine runs as the unprivileged bench user, so that no root-owned wrapper is in
 * the timed process tree; these steps run between timed runs. run.sh compiles this
 * file and installs it setuid root only inside the benchmark's private mount
 * namespace (/opt is an overlay there), so it never exists on the host.
 *
 *   bench-prep cold           sync, then drop the page, dentry and inode caches
 *   bench-prep config NAME    make /opt/jt/configs/NAME.toml (NAME: a-z and -) the
 *                             jitsudo config, replacing /etc/jitsudo/jitsudo.toml
 *                             atomically, root-owned, 0644
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(const char *what)
{
    perror(what);
    return 1;
}

static int drop_caches(void)
{
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return fail("/proc/sys/vm/drop_caches");
    if (write(fd, "3\n", 2) != 2)
        return fail("drop_caches");
    return close(fd) ? fail("close") : 0;
}

static int use_config(const char *name)
{
    char src[256], buf[65536];
    const char *dst = "/etc/jitsudo/jitsudo.toml", *tmp = "/etc/jitsudo/.jitsudo.toml.bench";
    if (!*name || strspn(name, "abcdefghijklmnopqrstuvwxyz-") != strlen(name) || strlen(name) > 64)
        return fprintf(stderr, "bench-prep: bad config name\n"), 2;
    snprintf(src, sizeof src, "/opt/jt/configs/%s.toml", name);
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return fail(src);
    ssize_t n = read(in, buf, sizeof buf);
    close(in);
    if (n < 0 || n == sizeof buf)
        return fail("read config");
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (out < 0)
        return fail(tmp);
    if (write(out, buf, n) != n || fchown(out, 0, 0) || fchmod(out, 0644) || close(out))
        return fail("write config");
    return rename(tmp, dst) ? fail("rename config") : 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "cold"))
        return drop_caches();
    if (argc == 3 && !strcmp(argv[1], "config"))
        return use_config(argv[2]);
    fprintf(stderr, "usage: bench-prep cold | bench-prep config NAME\n");
    return 2;
}
