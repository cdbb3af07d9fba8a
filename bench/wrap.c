/* Every runtime in `make bench` runs behind this same wrapper: a private mount
 * namespace without the cgroup2 `unified` mount of a hybrid host (crun 1.8 refuses
 * hybrid hosts). One process and one exec, so the wrapper adds as little as possible
 * to what is measured. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: wrap RUNTIME [ARG...]\n");
        return 2;
    }
    if (unshare(CLONE_NEWNS) < 0) {
        fprintf(stderr, "wrap: unshare(CLONE_NEWNS): %s\n", strerror(errno));
        return 125;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        fprintf(stderr, "wrap: make / private: %s\n", strerror(errno));
        return 125;
    }
    if (umount2("/sys/fs/cgroup/unified", MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
        fprintf(stderr, "wrap: umount /sys/fs/cgroup/unified: %s\n", strerror(errno));
        return 125;
    }
    execvp(argv[1], argv + 1);
    fprintf(stderr, "wrap: exec %s: %s\n", argv[1], strerror(errno));
    return 127;
}
