//! s3:// stores against a real local S3 server: moto's server mode (`python -m moto.server`),
//! started by this test on a free loopback port. Without moto the test says so and passes,
//! except under CI (`CI` set), where a missing server is a failure: CI installs the `dev` extra
//! (moto[server]) and points `ASTROBIO_TEST_PYTHON` at the interpreter that has it.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use astrobio_core::remote::RemoteStore;
use astrobio_core::{verify_store, BatchReader, CoreError, NormMode};
use common::{sample_len, Fixture};

struct Server {
    child: Child,
    endpoint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    std::env::var("ASTROBIO_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn http(endpoint: &str, request: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(endpoint.trim_start_matches("http://"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(request.as_bytes())?;
    let mut out = String::new();
    let mut buf = [0u8; 4096];
    // The status line is all we need.
    let n = s.read(&mut buf)?;
    out.push_str(&String::from_utf8_lossy(&buf[..n]));
    Ok(out)
}

/// Start moto on a free port and create `bucket`; None (with the reason) when moto is absent.
fn start(bucket: &str) -> Result<Server, String> {
    let has_moto = Command::new(python())
        .args(["-c", "import moto.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !has_moto {
        return Err(format!("{} cannot import moto.server (pip install 'moto[server]', the dev extra)", python()));
    }
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    let child = Command::new(python())
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let server = Server { child, endpoint: format!("http://127.0.0.1:{port}") };
    let t0 = Instant::now();
    loop {
        let put = format!("PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        match http(&server.endpoint, &put) {
            Ok(status) if status.starts_with("HTTP/1.1 200") => return Ok(server),
            _ if t0.elapsed() > Duration::from_secs(60) => return Err("moto did not start within 60 s".into()),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Upload every file of the local store, the group's zarr.json last (the commit rule).
fn upload(root: &Path, url: &str) {
    let remote = RemoteStore::open(url).unwrap();
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                files.push(p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    files.sort_by_key(|k| k == "zarr.json");
    for key in files {
        remote.put(&key, std::fs::read(root.join(&key)).unwrap()).unwrap();
    }
}

#[test]
fn s3_stores_read_like_local_ones_against_a_real_server() {
    let bucket = "astrobio-core-test";
    let server = match start(bucket) {
        Ok(s) => s,
        Err(why) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED s3 integration test: {why}");
            return;
        }
        Err(why) => panic!("CI must run the s3 integration test: {why}"),
    };
    // One test function in this binary: the environment is process-wide.
    for (k, v) in [
        ("AWS_ENDPOINT_URL", server.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("ASTROBIO_S3_TIMEOUT", "3"),
        ("ASTROBIO_S3_RETRIES", "2"),
        ("ASTROBIO_S3_RETRY_TIMEOUT", "5"),
    ] {
        std::env::set_var(k, v);
    }
    let f = Fixture::new();
    let url = format!("s3://{bucket}/stores/fixture.zarr");
    upload(f.root(), &url);

    let indices = [4, 0, 4, 8, 3, 3];
    for mode in [NormMode::PerVariable, NormMode::PerLevel, NormMode::None] {
        let (local, remote) = (BatchReader::open(f.root(), mode, 2).unwrap(), BatchReader::open(&url, mode, 2).unwrap());
        let mut a = vec![0f32; indices.len() * sample_len()];
        let mut b = vec![f32::NAN; indices.len() * sample_len()];
        local.read_batch_into(&indices, &mut a, &astrobio_core::Never).unwrap();
        remote.read_batch_into(&indices, &mut b, &astrobio_core::Never).unwrap();
        assert_eq!(a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), b.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        let (mut pa, mut pb) = (vec![0f32; 4], vec![0f32; 4]);
        local.read_params_into(&[5, 1], &mut pa).unwrap();
        remote.read_params_into(&[5, 1], &mut pb).unwrap();
        assert_eq!(pa, pb);
    }
    let report = verify_store(&url, 10, 2, &astrobio_core::Never).unwrap();
    assert!(report.ok() && report.chunks_checked == 9, "{report:?}");

    // A missing chunk object is named like a missing chunk file.
    RemoteStore::open(&url).unwrap().delete(&Fixture::chunk_key(7)).unwrap();
    let reader = BatchReader::open(&url, NormMode::PerVariable, 2).unwrap();
    let mut out = vec![0f32; 2 * sample_len()];
    match reader.read_batch_into(&[1, 7], &mut out, &astrobio_core::Never) {
        Err(CoreError::Integrity { location, reason }) => {
            assert_eq!(location.sample, Some(7));
            assert_eq!(location.chunk.as_deref(), Some(Fixture::chunk_key(7).as_str()));
            assert_eq!(reason, "chunk missing");
        }
        other => panic!("expected a missing chunk, got {other:?}"),
    }
    let report = verify_store(&url, 10, 2, &astrobio_core::Never).unwrap();
    assert_eq!(report.chunks_failed, 1);

    // No store at a prefix; then the server gone: a bounded failure naming the URL.
    assert!(matches!(BatchReader::open(format!("s3://{bucket}/nothing"), NormMode::None, 1), Err(CoreError::NotFound { .. })));
    drop(server);
    let t0 = Instant::now();
    match reader.read_batch_into(&[1, 2], &mut out, &astrobio_core::Never) {
        Err(CoreError::Storage { url: u, .. }) => assert!(u.starts_with(&url), "{u}"),
        other => panic!("expected a storage error, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(30));
}
