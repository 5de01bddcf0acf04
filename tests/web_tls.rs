//! The warning page over TLS for an operator portal name.
//!
//! The certificate below is a throwaway self-signed one for `portal.fraudwall.test`, valid
//! 2020-2120 so the test does not depend on the machine's clock. Made with `openssl ca -selfsign
//! -startdate 20200101000000Z -enddate 21200101000000Z` (EC P-256, CA:FALSE, serverAuth).

use std::sync::Arc;

use fraudwall::sinkhole::page::{self, BlockInfo, BlockLookup, TlsConfig, WarningPageConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CERT: &str = "
-----BEGIN CERTIFICATE-----
MIIBmDCCAT2gAwIBAgIBATAKBggqhkjOPQQDAjAgMR4wHAYDVQQDDBVwb3J0YWwu
ZnJhdWR3YWxsLnRlc3QwIBcNMjAwMTAxMDAwMDAwWhgPMjEyMDAxMDEwMDAwMDBa
MCAxHjAcBgNVBAMMFXBvcnRhbC5mcmF1ZHdhbGwudGVzdDBZMBMGByqGSM49AgEG
CCqGSM49AwEHA0IABKHgWEuIIik1nVUisUNFCKkYj12SqET4ns3HS6d7TSze37lN
eF+QUSip4V5tcRZql41iGKzLPvmTupE6UiCWPn2jZjBkMCAGA1UdEQQZMBeCFXBv
cnRhbC5mcmF1ZHdhbGwudGVzdDAMBgNVHRMBAf8EAjAAMBMGA1UdJQQMMAoGCCsG
AQUFBwMBMB0GA1UdDgQWBBQBd+1DRCUXGoIwJGEIct8YDekUgDAKBggqhkjOPQQD
AgNJADBGAiEAnGhJiXxTd0t7gi754PxnLjikjzqC0LoRMwnmuFjo5pICIQCIDPXr
+UbPxc5VfEWu8/1mLTX/nZ1RBIvSgsZpvCwj2A==
-----END CERTIFICATE-----
";
const KEY: &str = "
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUbMgJd5ouAJJp2ub
AMinKD5GoMbk+vOk5q1jufg8ew+hRANCAASh4FhLiCIpNZ1VIrFDRQipGI9dkqhE
+J7Nx0une00s3t+5TXhfkFEoqeFebXEWapeNYhisyz75k7qROlIglj59
-----END PRIVATE KEY-----
";

struct Lookup;

impl BlockLookup for Lookup {
    fn lookup(&self, host: &str) -> Option<BlockInfo> {
        (host == "portal.fraudwall.test").then(|| BlockInfo {
            list: "portal-demo".into(),
            category: "fraud".into(),
            entry: "portal.fraudwall.test".into(),
        })
    }
}

#[tokio::test]
async fn page_is_served_over_tls_with_the_operator_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, CERT).unwrap();
    std::fs::write(&key, KEY).unwrap();
    let cfg = WarningPageConfig {
        reports_file: dir.path().join("r.jsonl"),
        tls: Some(TlsConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            cert: cert.clone(),
            key,
        }),
        ..WarningPageConfig::default()
    };
    let listeners = page::bind_tls(&cfg).await.unwrap();
    let addr = listeners[0].local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(page::serve_tls(
        listeners,
        Arc::new(cfg),
        Arc::new(Lookup),
        async move {
            let _ = stopped.await;
        },
    ));

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap())
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("portal.fraudwall.test").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .expect("handshake verifies");
    tls.write_all(
        b"GET / HTTP/1.1\r\nHost: portal.fraudwall.test\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut resp = Vec::new();
    // A peer closing without close_notify is not this test's concern; the bytes are what count.
    let _ = tls.read_to_end(&mut resp).await;
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(resp.contains("portal-demo") && resp.contains("已拦截"));

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn bad_certificate_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    for cert in [&missing, &empty] {
        let tls = TlsConfig {
            listen: vec![],
            cert: cert.clone(),
            key: missing.clone(),
        };
        let err = page::tls_acceptor(&tls).err().expect("error");
        assert!(err.to_string().contains(".pem"), "{err}");
    }
    // serve_tls without tls: a config error, not a panic.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = page::serve_tls(
        vec![listener],
        Arc::new(WarningPageConfig::default()),
        Arc::new(Lookup),
        async {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("tls"), "{err}");
}

#[test]
fn tls_config_parses() {
    let cfg: WarningPageConfig =
        serde_saphyr::from_str("tls:\n  cert: /etc/c.pem\n  key: /etc/k.pem\n").unwrap();
    let tls = cfg.tls.unwrap();
    assert_eq!(tls.listen, vec!["127.0.0.1:8443".parse().unwrap()]);
    assert!(serde_saphyr::from_str::<WarningPageConfig>("tls:\n  cert: a\n").is_err());
    assert!(
        serde_saphyr::from_str::<WarningPageConfig>("tls:\n  cert: a\n  key: b\n  x: 1\n").is_err()
    );
}
