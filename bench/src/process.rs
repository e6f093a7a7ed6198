//! The processes under test (`wisp serve`, `wisp agent`) and what the kernel
//! says they spent: CPU time from `/proc/PID/stat`, memory from `/proc/PID/status`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A child process, killed when dropped.
pub struct Child {
    pub child: tokio::process::Child,
    pub pid: u32,
    pub started: Instant,
}

impl Child {
    pub fn spawn(binary: &Path, args: &[String], envs: &[(&str, String)]) -> anyhow::Result<Self> {
        let mut command = tokio::process::Command::new(binary);
        command.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit()).kill_on_drop(true);
        for (name, value) in envs {
            command.env(name, value);
        }
        let started = Instant::now();
        let child = command.spawn().with_context(|| format!("cannot start {}", binary.display()))?;
        let pid = child.id().context("the process exited at once")?;
        Ok(Self { child, pid, started })
    }

    /// `(VmRSS, VmHWM)` in bytes: resident now, and the peak so far.
    pub fn memory(&self) -> anyhow::Result<(u64, u64)> {
        memory_of(self.pid)
    }

    pub async fn stop(mut self) {
        // SAFETY: sending SIGTERM to our own child.
        unsafe {
            libc::kill(self.pid as i32, libc::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// The `wisp` binary: `--wisp`, else the one built next to this benchmark.
pub fn wisp_binary(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("wisp"),
    };
    if !path.is_file() {
        bail!("{} not found: build it first (cargo build --release --workspace), or pass --wisp PATH", path.display());
    }
    Ok(path)
}

/// Polls `url` until it answers 200 (or `limit` passes).
pub async fn wait_ready(
    http: &reqwest::Client,
    url: &str,
    child: &mut Child,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return Ok(child.started.elapsed());
        }
        if let Some(status) = child.child.try_wait()? {
            bail!("the process exited during start-up ({status})");
        }
        if Instant::now() > deadline {
            bail!("{url} not ready after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// CPU time used by the calling thread (for the in-process ceiling).
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a valid pointer to a timespec.
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// User + system CPU time process `pid` has used so far (`/proc/PID/stat`).
pub fn cpu_of(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // utime and stime are fields 14 and 15; counted after the parenthesised
    // command name (which may hold spaces) they are the 12th and 13th.
    let rest = stat.rsplit_once(')').context("unexpected /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / per_second))
}

/// `(VmRSS, VmHWM)` of process `pid` in bytes: resident now, and the peak so far.
pub fn memory_of(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status.lines().find(|l| l.starts_with(name)).with_context(|| format!("no {name}"))?;
        let kib: u64 = line.split_whitespace().nth(1).context("bad status line")?.parse()?;
        Ok(kib * 1024)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}
