//! The credential chain's network parts against a real moto server that checks signatures
//! (`INITIAL_NO_AUTH_ACTION_COUNT`: after the set-up requests, every request must be signed with an
//! IAM user's key, or moto answers `SignatureDoesNotMatch` / `InvalidClientTokenId`). moto's STS
//! verifies SigV4 like AWS does, so this checks our signing (object_store's signer, our request
//! building and sending) end to end. moto's CloudFront answers 403 to any signed request once auth is
//! on, so the CloudFront calls are tested against moto without auth (crates/cdn/tests/it).

use staleguard_aws::{Credentials, Source};
use staleguard_testkit::moto::Moto;

/// moto with auth on after three requests, and an IAM user allowed everything: (moto, key id, secret).
fn moto_with_auth() -> (Moto, String, String) {
    let moto = Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
    moto.aws_json(&["iam", "create-user", "--user-name", "deployer"]);
    let key = moto.aws_json(&["iam", "create-access-key", "--user-name", "deployer"]);
    let policy =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let o = moto.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "deployer",
        "--policy-name",
        "all",
        "--policy-document",
        policy,
    ]);
    assert!(
        o.status.success(),
        "put-user-policy: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let id = key["AccessKey"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = key["AccessKey"]["SecretAccessKey"]
        .as_str()
        .unwrap()
        .to_string();
    (moto, id, secret)
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test]
async fn a_profile_assumes_its_role_through_sts_with_a_signature_moto_accepts() {
    let (moto, id, secret) = moto_with_auth();
    let t = tempfile::tempdir().unwrap();
    let config = write(
        t.path(),
        "config",
        &format!(
            "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/deploy\nsource_profile = base\nrole_session_name = staleguard-test\nduration_seconds = 900\nendpoint_url = {}\n\n[profile bad]\nrole_arn = arn:aws:iam::123456789012:role/deploy\nsource_profile = wrong\nendpoint_url = {}\n",
            moto.url, moto.url
        ),
    );
    let credentials = write(
        t.path(),
        "credentials",
        &format!(
            "[base]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n\n[wrong]\naws_access_key_id = {id}\naws_secret_access_key = not-the-secret\n"
        ),
    );

    let c = Credentials::profile("deploy", Some(&config), Some(&credentials)).unwrap();
    assert_eq!(
        c.source(),
        &Source::Profile {
            name: "deploy".into(),
            how: "assumes arn:aws:iam::123456789012:role/deploy".into()
        }
    );
    let got = c
        .get()
        .await
        .unwrap_or_else(|e| panic!("{e} ({:?})", e.hint));
    assert!(
        got.key_id.starts_with("ASIA"),
        "temporary credentials from STS: {}",
        got.key_id
    );
    assert!(got.token.is_some());
    assert_ne!(got.key_id, id);
    // Cached: the second call asks STS nothing (same temporary key).
    assert_eq!(c.get().await.unwrap().key_id, got.key_id);

    // The same request signed with a wrong secret is refused by moto's signature check.
    let bad = Credentials::profile("bad", Some(&config), Some(&credentials)).unwrap();
    let e = bad.get().await.unwrap_err();
    assert!(e.message.contains("SignatureDoesNotMatch"), "{e}");
    assert!(
        e.message.contains("profile `bad`") && e.hint.is_some(),
        "{e}"
    );
    assert!(!e.message.contains("not-the-secret"), "{e}");
}

#[tokio::test]
async fn a_credential_process_profile_signs_with_what_the_process_printed() {
    let (moto, id, secret) = moto_with_auth();
    let t = tempfile::tempdir().unwrap();
    let script = write(
        t.path(),
        "creds.sh",
        &format!(
            "#!/bin/sh\nprintf '{{\"Version\": 1, \"AccessKeyId\": \"{id}\", \"SecretAccessKey\": \"{secret}\"}}'\n"
        ),
    );
    let config = write(
        t.path(),
        "config",
        &format!(
            "[profile proc]\ncredential_process = sh {}\n[profile role]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = proc\nendpoint_url = {}\n",
            script.display(),
            moto.url
        ),
    );
    let c = Credentials::profile("role", Some(&config), None).unwrap();
    let got = c
        .get()
        .await
        .unwrap_or_else(|e| panic!("{e} ({:?})", e.hint));
    assert!(got.key_id.starts_with("ASIA"), "{}", got.key_id);
}
