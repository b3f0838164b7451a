// codebench-jail: starts one jailed QEMU (docs/security.md, "QEMU, jailed"). The worker (root) runs
//
//   codebench-jail ROOT RUN KERNEL ROOTFS INCOMING KEEPPROC CGROUPS UID GID GROUPS FSIZE NOFILE KVM -- QEMU ARGS...
//
// with `-` for "none" and `:` / `,` separating the cgroup.procs files / supplementary gids. One
// process does what a shell script of util-linux tools (setpriv, unshare, mount, pivot_root, prlimit)
// would: the script's ~14 execs cost ~18 ms of host CPU per VM start, this ~3 ms (`codebench-bench vm`
// prints it), on a job whose whole host cost is ~150-200 ms. C rather than Swift because it lives
// between fork and exec, must load no runtime, and needs pivot_root(2) and capset(2), which libc does
// not wrap and Swift cannot reach through the variadic syscall(2).
//
// The parent (the worker's child, in the host's PID namespace) joins the VM's cgroups, unshares
// mount, PID, IPC, UTS and network namespaces, forks PID 1 of the new PID namespace, waits for it
// and exits as it did (re-raising its signal), like `unshare --fork --kill-child=KILL`. Both carry a
// parent-death SIGKILL: a worker that dies takes its launchers and their QEMUs with it.
//
// The child builds the jail's root on a small tmpfs, pivot_roots into it, makes it read-only, sets
// the rlimits, drops every capability (bounding set first, while it still may), clears the
// supplementary groups, becomes UID:GID, sets no_new_privs and execs QEMU, which stays PID 1: when it
// dies every process of the namespace dies.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// Distinct from QEMU's own exit codes, so that the worker's error says which of the two failed.
enum { EXIT_JAIL = 125 };

static void die(const char *step, const char *detail) {
    int error = errno;
    dprintf(2, "codebench-jail: %s%s%s: %s\n", step, detail ? " " : "", detail ? detail : "", strerror(error));
    _exit(EXIT_JAIL);
}

static void usage(const char *problem) {
    dprintf(2, "codebench-jail: %s\nusage: codebench-jail ROOT RUN KERNEL ROOTFS INCOMING KEEPPROC CGROUPS UID GID GROUPS FSIZE NOFILE KVM -- COMMAND...\n", problem);
    _exit(EXIT_JAIL);
}

static int none(const char *value) { return strcmp(value, "-") == 0; }

static unsigned long number(const char *text, unsigned long maximum) {
    char *end = NULL;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || value > maximum) usage("not a number in range");
    return value;
}

struct jail {
    const char *root, *run, *kernel, *rootfs, *incoming;
    int keep_proc, kvm;
    char *cgroups, *groups;
    uid_t uid;
    gid_t gid;
    rlim_t file_size, open_files;
};

// Each cgroup.procs file gets this process's pid (before unshare, so it is the host's pid); the
// namespace's PID 1 and QEMU inherit the cgroup.
static void join_cgroups(char *files) {
    if (none(files)) return;
    char pid[32];
    int length = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    for (char *save = NULL, *file = strtok_r(files, ":", &save); file; file = strtok_r(NULL, ":", &save)) {
        int fd = open(file, O_WRONLY | O_CLOEXEC);
        if (fd < 0) die("open", file);
        if (write(fd, pid, (size_t)length) != length) die("join cgroup", file);
        close(fd);
    }
}

// A bind mount with `flags` applied: a bind ignores them, so a second, remounting mount(2) sets
// them (what `mount --bind -o` does). The target is created as an empty file when missing.
static void bind(const char *source, const char *target, unsigned long flags) {
    struct stat info;
    if (stat(target, &info) != 0) {
        int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) die("create", target);
        close(fd);
    }
    if (mount(source, target, NULL, MS_BIND, NULL) != 0) die("bind", source);
    if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | flags, NULL) != 0) die("remount", target);
}

static void make_directory(const char *path) {
    if (mkdir(path, 0755) != 0) die("mkdir", path);
}

// The merged-/usr links (/bin -> usr/bin, ...) as links, so that QEMU's interpreter path resolves.
static void copy_top_level_links(void) {
    static const char *const names[] = {"bin", "lib", "lib64", "sbin"};
    for (size_t index = 0; index < sizeof names / sizeof names[0]; index++) {
        char host[16], target[4096];
        snprintf(host, sizeof host, "/%s", names[index]);
        ssize_t length = readlink(host, target, sizeof target - 1);
        if (length < 0) continue; // not a link (or absent): nothing of it enters the jail
        target[length] = '\0';
        if (symlink(target, names[index]) != 0) die("symlink", names[index]);
    }
}

