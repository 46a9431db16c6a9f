//! Flow definition through SQL: `is_valid_slug`, `create_flow`, `add_step`, and every error
//! a user can cause there. A refused call must leave no rows behind.

use crate::common;

use common::*;
use pgflow_tests::TestDb;

#[tokio::test]
async fn is_valid_slug_accepts_identifiers_and_rejects_the_rest() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let cases = [
        ("'fetch_user'", true),
        ("'_private1'", true),
        ("'Run'", true),
        ("'run'", false),
        ("''", false),
        ("NULL", false),
        ("'1abc'", false),
        ("'has-dash'", false),
        ("'has space'", false),
        ("'quote''s'", false),
        ("'semi;colon'", false),
        ("'ünïcode'", false),
        ("repeat('a', 128)", true),
        ("repeat('a', 129)", false),
    ];
    for (arg, expected) in cases {
        let got: bool = sqlx::query_scalar(&format!("select pgflow.is_valid_slug({arg})"))
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(got, expected, "is_valid_slug({arg})");
    }
}

#[tokio::test]
async fn create_flow_applies_defaults_creates_queue_and_is_idempotent() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(pool, "select pgflow.create_flow('orders')").await;
    let opts = scalar_text(
        pool,
        "select format('%s/%s/%s', opt_max_attempts, opt_base_delay, opt_timeout) from pgflow.flows where flow_slug = 'orders'",
    )
    .await;
    assert_eq!(opts.as_deref(), Some("3/5/60"));
    assert_eq!(
        scalar_i64(
            pool,
            "select count(*) from pgmq.list_queues() where queue_name = 'orders'"
        )
        .await,
        1
    );

    // A second call with other options returns the stored row unchanged.
    let again = scalar_text(
        pool,
        "select format('%s/%s/%s', opt_max_attempts, opt_base_delay, opt_timeout) from pgflow.create_flow('orders', 9, 9, 9)",
    )
    .await;
    assert_eq!(again.as_deref(), Some("3/5/60"));
    assert_eq!(
        scalar_i64(pool, "select count(*) from pgflow.flows").await,
        1
    );

    exec(
        pool,
        "select pgflow.create_flow('tuned', max_attempts => 1, base_delay => 0, timeout => 7)",
    )
    .await;
    let tuned = scalar_text(
        pool,
        "select format('%s/%s/%s', opt_max_attempts, opt_base_delay, opt_timeout) from pgflow.flows where flow_slug = 'tuned'",
    )
    .await;
    assert_eq!(tuned.as_deref(), Some("1/0/7"));
}

#[tokio::test]
async fn create_flow_refuses_bad_slugs_and_options_naming_them() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let e = expect_error(pool, "select pgflow.create_flow('bad-slug')").await;
    assert_eq!(e.code, "23514");
    assert_eq!(e.constraint.as_deref(), Some("slug_is_valid"));
    assert!(e.message.contains("slug_is_valid"), "{e:?}");
    assert!(e.detail.contains("bad-slug"), "{e:?}");

    let e = expect_error(pool, "select pgflow.create_flow('run')").await;
    assert_eq!(e.constraint.as_deref(), Some("slug_is_valid"));
    let e = expect_error(pool, "select pgflow.create_flow(NULL)").await;
    assert_eq!(e.constraint.as_deref(), Some("slug_is_valid"));
    let e = expect_error(pool, "select pgflow.create_flow(repeat('x', 129))").await;
    assert_eq!(e.constraint.as_deref(), Some("slug_is_valid"));
    // Valid as a slug but too long for a pgmq queue name.
    let e = expect_error(pool, "select pgflow.create_flow(repeat('x', 48))").await;
    assert!(e.message.contains("47"), "{e:?}");

    let e = expect_error(pool, "select pgflow.create_flow('f', max_attempts => -1)").await;
    assert_eq!(
        e.constraint.as_deref(),
        Some("opt_max_attempts_is_nonnegative")
    );
    assert!(e.detail.contains("-1"), "{e:?}");
    let e = expect_error(pool, "select pgflow.create_flow('f', base_delay => -5)").await;
    assert_eq!(
        e.constraint.as_deref(),
        Some("opt_base_delay_is_nonnegative")
    );
    let e = expect_error(pool, "select pgflow.create_flow('f', timeout => 0)").await;
    assert_eq!(e.constraint.as_deref(), Some("opt_timeout_is_positive"));

    assert_eq!(
        scalar_i64(pool, "select count(*) from pgflow.flows").await,
        0
    );
    assert_eq!(
        scalar_i64(pool, "select count(*) from pgmq.list_queues()").await,
        0
    );
}

