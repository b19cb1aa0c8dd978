//! `staleguard cdn-config --target cloudfront`: the distribution config and its policies are valid
//! for the AWS CLI's own model of the API (botocore checks every parameter before sending), accepted
//! by moto (`create-distribution`, `create-origin-access-control`) and by the stand-in for the
//! policy calls moto lacks (`scripts/peers/cloudfront-policies.py`), and read back equal; `--apply`
//! makes the distribution through the API and `--check` reads it back, finding a page behaviour
//! edited to a long TTL (legacy TTLs or its cache policy) a staleness risk (exit 3).

use std::path::Path;

use serde_json::Value;
use staleguard_testkit::cloudfront_policies::CloudFrontPolicies;
use staleguard_testkit::moto::Moto;

use crate::support::*;

const CONFIG: &str = r#"[build]
source = "site"
out = "out"
compress = ["br", "gzip"]

[serve.headers]
Strict-Transport-Security = "max-age=63072000; includeSubDomains"
X-Frame-Options = "DENY"
Permissions-Policy = "camera=()"

[[routes]]
match = "docs/**"
cache-control = "public, max-age=0, s-maxage=60, stale-while-revalidate=30"

[[routes]]
match = "api/*"
cache-control = "no-store"

[[routes]]
match = "about/**"
headers = { X-Robots-Tag = "noindex" }
"#;

fn site(dir: &Path, extra: &str) {
    example_site(dir, &format!("{CONFIG}{extra}"));
}

/// The example site under `dir/site` with `config`, built.
pub(crate) fn example_site(dir: &Path, config: &str) {
    copy_dir(&repo().join("examples/site"), &dir.join("site"));
    std::fs::write(dir.join("staleguard.toml"), config).unwrap();
    let mut c = staleguard(dir);
    c.arg("build");
    let o = run(c);
    assert!(o.status.success(), "build: {}", stderr(&o));
}

/// Whether every member of `ours` is in `live` with the same value; the path of the first that is not.
fn contained(ours: &Value, live: &Value, path: &str) -> Result<(), String> {
    match (ours, live) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = format!("{path}.{k}");
                contained(v, b.get(k).ok_or(format!("{p}: missing"))?, &p)?;
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .try_for_each(|(i, (x, y))| contained(x, y, &format!("{path}[{i}]"))),
        (a, b) if a == b => Ok(()),
        (a, b) => Err(format!("{path}: ours {a}, read back {b}")),
    }
}

/// Puts ids in place of the names the bundle uses as references.
fn with_ids(v: &mut Value, ids: &serde_json::Map<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let reference = matches!(
                    k.as_str(),
                    "CachePolicyId" | "ResponseHeadersPolicyId" | "OriginAccessControlId"
                );
                match x.as_str().and_then(|s| ids.get(s)) {
                    Some(id) if reference => *x = id.clone(),
                    _ => with_ids(x, ids),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| with_ids(x, ids)),
        _ => {}
    }
}

fn write_json(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec(v).unwrap()).unwrap();
    format!("file://{}", p.display())
}

