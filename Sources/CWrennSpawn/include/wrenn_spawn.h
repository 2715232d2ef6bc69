// CWrennSpawn: the few POSIX calls envd needs that Swift cannot make safely (fork, variadic ioctl, prctl).
#ifndef WRENN_SPAWN_H
#define WRENN_SPAWN_H

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Where a failed spawn stopped (reported by the child before it exits).
enum wrenn_spawn_stage {
    WRENN_STAGE_NONE = 0,
    WRENN_STAGE_FORK = 1,
    WRENN_STAGE_SETSID = 2,
    WRENN_STAGE_CTTY = 3,
    WRENN_STAGE_DUP2 = 4,
    WRENN_STAGE_SETGROUPS = 5,
    WRENN_STAGE_SETGID = 6,
    WRENN_STAGE_SETUID = 7,
    WRENN_STAGE_UID_CHECK = 8,
    WRENN_STAGE_CHDIR = 9,
    WRENN_STAGE_EXEC = 10,
    WRENN_STAGE_PIPE = 11,
};

/// Everything the child needs, prepared by the parent (the child only makes async-signal-safe calls).
typedef struct {
    const char *path;           // absolute path of the executable
    char *const *argv;          // NULL-terminated
    char *const *envp;          // NULL-terminated
    const char *cwd;            // NULL = keep
    int stdin_fd;               // fds to become 0, 1, 2 in the child
    int stdout_fd;
    int stderr_fd;
    int controlling_tty;        // 1: make stdin_fd (a PTY slave) the controlling terminal
    int change_user;            // 1: switch to uid/gid/groups
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    int ngroups;
} wrenn_spawn_attr;

/// Forks and execs. The child starts a new session (pid == pgid == sid), resets signal dispositions and mask,
/// marks inherited descriptors close-on-exec, switches user (setgroups, setresgid, setresuid, then checks that
/// root cannot be regained), changes directory and execs. Returns 0 and the pid, or an errno with the stage
/// that failed (the child is reaped in that case).
int wrenn_spawn(const wrenn_spawn_attr *attr, pid_t *pid_out, int *stage_out);

/// Opens a PTY pair with the given size. Both descriptors are close-on-exec. Returns 0 or an errno.
int wrenn_open_pty(unsigned short rows, unsigned short cols, int *master_out, int *slave_out);

/// Sets a terminal's window size (TIOCSWINSZ); the kernel sends SIGWINCH to its foreground group. 0 or errno.
int wrenn_set_winsize(int fd, unsigned short rows, unsigned short cols);

/// pipe2(fds, O_CLOEXEC) (pipe2 needs _GNU_SOURCE, which Swift's Glibc module does not set). 0 or errno.
int wrenn_pipe_cloexec(int fds[2]);

/// mallopt: fixed mmap threshold (disables glibc's dynamic one), arena cap, trim threshold.
void wrenn_tune_malloc(int mmap_threshold, int arena_max, int trim_threshold);

/// Flushes all filesystems (sync(2)).
void wrenn_sync_all(void);

#ifdef __cplusplus
}
#endif

#endif
