use serde_json::json;

use crate::*;

fn invoice_batch() -> Flow {
    FlowBuilder::new("invoice_batch")
        .max_attempts(4)
        .base_delay(2)
        .timeout(30)
        .step(StepDef::single("fetch_customer"))
        .step(StepDef::single("list_invoices").depends_on(["fetch_customer"]))
        .step(
            StepDef::map("render_pdf")
                .array("list_invoices")
                .timeout(120),
        )
        .step(
            StepDef::single("notify_vip")
                .depends_on(["fetch_customer"])
                .required(json!({"fetch_customer": {"tier": "vip"}})),
        )
        .step(
            StepDef::single("email_bundle")
                .depends_on(["render_pdf", "notify_vip"])
                .max_attempts(2)
                .when_exhausted(WhenMode::Skip),
        )
        .build()
        .unwrap()
}

#[test]
fn shape_matches_spec_layout() {
    let shape = invoice_batch().shape().to_json();
    assert_eq!(
        shape["options"],
        json!({"maxAttempts": 4, "baseDelay": 2, "timeout": 30})
    );
    assert!(shape.get("flowSlug").is_none());
    assert_eq!(
        shape["steps"][0],
        json!({"slug": "fetch_customer", "stepType": "single", "dependencies": [],
               "whenUnmet": "skip", "whenExhausted": "fail",
               "requiredInputPattern": {"defined": false},
               "forbiddenInputPattern": {"defined": false}})
    );
    assert_eq!(
        shape["steps"][2],
        json!({"slug": "render_pdf", "stepType": "map", "dependencies": ["list_invoices"],
               "whenUnmet": "skip", "whenExhausted": "fail",
               "requiredInputPattern": {"defined": false},
               "forbiddenInputPattern": {"defined": false},
               "options": {"timeout": 120}})
    );
    assert_eq!(
        shape["steps"][3]["requiredInputPattern"],
        json!({"defined": true, "value": {"fetch_customer": {"tier": "vip"}}})
    );
    // Dependencies are sorted, whatever order they were declared in.
    assert_eq!(
        shape["steps"][4]["dependencies"],
        json!(["notify_vip", "render_pdf"])
    );
    assert_eq!(shape["steps"][4]["whenExhausted"], "skip");
}

#[test]
fn empty_options_are_omitted() {
    let flow = FlowBuilder::new("f")
        .step(StepDef::single("a"))
        .build()
        .unwrap();
    let shape = flow.shape().to_json();
    assert!(shape.get("options").is_none());
    assert!(shape["steps"][0].get("options").is_none());
}

#[test]
fn shape_round_trips() {
    let flow = invoice_batch();
    let shape: FlowShape = serde_json::from_value(flow.shape().to_json()).unwrap();
    let back = shape.into_def("invoice_batch").validate().unwrap();
    assert_eq!(back.shape(), flow.shape());
}

#[test]
fn flow_file_round_trips_through_json() {
    let flow = invoice_batch();
    let text = serde_json::to_string(flow.def()).unwrap();
    let def: FlowDef = serde_json::from_str(&text).unwrap();
    assert_eq!(&def, flow.def());
    assert!(text.contains("\"if\""), "{text}");
}

#[test]
fn step_timeout_falls_back_to_flow_then_default() {
    let flow = invoice_batch();
    assert_eq!(flow.step_timeout("render_pdf"), 120);
    assert_eq!(flow.step_timeout("fetch_customer"), 30);
    let bare = FlowBuilder::new("f")
        .step(StepDef::single("a"))
        .build()
        .unwrap();
    assert_eq!(bare.step_timeout("a"), 60);
}

#[test]
fn steps_in_any_order_are_sorted_and_keep_their_shape() {
    let forward = FlowBuilder::new("f")
        .step(StepDef::single("report").depends_on(["count", "meta"]))
        .step(StepDef::map("count").array("split"))
        .step(StepDef::single("split"))
        .step(StepDef::single("meta"))
        .build()
        .unwrap();
    let slugs: Vec<&str> = forward.steps().iter().map(|s| s.slug.as_str()).collect();
    assert_eq!(slugs, ["split", "count", "meta", "report"]);
    let ordered = FlowBuilder::new("f")
        .step(StepDef::single("split"))
        .step(StepDef::map("count").array("split"))
        .step(StepDef::single("meta"))
        .step(StepDef::single("report").depends_on(["count", "meta"]))
        .build()
        .unwrap();
    assert_eq!(forward.shape(), ordered.shape());
}

