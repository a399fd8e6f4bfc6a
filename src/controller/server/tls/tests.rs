use super::*;

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn key_pem(key: &rcgen::KeyPair) -> String {
    pem("PRIVATE KEY", &key.serialize_der())
}

fn write_pair(dir: &Path, name: &str) -> MetricsCertFiles {
    let generated = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    let cert_file = dir.join("tls.crt");
    let key_file = dir.join("tls.key");
    std::fs::write(&cert_file, pem("CERTIFICATE", generated.cert.der())).unwrap();
    std::fs::write(&key_file, key_pem(&generated.signing_key)).unwrap();
    MetricsCertFiles {
        cert_file,
        key_file,
    }
}

#[test]
fn a_self_signed_certificate_is_made_when_no_files_are_given() {
    assert!(server_config(None).is_ok());
}

#[test]
fn certificate_files_that_do_not_load_are_reported_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let files = MetricsCertFiles {
        cert_file: dir.path().join("missing.crt"),
        key_file: dir.path().join("missing.key"),
    };
    let e = server_config(Some(&files)).unwrap_err().to_string();
    assert!(e.contains("missing.crt"), "{e}");

    let files = write_pair(dir.path(), "a");
    let other = rcgen::generate_simple_self_signed(vec!["b".to_string()]).unwrap();
    std::fs::write(&files.key_file, key_pem(&other.signing_key)).unwrap();
    let e = server_config(Some(&files)).unwrap_err().to_string();
    assert!(e.contains("do not fit together"), "{e}");
}

#[test]
fn a_rotated_certificate_is_picked_up_and_a_broken_one_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_pair(dir.path(), "first");
    let resolver = FileCert::load(files.clone(), provider()).unwrap();
    let start = Instant::now();
    let first = resolver.current(start);

    write_pair(dir.path(), "second");
    assert_eq!(
        resolver.current(start).cert,
        first.cert,
        "not re-read before the check interval"
    );
    let later = start + RELOAD_CHECK + Duration::from_secs(1);
    let second = resolver.current(later);
    assert_ne!(second.cert, first.cert);

    std::fs::write(&files.key_file, "not a key").unwrap();
    let much_later = later + RELOAD_CHECK + Duration::from_secs(1);
    assert_eq!(resolver.current(much_later).cert, second.cert);
}
