//! The small SQL helpers the cascade is built from.

use pgflow_tests::TestDb;

use crate::common::*;

#[tokio::test]
async fn helper_functions_behave_as_specified() {
    let db = TestDb::new().await;
    let pool = db.pool();
    for (base, attempts, expected) in [
        (2, 1, 4),
        (2, 2, 8),
        (2, 3, 16),
        (5, 1, 10),
        (0, 4, 0),
        (1, 40, i32::MAX as i64),
    ] {
        let got = scalar_i64(
            pool,
            &format!("select pgflow.calculate_retry_delay({base}, {attempts})::bigint"),
        )
        .await;
        assert_eq!(got, expected, "calculate_retry_delay({base}, {attempts})");
    }

    exec(
        pool,
        "select pgmq.create('vtq'); select pgmq.send('vtq', '{}'); select pgmq.send('vtq', '{}');",
    )
    .await;
    let n = scalar_i64(
        pool,
        "select count(*) from pgflow.set_vt_batch('vtq', array[1, 2]::bigint[], array[100, 200])",
    )
    .await;
    assert_eq!(n, 2);
    let vts = scalar_text(
        pool,
        "select string_agg(round(extract(epoch from vt - clock_timestamp()) / 100)::text, ',' order by msg_id) from pgmq.q_vtq",
    )
    .await;
    assert_eq!(vts.as_deref(), Some("1,2"));
    assert_eq!(
        scalar_i64(
            pool,
            "select count(*) from pgflow.set_vt_batch('vtq', '{}', '{}')"
        )
        .await,
        0
    );
    assert_eq!(
        scalar_i64(
            pool,
            "select count(*) from pgflow.set_vt_batch('vtq', NULL, NULL)"
        )
        .await,
        0
    );
    let e = expect_error(
        pool,
        "select * from pgflow.set_vt_batch('vtq', array[1]::bigint[], array[1, 2])",
    )
    .await;
    assert_eq!(
        e.message,
        "msg_ids length (1) must equal vt_offsets length (2)"
    );
    let e = expect_error(
        pool,
        "select * from pgflow.set_vt_batch('no_such_queue', array[1]::bigint[], array[1])",
    )
    .await;
    assert_eq!(e.code, "42P01");

    assert_eq!(
        scalar_i64(
            pool,
            "select count(*) from pgflow.poll_for_tasks('vtq', 5, 10)"
        )
        .await,
        0
    );

    let w = worker(pool, "vtq").await;
    exec(pool, &format!("select pgflow.mark_worker_stopped('{w}')")).await;
    assert_eq!(
        scalar_i64(pool, &format!("select count(*) from pgflow.workers where worker_id = '{w}' and stopped_at is not null")).await,
        1
    );
}
