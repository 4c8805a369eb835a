//! Child processes (servers and load generators): every one is registered so that it is
//! killed at the end, on error (drop) and on Ctrl-C. Scratch directories ([`ScratchDir`]) are
//! removed the same way.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// After Ctrl-C: the handler is stopping the children and will exit the process; callers
/// wait for that instead of reporting half a run.
pub(crate) fn stop_if_interrupted() {
    if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(Duration::from_secs(10));
    }
}

/// [`stop_if_interrupted`] for an error that Ctrl-C itself may have caused: the terminal
/// signals the children too, so a child can die (and its error arrive) before the handler
/// runs. Gives the handler half a second to show up.
pub(crate) fn stop_if_interrupted_soon() {
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(500)
        && !INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop_if_interrupted();
}

fn live() -> std::sync::MutexGuard<'static, Vec<u32>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn scratch() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    SCRATCH.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A directory of this run's files (stores, callgrind outputs), removed when dropped (at the
/// end or on error) and by the Ctrl-C handler, which exits without running drops.
#[derive(Debug)]
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    /// Creates `path` (and its parents) and registers it for removal.
    pub(crate) fn create(path: PathBuf) -> Result<ScratchDir> {
        let mut registered = scratch();
        if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            bail!("interrupted");
        }
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        registered.push(path.clone());
        Ok(ScratchDir(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        scratch().retain(|d| d != &self.0);
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Kills every registered child on Ctrl-C (or SIGTERM), then exits.
pub(crate) fn install_interrupt_handler() -> Result<()> {
    ctrlc::set_handler(|| {
        // Under the lock `Proc::spawn` holds: no child starts unseen after this.
        let pids: Vec<u32> = {
            let live = live();
            INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
            live.clone()
        };
        for &pid in &pids {
            signal(pid, "-TERM");
        }
        std::thread::sleep(Duration::from_millis(300));
        for &pid in &pids {
            signal(pid, "-KILL");
        }
        for dir in scratch().iter() {
            // Children that wrote here are gone; nothing is created here any more (`create`
            // and the runs' own `create_dir` fail once the directory is removed).
            let _ = std::fs::remove_dir_all(dir);
        }
        eprintln!(
            "keygate-bench: interrupted; {} child process(es) stopped",
            pids.len()
        );
        std::process::exit(130);
    })
    .context("installing the Ctrl-C handler")
}

/// A running child process, killed when dropped.
#[derive(Debug)]
pub(crate) struct Proc {
    child: Child,
    name: String,
}

impl Proc {
    /// Starts `cmd` and registers it.
    pub(crate) fn spawn(cmd: &mut Command, name: &str) -> Result<Proc> {
        // The lock is held across the spawn: the Ctrl-C handler either sees the child or
        // has already stopped every start.
        let mut live = live();
        if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            bail!("interrupted");
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        live.push(child.id());
        drop(live);
        Ok(Proc {
            child,
            name: name.to_owned(),
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Waits for the process to end by itself (bounded), returning its stdout and stderr.
    pub(crate) fn wait_output(mut self, limit: Duration) -> Result<(String, String)> {
        use std::io::Read;
        let mut out = self.child.stdout.take();
        let mut err = self.child.stderr.take();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(o) = out.as_mut() {
                let _ = o.read_to_string(&mut s);
            }
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(e) = err.as_mut() {
                let _ = e.read_to_string(&mut s);
            }
            s
        });
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                let out = reader.join().unwrap_or_default();
                let err = err_reader.join().unwrap_or_default();
                if !status.success() {
                    bail!("{} exited with {status}: {}", self.name, err.trim());
                }
                return Ok((out, err));
            }
            if started.elapsed() > limit {
                bail!("{} did not finish within {limit:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Closes the child's stdin (our servers then stop) and waits, bounded, for it to exit.
    pub(crate) fn close_stdin_and_wait(mut self, limit: Duration) -> Result<()> {
        drop(self.child.stdin.take());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("{} exited with {status}", self.name);
                }
                return Ok(());
            }
            if started.elapsed() > limit {
                bail!("{} did not stop within {limit:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Reads stdout lines until one starts with `marker`; returns the rest of that line.
    pub(crate) fn wait_for_line(&mut self, marker: &str, limit: Duration) -> Result<String> {
        let Some(stdout) = self.take_stdout() else {
            bail!("{}: stdout is not captured", self.name);
        };
        let marker = marker.to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let found = loop {
                match lines.next() {
                    Some(Ok(l)) => {
                        if let Some(rest) = l.strip_prefix(&marker) {
                            break Some(rest.trim().to_owned());
                        }
                    }
                    _ => break None,
                }
            };
            let _ = tx.send(found);
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        match rx.recv_timeout(limit) {
            Ok(Some(line)) => Ok(line),
            Ok(None) => bail!("{} exited before it was ready", self.name),
            Err(_) => bail!("{} was not ready within {limit:?}", self.name),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Closing stdin stops our own server children; TERM lets gunicorn stop its
            // workers; KILL is the backstop.
            drop(self.child.stdin.take());
            signal(self.child.id(), "-TERM");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(3) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let pid = self.child.id();
        live().retain(|&p| p != pid);
    }
}

/// Whether CPU pinning with `taskset` is possible here.
pub(crate) fn can_pin() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
        && Command::new("taskset")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// A command for `program`, pinned to `cpus` (a taskset list such as "0") when given.
pub(crate) fn command(program: &std::path::Path, cpus: Option<&str>) -> Command {
    match cpus {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// Makes this process exit when its stdin reaches end of file: the harness keeps the pipe
/// open while it needs the server, so a server child can never outlive the harness.
pub(crate) fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        use std::io::Read;
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut sink) {
                Ok(0) | Err(_) => std::process::exit(0),
                Ok(_) => {}
            }
        }
    });
}

#[cfg(test)]
mod scratch_tests {
    use super::*;

    #[test]
    fn a_scratch_dir_is_registered_while_it_lives_and_gone_once_dropped() {
        let path =
            std::env::temp_dir().join(format!("keygate-bench-scratch-{}", std::process::id()));
        let dir = ScratchDir::create(path.join("inner")).unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        assert!(scratch().contains(&path.join("inner")));
        drop(dir);
        assert!(!path.join("inner").exists());
        assert!(!scratch().contains(&path.join("inner")));
        let _ = std::fs::remove_dir_all(&path);
    }
}
