//! Crash safety: a `salur worker` process killed with SIGKILL at arbitrary points mid-batch,
//! then restarted, loses no record, strands none, and pays none twice.

use crate::harness;
use salur::bank::sim::{SimOptions, settlements};
use salur::demo::generate;
use salur::ops::batch;
use salur::store::State;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_worker_mid_batch_loses_nothing_and_pays_nothing_twice() {
    harness::env()
        // A slow bank keeps requests and answers in flight when the worker dies.
        .bank(SimOptions {
            delay: Duration::from_millis(5),
            duplicate_rate: 0.2,
            seed: 3,
            ..Default::default()
        })
        .run(async |env| {
            let demo = generate::generate(4000, 400, 11);
            let batch_id = env.submit(&demo.records, "2026-Q4").await;

            let mut kills = 0;
            let mut last_settled = 0;
            let started = Instant::now();
            while kills < 5 {
                let mut worker = env.spawn_worker();
                // Let it make some progress (or finish), then kill it without warning.
                let kill_after = Duration::from_millis(300 + 250 * kills);
                tokio::time::sleep(kill_after).await;
                worker.kill().expect("SIGKILL");
                worker.wait().unwrap();
                kills += 1;
                let s = batch::status(&env.pool, batch_id).await.unwrap();
                let settled = s.records - s.in_flight;
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "no progress: {s}"
                );
                last_settled = last_settled.max(settled);
                if s.in_flight == 0 {
                    break;
                }
            }
            assert!(kills >= 2, "the worker was killed at least twice mid-batch");
            let mut worker = env.spawn_worker();
            let status = env.wait(batch_id).await;
            worker.kill().unwrap();
            worker.wait().unwrap();

            assert_eq!(status.in_flight, 0);
            assert_eq!(status.count(State::Disbursed), 3600, "{status}");
            assert_eq!(status.count(State::Blocked), 400, "{status}");
            // The bank paid every disbursed record exactly once, with the reference salur recorded.
            let paid = settlements(env.ledger().await).await.unwrap();
            assert_eq!(paid.len(), 3600);
            let by_record: HashMap<String, Option<String>> =
                paid.into_iter().map(|s| (s.item_id, s.reference)).collect();
            assert_eq!(by_record.len(), 3600, "one settlement per record");
            let refs: Vec<(i64, Option<String>)> = sqlx::query_as(
            "SELECT id, bank_reference FROM records WHERE batch_id = $1 AND state = 'disbursed'",
        )
        .bind(batch_id)
        .fetch_all(&env.pool)
        .await
        .unwrap();
            for (id, reference) in refs {
                assert!(reference.is_some());
                assert_eq!(
                    by_record.get(&id.to_string()),
                    Some(&reference),
                    "record {id}"
                );
            }
            // Every state change is audited exactly once per step.
            let steps: i64 = sqlx::query_scalar("SELECT count(*) FROM record_events")
                .fetch_one(&env.pool)
                .await
                .unwrap();
            assert_eq!(steps, 4000 + 400 + 3600 * 5);
        })
        .await;
}
