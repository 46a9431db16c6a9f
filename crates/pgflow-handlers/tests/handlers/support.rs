//! Test fixtures: a scripted HTTP server and task environments.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use pgflow_handlers::{
    HandlerError, HandlerOutput, PreparedHandler, Registry, Resources, SpecError, TaskEnv,
};
use serde_json::Value;
use tokio::time::Instant;
use uuid::Uuid;

/// What the scripted server answers to one request.
#[derive(Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: ReplyBody,
}

#[derive(Clone)]
enum ReplyBody {
    Bytes(Vec<u8>),
    /// Sent in chunks without a content-length, forever.
    Endless,
    /// Never answers.
    Hang,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: ReplyBody::Bytes(body.to_string().into_bytes()),
        }
    }

    pub fn text(status: u16, body: &str) -> Self {
        Self::raw(
            status,
            "text/plain; charset=utf-8",
            body.as_bytes().to_vec(),
        )
    }

    pub fn raw(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: ReplyBody::Bytes(body),
        }
    }

    pub fn endless() -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: ReplyBody::Endless,
        }
    }

    pub fn hang() -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: ReplyBody::Hang,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

#[derive(Clone, Default)]
struct Script {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

/// An HTTP server on 127.0.0.1:<free port> answering every request with the
/// next scripted reply (the last one repeats).
pub struct Server {
    pub base: String,
    script: Script,
}

impl Server {
    pub async fn start(replies: Vec<Reply>) -> Server {
        assert!(!replies.is_empty());
        let script = Script {
            replies: Arc::new(Mutex::new(replies.into())),
            requests: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { base, script }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.script.requests.lock().unwrap().clone()
    }
}

async fn answer(
    State(script): State<Script>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    script.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.to_vec(),
    });
    let reply = {
        let mut replies = script.replies.lock().unwrap();
        if replies.len() > 1 {
            replies.pop_front().unwrap()
        } else {
            replies.front().unwrap().clone()
        }
    };
    let body = match reply.body {
        ReplyBody::Bytes(bytes) => Body::from(bytes),
        ReplyBody::Endless => Body::from_stream(futures::stream::repeat_with(|| {
            Ok::<_, Infallible>(Bytes::from(vec![b'x'; 16 * 1024]))
        })),
        ReplyBody::Hang => std::future::pending().await,
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (name, value) in reply.headers {
        response
            .headers_mut()
            .append::<axum::http::HeaderName>(name.parse().unwrap(), value.parse().unwrap());
    }
    response
}

/// Resources with an empty injected environment and exec refused.
pub fn resources() -> Resources {
    Resources::new()
        .unwrap()
        .with_env(HashMap::<String, String>::new())
}

/// Resources whose environment holds `vars`.
pub fn resources_with_env(vars: &[(&str, &str)]) -> Resources {
    let env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Resources::new().unwrap().with_env(env)
}

/// Task 0, attempt 1, of step "fetch" of flow "news", due in `timeout`.
pub fn task(resources: Resources, timeout: Duration) -> TaskEnv {
    TaskEnv {
        flow: "news".into(),
        run_id: Uuid::new_v4(),
        step: "fetch".into(),
        task_index: 0,
        attempt: 1,
        deadline: Instant::now() + timeout,
        resources,
    }
}

/// A task with a minute to go and default resources.
pub fn any_task() -> TaskEnv {
    task(resources(), Duration::from_secs(60))
}

pub fn prepare(spec: Value) -> Box<dyn PreparedHandler> {
    Registry::builtin()
        .prepare(&spec)
        .unwrap_or_else(|e| panic!("spec should be valid: {e}"))
}

pub fn spec_error(spec: Value) -> SpecError {
    Registry::builtin()
        .prepare(&spec)
        .expect_err("spec should be refused")
}

/// Prepares `spec` and runs it once on `input`.
pub async fn run(spec: Value, input: Value, task: &TaskEnv) -> Result<HandlerOutput, HandlerError> {
    prepare(spec).run(input, task).await
}

/// Whether process `pid` is gone (or a zombie nobody has reaped yet).
pub fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => matches!(
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next()),
            Some('Z' | 'X')
        ),
    }
}

/// Waits (bounded) until process `pid` is dead; SIGKILL is delivered
/// asynchronously.
pub async fn wait_dead(pid: i32) {
    for _ in 0..400 {
        if is_dead(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("process {pid} is still alive");
}

/// Waits (bounded) until `path` holds at least `lines` lines.
pub async fn wait_for_lines(path: &std::path::Path, lines: usize) -> Vec<i32> {
    for _ in 0..400 {
        if let Ok(text) = std::fs::read_to_string(path) {
            let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if pids.len() >= lines {
                return pids;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} never got {lines} lines", path.display());
}