#[test]
fn the_cloudfront_config_passes_the_aws_model_and_moto_and_reads_back_equal() {
    let moto = Moto::start();
    for (label, extra, origin) in [
        (
            "http origin",
            "",
            vec!["--origin", "http://origin.example.com:8080"],
        ),
        (
            "s3 store",
            "\n[deploy]\nstore = \"s3://site-bucket/site\"\nregion = \"eu-west-1\"\n",
            vec![],
        ),
    ] {
        // Policy names are unique per account: a fresh stand-in per site.
        let standin = CloudFrontPolicies::start(&moto);
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        site(dir, extra);
        let mut c = staleguard(dir);
        c.args(["cdn-config", "--target", "cloudfront", "-o", "cf.json"])
            .args(&origin);
        let o = run(c);
        assert!(o.status.success(), "{label}: {}", stderr(&o));
        let bundle: Value =
            serde_json::from_slice(&std::fs::read(dir.join("cf.json")).unwrap()).unwrap();

        let mut ids = serde_json::Map::new();
        let policies = bundle["CachePolicies"].as_array().unwrap();
        // fingerprinted, the docs s-maxage, pass for api/*, and the pages default.
        assert!(policies.len() >= 4, "{label}: {policies:?}");
        for p in policies {
            let config = &p["CachePolicyConfig"];
            let file = write_json(dir, "policy.json", config);
            let made = moto.aws_json_at(
                &standin.url,
                &[
                    "cloudfront",
                    "create-cache-policy",
                    "--cache-policy-config",
                    &file,
                ],
            );
            let id = made["CachePolicy"]["Id"].as_str().unwrap().to_string();
            let back = moto.aws_json_at(
                &standin.url,
                &["cloudfront", "get-cache-policy", "--id", &id],
            );
            assert_eq!(back["CachePolicy"]["CachePolicyConfig"], *config, "{label}");
            ids.insert(config["Name"].as_str().unwrap().into(), Value::String(id));
        }
        for p in bundle["ResponseHeadersPolicies"].as_array().unwrap() {
            let config = &p["ResponseHeadersPolicyConfig"];
            let file = write_json(dir, "headers.json", config);
            let made = moto.aws_json_at(
                &standin.url,
                &[
                    "cloudfront",
                    "create-response-headers-policy",
                    "--response-headers-policy-config",
                    &file,
                ],
            );
            let id = made["ResponseHeadersPolicy"]["Id"]
                .as_str()
                .unwrap()
                .to_string();
            let back = moto.aws_json_at(
                &standin.url,
                &["cloudfront", "get-response-headers-policy", "--id", &id],
            );
            assert_eq!(
                back["ResponseHeadersPolicy"]["ResponseHeadersPolicyConfig"], *config,
                "{label}"
            );
            ids.insert(config["Name"].as_str().unwrap().into(), Value::String(id));
        }
        if let Some(oac) = bundle.get("OriginAccessControl") {
            let config = &oac["OriginAccessControlConfig"];
            let file = write_json(dir, "oac.json", config);
            let made = moto.aws_json(&[
                "cloudfront",
                "create-origin-access-control",
                "--origin-access-control-config",
                &file,
            ]);
            let id = made["OriginAccessControl"]["Id"]
                .as_str()
                .unwrap()
                .to_string();
            ids.insert(config["Name"].as_str().unwrap().into(), Value::String(id));
        } else {
            assert_eq!(label, "http origin");
        }
        let mut config = bundle["DistributionConfig"].clone();
        with_ids(&mut config, &ids);
        let file = write_json(dir, "distribution.json", &config);
        let made = moto.aws_json(&[
            "cloudfront",
            "create-distribution",
            "--distribution-config",
            &file,
        ]);
        let id = made["Distribution"]["Id"].as_str().unwrap();
        let back = moto.aws_json(&["cloudfront", "get-distribution-config", "--id", id]);
        // moto keeps every member but two of an S3 origin's, which its Origin model reads and
        // never writes back: `OriginAccessControlId` and `S3OriginConfig`. botocore validated both
        // on the way in; they are checked here and the rest is compared.
        let mut compared = config.clone();
        if let Some(o) = compared["Origins"]["Items"][0].as_object_mut() {
            let oac = o.remove("OriginAccessControlId");
            let s3 = o.remove("S3OriginConfig");
            assert_eq!(
                oac.is_some() && s3.is_some(),
                label == "s3 store",
                "{label}"
            );
            if let Some(oac) = oac {
                assert_eq!(oac, ids["staleguard-s3"], "{label}");
                assert_eq!(
                    s3.unwrap()["OriginAccessIdentity"],
                    "",
                    "OAC, not the legacy OAI"
                );
            }
        }
        contained(&compared, &back["DistributionConfig"], "DistributionConfig")
            .unwrap_or_else(|e| panic!("{label}: {e}"));

        // What the route table says, in the distribution.
        let behaviours = config["CacheBehaviors"]["Items"].as_array().unwrap();
        let by_pattern = |p: &str| {
            behaviours
                .iter()
                .find(|b| b["PathPattern"] == p)
                .unwrap_or_else(|| panic!("{label}: no behaviour {p}"))
        };
        let policy_of = |b: &Value| {
            let id = b["CachePolicyId"].as_str().unwrap();
            let name = ids.iter().find(|(_, v)| *v == id).unwrap().0.clone();
            policies
                .iter()
                .map(|p| &p["CachePolicyConfig"])
                .find(|c| c["Name"] == name.as_str())
                .unwrap()
                .clone()
        };
        let docs = policy_of(by_pattern("/docs/*"));
        assert_eq!(
            (docs["MinTTL"].as_u64(), docs["MaxTTL"].as_u64()),
            (Some(0), Some(60))
        );
        let api = policy_of(by_pattern("/api/*"));
        assert_eq!(api["MaxTTL"], 0, "no-store is never stored");
        assert_eq!(
            api["ParametersInCacheKeyAndForwardedToOrigin"]["EnableAcceptEncodingGzip"],
            false
        );
        let css = policy_of(by_pattern("*.????????????.css"));
        assert_eq!(css["MaxTTL"], 31536000);
        let key = &css["ParametersInCacheKeyAndForwardedToOrigin"];
        assert_eq!(
            (
                &key["EnableAcceptEncodingGzip"],
                &key["EnableAcceptEncodingBrotli"]
            ),
            (&Value::Bool(true), &Value::Bool(true)),
            "brotli and gzip are keyed apart"
        );
        let pages = policy_of(&config["DefaultCacheBehavior"]);
        assert_eq!(
            (pages["MinTTL"].as_u64(), pages["DefaultTTL"].as_u64()),
            (Some(0), Some(0))
        );
        let errors = config["CustomErrorResponses"]["Items"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["ErrorCode"] == 404 && e["ErrorCachingMinTTL"] == 10),
            "{errors:?}"
        );
        // The about/ rule's own header is in a policy of its own.
        assert_ne!(
            by_pattern("/about/*")["ResponseHeadersPolicyId"],
            config["DefaultCacheBehavior"]["ResponseHeadersPolicyId"]
        );
        if label == "s3 store" {
            let origin = &back["DistributionConfig"]["Origins"]["Items"][0];
            assert_eq!(
                origin["DomainName"],
                "site-bucket.s3.eu-west-1.amazonaws.com"
            );
            assert_eq!(origin["OriginPath"], "/site");
            assert_eq!(
                back["DistributionConfig"]["DefaultRootObject"],
                "index.html"
            );
        }
    }
}

