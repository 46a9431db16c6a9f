//! `exec`: runs a program with the step input as JSON on stdin and takes
//! its output as JSON from stdout.
//!
//! Fields: `command` (required: the program and its arguments, no shell)
//! and `env` (extra environment variables; the program otherwise inherits
//! the worker's environment). Refused unless the worker allows exec.
//!
//! The program runs in its own process group. A non-zero exit fails the
//! task (retryable) with the end of stderr in the message; stdout that is
//! not one JSON value fails it (permanent). At the step's deadline, or when
//! the worker abandons the task, the whole group is killed; whatever the
//! program left running in its group is killed when it exits.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::error::{HandlerError, SpecError};
use crate::kind::{BoxFuture, HandlerKind, PreparedHandler};
use crate::output::HandlerOutput;
use crate::spec::{bounded, field, SpecReader};
use crate::task_env::{Resources, TaskEnv};

const FIELDS: &[&str] = &["command", "env"];

/// Largest stdout accepted; the program is killed when it prints more.
const MAX_STDOUT: usize = 16 * 1024 * 1024;

/// Bytes of stderr kept (the end: that is where errors are).
const STDERR_TAIL: usize = 4 * 1024;

const NOT_ALLOWED: &str = "exec handlers run programs on the worker's machine and are refused \
                           unless the worker allows them: start it with --allow-exec";

/// The `exec` kind.
pub(crate) struct Exec;

#[derive(Debug)]
struct PreparedExec {
    command: Vec<String>,
    env: Vec<(String, String)>,
}

impl HandlerKind for Exec {
    fn name(&self) -> &'static str {
        "exec"
    }

    fn prepare(&self, spec: &Value) -> Result<Box<dyn PreparedHandler>, SpecError> {
        let spec = SpecReader::new(spec, self.name(), FIELDS)?;
        if spec.get("command").is_none() {
            return Err(SpecError::new(field("command"), "missing (required)"));
        }
        if let Some(Value::String(line)) = spec.get("command") {
            return Err(SpecError::new(
                field("command"),
                format!(
                    "expected an array (program, then arguments; no shell), got a string; \
                     for example [\"sh\", \"-c\", \"{}\"]",
                    bounded(line, 40)
                ),
            ));
        }
        let command = spec.optional_string_list("command")?;
        match command.first() {
            None => return Err(SpecError::new(field("command"), "must name a program")),
            Some(&"") => {
                return Err(SpecError::new(
                    format!("{}[0]", field("command")),
                    "the program must not be empty",
                ))
            }
            Some(_) => {}
        }
        let mut env = Vec::new();
        for (name, value) in spec.optional_string_map("env")? {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(SpecError::new(
                    format!("{}.{name}", field("env")),
                    "is not a valid environment variable name",
                ));
            }
            if value.contains('\0') {
                return Err(SpecError::new(
                    format!("{}.{name}", field("env")),
                    "must not contain a NUL character",
                ));
            }
            env.push((name.to_string(), value.to_string()));
        }
        Ok(Box::new(PreparedExec {
            command: command.into_iter().map(str::to_string).collect(),
            env,
        }))
    }
}

impl PreparedHandler for PreparedExec {
    fn kind(&self) -> &'static str {
        "exec"
    }

    fn preflight(&self, resources: &Resources) -> Result<(), SpecError> {
        if resources.allow_exec {
            Ok(())
        } else {
            Err(SpecError::new(field("kind"), NOT_ALLOWED))
        }
    }

    fn run<'a>(
        &'a self,
        input: Value,
        task: &'a TaskEnv,
    ) -> BoxFuture<'a, Result<HandlerOutput, HandlerError>> {
        Box::pin(self.execute(input, task))
    }
}

impl PreparedExec {
    async fn execute(&self, input: Value, task: &TaskEnv) -> Result<HandlerOutput, HandlerError> {
        if !task.resources.allow_exec {
            return Err(HandlerError::permanent(format!(
                "handler.kind: {NOT_ALLOWED}"
            )));
        }
        let program = &self.command[0];
        let what = format!("exec `{program}`");
        let stdin_bytes = serde_json::to_vec(&input).unwrap_or_default();

        let mut child = Command::new(program)
            .args(&self.command[1..])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HandlerError::permanent(format!("{what}: could not start: {e}")))?;
        // The child leads its own group, so the group id is its pid.
        let group = ProcessGroup::new(child.id());
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");

