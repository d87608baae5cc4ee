/* cli_output.c - the checks every command that writes a named file makes
 * before it reads or computes anything: the output name is usable (not
 * empty, not a directory, socket or block device, in a directory that
 * exists) and is not one of the command's own inputs. The writing itself is
 * the library's embed_writer (a temporary file renamed over the target; a
 * symlink's target is replaced; a device or FIFO is written straight
 * through), so there is one mechanism for every output. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* The directory part of path ("." when it has none), malloc'd, or NULL. */
static char *dir_of(const char *path) {
    const char *sl = strrchr(path, '/');
    return sl ? strndup(path, sl == path ? 1 : (size_t)(sl - path)) : strdup(".");
}

/* The directory a new file named path would go in. */
static int dir_problem(const char *cmd, const char *opt, const char *out) {
    char *dir = dir_of(out);
    if (!dir)
        return cli_error("out of memory");
    struct stat st;
    int rc = 0;
    if (stat(dir, &st) != 0)
        rc = cli_error("%s: %s %s: cannot write in %s: %s", cmd, opt, cli_q(out), cli_q(dir),
                       strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        rc = cli_error("%s: %s %s: %s is not a directory", cmd, opt, cli_q(out), cli_q(dir));
    else if (access(dir, W_OK | X_OK) != 0)
        rc = cli_error("%s: %s %s: cannot write in %s: %s", cmd, opt, cli_q(out), cli_q(dir),
                       strerror(errno));
    free(dir);
    return rc;
}

/* Do a and b, neither of which exists yet, name the same new file: the same
 * last component in the same directory ("s" and "./s")? */
static int same_new_name(const char *a, const char *b) {
    const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
    const char *na = sa ? sa + 1 : a, *nb = sb ? sb + 1 : b;
    if (strcmp(na, nb))
        return 0;
    char *da = dir_of(a), *db = dir_of(b);
    struct stat x, y;
    int same = da && db && stat(da, &x) == 0 && stat(db, &y) == 0 && x.st_dev == y.st_dev &&
               x.st_ino == y.st_ino;
    free(da);
    free(db);
    return same;
}

/* The name a new file written at path gets: path itself, or, when path is a
 * symbolic link (a chain of them), the name its last link points at, which
 * does not exist yet. malloc'd, or NULL when out of memory. */
static char *final_name(const char *path) {
    char *name = strdup(path);
    struct stat st;
    for (int hops = 0; name && hops < 40 && lstat(name, &st) == 0 && S_ISLNK(st.st_mode); hops++) {
        char target[4096];
        ssize_t n = readlink(name, target, sizeof target - 1);
        if (n <= 0)
            break;
        target[n] = 0;
        char *next;
        if (target[0] == '/') {
            next = strdup(target);
        } else {  /* relative to the link's directory */
            char *dir = dir_of(name);
            size_t len = dir ? strlen(dir) + 1 + (size_t)n + 1 : 0;
            next = dir ? malloc(len) : NULL;
            if (next)
                snprintf(next, len, "%s/%s", dir, target);
            free(dir);
        }
        free(name);
        name = next;
    }
    return name;
}

int cli_output_check(const char *cmd, const char *opt, const char *out,
                     const char *const *inputs, size_t n_inputs, int allow_stdout) {
    struct stat so, si;
    int to_stdout = !strcmp(out, "-");
    if (!*out)
        return cli_error("%s: %s needs a file name, not an empty string", cmd, opt);
    if (to_stdout && !allow_stdout)
        return cli_error("%s: %s -: this command cannot write to standard output; name a "
                         "file", cmd, opt);
    if (to_stdout ? fstat(STDOUT_FILENO, &so) != 0 : stat(out, &so) != 0) {
        struct stat sl;
        if (to_stdout || errno != ENOENT)
            return cli_error("%s: %s %s: cannot write: %s", cmd, opt, cli_q(out), strerror(errno));
        if (out[strlen(out) - 1] == '/')
            return cli_error("%s: %s %s: is not a file name (it ends in '/')", cmd, opt, cli_q(out));
        /* a new file, so no input by inode; but two names of one new file
         * are still one file (step --state S --out ./S, or a dangling
         * symlink to the other) */
        char *fo = final_name(out);
        if (!fo)
            return cli_error("out of memory");
        int clash = 0;
        for (size_t i = 0; i < n_inputs && !clash; i++) {
            if (!inputs[i] || !strcmp(inputs[i], "-") || stat(inputs[i], &sl) == 0)
                continue;
            char *fi = final_name(inputs[i]);
            if (!fi) {
                free(fo);
                return cli_error("out of memory");
            }
            clash = same_new_name(fi, fo);
            free(fi);
        }
        free(fo);
        if (clash)
            return cli_error("%s: %s %s is also an input; write it to another file",
                             cmd, opt, cli_q(out));
        /* (a dangling symlink's target directory is the library's to check) */
        if (lstat(out, &sl) == 0)
            return CLI_OK;
        return dir_problem(cmd, opt, out);
    }
    /* stdout closed by the caller (cli_start put /dev/null there):
     * "-" or a name of it (/dev/stdout) would lose the output unseen */
    struct stat sc;
    if (cli_stdout_closed() && (to_stdout || (fstat(STDOUT_FILENO, &sc) == 0 && sc.st_dev == so.st_dev &&
                                              sc.st_ino == so.st_ino && sc.st_rdev == so.st_rdev)))
        return to_stdout ? cli_error("%s: standard output is closed", cmd)
                         : cli_error("%s: %s %s is standard output, which is closed", cmd, opt, cli_q(out));
    /* stdout is whatever the shell opened: only the same-file check applies */
    if (to_stdout)
        ;
    else if (S_ISDIR(so.st_mode))
        return cli_error("%s: %s %s: is a directory", cmd, opt, cli_q(out));
    else if (S_ISCHR(so.st_mode) || S_ISFIFO(so.st_mode)) {
        /* written straight through; never one of the input files. A FIFO
         * whose reader left: a write error naming it, not a silent SIGPIPE */
        if (S_ISFIFO(so.st_mode))
            signal(SIGPIPE, SIG_IGN);
        return CLI_OK;
    }
    else if (!S_ISREG(so.st_mode))
        return cli_error("%s: %s %s: is a socket or block device; only a file, a character "
                         "device or a FIFO can be written", cmd, opt, cli_q(out));
    else if (lstat(out, &si) == 0 && !S_ISLNK(si.st_mode) && dir_problem(cmd, opt, out))
        return CLI_ERR; /* (a link's target is elsewhere: the library checks that one) */
    if (!S_ISREG(so.st_mode))
        return CLI_OK;
    /* The same file under any name (symlink, hard link, stdin): writing it
     * would destroy an input, or read back what is being written. */
    for (size_t i = 0; i < n_inputs; i++) {
        const char *in = inputs[i];
        if (!in)
            continue;
        int is_stdin = !strcmp(in, "-");
        if (is_stdin ? fstat(STDIN_FILENO, &si) != 0 : stat(in, &si) != 0)
            continue; /* a missing input is reported where it is read */
        if (si.st_dev == so.st_dev && si.st_ino == so.st_ino)
            return cli_error("%s: %s%s%s is the same file as the input %s; refusing to "
                             "overwrite an input (write to another file)", cmd,
                             to_stdout ? "standard output" : opt, to_stdout ? "" : " ",
                             to_stdout ? "" : cli_q(out), is_stdin ? "<stdin>" : cli_q(in));
    }
    return CLI_OK;
}
