// Package harden keeps injector's own secrets (provider credentials, the
// keys derived from them, every resolved value) out of reach of other
// processes of the same user, above all the child it runs.
//
// Linux lets a process of the same uid read another's /proc/PID/environ
// (the environment it started with, credentials included: unsetting a
// variable later does not change it), /proc/PID/mem (all its memory),
// /proc/PID/fd/* and the rest of its /proc files, and attach to it with
// ptrace. A non-dumpable process (prctl PR_SET_DUMPABLE 0) is exempt: the
// kernel then requires CAP_SYS_PTRACE for all of these, which a container's
// default capability set does not include, and it writes no core dump (a
// dump holds every secret in memory). The process still reads its own
// /proc/self files; /proc/PID/cmdline stays world-readable, which is why
// injector takes no credential as an argument. Non-dumpable is not
// inherited across execve(2): the child, once started, is an ordinary
// process, and exec mode hands the process itself over to the command
// with a fresh dumpable flag and only the child's environment.
//
// Scrubbing the environment block instead is no fence: Go keeps its
// strings pointing into it, the values are needed to re-read settings at
// each refresh, and copies stay in memory, which mem exposes.
//
// What a non-dumpable process gives up: same-user debuggers and profilers
// that attach with ptrace (root with CAP_SYS_PTRACE still can), and
// same-user tools reading its /proc files (fd counts, io); /metrics
// reports what monitoring needs.
package harden
