//! Test data and small helpers: valid recipients and one defect per reason code, record states
//! by row, retrying and time limits.

use salur::intake::RawRecord;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// One complete, valid recipient (row numbers and NIK serials from `n`).
pub fn valid_record(n: u32) -> RawRecord {
    RawRecord {
        row: n,
        nik: Some(format!("537101450880{:04}", n % 10_000 + 1)),
        kk: Some(format!("537101010120{:04}", n % 10_000 + 1)),
        name: Some(format!("Maria Goreti Ndolu {n}")),
        mother_name: Some("Yohana Bili".into()),
        birth_place: Some("Kupang".into()),
        birth_date: Some("1980-08-05".into()),
        sex: Some("P".into()),
        address: Some("Jl. El Tari No. 5, RT 002/RW 001".into()),
        region_code: Some("53.71.01.1001".into()),
        phone: Some("081234567890".into()),
        bank_code: Some("002".into()),
        account_number: None,
        amount: Some("600000".into()),
    }
}

/// Tries `f` until it succeeds, for up to a minute.
pub async fn retry_for_a_minute<T, F, Fut>(mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if std::time::Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// A defect that blocks a record with one reason code.
pub type Defect = (&'static str, fn(&mut RawRecord));

/// One defect per validation reason code, applied to a [`valid_record`].
pub fn defects() -> Vec<Defect> {
    vec![
        ("NIK_MISSING", |r| r.nik = None),
        ("NIK_INVALID", |r| r.nik = Some("537101450880001".into())),
        ("NIK_BIRTH_DATE_MISMATCH", |r| {
            r.birth_date = Some("1981-08-05".into())
        }),
        ("NIK_SEX_MISMATCH", |r| r.sex = Some("L".into())),
        ("KK_MISSING", |r| r.kk = None),
        ("KK_INVALID", |r| r.kk = Some("1001010101200001".into())),
        ("NAME_MISSING", |r| r.name = Some("  ".into())),
        ("MOTHER_NAME_MISSING", |r| r.mother_name = None),
        ("BIRTH_PLACE_MISSING", |r| r.birth_place = Some("-".into())),
        ("BIRTH_DATE_MISSING", |r| r.birth_date = None),
        ("BIRTH_DATE_INVALID", |r| {
            r.birth_date = Some("31/02/1980".into())
        }),
        ("SEX_MISSING", |r| r.sex = None),
        ("SEX_INVALID", |r| r.sex = Some("X".into())),
        ("ADDRESS_MISSING", |r| r.address = None),
        ("REGION_CODE_MISSING", |r| r.region_code = None),
        ("REGION_CODE_INVALID", |r| {
            r.region_code = Some("99.71.01.1001".into())
        }),
        ("BANK_UNKNOWN", |r| r.bank_code = Some("999".into())),
        ("ACCOUNT_NUMBER_INVALID", |r| {
            r.account_number = Some("12AB".into())
        }),
        ("AMOUNT_INVALID", |r| {
            r.amount = Some("enam ratus ribu".into())
        }),
    ]
}

/// A record's values by field key, in file order.
pub fn fields(r: &RawRecord) -> Vec<(&'static str, Option<String>)> {
    salur::intake::file::field_keys()
        .zip(r.values())
        .map(|(k, v)| (k, v.clone()))
        .collect()
}

/// Record states and reason codes per row.
pub async fn rows(pool: &PgPool, batch_id: Uuid) -> Vec<(i32, String, Vec<String>)> {
    let rows: Vec<(i32, String, serde_json::Value)> = sqlx::query_as(
        "SELECT row_number, state, reasons FROM records WHERE batch_id = $1 ORDER BY row_number",
    )
    .bind(batch_id)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(row, state, reasons)| {
            let codes = reasons
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["code"].as_str().unwrap().to_owned())
                .collect();
            (row, state, codes)
        })
        .collect()
}

/// Runs a test body with a time limit, so that a hang fails the test instead of the CI run.
pub async fn within_limit(body: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(240), body)
        .await
        .expect("the test did not finish within 240 s");
}

/// A person at the command line, as the audit trail names them.
pub fn operator() -> salur::domain::Actor {
    salur::domain::Actor::cli(Some("Test Operator".into()))
}

/// Makes the database refuse, for a reason that will never pass (SQLSTATE 22003), every update
/// of a record whose new row satisfies `when` (SQL over `NEW`); `DROP TRIGGER refuse_update ON
/// records` lifts it.
pub async fn refuse_updates(pool: &PgPool, when: &str) {
    sqlx::raw_sql(&format!(
        "CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF {when} THEN
                 RAISE EXCEPTION 'numeric field overflow' USING ERRCODE = '22003';
             END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_update BEFORE UPDATE ON records
             FOR EACH ROW EXECUTE FUNCTION refuse_update();"
    ))
    .execute(pool)
    .await
    .unwrap();
}
