//! Every page and JSON endpoint, over real HTTP, against a real database with
//! runs in every state (started, completed, failed, cancelled; a skipped
//! step; a map).

use crate::support;

use serde_json::Value;
use support::Fixture;

fn status_of<'a>(runs: &'a Value, id: &uuid::Uuid) -> &'a str {
    runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == id.to_string())
        .unwrap_or_else(|| panic!("run {id} listed"))["status"]
        .as_str()
        .unwrap()
}

fn step<'a>(run: &'a Value, slug: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_slug"] == slug)
        .unwrap_or_else(|| panic!("step {slug}"))
}

#[tokio::test]
async fn run_list_and_run_pages_show_every_state() {
    let fx = Fixture::new().await;
    let runs = fx.get_json("/api/runs").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 4);
    assert_eq!(status_of(&runs, &fx.runs.completed), "completed");
    assert_eq!(status_of(&runs, &fx.runs.failed), "failed");
    assert_eq!(status_of(&runs, &fx.runs.cancelled), "cancelled");
    assert_eq!(status_of(&runs, &fx.runs.started), "started");
    assert!(runs["next"].is_null());

    let (status, html) = fx.get("/runs").await;
    assert_eq!(status, 200);
    for id in [
        fx.runs.completed,
        fx.runs.failed,
        fx.runs.cancelled,
        fx.runs.started,
    ] {
        assert!(
            html.contains(&format!("/runs/{id}")),
            "run {id} linked from /runs"
        );
    }

    // Completed: 100 %, audit skipped (condition unmet), the map had 3 tasks.
    let done = fx
        .get_json(&format!("/api/runs/{}", fx.runs.completed))
        .await;
    assert_eq!(done["run"]["status"], "completed");
    assert_eq!(done["run"]["percent"], 100.0);
    assert_eq!(step(&done, "audit")["status"], "skipped");
    assert_eq!(step(&done, "audit")["skip_reason"], "condition_unmet");
    assert_eq!(step(&done, "items")["step_type"], "map");
    assert_eq!(step(&done, "items")["initial_tasks"], 3);
    assert_eq!(step(&done, "items")["tasks_done"], 3);
    assert!(step(&done, "items")["bar"]["width_pct"].as_f64().unwrap() > 0.0);
    assert!(done["failing_step"].is_null());

    // Failed: the failing step and its error lead.
    let failed = fx.get_json(&format!("/api/runs/{}", fx.runs.failed)).await;
    assert_eq!(failed["run"]["status"], "failed");
    assert_eq!(failed["failing_step"], "fetch");
    assert_eq!(
        step(&failed, "fetch")["error_message"],
        support::HOSTILE_ERROR
    );

    // Started: half way through the map.
    let started = fx.get_json(&format!("/api/runs/{}", fx.runs.started)).await;
    assert_eq!(started["run"]["status"], "started");
    assert_eq!(step(&started, "items")["status"], "started");
    let percent = started["run"]["percent"].as_f64().unwrap();
    assert!(percent > 0.0 && percent < 100.0, "{percent}");

    let cancelled = fx
        .get_json(&format!("/api/runs/{}", fx.runs.cancelled))
        .await;
    assert_eq!(cancelled["run"]["status"], "cancelled");
    assert_eq!(step(&cancelled, "fetch")["status"], "cancelled");

    // The run page leads with status, progress and the DAG coloured by status.
    let (status, html) = fx.get(&format!("/runs/{}", fx.runs.failed)).await;
    assert_eq!(status, 200);
    let progress = html.find("id=\"run-progress\"").expect("progress bar");
    let dag = html.find("<svg class=\"dag\"").expect("DAG");
    let failure = html.find("id=\"failure\"").expect("failing step's error");
    let steps = html.find("id=\"steps-table\"").expect("step timings");
    assert!(
        progress < dag && dag < failure && failure < steps,
        "page order"
    );
    assert!(
        html.contains("class=\"node status-failed\" data-step=\"fetch\""),
        "{html}"
    );
    assert!(html.contains("class=\"node status-skipped\" data-step=\"audit\""));
    for id in [fx.runs.completed, fx.runs.cancelled, fx.runs.started] {
        let (status, _) = fx.get(&format!("/runs/{id}")).await;
        assert_eq!(status, 200);
    }

    // Unknown or malformed run ids are 404s with a message.
    let (status, body) = fx.get(&format!("/runs/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = fx.get("/api/runs/not-a-uuid").await;
    assert_eq!(status, 404);
    assert!(body.contains("not a run id"), "{body}");
}

#[tokio::test]
async fn tasks_are_paginated_and_one_task_is_served_in_full() {
    let fx = Fixture::new().await;
    let id = fx.runs.completed;
    let all = fx.get_json(&format!("/api/runs/{id}/tasks")).await;
    // fetch, 3 items, report.
    assert_eq!(all["tasks"].as_array().unwrap().len(), 5);

    let mut seen = Vec::new();
    let mut path = format!("/api/runs/{id}/tasks?limit=2");
    loop {
        let page = fx.get_json(&path).await;
        let tasks = page["tasks"].as_array().unwrap();
        assert!(tasks.len() <= 2);
        for t in tasks {
            seen.push(format!(
                "{}:{}",
                t["step_slug"].as_str().unwrap(),
                t["task_index"]
            ));
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/api/runs/{id}/tasks?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["fetch:0", "items:0", "items:1", "items:2", "report:0"]
    );

    let items = fx
        .get_json(&format!("/api/runs/{id}/tasks?step=items&status=completed"))
        .await;
    assert_eq!(items["tasks"].as_array().unwrap().len(), 3);

    let task = fx.get_json(&format!("/api/runs/{id}/tasks/items/0")).await;
    assert_eq!(task["output"], support::HOSTILE_OUTPUT);
    let (status, _) = fx.get(&format!("/api/runs/{id}/tasks/items/99")).await;
    assert_eq!(status, 404);

    // The HTML page pages too.
    let (status, html) = fx.get(&format!("/runs/{id}?step=items&limit=1")).await;
    assert_eq!(status, 200);
    assert!(html.contains("more tasks"), "a next-page link");
}

#[tokio::test]
async fn run_list_filters_and_keyset_pages() {
    let fx = Fixture::new().await;
    let failed = fx.get_json("/api/runs?status=failed").await;
    let list = failed["runs"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["run_id"], fx.runs.failed.to_string());

    let by_flow = fx.get_json("/api/runs?flow=demo").await;
    assert_eq!(by_flow["runs"].as_array().unwrap().len(), 4);
    let other = fx.get_json("/api/runs?flow=other").await;
    assert!(other["runs"].as_array().unwrap().is_empty());

    let future = fx.get_json("/api/runs?since=2999-01-01T00:00").await;
    assert!(future["runs"].as_array().unwrap().is_empty());
    let past = fx.get_json("/api/runs?until=2000-01-01T00:00:00Z").await;
    assert!(past["runs"].as_array().unwrap().is_empty());
    let window = fx
        .get_json("/api/runs?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(window["runs"].as_array().unwrap().len(), 4);

    // Keyset pages of 3 then 1 cover every run once, newest first.
    let first = fx.get_json("/api/runs?limit=3").await;
    let next = first["next"].as_str().expect("a next page").to_owned();
    let second = fx
        .get_json(&format!("/api/runs?limit=3&after={next}"))
        .await;
    let mut ids: Vec<String> = first["runs"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["runs"].as_array().unwrap())
        .map(|r| r["run_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 4);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);

    let (status, html) = fx.get("/runs?status=failed&flow=demo").await;
    assert_eq!(status, 200);
    assert!(html.contains(&fx.runs.failed.to_string()));
    assert!(!html.contains(&fx.runs.completed.to_string()));
}

#[tokio::test]
async fn flows_workers_queues_and_status_pages() {
    let fx = Fixture::new().await;
    let flows = fx.get_json("/api/flows").await;
    let demo = &flows[0];
    assert_eq!(demo["flow_slug"], "demo");
    assert_eq!(demo["runs_completed"], 1);
    assert_eq!(demo["runs_failed"], 1);
    assert_eq!(demo["runs_cancelled"], 1);
    assert_eq!(demo["runs_started"], 1);
    let (status, html) = fx.get("/flows").await;
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/flows/demo\""));

    let flow = fx.get_json("/api/flows/demo").await;
    assert_eq!(flow["steps"].as_array().unwrap().len(), 4);
    let (status, html) = fx.get("/flows/demo").await;
    assert_eq!(status, 200);
    // The DAG: four nodes, the map drawn as a stack, the condition marked.
    assert_eq!(html.matches("class=\"node status-none\"").count(), 4);
    assert!(html.contains("data-step=\"items\""));
    assert!(html.contains("class=\"stack\""));
    assert!(html.contains("class=\"cond\""));
    assert!(
        html.contains("if {&quot;audit&quot;:true} (else skip)"),
        "condition shown"
    );
    assert!(!html.contains("Start a run"), "read-only: no start form");
    let (status, _) = fx.get("/flows/nope").await;
    assert_eq!(status, 404);

    let workers = fx.get_json("/api/workers").await;
    let list = workers["workers"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["worker_id"], fx.worker.to_string());
    assert_eq!(list[0]["state"], "alive");
    assert_eq!(list[0]["tasks_in_flight"], 2);
    let (status, html) = fx.get("/workers").await;
    assert_eq!(status, 200);
    assert!(html.contains(&fx.worker.to_string()));

    let queues = fx.get_json("/api/queues").await;
    let q = &queues["queues"][0];
    assert_eq!(q["flow_slug"], "demo");
    assert_eq!(q["has_queue"], true);
    assert_eq!(q["tasks_in_flight"], 2);
    // Two claimed messages are live; every finished attempt was archived.
    assert_eq!(q["total"], 2);
    assert_eq!(q["visible"], 0);
    let archived = q["archived"].as_i64().unwrap();
    assert!(
        archived >= 6,
        "fetch+3 items+report, the failed fetch, cancelled fetch: {archived}"
    );
    let (status, html) = fx.get("/queues").await;
    assert_eq!(status, 200);
    assert!(html.contains("data-queue=\"demo\""));

    let (status, _) = fx.get("/").await;
    assert_eq!(status, 303);
    let (status, css) = fx.get("/assets/app.css").await;
    assert_eq!(status, 200);
    assert!(css.contains("svg.dag"));
    let (status, js) = fx.get("/assets/app.js").await;
    assert_eq!(status, 200);
    assert!(js.contains("EventSource"));
}

/// A run whose steps called LLMs shows tokens, cost (of priced models) and
/// latency per step and in total (in the JSON too); model names are escaped;
/// a run without
/// recorded calls has no usage section.
#[tokio::test]
async fn run_page_shows_llm_usage_per_step_escaped() {
    let fx = Fixture::new().await;
    let run = fx.runs.completed;
    sqlx::query("insert into pgflow.model_prices values ('gpt-x', 1.0, 2.0)")
        .execute(fx.pool())
        .await
        .unwrap();
    // Two priced calls on the map's tasks, one on an unpriced hostile model.
    for (index, model, input, output, ms) in [
        (0, "gpt-x", 1000_i64, 100_i64, 200_i64),
        (1, "gpt-x", 3000, 300, 400),
        (2, "<script>alert(1)</script>", 10, 1, 50),
    ] {
        sqlx::query(
            "insert into pgflow.task_usage
               (run_id, flow_slug, step_slug, task_index, attempt, model, input_tokens, output_tokens, latency_ms)
             select run_id, flow_slug, 'items', $2, 1, $3, $4, $5, $6 from pgflow.runs where run_id = $1",
        )
        .bind(run)
        .bind(index)
        .bind(model)
        .bind(input)
        .bind(output)
        .bind(ms)
        .execute(fx.pool())
        .await
        .unwrap();
    }

    let json = fx.get_json(&format!("/api/runs/{run}")).await;
    let usage = json["usage"].as_array().unwrap();
    assert_eq!(usage.len(), 1, "{json}");
    assert_eq!(usage[0]["step_slug"], "items");
    assert_eq!(usage[0]["calls"], 3);
    assert_eq!(usage[0]["input_tokens"], 4010);
    assert_eq!(usage[0]["output_tokens"], 401);
    assert_eq!(usage[0]["latency_ms"], 650);
    // Priced calls only (pgflow.step_usage): the unpriced model adds none.
    let cost = usage[0]["cost_usd"].as_f64().unwrap();
    let expected = (4000.0 * 1.0 + 400.0 * 2.0) / 1e6;
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");

    let (status, html) = fx.get(&format!("/runs/{run}")).await;
    assert_eq!(status, 200);
    let table = &html[html.find("id=\"usage-table\"").expect("usage table")..];
    assert!(
        table.contains("<td class=\"input-tokens\">4010</td>"),
        "{table}"
    );
    assert!(
        table.contains("<td class=\"output-tokens\">401</td>"),
        "{table}"
    );
    assert!(
        table.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{table}"
    );
    assert!(!html.contains("<script>alert(1)</script>"));

    assert!(
        table.contains("<td class=\"cost\">$0.004800</td>"),
        "{table}"
    );

    let (_, other) = fx.get(&format!("/runs/{}", fx.runs.failed)).await;
    assert!(!other.contains("id=\"usage-table\""));
    let failed = fx.get_json(&format!("/api/runs/{}", fx.runs.failed)).await;
    assert_eq!(failed["usage"], serde_json::json!([]));
}
