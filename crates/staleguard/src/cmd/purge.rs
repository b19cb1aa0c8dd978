//! How purges look to a user: the reports printed for humans, and the retry and split lines on stderr
//! (the CLI's observer of the wrappers' events). The purge run itself is `staleguard_invalidate::purge`.

use std::sync::Arc;

use staleguard_cdn::Event;
use staleguard_cdn::wrap;
use staleguard_invalidate::{CdnReport, Outcome};

/// Prints retries and splits on stderr, as they happen.
pub fn observer() -> wrap::Observer {
    Arc::new(|e: &Event| match e {
        Event::Retrying {
            error,
            after,
            attempt,
            ..
        } => eprintln!(
            "{}; retrying in {} (attempt {})",
            error.lines().next().unwrap_or_default(),
            wrap::human(*after),
            attempt + 1
        ),
        Event::Split {
            provider, items, ..
        } => eprintln!("{provider}: a call of {items} item(s) was too large; sending it in halves"),
        _ => {}
    })
}

/// Prints the reports for humans.
pub fn print(reports: &[CdnReport], explain: bool) {
    for r in reports {
        let head = if r.cdn == r.provider || r.provider.starts_with(&format!("{}:", r.cdn)) {
            r.provider.clone()
        } else {
            format!("{} ({})", r.provider, r.cdn)
        };
        match r.outcome {
            Outcome::UpToDate => {
                println!(
                    "purge {head}: nothing to purge{}",
                    r.deploy
                        .as_deref()
                        .map(|d| format!(" (serves deploy {d})"))
                        .unwrap_or_default()
                );
                continue;
            }
            Outcome::Failed if r.plan.is_none() => {
                println!("purge {head}: FAILED: {}", error_text(r));
                continue;
            }
            _ => {}
        }
        let Some(plan) = &r.plan else { continue };
        let since = match (&r.deploy, &r.since) {
            (Some(d), Some(s)) => format!(" (deploy {d} since {s})"),
            (Some(d), None) => format!(" (deploy {d})"),
            _ => String::new(),
        };
        let cost = if r.cost_usd > 0.0 {
            format!(
                ", est. ${:.3} once the month's free allowance is used",
                r.cost_usd
            )
        } else {
            String::new()
        };
        let swept = if plan.swept > 0 {
            format!(", {} unchanged URL(s) swept", plan.swept)
        } else {
            String::new()
        };
        let tail = match r.outcome {
            Outcome::DryRun => format!("dry run: nothing sent ({} call(s) planned)", r.calls),
            Outcome::Sent => format!(
                "sent in {} call(s){}; not waited for",
                r.calls,
                ids_text(&r.ids)
            ),
            Outcome::Completed => format!(
                "completed in {:.1} s ({} call(s){})",
                r.seconds,
                r.calls,
                ids_text(&r.ids)
            ),
            Outcome::Failed => format!("FAILED: {}", error_text(r)),
            Outcome::UpToDate => "nothing to purge".into(),
        };
        println!(
            "purge {head}{since}: {} changed URL(s) → {} item(s){swept}{cost}; {tail}",
            plan.changed,
            plan.items.len(),
        );
        if explain {
            for it in &plan.items {
                let what = if it.covers == 0 {
                    "as given".to_string()
                } else {
                    let more = it.covers.saturating_sub(it.examples.len());
                    format!(
                        "covers {} changed: {}{}",
                        it.covers,
                        it.examples.join(" "),
                        if more > 0 {
                            format!(" … and {more} more")
                        } else {
                            String::new()
                        }
                    )
                };
                let swept = if it.swept > 0 {
                    format!("; sweeps {} unchanged", it.swept)
                } else {
                    String::new()
                };
                println!("  {:<40} {what}{swept}", it.item.to_string());
            }
        }
    }
}

fn ids_text(ids: &[String]) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        format!(", id {}", ids.join(", "))
    }
}

/// A report's failure, as the report's JSON shows it.
fn error_text(r: &CdnReport) -> String {
    r.error
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}
