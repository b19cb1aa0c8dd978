//! Chunking: a whole purge split into calls of one kind each, within the provider's limits
//! ([`chunk`]), checked before any request ([`check_call`]), and halved when the provider finds a call
//! too large ([`halves`]).

use std::collections::{BTreeMap, HashSet};

use staleguard_core::purge::{Capabilities, Item, ItemKind};

use crate::{Batch, CdnError, ErrorKind, Provider};

fn kind_name(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::Path => "path",
        ItemKind::Prefix => "prefix",
        ItemKind::Tag => "tag",
        ItemKind::Host => "host",
        ItemKind::All => "purge-everything",
    }
}

/// The most items of `kind` one call may hold: `max_items_per_call`, and for paths and prefixes also
/// the in-flight limit (a call bigger than that could never be accepted).
pub fn per_call(caps: &Capabilities, kind: ItemKind) -> usize {
    let in_flight = match kind {
        ItemKind::Path => caps.max_paths_in_flight,
        ItemKind::Prefix => caps.max_prefixes_in_flight,
        _ => None,
    };
    caps.max_items_per_call
        .min(in_flight.unwrap_or(usize::MAX))
        .max(1)
}

fn check_item(provider: &dyn Provider, item: &Item) -> Result<(), CdnError> {
    let name = provider.name();
    let caps = provider.capabilities();
    if !caps.supports(item.kind) {
        let mut can: Vec<&str> = [
            ItemKind::Path,
            ItemKind::Prefix,
            ItemKind::Tag,
            ItemKind::Host,
            ItemKind::All,
        ]
        .into_iter()
        .filter(|k| caps.supports(*k))
        .map(kind_name)
        .collect();
        if can.is_empty() {
            can.push("nothing");
        }
        return Err(CdnError::new(
            ErrorKind::Invalid,
            name,
            format!(
                "cannot purge `{item}`: {} items are not supported here",
                kind_name(item.kind)
            ),
        )
        .with_hint(format!("this provider purges: {}", can.join(", "))));
    }
    let bad = match item.kind {
        ItemKind::Path | ItemKind::Prefix => !item.value.starts_with('/'),
        ItemKind::Tag | ItemKind::Host => {
            item.value.is_empty() || item.value.contains(char::is_whitespace)
        }
        ItemKind::All => false,
    };
    if bad {
        let want = match item.kind {
            ItemKind::Path | ItemKind::Prefix => "a URL path starting with `/`",
            _ => "a non-empty value without spaces",
        };
        return Err(CdnError::new(
            ErrorKind::Invalid,
            name,
            format!(
                "cannot purge `{item}`: a {} item must be {want}",
                kind_name(item.kind)
            ),
        ));
    }
    Ok(())
}

fn check_soft(provider: &dyn Provider, batch: &Batch) -> Result<(), CdnError> {
    if batch.soft && !provider.capabilities().soft {
        return Err(CdnError::new(
            ErrorKind::Invalid,
            provider.name(),
            "soft purge is not supported by this provider",
        )
        .with_hint("remove `soft = true` from the [[cdn]] entry"));
    }
    Ok(())
}

/// Checks one call against the provider's capabilities and limits (what [`chunk`] guarantees).
pub fn check_call(provider: &dyn Provider, batch: &Batch) -> Result<(), CdnError> {
    let name = provider.name();
    let caps = provider.capabilities();
    check_soft(provider, batch)?;
    for item in &batch.items {
        check_item(provider, item)?;
    }
    let Some(first) = batch.items.first() else {
        return Ok(());
    };
    if let Some(other) = batch.items.iter().find(|i| i.kind != first.kind) {
        return Err(CdnError::new(
            ErrorKind::Invalid,
            name,
            format!(
                "call `{}` mixes {} and {} items (one kind per call: split it with wrap::chunk)",
                batch.reference,
                kind_name(first.kind),
                kind_name(other.kind)
            ),
        ));
    }
    let max = per_call(caps, first.kind);
    if batch.items.len() > max {
        return Err(CdnError::new(
            ErrorKind::Invalid,
            name,
            format!(
                "call `{}` holds {} {} items, more than the {max} one call may hold (split it with wrap::chunk)",
                batch.reference,
                batch.items.len(),
                kind_name(first.kind)
            ),
        ));
    }
    Ok(())
}