#[tokio::test]
async fn add_step_assigns_indexes_counts_deps_and_stores_options() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('f');
         select pgflow.add_step('f', 'a');
         select pgflow.add_step('f', 'b', array['a'], max_attempts => 5, base_delay => 2, timeout => 30, start_delay => 4);
         select pgflow.add_step('f', 'c', array['a']);
         select pgflow.add_step('f', 'd', array['b', 'c']);
         select pgflow.add_step('f', 'e', array['d'], step_type => 'map');",
    )
    .await;
    let rows = scalar_text(
        pool,
        "select string_agg(format('%s:%s:%s:%s', step_slug, step_index, deps_count, step_type), ' ' order by step_index) from pgflow.steps",
    )
    .await;
    assert_eq!(
        rows.as_deref(),
        Some("a:0:0:single b:1:1:single c:2:1:single d:3:2:single e:4:1:map")
    );
    let opts = scalar_text(
        pool,
        "select format('%s/%s/%s/%s', opt_max_attempts, opt_base_delay, opt_timeout, opt_start_delay) from pgflow.steps where step_slug = 'b'",
    )
    .await;
    assert_eq!(opts.as_deref(), Some("5/2/30/4"));
    let inherit = scalar_text(
        pool,
        "select coalesce(opt_max_attempts::text, 'null') || coalesce(opt_timeout::text, 'null') from pgflow.steps where step_slug = 'a'",
    )
    .await;
    assert_eq!(inherit.as_deref(), Some("nullnull"));
    assert_eq!(
        scalar_i64(pool, "select count(*) from pgflow.deps").await,
        5
    );
}

#[tokio::test]
async fn add_step_is_idempotent_for_the_same_definition_and_refuses_a_different_one() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(
        pool,
        "select pgflow.create_flow('f'); select pgflow.add_step('f', 'a'); select pgflow.add_step('f', 'b');
         select pgflow.add_step('f', 'c', array['a']);",
    )
    .await;
    // Same structure again (options are not structure): the existing row, unchanged.
    let idx = scalar_i64(
        pool,
        "select step_index::bigint from pgflow.add_step('f', 'c', array['a'], max_attempts => 9)",
    )
    .await;
    assert_eq!(idx, 2);
    assert_eq!(
        scalar_i64(pool, "select count(*) from pgflow.steps").await,
        3
    );

    // Different dependencies: refused, and the edge set is untouched.
    let e = expect_error(pool, "select pgflow.add_step('f', 'c', array['a', 'b'])").await;
    assert!(e.message.contains("\"c\" already exists"), "{e:?}");
    assert_eq!(
        scalar_i64(pool, "select count(*) from pgflow.deps").await,
        1
    );
    assert_eq!(
        scalar_i64(
            pool,
            "select deps_count::bigint from pgflow.steps where step_slug = 'c'"
        )
        .await,
        1
    );
    let e = expect_error(
        pool,
        "select pgflow.add_step('f', 'c', array['a'], step_type => 'map')",
    )
    .await;
    assert!(e.message.contains("different definition"), "{e:?}");
}

