//! The conflict rules of `smsotpctl store import` (daemon/src/store/copy.rs)
//! row by row: a SQLite file and a fleet database that both hold rows for
//! the same users, written with SQL so each case is explicit, then copied
//! twice. The fleet's number and opt-out stay, each lock column takes the
//! larger value, an existing backup-code set is never extended (a code the
//! file says was used becomes used), a later grace stamp is kept, and the
//! second run writes nothing.

#[allow(dead_code)]
#[path = "../../tests/src/pg.rs"]
mod pg;

use pg::Postgres;
use smsotp_config::{PgSslMode, PostgresConfig, StoreBackend, StoreConfig, StoreSync};
use smsotpd::store::copy::{sqlite_into_postgres, Copied};
use smsotpd::store::{PostgresStore, SqliteStore};

const FILE_ROWS: &str = "
    INSERT INTO mobiles VALUES ('ann', '+15550000001', 100), ('bob', '+15550000002', 100);
    INSERT INTO failures(user, failures, window_start, locked_until, lockouts)
        VALUES ('ann', 2, 50, 5000, 1), ('bob', 1, 50, 0, 0);
    INSERT INTO backup_codes VALUES
        ('ann', 'a1', 'h-a1', 10, NULL), ('ann', 'a2', 'h-a2', 10, 20),
        ('bob', 'b1', 'h-b1', 10, 25), ('bob', 'b2', 'h-b2', 10, NULL);
    INSERT INTO opt_outs VALUES ('bob', 10);
    INSERT INTO successes VALUES ('ann', 'host-1 sshd rhost:192.0.2.1', 100);";

const FLEET_ROWS: &str = "
    INSERT INTO smsotp.mobiles VALUES ('ann', '+15559999999', 200);
    INSERT INTO smsotp.failures(username, failures, window_start, locked_until, lockouts)
        VALUES ('bob', 0, 60, 9000, 2);
    INSERT INTO smsotp.backup_codes VALUES
        ('bob', 'b1', 'h-b1', 10, NULL), ('bob', 'x9', 'h-x9', 40, NULL);
    INSERT INTO smsotp.successes VALUES ('ann', 'host-1 sshd rhost:192.0.2.1', 500);";

/// An empty store file made by the daemon's own code (its schema).
fn sqlite_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let file = dir.path().join("state.db");
    drop(
        SqliteStore::open(&StoreConfig {
            path: file.clone(),
            sync: StoreSync::Normal,
            backend: StoreBackend::Sqlite,
            timeout: std::time::Duration::from_secs(3),
        })
        .unwrap(),
    );
    file
}

fn pg_config(url: &str) -> PostgresConfig {
    PostgresConfig {
        url: url.into(),
        sslmode: PgSslMode::Disable,
        ca_file: None,
        password: None,
    }
}

fn written(c: &[Copied]) -> Vec<(&str, u64, u64)> {
    c.iter().map(|c| (c.table, c.read, c.written)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_keeps_its_values_locks_take_the_later_and_a_rerun_writes_nothing() {
    let Some(pg) = Postgres::start() else {
        return;
    };
    let url = pg.database();
    let db = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let cfg = pg_config(&url);
    // Each store makes its own schema; then the rows go in by hand.
    drop(PostgresStore::open(&cfg).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let file = sqlite_file(&dir);
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch(FILE_ROWS)
        .unwrap();
    pg.psql(db, FLEET_ROWS);

    let first = sqlite_into_postgres(&file, &cfg).await.unwrap();
    assert_eq!(
        written(&first),
        vec![
            ("mobiles", 2, 1),
            ("failures", 2, 2),
            ("backup_failures", 0, 0),
            ("backup_codes", 4, 3),
            ("opt_outs", 1, 1),
            ("successes", 1, 0),
        ]
    );
    let q = |sql: &str| pg.psql(db, sql);
    assert_eq!(
        q("SELECT string_agg(username || '=' || e164, ' ' ORDER BY username) FROM smsotp.mobiles"),
        "ann=+15559999999 bob=+15550000002",
        "the fleet's number stays, a missing one is added"
    );
    assert_eq!(
        q("SELECT string_agg(concat_ws(',', username, failures, window_start, locked_until, lockouts), ' ' ORDER BY username) FROM smsotp.failures"),
        "ann,2,50,5000,1 bob,1,60,9000,2",
        "each column the larger: the fleet's later lock holds"
    );
    assert_eq!(
        q("SELECT string_agg(concat_ws(',', username, id, COALESCE(used_at::text, '-')), ' ' ORDER BY username, id) FROM smsotp.backup_codes"),
        "ann,a1,- ann,a2,20 bob,b1,25 bob,x9,-",
        "ann gets the file's set; bob keeps his, b1 is now spent, b2 is not added"
    );
    assert_eq!(
        q("SELECT string_agg(username, ' ') FROM smsotp.opt_outs"),
        "bob"
    );
    assert_eq!(
        q("SELECT at FROM smsotp.successes"),
        "500",
        "the later stamp"
    );

    let again = sqlite_into_postgres(&file, &cfg).await.unwrap();
    assert!(
        again.iter().all(|c| c.written == 0),
        "{:?}",
        written(&again)
    );
    assert_eq!(
        again.iter().map(|c| c.read).collect::<Vec<_>>(),
        first.iter().map(|c| c.read).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_file_others_could_write_is_refused_before_it_is_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = sqlite_file(&dir);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    // Never reached: the file is refused first.
    let cfg = pg_config("postgresql://nobody@127.0.0.1:1/none?sslmode=disable");
    let e = sqlite_into_postgres(&file, &cfg)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&file.display().to_string()), "{e}");
    assert!(!e.contains("127.0.0.1:1"), "refused before connecting: {e}");
}
