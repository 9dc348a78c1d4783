//! Background processes for the local pipeline and the tests: moto, the
//! Lambda control plane of `cargo lambda watch`, and the function binaries.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The repository root (where `.venv` and `target/` are).
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The project virtualenv with moto and cargo-lambda: `WAREHOUSE_VENV`, or
/// `.venv` in the repository (both made by `scripts/setup.sh`).
pub fn venv_dir() -> PathBuf {
    std::env::var("WAREHOUSE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_dir().join(".venv"))
}

fn venv_program(name: &str) -> anyhow::Result<PathBuf> {
    let path = venv_dir().join("bin").join(name);
    if !path.exists() {
        bail!(
            "{} is missing: run scripts/setup.sh (it creates .venv with moto[server] and cargo-lambda)",
            path.display()
        );
    }
    Ok(path)
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for_port(port: u16, what: &str, within: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > within {
            bail!("{what} did not listen on 127.0.0.1:{port} within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// A background process, stopped when this value drops, and by a watchdog
/// shell when this process dies without dropping it (a panic, a kill, a
/// static that is never dropped).
pub struct Supervised {
    watchdog: std::process::Child,
    program: PathBuf,
}

impl Supervised {
    /// Starts `program` with exactly `env` (nothing inherited but `PATH`,
    /// `HOME` and `RUST_LOG`, as a Lambda sees only its configuration), its
    /// output appended to `log`.
    pub fn spawn(
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        log: &Path,
    ) -> anyhow::Result<Supervised> {
        let script = format!(
            r#""$0" "$@" & m=$!
trap 'kill $m 2>/dev/null; wait $m; exit 0' TERM
while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.2; done
kill $m 2>/dev/null"#,
            parent = std::process::id()
        );
        let output = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot write the log {}", log.display()))?;
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(script)
            .arg(program)
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output);
        for inherited in ["PATH", "HOME", "RUST_LOG"] {
            if let Ok(value) = std::env::var(inherited) {
                command.env(inherited, value);
            }
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));
        let watchdog = command
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        Ok(Supervised {
            watchdog,
            program: program.to_path_buf(),
        })
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.watchdog.try_wait(), Ok(None))
    }

    /// The process id of the program itself (the watchdog shell's child
    /// running it), from Linux's /proc; `None` once it has stopped.
    pub fn program_pid(&self) -> Option<u32> {
        let shell = self.watchdog.id();
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).ok()?;
        // The shell's other children are its `sleep`s.
        let program = std::fs::canonicalize(&self.program).ok()?;
        children
            .split_whitespace()
            .filter_map(|pid| pid.parse::<u32>().ok())
            .find(|pid| {
                std::fs::read_link(format!("/proc/{pid}/exe")).ok() == Some(program.clone())
            })
    }

    /// Kills the program with SIGKILL, as a dead Lambda container dies (no
    /// cleanup, no goodbye), and waits for its watchdog to notice.
    pub fn kill_program(&mut self) -> anyhow::Result<()> {
        let pid = self
            .program_pid()
            .context("the process to kill is not running")?;
        let status = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -KILL {pid} failed: {status}");
        }
        let started = Instant::now();
        while self.running() {
            if started.elapsed() > Duration::from_secs(5) {
                bail!("the watchdog of {pid} still runs 5 s after the kill");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if self.running() {
            // SIGTERM lets the watchdog stop its process and wait for it.
            let _ = Command::new("kill")
                .arg(self.watchdog.id().to_string())
                .status();
        }
        let _ = self.watchdog.wait();
    }
}

/// Where the local processes write their output.
pub fn log_dir() -> anyhow::Result<PathBuf> {
    let dir = workspace_dir().join("target/local-pipeline");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// A moto server (S3, SQS) from the project virtualenv on a free loopback
/// port; returns its endpoint.
pub fn start_moto() -> anyhow::Result<(String, Supervised)> {
    let program = venv_program("moto_server")?;
    let port = free_port()?;
    let log = log_dir()?.join(format!("moto-{port}.log"));
    let process = Supervised::spawn(
        &program,
        &["-H", "127.0.0.1", "-p", &port.to_string()],
        &[],
        &log,
    )?;
    wait_for_port(port, "moto_server", Duration::from_secs(30))?;
    Ok((format!("http://127.0.0.1:{port}"), process))
}

/// The Lambda control plane of `cargo lambda watch` (the Invoke API and the
/// Runtime API) without its builder: the function binaries are started by
/// [`start_function`], each with its own environment as on AWS. Returns the
/// address (`127.0.0.1:PORT`).
pub fn start_lambda_control_plane() -> anyhow::Result<(String, Supervised)> {
    let program = venv_program("cargo-lambda")?;
    let port = free_port()?;
    let log = log_dir()?.join(format!("cargo-lambda-watch-{port}.log"));
    let port_text = port.to_string();
    let process = Supervised::spawn(
        &program,
        &[
            "lambda",
            "watch",
            "--only-lambda-apis",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port_text,
        ],
        &[],
        &log,
    )?;
    wait_for_port(port, "cargo lambda watch", Duration::from_secs(60))?;
    Ok((format!("127.0.0.1:{port}"), process))
}

/// A binary of the workspace (a function, `warehouse`), found beside the
/// running executable (`warehouse`, or a test binary one level down in `deps/`).
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "the function binary {} is missing: build the functions with `cargo build --workspace --bins` (add --release for a release `warehouse`)",
            path.display()
        );
    }
    Ok(path)
}

