/* SPDX-License-Identifier: MIT */
#include "engine/output.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kernels/core.h"

struct sm_output {
    FILE *stream;
    bool to_stdout;
    bool force;
    char *path;      /* final name */
    char *tmp_path;  /* named temporary sibling we created, or "" */
    int unnamed_fd;  /* second descriptor of an O_TMPFILE file, or -1 */
};

const char *sm_path_extension(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (dot == NULL || (slash != NULL && dot < slash) || dot == path || dot[-1] == '/')
        return "";
    return dot + 1;
}

static int io_error(sm_error *err, const char *path, const char *what, int saved)
{
    sm_error_set_at(err, SM_ERR_IO, path, 0, 0, NULL, "%s: %s", what, strerror(saved));
    sm_error_set_cause(err, saved);
    return SM_ERR_IO;
}

/* Directory part of path, as a new string ("." when there is none). */
static char *parent_directory(const char *path)
{
    char *copy = sm_strdup(path);
    if (copy == NULL)
        return NULL;
    char *dir = sm_strdup(dirname(copy));
    sm_free(copy);
    return dir;
}

/* S1: with SEGMINT_OUTPUT_ROOT set, the resolved parent directory must lie
 * inside the resolved root; `..` and symlinked directories cannot escape. */
static int check_output_root(const char *path, const char *dir, sm_error *err)
{
    const char *root = getenv("SEGMINT_OUTPUT_ROOT");
    if (root == NULL || root[0] == '\0')
        return SM_OK;
    char real_root[PATH_MAX], real_dir[PATH_MAX];
    if (realpath(root, real_root) == NULL)
        return io_error(err, root, "SEGMINT_OUTPUT_ROOT cannot be resolved", errno);
    if (realpath(dir, real_dir) == NULL)
        return io_error(err, path, "cannot resolve the output directory", errno);
    size_t len = strlen(real_root);
    bool inside = strncmp(real_dir, real_root, len) == 0 &&
                  (real_dir[len] == '\0' || real_dir[len] == '/' || (len == 1 && real_root[0] == '/'));
    if (!inside)
        return sm_error_set_at(err, SM_ERR_INVALID_ARG, path, 0, 0, NULL,
                               "resolves outside the allowed output root %s", real_root);
    return SM_OK;
}

/* An unnamed file in dir (O_TMPFILE), or -1 with errno set. It is only
 * useful if commit can link it by its /proc/self/fd name, so a system
 * without /proc counts as not supporting it (EOPNOTSUPP). */
static int open_unnamed(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (access(proc, F_OK) != 0) {
        close(fd);
        errno = EOPNOTSUPP;
        return -1;
    }
    return fd;
}

/* Fills the trailing XXXXXX of name with letters that differ between
 * processes and calls; linkat refuses an existing name, so a clash only costs
 * another attempt. */
static void fill_unique(char *name, unsigned attempt)
{
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t x = ((uint64_t)getpid() << 32) ^ (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 20) ^
                 ((uint64_t)attempt * UINT64_C(0x9E3779B97F4A7C15));
    x ^= x >> 31;
    x *= UINT64_C(0xBF58476D1CE4E5B9);
    x ^= x >> 29;
    char *p = name + strlen(name) - 6;
    for (int i = 0; i < 6; i++, x /= 62)
        p[i] = letters[x % 62];
}

/* Gives the unnamed file its final name. linkat never replaces, which is
 * exactly the no-overwrite rule; with force an existing target is replaced by
 * linking under a temporary sibling name and renaming that over it (rename
 * is atomic). A kill between those two steps leaves the sibling. */