fn cdn_config(
    dir: &Path,
    moto: &Moto,
    standin: &CloudFrontPolicies,
    args: &[&str],
) -> std::process::Output {
    let mut c = staleguard(dir);
    moto.apply(&mut c)
        .env("AWS_ENDPOINT_URL_CLOUDFRONT", &standin.url)
        .args([
            "cdn-config",
            "--target",
            "cloudfront",
            "--origin",
            "http://origin.example.com:8080",
        ])
        .args(args);
    run(c)
}

fn check(dir: &Path, moto: &Moto, standin: &CloudFrontPolicies, id: &str) -> (i32, String) {
    let o = cdn_config(dir, moto, standin, &["--check", id]);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// Changes a live resource's config with the AWS CLI: get it, edit it, put it back with its ETag.
fn edit(
    moto: &Moto,
    endpoint: &str,
    dir: &Path,
    kind: &str,
    id: &str,
    change: impl FnOnce(&mut Value),
) {
    let (get, update, member, flag) = match kind {
        "distribution" => (
            "get-distribution-config",
            "update-distribution",
            "DistributionConfig",
            "--distribution-config",
        ),
        _ => (
            "get-cache-policy",
            "update-cache-policy",
            "CachePolicy",
            "--cache-policy-config",
        ),
    };
    let got = moto.aws_json_at(endpoint, &["cloudfront", get, "--id", id]);
    let etag = got["ETag"].as_str().unwrap().to_string();
    let mut config = if kind == "distribution" {
        got[member].clone()
    } else {
        got[member]["CachePolicyConfig"].clone()
    };
    change(&mut config);
    let file = write_json(dir, "edit.json", &config);
    moto.aws_json_at(
        endpoint,
        &[
            "cloudfront",
            update,
            "--id",
            id,
            "--if-match",
            &etag,
            flag,
            &file,
        ],
    );
}

#[test]
fn apply_then_check_finds_an_html_ttl_edited_on_the_live_distribution() {
    let moto = Moto::start();
    let standin = CloudFrontPolicies::start(&moto);
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    site(dir, "");

    let o = cdn_config(dir, &moto, &standin, &["--apply", "--json"]);
    assert!(o.status.success(), "apply: {}", stderr(&o));
    let applied: Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = applied["distribution"].as_str().unwrap().to_string();
    assert!(!id.is_empty(), "{applied}");
    let (code, out) = check(dir, &moto, &standin, &id);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("as the route table implies"), "{out}");

    // Applying again changes nothing; a second create is refused, not a second distribution.
    let o = cdn_config(dir, &moto, &standin, &["--apply", "--distribution", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        !text.contains("created") && !text.contains("updated"),
        "{text}"
    );
    let o = cdn_config(dir, &moto, &standin, &["--apply"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("DistributionAlreadyExists"),
        "{}",
        stderr(&o)
    );

    // Someone edits the HTML (default) behaviour to legacy TTLs of a day.
    edit(&moto, &moto.url, dir, "distribution", &id, |c| {
        let b = &mut c["DefaultCacheBehavior"];
        let m = b.as_object_mut().unwrap();
        m.remove("CachePolicyId");
        m.insert(
            "ForwardedValues".into(),
            serde_json::json!({"QueryString": true, "Cookies": {"Forward": "none"}}),
        );
        m.insert("MinTTL".into(), 86400.into());
        m.insert("DefaultTTL".into(), 86400.into());
        m.insert("MaxTTL".into(), 86400.into());
    });
    let (code, out) = check(dir, &moto, &standin, &id);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("STALE RISK") && out.contains("default behaviour: MinTTL 86400"),
        "{out}"
    );
    let o = cdn_config(dir, &moto, &standin, &["--check", &id, "--json"]);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report["stale_risk"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(report["same"], false);

    // --apply puts it back.
    let o = cdn_config(dir, &moto, &standin, &["--apply", "--distribution", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(check(dir, &moto, &standin, &id).0, 0);

    // The pages' cache policy itself edited to an hour: a risk too.
    let pages = applied["ids"]["staleguard-pages-0-1"]
        .as_str()
        .unwrap()
        .to_string();
    edit(&moto, &standin.url, dir, "policy", &pages, |c| {
        c["MinTTL"] = 3600.into();
        c["DefaultTTL"] = 3600.into();
        c["MaxTTL"] = 3600.into();
    });
    let (code, out) = check(dir, &moto, &standin, &id);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("MinTTL 3600"), "{out}");

    // Brotli out of the fingerprinted files' key: compressed variants could mix.
    let o = cdn_config(dir, &moto, &standin, &["--apply", "--distribution", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let fingerprinted = applied["ids"]["staleguard-fingerprinted-31536000"]
        .as_str()
        .unwrap()
        .to_string();
    edit(&moto, &standin.url, dir, "policy", &fingerprinted, |c| {
        c["ParametersInCacheKeyAndForwardedToOrigin"]["EnableAcceptEncodingBrotli"] = false.into();
    });
    let (code, out) = check(dir, &moto, &standin, &id);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("Accept-Encoding in the cache key false"),
        "{out}"
    );

    // A longer MaxTTL on fingerprinted files is drift (the origin's headers bound it): exit 1.
    edit(&moto, &standin.url, dir, "policy", &fingerprinted, |c| {
        c["ParametersInCacheKeyAndForwardedToOrigin"]["EnableAcceptEncodingBrotli"] = true.into();
        c["MaxTTL"] = 63072000.into();
    });
    let (code, out) = check(dir, &moto, &standin, &id);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("drift") && !out.contains("STALE RISK"),
        "{out}"
    );
}