#[tokio::test]
async fn add_step_errors_name_what_is_wrong_and_leave_no_rows() {
    let db = TestDb::new().await;
    let pool = db.pool();
    exec(pool, "select pgflow.create_flow('f'); select pgflow.add_step('f', 'a'); select pgflow.add_step('f', 'b');").await;
    let before = scalar_i64(
        pool,
        "select (select count(*) from pgflow.steps) * 1000 + (select count(*) from pgflow.deps)",
    )
    .await;

    let e = expect_error(pool, "select pgflow.add_step('nope', 'x')").await;
    assert_eq!(
        (e.code.as_str(), e.constraint.as_deref()),
        ("23503", Some("steps_flow_slug_fkey"))
    );
    assert!(e.detail.contains("nope"), "{e:?}");

    let e = expect_error(pool, "select pgflow.add_step('f', 'x', array['ghost'])").await;
    assert_eq!(
        (e.code.as_str(), e.constraint.as_deref()),
        ("23503", Some("deps_flow_slug_dep_slug_fkey"))
    );
    assert!(e.detail.contains("ghost"), "{e:?}");

    let e = expect_error(pool, "select pgflow.add_step('f', 'x', array['x'])").await;
    assert_eq!(e.constraint.as_deref(), Some("deps_check"));

    let e = expect_error(pool, "select pgflow.add_step('f', 'bad slug')").await;
    assert_eq!(e.constraint.as_deref(), Some("steps_step_slug_check"));
    assert!(e.detail.contains("bad slug"), "{e:?}");
    let e = expect_error(pool, "select pgflow.add_step('f', 'run')").await;
    assert_eq!(e.constraint.as_deref(), Some("steps_step_slug_check"));

    let e = expect_error(
        pool,
        "select pgflow.add_step('f', 'm', array['a', 'b'], step_type => 'map')",
    )
    .await;
    assert_eq!(
        e.message,
        "Map step \"m\" can have at most one dependency, but 2 were provided: a, b"
    );

    let e = expect_error(
        pool,
        "select pgflow.add_step('f', 'x', step_type => 'batch')",
    )
    .await;
    assert_eq!(e.constraint.as_deref(), Some("steps_step_type_check"));
    assert!(e.detail.contains("batch"), "{e:?}");
    let e = expect_error(
        pool,
        "select pgflow.add_step('f', 'x', when_unmet => 'explode')",
    )
    .await;
    assert_eq!(e.constraint.as_deref(), Some("when_unmet_is_valid"));
    let e = expect_error(
        pool,
        "select pgflow.add_step('f', 'x', when_exhausted => 'retry')",
    )
    .await;
    assert_eq!(e.constraint.as_deref(), Some("when_exhausted_is_valid"));
    let e = expect_error(
        pool,
        "select pgflow.add_step('f', 'x', required_input_pattern => '[1]')",
    )
    .await;
    assert_eq!(
        e.constraint.as_deref(),
        Some("required_input_pattern_is_object")
    );
    let e = expect_error(
        pool,
        "select pgflow.add_step('f', 'x', forbidden_input_pattern => '\"s\"')",
    )
    .await;
    assert_eq!(
        e.constraint.as_deref(),
        Some("forbidden_input_pattern_is_object")
    );
    let e = expect_error(pool, "select pgflow.add_step('f', 'x', max_attempts => -1)").await;
    assert_eq!(
        e.constraint.as_deref(),
        Some("opt_max_attempts_is_nonnegative")
    );
    let e = expect_error(pool, "select pgflow.add_step('f', 'x', base_delay => -1)").await;
    assert_eq!(
        e.constraint.as_deref(),
        Some("opt_base_delay_is_nonnegative")
    );
    let e = expect_error(pool, "select pgflow.add_step('f', 'x', timeout => 0)").await;
    assert_eq!(e.constraint.as_deref(), Some("opt_timeout_is_positive"));
    let e = expect_error(pool, "select pgflow.add_step('f', 'x', start_delay => -3)").await;
    assert_eq!(
        e.constraint.as_deref(),
        Some("opt_start_delay_is_nonnegative")
    );
    assert!(e.detail.contains("-3"), "{e:?}");
    let e = expect_error(pool, "select pgflow.add_step('f', 'x', array['a', 'a'])").await;
    assert!(e.message.contains("more than once"), "{e:?}");

    let after = scalar_i64(
        pool,
        "select (select count(*) from pgflow.steps) * 1000 + (select count(*) from pgflow.deps)",
    )
    .await;
    assert_eq!(
        before, after,
        "a refused add_step must not leave rows behind"
    );
}

#[tokio::test]
async fn concurrent_add_step_calls_keep_indexes_dense() {
    let db = TestDb::new().await;
    let pool = db.pool().clone();
    exec(&pool, "select pgflow.create_flow('f')").await;
    let mut handles = Vec::new();
    for i in 0..16 {
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            sqlx::query("select pgflow.add_step('f', $1)")
                .bind(format!("s{i}"))
                .execute(&pool)
                .await
                .unwrap();
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let idx = scalar_text(
        &pool,
        "select string_agg(step_index::text, ',' order by step_index) from pgflow.steps",
    )
    .await;
    assert_eq!(
        idx.as_deref(),
        Some("0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15")
    );
}

#[tokio::test]
async fn an_invalid_flow_slug_is_told_the_real_limit() {
    let db = TestDb::new().await;
    let err = expect_error(db.pool(), "select pgflow.create_flow('9lives')").await;
    assert!(
        err.detail.contains("a flow slug is 1 to 47 letters")
            || err.message.contains("a flow slug is 1 to 47 letters"),
        "{err:?}"
    );
    assert!(!format!("{err:?}").contains("128"), "{err:?}");
}