/// Starts one function binary as a runtime client of the control plane at
/// `control_plane`, under `name`, with its configuration `env`.
pub fn start_function(
    name: &str,
    control_plane: &str,
    env: &[(String, String)],
) -> anyhow::Result<Supervised> {
    let program = workspace_binary(name)?;
    let port = control_plane.rsplit(':').next().unwrap_or_default();
    let log = log_dir()?.join(format!("{name}-{port}.log"));
    let mut all = vec![
        (
            "AWS_LAMBDA_RUNTIME_API".to_string(),
            format!("http://{control_plane}/.rt/{name}"),
        ),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), name.into()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "1024".into()),
    ];
    all.extend_from_slice(env);
    Supervised::spawn(&program, &[], &all, &log)
}

/// The function processes of a local stack, each with the configuration it
/// was started with, so that one can be replaced as Lambda replaces a dead
/// container (the chaos rehearsal kills them).
pub struct FunctionProcesses {
    control_plane: String,
    running: Vec<FunctionProcess>,
}

struct FunctionProcess {
    name: &'static str,
    env: Vec<(String, String)>,
    process: Supervised,
}

impl FunctionProcesses {
    pub fn new(control_plane: &str) -> FunctionProcesses {
        FunctionProcesses {
            control_plane: control_plane.to_string(),
            running: Vec::new(),
        }
    }

    /// Starts `name` (see [`start_function`]).
    pub fn start(&mut self, name: &'static str, env: Vec<(String, String)>) -> anyhow::Result<()> {
        let process = start_function(name, &self.control_plane, &env)?;
        self.running.push(FunctionProcess { name, env, process });
        Ok(())
    }

    /// The first function whose process has stopped.
    pub fn first_stopped(&mut self) -> Option<&'static str> {
        self.running
            .iter_mut()
            .find_map(|f| (!f.process.running()).then_some(f.name))
    }

    /// The process id of `name`'s binary.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.running
            .iter()
            .find(|f| f.name == name)?
            .process
            .program_pid()
    }

    /// Kills `name`'s process with SIGKILL and starts a new one with the same
    /// configuration; it takes the next invocation, as on Lambda.
    pub fn kill_and_restart(&mut self, name: &str) -> anyhow::Result<()> {
        let function = self
            .running
            .iter_mut()
            .find(|f| f.name == name)
            .with_context(|| format!("no function {name} runs"))?;
        function.process.kill_program()?;
        function.process = start_function(function.name, &self.control_plane, &function.env)?;
        Ok(())
    }

    /// Stops every process.
    pub fn stop_all(&mut self) {
        self.running.clear();
    }
}
