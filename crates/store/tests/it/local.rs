//! The cases on a local folder (`file://store` in a temp dir).

use crate::cases;
use crate::target::Target;

fn local() -> (tempfile::TempDir, Target) {
    let work = tempfile::tempdir().unwrap();
    let t = Target::new("file://store", work.path().to_path_buf());
    (work, t)
}

#[test]
fn deploy_and_redeploy_upload_only_what_changed() {
    let (_work, t) = local();
    cases::deploy_and_redeploy(&t);
}

#[test]
fn reused_sidecars_stay_in_the_store() {
    let (_work, t) = local();
    cases::reused_sidecars_stay_in_the_store(&t);
}

#[test]
fn a_folder_reusing_one_store_is_refused_by_another() {
    let (work, t) = local();
    // The same work folder (its `out/`), another store.
    let other = Target::new("file://other", work.path().to_path_buf());
    cases::reused_output_to_another_store_is_refused(&t, &other);
}

#[test]
fn gc_collects_old_versions_and_keeps_the_current_deploy() {
    let (_work, mut t) = local();
    cases::gc_collects_old_versions(&mut t);
}

#[test]
fn rollback_restores_the_previous_deploy() {
    let (_work, t) = local();
    cases::rollback_restores_the_previous_deploy(&t);
}

#[test]
fn a_deploy_killed_mid_upload_resumes() {
    let (_work, t) = local();
    cases::crash_then_resume(&t, "put-done@3");
}

#[test]
fn a_deploy_killed_between_history_and_current_resumes() {
    let (_work, t) = local();
    cases::crash_then_resume(&t, "commit-history");
}

#[test]
fn a_deploy_killed_after_its_commit_is_recorded_once() {
    let (_work, t) = local();
    cases::crash_then_resume(&t, "commit-current");
}

#[test]
fn free_items_across_months_and_concurrent_purges() {
    let (_work, t) = local();
    crate::usage::free_items_across_months_and_concurrent_purges(&t);
}
