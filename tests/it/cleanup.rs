//! The harness cleans up after a test that panics: its database, vhost, bank users, child
//! processes and temporary files are gone once the panic has unwound.

use crate::harness::{self, try_rabbitmqctl, valid_record};
use std::path::PathBuf;
use std::process::Stdio;

/// What a test made, to look for once it has failed.
struct Made {
    db_name: String,
    bank_user: String,
    pid: u32,
    temp_file: PathBuf,
    /// Whether the vhost, the bank user, the process and the file were there while it ran.
    there: [bool; 4],
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_that_panics_leaves_nothing_behind() {
    let (tx, rx) = std::sync::mpsc::channel();
    // The failing test, in a task of its own: its panic ends the task, not this test.
    let failed = tokio::spawn(async move {
        harness::env()
            .pipeline()
            .run(async |env| {
                let bank = salur::bank::users::add(&env.settings, &env.pool, "009", "BNI")
                    .await
                    .expect("bank user");
                let temp_file = env.temp_path("corrections.csv");
                std::fs::write(&temp_file, "row,nama\n1,X\n").unwrap();
                let worker = env.spawn(
                    env.salur(&["worker"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null()),
                );
                let made = Made {
                    db_name: env.db_name.clone(),
                    bank_user: bank.user.clone(),
                    pid: worker.id(),
                    there: [false; 4],
                    temp_file,
                };
                let there = [
                    has_vhost(&made.db_name),
                    has_user(&made.bank_user),
                    runs(made.pid),
                    made.temp_file.exists(),
                ];
                tx.send(Made { there, ..made }).unwrap();
                env.submit(&[valid_record(1)], "2026-Q4").await;
                panic!("the test fails here");
            })
            .await;
    })
    .await;
    assert!(failed.unwrap_err().is_panic());
    let made = rx.recv().unwrap();

    // Everything it made was there while it ran, and is gone now.
    assert_eq!(made.there, [true; 4], "vhost, bank user, process, file");
    let name = &made.db_name;
    assert!(!has_vhost(name), "vhost {name} is left");
    assert!(
        !has_user(&made.bank_user),
        "bank user {} is left",
        made.bank_user
    );
    assert!(!runs(made.pid), "process {} is left", made.pid);
    assert!(!made.temp_file.exists(), "{:?} is left", made.temp_file);
    assert!(
        !made.temp_file.parent().unwrap().exists(),
        "the temporary directory is left"
    );
    let admin = harness::env().database_only().build().await;
    let dbs: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&admin.pool)
        .await
        .unwrap();
    assert_eq!(dbs, 0, "database {name} is left");
    admin.cleanup().await;
}

fn has_vhost(name: &str) -> bool {
    let vhosts = try_rabbitmqctl(&["list_vhosts"]).unwrap();
    vhosts.lines().any(|v| v == name)
}

fn has_user(user: &str) -> bool {
    let users = try_rabbitmqctl(&["list_users"]).unwrap();
    users
        .lines()
        .any(|l| l.split_whitespace().next() == Some(user))
}

/// Whether process `pid` exists (a killed and reaped child does not).
fn runs(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
