/* shrink_mapped.c - LD_PRELOAD shim for tests/test_hostile_input.sh: right
 * after the first mapping of the file named by $GPT2IN_SHRINK, truncates
 * that file to 0 bytes, so the next touch of the mapping raises SIGBUS at a
 * known point (the file shrinking under a running command, without a race). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    static void *(*real)(void *, size_t, int, int, int, off_t);
    static int done;
    if (!real) real = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
    void *p = real(addr, len, prot, flags, fd, off);
    const char *want = getenv("GPT2IN_SHRINK");
    if (p != MAP_FAILED && fd >= 0 && want && !done) {
        char link[64], got[4096], *abs = realpath(want, NULL);
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, got, sizeof got - 1);
        if (n > 0 && abs) {
            got[n] = 0;
            if (!strcmp(got, abs) && truncate(want, 0) == 0) done = 1;
        }
        free(abs);
    }
    return p;
}
