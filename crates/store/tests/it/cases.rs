//! The cases, written once and run on every backend ([`crate::local`], [`crate::s3`]). Each starts
//! from an empty store and a work folder holding nothing yet.

use std::collections::BTreeSet;

use staleguard_core::deploy::DeployKind;

use crate::child;
use crate::site::{self, T0};
use crate::target::Target;

const DAY: i64 = 86_400;

/// A build on a fresh runner (`build --reuse-from`): the sidecars the current record proves are not in
/// the output; the deploy keeps them in the store without uploading them, uploads what changed, and
/// records every sidecar's level again. A deploy of that output to a store without them is refused.
pub fn reused_sidecars_stay_in_the_store(t: &Target) {
    site::write(&t.work);
    site::build(&t.work);
    let first = t.deploy(T0);
    let r1 = t.current_record().expect("a current record");
    assert_eq!(r1.id, first.id);
    assert!(
        !r1.encodings.is_empty(),
        "the record names the sidecars' levels"
    );

    // Fresh runner: no cache, no output, sources rewritten, a new script.
    std::fs::remove_dir_all(t.work.join("out")).unwrap();
    site::write(&t.work);
    std::fs::write(
        t.work.join("site/js/new.js"),
        "export const greeting = 'hello, world';\n".repeat(40),
    )
    .unwrap();
    let reuse = staleguard_assets::Reuse::from_record(&r1);
    let built = site::build_reusing(&t.work, &reuse);
    assert!(built.reused > 0 && built.compressed_now > 0, "{built:?}");
    // A page's sidecar: mutable, its rollback copy already in the store.
    let js_br = "index.html.br".to_string();
    assert!(r1.objects.contains_key(&js_br), "{js_br} was deployed");
    assert!(
        !t.work.join("out").join(&js_br).exists(),
        "a reused sidecar is not written"
    );

    let second = t.deploy(T0 + 20);
    let uploaded = Target::uploaded(&second);
    assert!(
        !uploaded.contains(&js_br),
        "a reused sidecar is not uploaded"
    );
    let new = site::hashed(&t.work, "js/new.js");
    assert!(uploaded.contains(&format!("{new}.br")), "{uploaded:?}");
    let r2 = t.record(&second.id);
    assert_eq!(r2.objects[&js_br], r1.objects[&js_br]);
    assert_eq!(r2.encodings.get(&js_br), r1.encodings.get(&js_br));
    t.assert_serves(&second.id);
    assert_eq!(
        t.get(&js_br).map(|b| blake3::hash(&b).to_hex().to_string()),
        Some(r1.objects[&js_br].hash.clone())
    );
}

/// A folder built reusing one store's sidecars cannot be deployed to another: refused by name.
pub fn reused_output_to_another_store_is_refused(t: &Target, other: &Target) {
    site::write(&t.work);
    site::build(&t.work);
    t.deploy(T0);
    std::fs::remove_dir_all(t.work.join("out")).unwrap();
    site::write(&t.work);
    site::build_reusing(
        &t.work,
        &staleguard_assets::Reuse::from_record(&t.current_record().unwrap()),
    );
    let err = other
        .try_deploy(T0 + 10)
        .expect_err("the other store lacks the sidecars");
    assert!(err.contains("missing from the folder"), "{err}");
    assert!(err.contains("--reuse-from"), "{err}");
}

/// First deploy, the same build again (nothing to do), then a one-file change: only the objects
/// whose content changed are uploaded, and the history and `current` follow.
pub fn deploy_and_redeploy(t: &Target) {
    site::write(&t.work);
    site::build(&t.work);
    let first = t.deploy(T0);
    assert_eq!(first.kind, DeployKind::Deploy);
    assert!(!first.up_to_date && first.previous.is_none(), "{first:?}");
    assert_eq!(t.current().as_deref(), Some(first.id.as_str()));
    t.assert_serves(&first.id);
    let r1 = t.record(&first.id);
    assert_eq!(
        Target::uploaded(&first),
        r1.objects
            .keys()
            .filter(|k| !k.starts_with(".staleguard/bundles/"))
            .cloned()
            .collect::<BTreeSet<_>>(),
        "a first deploy uploads every object"
    );

    let same = t.deploy(T0 + 10);
    assert!(same.up_to_date, "{same:?}");
    assert_eq!(same.id, first.id);
    assert!(same.plan.uploads.is_empty(), "{:?}", same.plan.uploads);
    assert_eq!(t.history_ids(), [first.id.as_str()]);

    let old_css = site::hashed(&t.work, "css/site.css");
    site::edit_css(&t.work, ".new { color: red }");
    site::build(&t.work);
    let second = t.deploy(T0 + 20);
    assert_eq!(second.previous.as_deref(), Some(first.id.as_str()));
    let r2 = t.record(&second.id);
    let changed: BTreeSet<String> = r2
        .objects
        .iter()
        .filter(|(k, o)| {
            !k.starts_with(".staleguard/bundles/")
                && r1.objects.get(*k).is_none_or(|p| !p.same_as(o))
        })
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(
        Target::uploaded(&second),
        changed,
        "only changed objects are uploaded"
    );
    let new_css = site::hashed(&t.work, "css/site.css");
    for must in [new_css.as_str(), "index.html", "about.html"] {
        assert!(changed.contains(must), "`{must}` changed: {changed:?}");
    }
    for untouched in [
        site::hashed(&t.work, "js/app.js"),
        site::hashed(&t.work, "img/logo.svg"),
    ] {
        assert!(
            !changed.contains(&untouched),
            "`{untouched}` was re-uploaded"
        );
    }
    t.assert_serves(&second.id);
    assert_eq!(t.current().as_deref(), Some(second.id.as_str()));
    assert_eq!(t.history_ids(), [first.id.clone(), second.id.clone()]);
    // Pages cached before this deploy still find their stylesheet.
    assert!(t.get(&old_css).is_some(), "`{old_css}` is gone already");
}