static int link_unnamed(sm_output *o, sm_error *err)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", o->unnamed_fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, o->path, AT_SYMLINK_FOLLOW) == 0)
        return SM_OK;
    if (errno != EEXIST)
        return io_error(err, o->path, "cannot give the finished file its name", errno);
    if (!o->force)
        return sm_error_set_at(err, SM_ERR_EXISTS, o->path, 0, 0, NULL,
                               "appeared while it was being written; use --force to overwrite it");
    char *dir = parent_directory(o->path);
    if (dir == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory writing %s", o->path);
    const char *base = strrchr(o->path, '/');
    base = base ? base + 1 : o->path;
    size_t tmp_len = strlen(o->path) + 32;
    int saved = EEXIST;
    for (unsigned attempt = 0; attempt < 100 && saved == EEXIST; attempt++) {
        snprintf(o->tmp_path, tmp_len, "%s/.%s.tmp.XXXXXX", dir, base);
        fill_unique(o->tmp_path, attempt);
        saved = linkat(AT_FDCWD, proc, AT_FDCWD, o->tmp_path, AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
    }
    sm_free(dir);
    if (saved != 0) {
        o->tmp_path[0] = '\0'; /* not ours: never unlink it */
        return io_error(err, o->path, "cannot give the finished file its name", saved);
    }
    if (rename(o->tmp_path, o->path) != 0)
        return io_error(err, o->path, "cannot move the finished file into place", errno);
    o->tmp_path[0] = '\0';
    return SM_OK;
}

int sm_output_open(const char *path, bool force, sm_output **out, sm_error *err)
{
    *out = NULL;
    sm_output *o = sm_calloc(1, sizeof *o);
    if (o == NULL)
        return sm_error_set(err, SM_ERR_NOMEM, "out of memory opening %s", path);
    o->force = force;
    o->unnamed_fd = -1;
    if (strcmp(path, "-") == 0) {
        o->stream = stdout;
        o->to_stdout = true;
        *out = o;
        return SM_OK;
    }
    int rc = SM_OK;
    char *dir = NULL;
    if (path[0] == '\0' || path[strlen(path) - 1] == '/') {
        rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, path, 0, 0, NULL, "an output file name is required");
        goto out_fail;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (S_ISLNK(st.st_mode)) {
            rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, path, 0, 0, NULL,
                                 "is a symbolic link; refusing to write through it");
            goto out_fail;
        }
        if (S_ISDIR(st.st_mode)) {
            rc = sm_error_set_at(err, SM_ERR_INVALID_ARG, path, 0, 0, NULL, "is a directory");
            goto out_fail;
        }
        if (!force) {
            rc = sm_error_set_at(err, SM_ERR_EXISTS, path, 0, 0, NULL,
                                 "already exists; use --force to overwrite it");
            goto out_fail;
        }
    } else if (errno != ENOENT) {
        rc = io_error(err, path, "cannot inspect", errno);
        goto out_fail;
    }
    dir = parent_directory(path);
    o->path = sm_strdup(path);
    size_t tmp_len = strlen(path) + 32;
    o->tmp_path = sm_calloc(1, tmp_len); /* "": a failure before the file exists must unlink nothing */
    if (dir == NULL || o->path == NULL || o->tmp_path == NULL) {
        rc = sm_error_set(err, SM_ERR_NOMEM, "out of memory opening %s", path);
        goto out_fail;
    }
    rc = check_output_root(path, dir, err);
    if (rc != SM_OK)
        goto out_fail;
    /* The file is created in the target's directory so linking or renaming
     * it into place stays on one file system and is atomic. Preferred: an
     * unnamed O_TMPFILE file, so a SIGKILL or power cut before commit leaves
     * nothing in the user's folder. */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int fd = open_unnamed(dir);
    if (fd >= 0) {
        /* The stream's descriptor is closed (and its errors checked) before
         * the file gets its name; this one keeps the file alive until then. */
        o->unnamed_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (o->unnamed_fd < 0) {
            rc = io_error(err, path, "cannot create a file in its directory", errno);
            close(fd);
            goto out_fail;
        }
    } else if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
        /* No O_TMPFILE here (old kernel, some network and FUSE file systems):
         * a named temporary, which a kill before commit leaves behind as
         * `.NAME.tmp.XXXXXX`. mkstemp creates it with O_EXCL. */
        snprintf(o->tmp_path, tmp_len, "%s/.%s.tmp.XXXXXX", dir, base);
        fd = mkstemp(o->tmp_path);
        if (fd < 0)
            o->tmp_path[0] = '\0';
    }
    if (fd < 0) {
        rc = io_error(err, path, "cannot create a file in its directory", errno);
        goto out_fail;
    }
    fchmod(fd, 0644);
    o->stream = fdopen(fd, "w");
    if (o->stream == NULL) {
        rc = io_error(err, path, "cannot open a stream", errno);
        close(fd);
        goto out_fail;
    }
    /* Large buffer: outputs are written in many small pieces. */
    setvbuf(o->stream, NULL, _IOFBF, (size_t)1 << 20);
    sm_free(dir);
    *out = o;
    return SM_OK;

