//! The few operating-system facts the bench needs: CPU affinity, CPU time and resident memory of a
//! process. The only `unsafe` of the crate is here (a few libc calls).
#![allow(unsafe_code)]

use std::io;

/// Pin the calling thread — call it before any other thread exists, so that every thread of the
/// process (the platform, the sandbox workers and the load generator) inherits it — to `cpu`.
///
/// # Errors
/// When the kernel refuses (e.g. `cpu` is not available to this process).
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is plain old data for which all-zero bytes is the empty set; `CPU_SET`
    // writes inside the set (it ignores indices beyond its capacity); `sched_setaffinity` reads
    // exactly `size_of::<cpu_set_t>()` bytes from a valid reference.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Start `command`'s process free to run on every CPU, whatever this process is pinned to: the
/// "both CPUs shared" runs of `--server-alone`. (Changing the affinity after the start would be
/// too late: runtimes size their thread pools by the CPUs they may use.)
pub fn unpinned(command: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt as _;
    // Every configured CPU id (the kernel keeps only the online ones), built here so that the
    // child between fork and exec only makes one system call.
    // SAFETY: `sysconf` only reads a configuration value; all-zero bytes are the empty
    // `cpu_set_t`, and `CPU_SET` is given ids below its capacity.
    let set = unsafe {
        let configured = usize::try_from(libc::sysconf(libc::_SC_NPROCESSORS_CONF)).unwrap_or(1);
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let capacity = 8 * std::mem::size_of::<libc::cpu_set_t>();
        for cpu in 0..configured.clamp(1, capacity) {
            libc::CPU_SET(cpu, &mut set);
        }
        set
    };
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // `sched_setaffinity` (a system call, async-signal-safe) on a set it owns.
    unsafe {
        command.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        })
    }
}

/// Clock ticks per second of `/proc/*/stat` times.
#[must_use]
pub fn clock_ticks() -> u64 {
    // SAFETY: `sysconf` only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// User + system CPU time of process `pid` (`None`: this process), microseconds.
#[must_use]
pub fn cpu_micros(pid: Option<u32>) -> Option<u64> {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |p| format!("/proc/{p}/stat"),
    );
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may contain spaces) start with the state (field 3):
    // utime is field 14, stime field 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) * 1_000_000 / clock_ticks())
}

/// Resident set size of process `pid` (`None`: this process), KiB (`VmRSS`).
#[must_use]
pub fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let path = pid.map_or_else(
        || "/proc/self/status".to_owned(),
        |p| format!("/proc/{p}/status"),
    );
    let status = std::fs::read_to_string(path).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The CPU model and the number of CPUs this process may use.
#[must_use]
pub fn machine() -> (String, usize) {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (model, n)
}

/// Send SIGINT to `pid` (stops a `perf record` cleanly).
pub fn interrupt(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: `kill` only sends a signal; a stale pid fails with ESRCH.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
    }
}
