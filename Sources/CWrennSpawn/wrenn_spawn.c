#define _GNU_SOURCE
#include "wrenn_spawn.h"

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

struct child_error {
    int stage;
    int err;
};

static void child_fail(int fd, int stage) {
    struct child_error e = { stage, errno };
    ssize_t ignored = write(fd, &e, sizeof e);
    (void)ignored;
    _exit(127);
}

// Moves fd to a number >= 10 so that dup2 onto 0, 1, 2 never clobbers a source we still need.
static int lift_fd(int fd) {
    if (fd < 0) return fd;
    return fcntl(fd, F_DUPFD_CLOEXEC, 10);
}

int wrenn_spawn(const wrenn_spawn_attr *attr, pid_t *pid_out, int *stage_out) {
    int errpipe[2];
    *stage_out = WRENN_STAGE_NONE;
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        *stage_out = WRENN_STAGE_PIPE;
        return errno;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(errpipe[0]);
        close(errpipe[1]);
        *stage_out = WRENN_STAGE_FORK;
        return e;
    }
    if (pid == 0) {
        // Child: async-signal-safe calls only.
        int w = errpipe[1];
        sigset_t all;
        sigemptyset(&all);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++) {
            if (s == SIGKILL || s == SIGSTOP) continue;
            sigaction(s, &dfl, NULL);
        }
        sigprocmask(SIG_SETMASK, &all, NULL);

        if (setsid() < 0) child_fail(w, WRENN_STAGE_SETSID);

        int in = lift_fd(attr->stdin_fd);
        int out = lift_fd(attr->stdout_fd);
        int err = lift_fd(attr->stderr_fd);
        if ((attr->stdin_fd >= 0 && in < 0) || (attr->stdout_fd >= 0 && out < 0) || (attr->stderr_fd >= 0 && err < 0))
            child_fail(w, WRENN_STAGE_DUP2);
        if (attr->controlling_tty && in >= 0) {
            if (ioctl(in, TIOCSCTTY, 0) != 0) child_fail(w, WRENN_STAGE_CTTY);
        }
        if (in >= 0 && dup2(in, 0) < 0) child_fail(w, WRENN_STAGE_DUP2);
        if (out >= 0 && dup2(out, 1) < 0) child_fail(w, WRENN_STAGE_DUP2);
        if (err >= 0 && dup2(err, 2) < 0) child_fail(w, WRENN_STAGE_DUP2);

        // Everything else we inherited closes at exec (the error pipe already does).
        if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
            long max = sysconf(_SC_OPEN_MAX);
            if (max < 0 || max > 65536) max = 65536;
            for (int fd = 3; fd < max; fd++) {
                int flags = fcntl(fd, F_GETFD);
                if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
            }
        }

        // Let the OOM killer prefer user processes over envd (best effort).
        int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (oom >= 0) {
            ssize_t ignored = write(oom, "100", 3);
            (void)ignored;
            close(oom);
        }

        if (attr->change_user) {
            // Raw syscalls: glibc's set*id wrappers broadcast to threads that do not exist after fork.
            if (syscall(SYS_setgroups, (size_t)attr->ngroups, attr->groups) != 0) child_fail(w, WRENN_STAGE_SETGROUPS);
            if (syscall(SYS_setresgid, attr->gid, attr->gid, attr->gid) != 0) child_fail(w, WRENN_STAGE_SETGID);
            if (syscall(SYS_setresuid, attr->uid, attr->uid, attr->uid) != 0) child_fail(w, WRENN_STAGE_SETUID);
            if (getuid() != attr->uid || geteuid() != attr->uid || getgid() != attr->gid || getegid() != attr->gid) {
                errno = EPERM;
                child_fail(w, WRENN_STAGE_UID_CHECK);
            }
            if (attr->uid != 0 && syscall(SYS_setresuid, 0, 0, 0) == 0) {
                errno = EPERM;
                child_fail(w, WRENN_STAGE_UID_CHECK);
            }
        }
        if (attr->cwd != NULL && chdir(attr->cwd) != 0) child_fail(w, WRENN_STAGE_CHDIR);

        execve(attr->path, attr->argv, attr->envp);
        child_fail(w, WRENN_STAGE_EXEC);
    }

    // Parent.
    close(errpipe[1]);
    struct child_error e;
    ssize_t n;
    do {
        n = read(errpipe[0], &e, sizeof e);
    } while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    if (n == (ssize_t)sizeof e) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        *stage_out = e.stage;
        return e.err != 0 ? e.err : EIO;
    }
    *pid_out = pid;
    return 0;
}

int wrenn_open_pty(unsigned short rows, unsigned short cols, int *master_out, int *slave_out) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return errno;
    if (grantpt(master) != 0 || unlockpt(master) != 0) {
        int e = errno;
        close(master);
        return e;
    }
    char name[128];
    if (ptsname_r(master, name, sizeof name) != 0) {
        int e = errno;
        close(master);
        return e;
    }
    int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
        int e = errno;
        close(master);
        return e;
    }
    struct winsize ws;
    memset(&ws, 0, sizeof ws);
    ws.ws_row = rows;
    ws.ws_col = cols;
    ioctl(master, TIOCSWINSZ, &ws);
    *master_out = master;
    *slave_out = slave;
    return 0;
}

int wrenn_set_winsize(int fd, unsigned short rows, unsigned short cols) {
    struct winsize ws;
    memset(&ws, 0, sizeof ws);
    ws.ws_row = rows;
    ws.ws_col = cols;
    return ioctl(fd, TIOCSWINSZ, &ws) == 0 ? 0 : errno;
}

void wrenn_sync_all(void) {
    sync();
}

int wrenn_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : errno;
}

void wrenn_tune_malloc(int mmap_threshold, int arena_max, int trim_threshold) {
    mallopt(M_MMAP_THRESHOLD, mmap_threshold);
    mallopt(M_ARENA_MAX, arena_max);
    mallopt(M_TRIM_THRESHOLD, trim_threshold);
}
