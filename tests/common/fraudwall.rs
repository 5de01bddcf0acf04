//! Runs the real `fraudwall` binary on port 0 and learns its ports from the startup log
//! (`listening on udp ADDR` is a stable contract).

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A running fraudwall; killed on drop.
pub struct Fraudwall {
    child: Child,
    /// First UDP/TCP address (same port for both).
    pub addr: SocketAddr,
    /// Every `listening on udp` address.
    pub udp: Vec<SocketAddr>,
    pub dir: tempfile::TempDir,
    log: Arc<Mutex<Vec<String>>>,
}

/// Spawns `cmd` so that it dies with the test process, even when its `Fraudwall` lives in a
/// `static` that is never dropped. `PR_SET_PDEATHSIG` fires when the spawning *thread* exits, so
/// every child is spawned by one thread that lives as long as the process.
pub fn spawn_owned(cmd: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    use std::sync::{OnceLock, mpsc};
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let _ = reply.send(cmd.spawn());
            }
        });
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap()
        .send((cmd, tx))
        .map_err(|_| std::io::Error::other("spawner thread gone"))?;
    rx.recv()
        .map_err(|_| std::io::Error::other("spawner thread gone"))?
}

/// Path of the binary under test: this build's, or `FRAUDWALL_TEST_BIN` (to check that a test
/// fails against an older build).
pub fn bin() -> PathBuf {
    std::env::var_os("FRAUDWALL_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_fraudwall")))
}

impl Fraudwall {
    /// Starts `fraudwall serve` with `config` (YAML) written into a fresh temp dir; relative
    /// paths in it resolve against that dir. `files` are written there first.
    pub fn start(config: &str, files: &[(&str, &str)]) -> Fraudwall {
        Self::start_env(config, files, &[])
    }

    /// Like [`Fraudwall::start`] with extra environment variables for the process.
    pub fn start_env(config: &str, files: &[(&str, &str)], env: &[(&str, &str)]) -> Fraudwall {
        Self::start_from(config, files, env, false)
    }

    /// Like [`Fraudwall::start`], run from the temp dir as `serve --config fraudwall.yaml`, so
    /// that every path the config resolves stays relative.
    pub fn start_relative(config: &str, files: &[(&str, &str)]) -> Fraudwall {
        Self::start_from(config, files, &[], true)
    }

    fn start_from(
        config: &str,
        files: &[(&str, &str)],
        env: &[(&str, &str)],
        relative: bool,
    ) -> Fraudwall {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, body) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        // Tests run many instances at once: no fixed ports unless a test asks for them.
        let mut config = config.to_string();
        for (key, default) in [
            ("metrics:", "metrics:\n  listen: null\n"),
            ("warning_page:", "warning_page:\n  listen: []\n"),
            ("events:", "events:\n  target: events.jsonl\n"),
        ] {
            if !config.lines().any(|l| l.starts_with(key)) {
                if !config.ends_with('\n') {
                    config.push('\n');
                }
                config.push_str(default);
            }
        }
        let cfg = dir.path().join("fraudwall.yaml");
        std::fs::write(&cfg, config).unwrap();
        Self::start_with(&cfg, dir, env, relative)
    }

    fn start_with(
        cfg: &Path,
        dir: tempfile::TempDir,
        env: &[(&str, &str)],
        relative: bool,
    ) -> Fraudwall {
        let mut cmd = Command::new(bin());
        cmd.args(["serve", "--config"]);
        if relative {
            cmd.current_dir(dir.path()).arg(cfg.file_name().unwrap());
        } else {
            cmd.arg(cfg);
        }
        cmd.envs(env.iter().copied())
            .env("RUST_LOG", "info,fraudwall=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = spawn_owned(cmd).expect("spawn fraudwall");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(a) = line.split("listening on udp ").nth(1) {
                    let _ = tx.send(a.trim().parse::<SocketAddr>().ok());
                }
                if line.contains("listening on tcp") {
                    let _ = tx.send(None);
                }
                log2.lock().unwrap().push(line);
            }
            let _ = tx.send(None);
        });
        let mut udp = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        // Wait for the first tcp line after the udp lines of every listen address.
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(Some(a)) => udp.push(a),
                Ok(None) if !udp.is_empty() => {
                    // Give the remaining addresses a moment to print.
                    std::thread::sleep(Duration::from_millis(100));
                    while let Ok(Some(a)) = rx.try_recv() {
                        udp.push(a);
                    }
                    break;
                }
                _ => {}
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "fraudwall exited early ({status}):\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        }
        assert!(
            !udp.is_empty(),
            "fraudwall did not start listening:\n{}",
            log.lock().unwrap().join("\n")
        );
        Fraudwall {
            child,
            addr: udp[0],
            udp,
            dir,
            log,
        }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The process id (for signals and /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address a log line `… {prefix} ADDR` names, once it has been logged.
    pub fn logged_addr(&self, prefix: &str) -> Option<SocketAddr> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.split(prefix).nth(1)?.trim().parse().ok())
    }

    /// Polls `cond` until it holds; panics after `within`, naming `what` and with the log.
    pub fn wait_for(&self, what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if cond() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}\n--- log\n{}", self.log());
    }

    /// The block events (`events.target: events.jsonl`) for `qname`, waiting up to 10 s for
    /// at least `n` of them.
    pub fn events_for(&self, qname: &str, n: usize) -> Vec<serde_json::Value> {
        let path = self.dir.path().join("events.jsonl");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).expect("an event is one JSON object"))
                .filter(|e: &serde_json::Value| e["qname"] == qname)
                .collect();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The value of one series (`name{labels}` as exported) in a scrape of this instance's
    /// `/metrics` (its config must set `metrics.listen`); 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        use std::io::{Read, Write};
        let addr = self
            .logged_addr("metrics listening on http ")
            .expect("metrics endpoint logged");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Fraudwall {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
