//! What follows a deploy's or rollback's commit: purge what each CDN has not seen yet (invariant 12:
//! after the commit, and after the origin switched), then warm and prove through the CDN (invariant 14),
//! and the summary a webhook gets. The caller prints and picks the exit code.

use std::path::PathBuf;

use staleguard_core::DeployConfig;
use staleguard_core::config::OnFailure;
use staleguard_store::{DeployReport, Pending, PurgeState};

use crate::prove::{self, ProveReport, ProveSettings, Scope};
use crate::purge::{self, CdnReport, PurgeSettings, Source};
use crate::{Error, Failure};

/// The steps to run after the commit.
#[derive(Debug, Clone)]
pub struct ConcludeSettings {
    /// `None`: no purge (`--no-purge`, or no `[[cdn]]`).
    pub purge: Option<PurgeSettings>,
    /// `None`: no proof (a dry run, `--no-verify`, `[verify] in-deploy = false`, or no `cdn-url`).
    pub prove: Option<ProveSettings>,
    /// The store whose deploy state the steps read.
    pub store: DeployConfig,
    /// The config's folder (a `file://` store's relative path).
    pub base: PathBuf,
}

/// What the steps did.
#[derive(Debug, Clone, Default)]
pub struct Conclusion {
    /// What the app caches did (bumped before any CDN), when there are any.
    pub app_caches: Option<purge::AppCacheOutcome>,
    pub purges: Vec<CdnReport>,
    /// `None`: not verified.
    pub proof: Option<Result<ProveReport, Failure>>,
}

/// A step that failed for every CDN at once; the deploy itself is complete.
#[derive(Debug, thiserror::Error)]
pub enum ConcludeError {
    #[error("the deploy is complete, but its state could not be read to purge and verify")]
    State(#[source] Error),
    #[error("the deploy is complete, but purging the CDNs failed")]
    Purge(#[source] Error),
}

/// Purges (a dry run: plans what this deploy would make each CDN drop, never failing the command),
/// then proves, for the deploy `report` describes.
pub async fn conclude(
    settings: &ConcludeSettings,
    report: &DeployReport,
) -> Result<Conclusion, ConcludeError> {
    if settings.purge.is_none() && settings.prove.is_none() {
        return Ok(Conclusion::default());
    }
    // One read of the deploy state, shared by the purge and the proof.
    let mut state = PurgeState::load(&settings.store.store, &settings.store, &settings.base)
        .await
        .map_err(|e| ConcludeError::State(e.into()))?;
    let purges = match &settings.purge {
        None => Vec::new(),
        Some(p) if report.dry_run => {
            // What this build would make each CDN drop (anything still pending from earlier deploys
            // comes on top; `staleguard invalidate --dry-run` shows that). A CDN that cannot be reached
            // is only reported: a dry run changes nothing.
            match report.changes.clone() {
                None => Vec::new(),
                Some(changes) => {
                    let preview = Pending {
                        deploy: format!("{} (dry run)", report.id),
                        since: report.previous.clone(),
                        changes,
                    };
                    let mut reports = purge::run(p, &Source::Preview(preview), None, &mut state)
                        .await
                        .map_err(ConcludeError::Purge)?;
                    for r in &mut reports {
                        r.on_failure = OnFailure::Warn;
                    }
                    reports
                }
            }
        }
        Some(p) => purge::run(p, &Source::Pending, Some(&report.version), &mut state)
            .await
            .map_err(ConcludeError::Purge)?,
    };
    let proof = match &settings.prove {
        None => None,
        Some(p) => {
            let scope = Scope {
                warm: true,
                verify: true,
                url_prefix: purges
                    .iter()
                    .find(|p| !p.url_prefix.is_empty())
                    .map(|p| p.url_prefix.clone()),
                ..Scope::default()
            };
            Some(prove::prove(p, &scope, &state).await.map_err(Failure::from))
        }
    };
    let app_caches = settings
        .purge
        .as_ref()
        .and_then(|p| p.app_caches.as_ref())
        .map(|a| a.outcome());
    Ok(Conclusion {
        app_caches,
        purges,
        proof,
    })
}

impl Conclusion {
    /// The verdict, for the summary: `verified fresh through the CDN`, `STALE: …`, `not verified`.
    pub fn verdict(&self) -> String {
        match &self.proof {
            None => "not verified".to_string(),
            Some(Ok(p)) if p.ok => "verified fresh through the CDN".to_string(),
            Some(Ok(p)) if p.stale_checks() == 0 => {
                "STALE: the origin does not serve the deployed version".to_string()
            }
            Some(Ok(p)) => format!("STALE: {} check(s) still differ", p.stale_checks()),
            Some(Err(e)) => format!("verification failed: {}", e.error().full()),
        }
    }

    /// The one-line summary and the fields a webhook gets.
    pub fn summary(&self, r: &DeployReport) -> (String, Vec<(String, String)>) {
        let verdict = self.verdict();
        let what = if r.restores.is_some() {
            "rolled back"
        } else {
            "deployed"
        };
        let text = format!(
            "staleguard {what} {} (version {}) to {}: {} object(s) uploaded; {verdict}",
            r.id,
            if r.version.is_empty() {
                "-"
            } else {
                &r.version
            },
            r.store,
            r.plan.uploads.len()
        );
        let mut fields = vec![
            ("Deploy".to_string(), r.id.clone()),
            ("Version".to_string(), r.version.clone()),
            (
                "Objects".to_string(),
                format!("{} uploaded, {} kept", r.plan.uploads.len(), r.plan.kept),
            ),
        ];
        if let Some(a) = &self.app_caches {
            for b in &a.bumped {
                fields.push((format!("App cache {}", b.target), b.describe()));
            }
            if let Some(e) = &a.error {
                fields.push(("App cache".to_string(), format!("FAILED: {e}")));
            }
        }
        for p in &self.purges {
            let cost = if p.cost_usd > 0.0 {
                format!(
                    ", est. {}",
                    staleguard_core::purge::format_usd(staleguard_core::purge::nusd(p.cost_usd))
                )
            } else {
                String::new()
            };
            fields.push((
                format!("Purge {}", p.provider),
                format!(
                    "{:?}: {} item(s){cost}{}",
                    p.outcome,
                    p.plan.as_ref().map_or(0, |pl| pl.items.len()),
                    if p.ids.is_empty() {
                        String::new()
                    } else {
                        format!(", id {}", p.ids.join(" "))
                    }
                ),
            ));
        }
        fields.push(("Verification".to_string(), verdict));
        (text, fields)
    }
}
