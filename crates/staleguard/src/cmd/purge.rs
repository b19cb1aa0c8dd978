//! How purges look to a user: the reports printed for humans, and the retry and split lines on stderr
//! (the CLI's observer of the wrappers' events). The purge run itself is `staleguard_invalidate::purge`.

use std::sync::Arc;

use staleguard_cdn::Event;
use staleguard_cdn::wrap;
use staleguard_core::purge::{ItemKind, PlannedItem, PurgePlan, format_usd};
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
        let cost = if plan.cost > 0 {
            format!(", est. {}", format_usd(plan.cost))
        } else {
            String::new()
        };
        let free = match &r.usage {
            Some(u) if plan.free_used > 0 => format!(
                " ({} free of the {} left this month)",
                plan.free_used, u.free_left
            ),
            _ => String::new(),
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
            "purge {head}{since}: {} changed URL(s) → {} item(s){free}{swept}{cost}; {tail}",
            plan.changed,
            plan.items.len(),
        );
        if explain {
            if let Some(u) = &r.usage {
                let used = u.free_per_month.saturating_sub(u.free_left);
                let paid = plan.billed as u64 - plan.free_used;
                let items_cost = plan
                    .cost
                    .saturating_sub((plan.swept as u64).saturating_mul(plan.sweep_price));
                let priced = match items_cost.checked_div(paid) {
                    Some(per_item) => {
                        format!(", {paid} priced at {} each", format_usd(per_item))
                    }
                    None => String::new(),
                };
                println!(
                    "  {} this month ({} UTC): {used} of {} free item(s) used before this purge, {} left; this purge bills {}: {} free{priced}",
                    u.counted_as,
                    u.month,
                    u.free_per_month,
                    u.free_left,
                    plan.billed,
                    plan.free_used,
                );
            }
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
                if let Some(why) = why(plan, it) {
                    println!("  {:<40} {why}", "");
                }
            }
        }
    }
}

/// Why a broad item (a wildcard, everything) was chosen over listing its changed URLs: its dollars at
/// the price per item the plan was chosen at, against theirs.
fn why(plan: &PurgePlan, it: &PlannedItem) -> Option<String> {
    if !matches!(it.item.kind, ItemKind::Prefix | ItemKind::All) || it.covers == 0 {
        return None;
    }
    let (item, sweep) = (plan.item_price, plan.sweep_price);
    let broad = item.saturating_add(sweep.saturating_mul(it.swept as u64));
    let paths = item.saturating_mul(it.covers as u64);
    let verdict = if broad < paths {
        "cheaper"
    } else {
        "as cheap, and fewer items"
    };
    Some(format!(
        "why: {} (1 item at {} + {} swept at {}) vs {} listing its {} path(s): {verdict}",
        format_usd(broad),
        format_usd(item),
        it.swept,
        format_usd(sweep),
        format_usd(paths),
        it.covers,
    ))
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
        .map(|f| f.error().shown())
        .unwrap_or_default()
}