/// With one deploy kept and no age limit, a deploy collects what only older deploys referenced: the
/// old stylesheet goes, the current deploy stays whole, the history marks the old deploy collected.
pub fn gc_collects_old_versions(t: &mut Target) {
    t.config.keep_deploys = 1;
    t.config.keep_age = "0s".parse().expect("a duration");
    site::write(&t.work);
    site::build(&t.work);
    let first = t.deploy(T0);
    let css1 = site::hashed(&t.work, "css/site.css");
    site::edit_css(&t.work, ".v2 { color: red }");
    site::build(&t.work);
    let second = t.deploy(T0 + DAY);
    assert!(second.gc.delete.contains(&css1), "{:?}", second.gc);
    assert_eq!(second.gc.collect, [first.id.as_str()]);
    assert_eq!(t.get(&css1), None, "`{css1}` survived GC");
    // What both deploys share is kept.
    assert!(t.get(&site::hashed(&t.work, "img/logo.svg")).is_some());
    t.assert_serves(&second.id);
    assert_eq!(t.current().as_deref(), Some(second.id.as_str()));
    let (h, current) = t.history();
    assert_eq!(current.as_deref(), Some(second.id.as_str()));
    let collected: Vec<(&str, bool)> = h
        .deploys
        .iter()
        .map(|e| (e.id.as_str(), e.collected))
        .collect();
    assert_eq!(
        collected,
        [(first.id.as_str(), true), (second.id.as_str(), false)]
    );
}

/// Rollback to the previous deploy: its pages come back with their old bytes, recorded as a new
/// deploy that `current` names.
pub fn rollback_restores_the_previous_deploy(t: &Target) {
    site::write(&t.work);
    site::build(&t.work);
    let first = t.deploy(T0);
    let index_v1 = std::fs::read(t.work.join("out/index.html")).unwrap();
    site::edit_css(&t.work, ".v2 { color: red }");
    site::build(&t.work);
    let second = t.deploy(T0 + 10);
    assert_ne!(t.get("index.html").as_deref(), Some(&index_v1[..]));

    let rb = t.rollback(T0 + 20, None);
    assert_eq!(rb.kind, DeployKind::Rollback);
    assert_eq!(rb.restores.as_deref(), Some(first.id.as_str()));
    assert_eq!(t.get("index.html").as_deref(), Some(&index_v1[..]));
    assert_eq!(t.current().as_deref(), Some(rb.id.as_str()));
    let (h, _) = t.history();
    let kinds: Vec<(&str, DeployKind)> =
        h.deploys.iter().map(|e| (e.id.as_str(), e.kind)).collect();
    assert_eq!(
        kinds,
        [
            (first.id.as_str(), DeployKind::Deploy),
            (second.id.as_str(), DeployKind::Deploy),
            (rb.id.as_str(), DeployKind::Rollback)
        ]
    );
    // The restored deploy references the v1 stylesheet, still in the store.
    t.assert_complete(&rb.id);
}

/// A second deploy killed (in a child process, [`child::step_deploy`]) at `fault`, then run again
/// here: the store never names a deploy it does not hold, and the resumed deploy commits once.
pub fn crash_then_resume(t: &Target, fault: &str) {
    site::write(&t.work);
    site::build(&t.work);
    let first = t.deploy(T0);
    site::edit_css(&t.work, ".v2 { color: red }");
    site::build(&t.work);

    let o = child::run(child::STEP_DEPLOY, t, &[("STALEGUARD_FAULT", fault)]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && stderr.contains("STALEGUARD_FAULT: killed at"),
        "the child deploy was not killed at {fault}: {}\n{stderr}",
        o.status
    );
    let named = t
        .current()
        .expect("a deploy was committed before the crash");
    t.assert_complete(&named);

    let resumed = t.deploy(T0 + 10);
    assert_eq!(t.current().as_deref(), Some(resumed.id.as_str()));
    t.assert_serves(&resumed.id);
    assert_eq!(t.history_ids(), [first.id.clone(), resumed.id.clone()]);
    if named == first.id {
        assert!(!resumed.up_to_date, "{resumed:?}");
    }
}