#[test]
fn slug_messages_state_the_real_limit() {
    let long = "x".repeat(60);
    let text = err(FlowBuilder::new(long)).to_string();
    assert!(
        text.contains("has 60 characters: a flow slug is 1 to 47"),
        "{text}"
    );
    assert!(!text.contains("128"), "{text}");
    let text = err(FlowBuilder::new("1x")).to_string();
    assert!(text.contains("1 to 47"), "{text}");
}

fn err(builder: FlowBuilder) -> FlowError {
    builder.build().unwrap_err()
}

#[test]
fn rejects_invalid_slugs() {
    assert!(matches!(
        err(FlowBuilder::new("run")),
        FlowError::InvalidFlowSlug(_)
    ));
    assert!(matches!(
        err(FlowBuilder::new("1x")),
        FlowError::InvalidFlowSlug(_)
    ));
    assert!(matches!(
        err(FlowBuilder::new("x".repeat(48))),
        FlowError::FlowSlugTooLong { len: 48, .. }
    ));
    assert!(FlowBuilder::new("x".repeat(47)).build().is_ok());
    assert!(matches!(
        err(FlowBuilder::new("f").step(StepDef::single("a-b"))),
        FlowError::InvalidStepSlug(_)
    ));
}

#[test]
fn rejects_bad_graphs() {
    assert_eq!(
        err(FlowBuilder::new("f")
            .step(StepDef::single("a"))
            .step(StepDef::single("a"))),
        FlowError::DuplicateStep("a".into())
    );
    assert_eq!(
        err(FlowBuilder::new("f").step(StepDef::single("a").depends_on(["a"]))),
        FlowError::Cycle {
            path: vec!["a".into(), "a".into()]
        }
    );
    assert_eq!(
        err(FlowBuilder::new("f").step(StepDef::single("a").depends_on(["a"]))).to_string(),
        "step \"a\" depends on itself (a cycle: a → a)"
    );
    assert_eq!(
        err(FlowBuilder::new("f")
            .step(StepDef::single("fetch"))
            .step(StepDef::single("b").depends_on(["fetc"])))
        .to_string(),
        "step \"b\" depends on \"fetc\", which is not a step of this flow; did you mean \"fetch\"?"
    );
    let e = err(FlowBuilder::new("f")
        .step(StepDef::single("a").depends_on(["c"]))
        .step(StepDef::single("b").depends_on(["a"]))
        .step(StepDef::single("c").depends_on(["b"])));
    assert_eq!(
        e.to_string(),
        "steps depend on each other in a cycle: a → b → c → a (each step depends on the one before it)"
    );
    let e = err(FlowBuilder::new("f")
        .step(StepDef::single("a"))
        .step(StepDef::single("b"))
        .step(StepDef::map("m").depends_on(["a", "b"])));
    assert_eq!(
        e.to_string(),
        "map step \"m\" can have at most one dependency, but 2 were provided: a, b"
    );
    assert!(matches!(
        err(FlowBuilder::new("f")
            .step(StepDef::single("a"))
            .step(StepDef::single("b").depends_on(["a", "a"]))),
        FlowError::DuplicateDependency { .. }
    ));
}

#[test]
fn rejects_out_of_range_options() {
    let cases = [
        (FlowBuilder::new("f").max_attempts(0), "maxAttempts"),
        (FlowBuilder::new("f").base_delay(0), "baseDelay"),
        (FlowBuilder::new("f").timeout(2), "timeout"),
        (
            FlowBuilder::new("f").step(StepDef::single("a").max_attempts(0)),
            "maxAttempts",
        ),
        (
            FlowBuilder::new("f").step(StepDef::single("a").base_delay(0)),
            "baseDelay",
        ),
        (
            FlowBuilder::new("f").step(StepDef::single("a").timeout(2)),
            "timeout",
        ),
        (
            FlowBuilder::new("f").step(StepDef::single("a").start_delay(-1)),
            "startDelay",
        ),
    ];
    for (builder, name) in cases {
        match err(builder) {
            FlowError::InvalidOption { option, .. } => assert_eq!(option, name),
            other => panic!("{name}: {other}"),
        }
    }
    assert!(FlowBuilder::new("f")
        .max_attempts(1)
        .base_delay(1)
        .timeout(3)
        .step(StepDef::single("a").start_delay(0))
        .build()
        .is_ok());
}

#[test]
fn rejects_non_object_patterns() {
    assert!(matches!(
        err(FlowBuilder::new("f").step(StepDef::single("a").required(json!([1])))),
        FlowError::PatternNotObject { .. }
    ));
    assert!(matches!(
        err(FlowBuilder::new("f").step(StepDef::single("a").forbidden(json!(null)))),
        FlowError::PatternNotObject { .. }
    ));
}