out_fail:
    sm_free(dir);
    sm_output_abort(o);
    return rc;
}

FILE *sm_output_stream(sm_output *o)
{
    return o->stream;
}

void sm_output_abort(sm_output *o)
{
    if (o == NULL)
        return;
    if (o->to_stdout) {
        fflush(stdout);
    } else {
        if (o->stream != NULL)
            fclose(o->stream);
        if (o->unnamed_fd >= 0)
            close(o->unnamed_fd); /* an unnamed file vanishes with its last descriptor */
        if (o->tmp_path != NULL && o->tmp_path[0] != '\0')
            unlink(o->tmp_path);
    }
    sm_free(o->path);
    sm_free(o->tmp_path);
    sm_free(o);
}

int sm_output_commit(sm_output *o, sm_error *err)
{
    if (o->to_stdout) {
        int failed = fflush(stdout) != 0 || ferror(stdout);
        int saved = errno;
        sm_free(o);
        return failed ? io_error(err, "<stdout>", "write failed", saved) : SM_OK;
    }
    int rc = SM_OK;
    FILE *stream = o->stream;
    o->stream = NULL;
    bool write_failed = ferror(stream) != 0;
    int saved = errno;
    if (fflush(stream) != 0) {
        write_failed = true;
        saved = errno;
    }
    if (!write_failed && fsync(fileno(stream)) != 0) {
        write_failed = true;
        saved = errno;
    }
    if (fclose(stream) != 0 && !write_failed) {
        write_failed = true;
        saved = errno;
    }
    if (write_failed) {
        rc = io_error(err, o->path, "write failed (nothing was written to it)", saved ? saved : EIO);
        goto out;
    }
    if (o->unnamed_fd >= 0) {
        rc = link_unnamed(o, err);
    } else if (o->force) {
        if (rename(o->tmp_path, o->path) != 0)
            rc = io_error(err, o->path, "cannot move the finished file into place", errno);
    } else if (renameat2(AT_FDCWD, o->tmp_path, AT_FDCWD, o->path, RENAME_NOREPLACE) != 0) {
        /* RENAME_NOREPLACE closes the window between the check at open and
         * now; file systems without it fall back to link + unlink. */
        if (errno == EEXIST)
            rc = sm_error_set_at(err, SM_ERR_EXISTS, o->path, 0, 0, NULL,
                                 "appeared while it was being written; use --force to overwrite it");
        else if (errno == EINVAL || errno == ENOSYS) {
            if (link(o->tmp_path, o->path) != 0)
                rc = errno == EEXIST ? sm_error_set_at(err, SM_ERR_EXISTS, o->path, 0, 0, NULL, "already exists")
                                     : io_error(err, o->path, "cannot move the finished file into place", errno);
        } else
            rc = io_error(err, o->path, "cannot move the finished file into place", errno);
    }
    if (rc == SM_OK) {
        char *dir = parent_directory(o->path);
        int dir_fd = dir ? open(dir, O_RDONLY | O_DIRECTORY) : -1;
        if (dir_fd >= 0) {
            fsync(dir_fd); /* make the new name itself durable */
            close(dir_fd);
        }
        sm_free(dir);
    }
out:
    if (o->tmp_path[0] != '\0')
        unlink(o->tmp_path); /* gone after rename; removes it after a failure */
    o->tmp_path[0] = '\0';
    sm_output_abort(o);
    return rc;
}

