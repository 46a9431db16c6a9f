//! Starting runs: bad input is refused before anything is written.

use pgflow_tests::TestDb;

use crate::common::*;

#[tokio::test]
async fn start_flow_refuses_bad_input_without_writing() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('m'); select pgflow.add_step('m', 'each', step_type => 'map');",
    )
    .await;
    let e = expect_error(pool, "select pgflow.start_flow('m', '{\"a\":1}')").await;
    assert_eq!(
        e.message,
        "Flow m has root map steps but input is not an array (got object)"
    );
    let e = expect_error(pool, "select pgflow.start_flow('m', 'null'::jsonb)").await;
    assert_eq!(
        e.message,
        "Flow m has root map steps but input is not an array (got null)"
    );
    let e = expect_error(pool, "select pgflow.start_flow('m', NULL)").await;
    assert_eq!(e.message, "Flow m has root map steps but input is NULL");
    let e = expect_error(pool, "select pgflow.start_flow('ghost', '{}')").await;
    assert_eq!(e.constraint.as_deref(), Some("runs_flow_slug_fkey"));
    assert!(e.detail.contains("ghost"), "{e:?}");
    exec(
        pool,
        "select pgflow.create_flow('s'); select pgflow.add_step('s', 'a');",
    )
    .await;
    let e = expect_error(pool, "select pgflow.start_flow('s', NULL)").await;
    assert_eq!(e.code, "23502");
    assert_eq!(
        scalar_i64(pool, "select count(*) from pgflow.runs").await,
        0
    );
    assert_eq!(
        scalar_i64(pool, "select count(*) from pgflow.step_states").await,
        0
    );
    assert_eq!(
        live_messages(pool, "m").await + live_messages(pool, "s").await,
        0
    );

    // A caller-chosen run id is used, and reusing it is refused.
    exec(
        pool,
        "select pgflow.start_flow('s', '{}', '00000000-0000-0000-0000-0000000000aa')",
    )
    .await;
    let e = expect_error(
        pool,
        "select pgflow.start_flow('s', '{}', '00000000-0000-0000-0000-0000000000aa')",
    )
    .await;
    assert_eq!(e.code, "23505");
}