        let run = async {
            let feed = async {
                // A program that does not read its input closes the pipe
                // early; that is its business, not a failure.
                let _ = stdin.write_all(&stdin_bytes).await;
                drop(stdin);
            };
            let exit = async {
                let status = child.wait().await;
                // Leftovers in the group would hold stdout open.
                group.kill();
                status
            };
            let (_, out, err, status) = tokio::join!(
                feed,
                read_capped(stdout, MAX_STDOUT, &group),
                read_tail(stderr, STDERR_TAIL),
                exit
            );
            (out, err, status)
        };
        let (stdout, stderr, status) = match tokio::time::timeout_at(task.deadline, run).await {
            Ok(done) => done,
            Err(_) => {
                group.kill();
                // Reap it so no zombie is left behind.
                let _ = child.kill().await;
                return Err(HandlerError::retryable(format!(
                    "{what}: still running at the step's deadline; killed it and its process group"
                )));
            }
        };

        let status = status
            .map_err(|e| HandlerError::retryable(format!("{what}: could not wait for it: {e}")))?;
        let stderr = String::from_utf8_lossy(&stderr);
        let stderr_note = || match stderr.trim() {
            "" => "stderr was empty".to_string(),
            text => format!("stderr: {}", tail(text, 2000)),
        };
        let Some(stdout) = stdout else {
            return Err(HandlerError::permanent(format!(
                "{what}: printed more than {MAX_STDOUT} bytes on stdout; killed it"
            )));
        };
        if !status.success() {
            return Err(HandlerError::retryable(format!(
                "{what}: {}; {}",
                describe_exit(status),
                stderr_note()
            )));
        }
        if stdout.iter().all(u8::is_ascii_whitespace) {
            return Err(HandlerError::permanent(format!(
                "{what}: printed nothing on stdout (it must print one JSON value); {}",
                stderr_note()
            )));
        }
        let output = serde_json::from_slice(&stdout).map_err(|e| {
            HandlerError::permanent(format!(
                "{what}: stdout is not JSON ({e}); it began: {}; {}",
                bounded(String::from_utf8_lossy(&stdout).trim_start(), 200),
                stderr_note()
            ))
        })?;
        Ok(HandlerOutput::new(output))
    }
}

fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended abnormally ({status})"),
    }
}

/// The last `max` characters of `text`, with `...` in front when cut.
fn tail(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let start = text.char_indices().nth(count - max).map_or(0, |(i, _)| i);
    format!("...{}", &text[start..])
}

/// All of stdout, or `None` (and the group killed) past `cap` bytes.
async fn read_capped(
    mut pipe: impl AsyncRead + Unpin,
    cap: usize,
    group: &ProcessGroup,
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return Some(out),
            Ok(n) if out.len() + n > cap => {
                group.kill();
                return None;
            }
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The last `keep` bytes (or a little more) of a pipe, read to its end.
async fn read_tail(mut pipe: impl AsyncRead + Unpin, keep: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&chunk[..n]);
                if kept.len() > 2 * keep {
                    kept.drain(..kept.len() - keep);
                }
            }
        }
    }
    kept
}

/// The child's process group, killed once: when the program exits (its
/// leftovers), at the deadline, or when the task is dropped mid-run.
struct ProcessGroup {
    pgid: Option<Pid>,
    killed: AtomicBool,
}

impl ProcessGroup {
    fn new(pid: Option<u32>) -> Self {
        Self {
            pgid: pid.and_then(|p| i32::try_from(p).ok()).map(Pid::from_raw),
            killed: AtomicBool::new(false),
        }
    }

    fn kill(&self) {
        if let Some(pgid) = self.pgid {
            if !self.killed.swap(true, Ordering::SeqCst) {
                // ESRCH (nothing left in the group) is the usual outcome.
                let _ = killpg(pgid, Signal::SIGKILL);
            }
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_on_char_boundaries() {
        assert_eq!(tail("abc", 5), "abc");
        assert_eq!(tail("héllo wörld", 5), "...wörld");
    }
}