/// Splits a whole purge into the calls to send: items deduplicated, grouped by kind (one kind per call:
/// Cloudflare requires it, and it keeps every provider simple), each call within [`per_call`]. The
/// calls' references are `<whole.reference>-<n>`, n from 1. Purge-everything makes every other item
/// moot: when present, it is the only call. An item the provider does not support, or a malformed one
/// (a path without the leading `/`, an empty tag), is refused with [`ErrorKind::Invalid`] before any
/// request is made.
pub fn chunk(provider: &dyn Provider, whole: &Batch) -> Result<Vec<Batch>, CdnError> {
    let caps = provider.capabilities();
    check_soft(provider, whole)?;
    for item in &whole.items {
        check_item(provider, item)?;
    }
    let call = |n: usize, items: Vec<Item>| Batch {
        items,
        reference: format!("{}-{n}", whole.reference),
        soft: whole.soft,
    };
    if whole.items.iter().any(|i| i.kind == ItemKind::All) {
        return Ok(vec![call(1, vec![Item::all()])]);
    }
    let mut seen = HashSet::new();
    let mut by_kind: BTreeMap<ItemKind, Vec<Item>> = BTreeMap::new();
    for item in &whole.items {
        if seen.insert(item) {
            by_kind.entry(item.kind).or_default().push(item.clone());
        }
    }
    let mut calls = Vec::new();
    for (kind, items) in by_kind {
        for part in items.chunks(per_call(caps, kind)) {
            calls.push(call(calls.len() + 1, part.to_vec()));
        }
    }
    Ok(calls)
}

/// The two halves of a call the provider found too large, with references `<ref>.1` and `<ref>.2`.
/// `None` for a call of one item.
pub fn halves(batch: &Batch) -> Option<(Batch, Batch)> {
    if batch.items.len() < 2 {
        return None;
    }
    let mid = batch.items.len() / 2;
    let half = |n: u8, items: &[Item]| Batch {
        items: items.to_vec(),
        reference: format!("{}.{n}", batch.reference),
        soft: batch.soft,
    };
    Some((half(1, &batch.items[..mid]), half(2, &batch.items[mid..])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrap::scripted::*;

    #[test]
    fn chunk_groups_kinds_splits_by_limits_and_numbers_references() {
        let mut c = caps(3);
        c.max_prefixes_in_flight = Some(2);
        let p = Scripted::new(c);
        let whole = Batch {
            items: vec![
                Item::path("/a"),
                Item::prefix("/d/"),
                Item::path("/b"),
                Item::path("/a"),
                Item::path("/c"),
                Item::path("/e"),
                Item::prefix("/f/"),
                Item::prefix("/g/"),
            ],
            reference: "d1-cf".into(),
            soft: false,
        };
        let calls = chunk(&p, &whole).unwrap();
        let shape: Vec<(String, Vec<String>)> = calls
            .iter()
            .map(|b| {
                (
                    b.reference.clone(),
                    b.items.iter().map(|i| i.to_string()).collect(),
                )
            })
            .collect();
        let want = |r: &str, v: &[&str]| (r.to_string(), v.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            shape,
            [
                want("d1-cf-1", &["/a", "/b", "/c"]),
                want("d1-cf-2", &["/e"]),
                want("d1-cf-3", &["/d/*", "/f/*"]),
                want("d1-cf-4", &["/g/*"]),
            ]
        );
        for call in &calls {
            check_call(&p, call).unwrap();
        }

        // Everything wins.
        let all = Batch {
            items: vec![Item::path("/a"), Item::all()],
            ..whole.clone()
        };
        let calls = chunk(&p, &all).unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].items, [Item::all()]);

        assert!(
            chunk(
                &p,
                &Batch {
                    items: vec![],
                    ..whole
                }
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn chunk_refuses_unsupported_and_malformed_items() {
        let p = Scripted::new(caps(3));
        let check = |items: Vec<Item>, soft: bool, want: &str| {
            let e = chunk(
                &p,
                &Batch {
                    items,
                    reference: "r".into(),
                    soft,
                },
            )
            .unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid);
            assert!(e.shown().contains(want), "{}", e.shown());
        };
        check(
            vec![Item::path("/a"), Item::tag("t")],
            false,
            "`#t`: tag items are not supported",
        );
        check(
            vec![Item::host("example.com")],
            false,
            "purges: path, prefix, purge-everything",
        );
        check(vec![Item::path("a.html")], false, "starting with `/`");
        check(vec![Item::path("/a")], true, "soft purge is not supported");
        assert!(p.calls().is_empty());
    }
}
