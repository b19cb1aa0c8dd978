//! The exit codes, in one place: what each command's process status means to a script or CI.

use std::process::ExitCode;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done; with verification, users get what was deployed.
    Ok,
    /// 1: the command failed (an error, a purge that fails the command, a check that did not pass).
    Failed,
    /// 2: the command line is wrong (clap's usage errors).
    Usage,
    /// 3: deployed (committed), but users may still get stale content: a CDN's purge failed
    /// (`on-failure = "fail"`), or a URL still differed through the CDN at the verification's deadline.
    Stale,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Ok => 0,
            ExitStatus::Failed => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Stale => 3,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        ExitCode::from(s.code())
    }
}