/* --- field writers -------------------------------------------------------------- */

/* A plain decimal number ("-12", "3.5", "-0.25e3") is data, not a formula. */
static bool is_plain_number(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    bool digits = false;
    while (isdigit((unsigned char)*s))
        s++, digits = true;
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s); s++)
            digits = true;
    if (!digits)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!isdigit((unsigned char)*s))
            return false;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0';
}

void sm_csv_put_text(FILE *out, const char *text, char delimiter)
{
    if (text == NULL)
        return;
    bool formula = (text[0] == '=' || text[0] == '+' || text[0] == '-' || text[0] == '@' ||
                    text[0] == '\t' || text[0] == '\r') &&
                   !is_plain_number(text);
    bool quote = false;
    for (const char *p = text; *p; p++)
        if (*p == delimiter || *p == '"' || *p == '\n' || *p == '\r') {
            quote = true;
            break;
        }
    if (quote)
        fputc('"', out);
    if (formula)
        fputc('\'', out);
    for (const char *p = text; *p; p++) {
        if (*p == '"')
            fputc('"', out);
        fputc(*p, out);
    }
    if (quote)
        fputc('"', out);
}

void sm_json_put_string(FILE *out, const char *text)
{
    fputc('"', out);
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    while (*s) {
        unsigned char c = *s;
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc(c, out);
            s++;
        } else if (c < 0x20 || c == 0x7F) {
            switch (c) {
            case '\n': fputs("\\n", out); break;
            case '\r': fputs("\\r", out); break;
            case '\t': fputs("\\t", out); break;
            default: fprintf(out, "\\u%04x", c); break;
            }
            s++;
        } else if (c < 0x80) {
            fputc(c, out);
            s++;
        } else {
            /* Copy one well-formed UTF-8 sequence, or replace a bad byte. */
            size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
            size_t i = 1;
            while (len > 0 && i < len && (s[i] & 0xC0) == 0x80)
                i++;
            bool valid = len > 0 && i == len && !(c == 0xE0 && s[1] < 0xA0) &&
                         !(c == 0xED && s[1] >= 0xA0) && !(c == 0xF0 && s[1] < 0x90) &&
                         !(c == 0xF4 && s[1] >= 0x90) && c <= 0xF4;
            if (valid) {
                fwrite(s, 1, len, out);
                s += len;
            } else {
                fputs("\xEF\xBF\xBD", out);
                s++;
            }
        }
    }
    fputc('"', out);
}

/* The shortest %.Ng (N up to 17 for doubles, 9 for floats) that reads back
 * to the same value: exact like %.17g, but 0.1 stays "0.1". */
static void put_shortest_double(FILE *out, double value)
{
    char text[32];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, value);
        if (strtod(text, NULL) == value)
            break;
    }
    fputs(text, out);
}

static void put_shortest_float(FILE *out, float value)
{
    char text[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)value);
        if (strtof(text, NULL) == value)
            break;
    }
    fputs(text, out);
}

void sm_csv_put_double(FILE *out, double value)
{
    if (isfinite(value))
        put_shortest_double(out, value);
}

void sm_csv_put_float(FILE *out, float value)
{
    if (isfinite(value))
        put_shortest_float(out, value);
}

void sm_json_put_double(FILE *out, double value)
{
    if (isfinite(value))
        put_shortest_double(out, value);
    else
        fputs("null", out);
}

void sm_json_put_float(FILE *out, float value)
{
    if (isfinite(value))
        put_shortest_float(out, value);
    else
        fputs("null", out);
}
