//! The cases on S3: one moto server for this test binary ([`Moto::shared`]), a bucket per case, each
//! case in a child process with moto's environment (credentials, endpoint, plain HTTP), since a test
//! cannot set variables in its own process.

use staleguard_testkit::moto::Moto;

use crate::child;
use crate::target::Target;

/// Runs `case` (a name [`child::run_in_child`] knows) against a fresh bucket `bucket`.
fn on_moto(case: &str, bucket: &str) {
    let moto = Moto::shared();
    moto.create_bucket(bucket);
    let work = tempfile::tempdir().unwrap();
    let t = Target::new(&format!("s3://{bucket}"), work.path().to_path_buf());
    let mut c = child::command(case, &t, &[]);
    moto.apply(&mut c);
    let o = c.output().expect("cannot run the test binary again");
    child::assert_done(case, &o);
}

#[test]
fn s3_deploy_and_redeploy_upload_only_what_changed() {
    on_moto("deploy_and_redeploy", "redeploy");
}

#[test]
fn s3_reused_sidecars_stay_in_the_store() {
    on_moto("reused_sidecars_stay_in_the_store", "reuse");
}

#[test]
fn s3_gc_collects_old_versions_and_keeps_the_current_deploy() {
    on_moto("gc_collects_old_versions", "gc-site");
}

#[test]
fn s3_rollback_restores_the_previous_deploy() {
    on_moto("rollback_restores_the_previous_deploy", "rollback");
}

#[test]
fn s3_a_deploy_killed_mid_upload_resumes() {
    on_moto("crash_then_resume:put-done@3", "crash-upload");
}

#[test]
fn s3_a_deploy_killed_between_history_and_current_resumes() {
    on_moto("crash_then_resume:commit-history", "crash-history");
}

#[test]
fn s3_free_items_across_months_and_concurrent_purges() {
    on_moto("free_items", "usage");
}