static void build_root(const struct jail *jail) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("make mounts private", NULL);
    if (mount("codebench-jail", jail->root, "tmpfs", MS_NOSUID | MS_NODEV, "size=256k,mode=755") != 0) die("mount tmpfs on", jail->root);
    if (chdir(jail->root) != 0) die("chdir", jail->root);
    static const char *const directories[] = {"usr", "vm", "dev", "run", "run/vm", ".old", "proc"};
    for (size_t index = 0; index < sizeof directories / sizeof directories[0]; index++) make_directory(directories[index]);
    copy_top_level_links();
    bind("/usr", "usr", MS_RDONLY | MS_NOSUID | MS_NODEV);
    if (!none(jail->kernel)) bind(jail->kernel, "vm/kernel", MS_RDONLY | MS_NOEXEC | MS_NOSUID | MS_NODEV);
    bind(jail->rootfs, "vm/rootfs", MS_RDONLY | MS_NOEXEC | MS_NOSUID | MS_NODEV);
    bind(jail->run, "run/vm", MS_NOEXEC | MS_NOSUID | MS_NODEV);
    bind("/dev/null", "dev/null", MS_NOEXEC | MS_NOSUID);
    bind("/dev/urandom", "dev/urandom", MS_RDONLY | MS_NOEXEC | MS_NOSUID);
    if (jail->kvm) bind("/dev/kvm", "dev/kvm", MS_NOEXEC | MS_NOSUID);
    if (!none(jail->incoming)) {
        // QEMU reads a streamed restore's state from fd 3 (QEMUJail.Path.incomingFD): opened here, as
        // root, so that the file itself never enters the jail.
        int fd = open(jail->incoming, O_RDONLY | O_CLOEXEC);
        if (fd < 0) die("open", jail->incoming);
        if (fd == 3) {
            if (fcntl(fd, F_SETFD, 0) != 0) die("fcntl", jail->incoming);
        } else {
            if (dup2(fd, 3) != 3) die("dup2", jail->incoming);
            close(fd);
        }
    }
    // Only a copy-on-write VM's QEMU needs a proc (to reopen its memfd as /proc/self/fd/3): this
    // PID namespace's, showing processes only their own directories, no /proc/sys and the like.
    if (jail->keep_proc && mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible,subset=pid") != 0)
        die("mount proc", NULL);
    if (syscall(SYS_pivot_root, ".", ".old") != 0) die("pivot_root", jail->root);
    if (chdir("/") != 0) die("chdir", "/");
    if (umount2("/.old", MNT_DETACH) != 0) die("unmount the old root", NULL);
    if (rmdir("/.old") != 0) die("rmdir", "/.old");
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) die("remount / read-only", NULL);
}

static void set_limit(int resource, rlim_t value, const char *name) {
    struct rlimit limit = {.rlim_cur = value, .rlim_max = value};
    if (setrlimit(resource, &limit) != 0) die("setrlimit", name);
}

static void set_groups(char *list) {
    gid_t groups[64];
    size_t count = 0;
    if (!none(list)) {
        for (char *save = NULL, *item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
            if (count == sizeof groups / sizeof groups[0]) usage("too many groups");
            groups[count++] = (gid_t)number(item, 0xFFFFFFFEul);
        }
    }
    if (setgroups(count, groups) != 0) die("setgroups", NULL);
}

static void drop_privileges(const struct jail *jail) {
    // The bounding set while CAP_SETPCAP is still held; every index the kernel knows.
    for (int capability = 0; prctl(PR_CAPBSET_READ, capability, 0, 0, 0) >= 0; capability++) {
        if (prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0) die("drop a bounding capability", NULL);
    }
    set_groups(jail->groups);
    if (setresgid(jail->gid, jail->gid, jail->gid) != 0) die("setresgid", NULL);
    if (setresuid(jail->uid, jail->uid, jail->uid) != 0) die("setresuid", NULL);
    // The uid change emptied the permitted and effective sets; the inheritable and ambient ones
    // survive it, so they are cleared too.
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) die("clear ambient capabilities", NULL);
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) != 0) die("capset", NULL);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs", NULL);
    // Changing credentials cleared the parent-death signal.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die("parent-death signal", NULL);
    if (jail->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        errno = EPERM;
        die("root could be regained", NULL);
    }
}

static void jail_and_exec(struct jail *jail, char **command) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die("parent-death signal", NULL);
    build_root(jail);
    set_limit(RLIMIT_FSIZE, jail->file_size, "RLIMIT_FSIZE");
    set_limit(RLIMIT_NOFILE, jail->open_files, "RLIMIT_NOFILE");
    drop_privileges(jail);
    execv(command[0], command);
    die("exec", command[0]);
}

int main(int argc, char **argv) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die("parent-death signal", NULL);
    if (argc < 16 || strcmp(argv[14], "--") != 0) usage("expected 13 arguments, --, and the command");
    struct jail jail = {
        .root = argv[1], .run = argv[2], .kernel = argv[3], .rootfs = argv[4], .incoming = argv[5],
        .keep_proc = strcmp(argv[6], "proc") == 0, .cgroups = argv[7],
        .uid = (uid_t)number(argv[8], 0xFFFFFFFEul), .gid = (gid_t)number(argv[9], 0xFFFFFFFEul), .groups = argv[10],
        .file_size = (rlim_t)number(argv[11], ~0ul), .open_files = (rlim_t)number(argv[12], 1ul << 20),
        .kvm = strcmp(argv[13], "kvm") == 0,
    };
    if (jail.root[0] != '/' || jail.run[0] != '/' || jail.rootfs[0] != '/') usage("paths must be absolute");
    // An ignored SIGCHLD would be inherited and make waitpid fail.
    signal(SIGCHLD, SIG_DFL);
    join_cgroups(jail.cgroups);
    if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET) != 0) die("unshare", NULL);
    pid_t child = fork();
    if (child < 0) die("fork", NULL);
    if (child == 0) jail_and_exec(&jail, argv + 15);

    int status = 0;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) die("waitpid", NULL);
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    // Die as QEMU died, so that the worker sees its signal; no core file of ours.
    int signal_number = WTERMSIG(status);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(signal_number, SIG_DFL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, signal_number);
    sigprocmask(SIG_UNBLOCK, &only, NULL);
    kill(getpid(), signal_number);
    return 128 + signal_number;
}
