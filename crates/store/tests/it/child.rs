//! Running a case or a step in a child process: this test binary again, filtered to
//! [`run_in_child`], which does what `STORE_IT_CASE` names against the target the parent handed
//! down. Used where the parent cannot: a deploy killed by `STALEGUARD_FAULT` (it aborts the process),
//! and the S3 cases, which need the AWS environment (a test cannot set variables in its own process).

use std::process::{Command, Output};

use crate::cases;
use crate::site::T0;
use crate::target::Target;

const CASE_VAR: &str = "STORE_IT_CASE";
/// What a child prints when what it was asked to do returned.
const DONE: &str = "STORE_IT_DONE";

/// The step that deploys `out/` once at `T0 + 10`, as the second deploy of a case.
pub const STEP_DEPLOY: &str = "deploy";

/// A command running `case` in a child against `t`, with `extra` environment.
pub fn command(case: &str, t: &Target, extra: &[(&str, &str)]) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut c = Command::new(exe);
    c.args([
        "--exact",
        "child::run_in_child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CASE_VAR, case)
    .env_remove("STALEGUARD_FAULT")
    .envs(t.env())
    .envs(extra.iter().copied());
    c
}

/// Runs `case` in a child (see [`command`]) and returns its output, whatever its status.
pub fn run(case: &str, t: &Target, extra: &[(&str, &str)]) -> Output {
    command(case, t, extra)
        .output()
        .expect("cannot run the test binary again")
}

/// The child ran `case` to the end and its assertions held.
#[cfg(feature = "s3")]
pub fn assert_done(case: &str, o: &Output) {
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && stdout.contains(&format!("{DONE} {case}")),
        "case `{case}` failed in its child process ({})\nstdout:\n{stdout}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// In a child (`STORE_IT_CASE` set): runs that case or step. In the parent's own run it does nothing:
/// it is the entry point of the children, not a test of its own.
#[test]
fn run_in_child() {
    let Ok(case) = std::env::var(CASE_VAR) else {
        return;
    };
    let mut t = Target::from_env();
    match case.as_str() {
        STEP_DEPLOY => {
            t.deploy(T0 + 10);
        }
        "deploy_and_redeploy" => cases::deploy_and_redeploy(&t),
        "reused_sidecars_stay_in_the_store" => cases::reused_sidecars_stay_in_the_store(&t),
        "gc_collects_old_versions" => cases::gc_collects_old_versions(&mut t),
        "rollback_restores_the_previous_deploy" => cases::rollback_restores_the_previous_deploy(&t),
        "free_items" => crate::usage::free_items_across_months_and_concurrent_purges(&t),
        other => match other.strip_prefix("crash_then_resume:") {
            Some(fault) => cases::crash_then_resume(&t, fault),
            None => panic!("no case `{other}` (see child::run_in_child)"),
        },
    }
    println!("{DONE} {case}");
}
