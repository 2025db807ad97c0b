//! Stores in S3-compatible object storage (`s3://bucket/prefix`), read with the `object_store`
//! crate on the core's runtime (runtime.rs).
//!
//! Configuration is the ecosystem's: credentials, region and endpoint come from the standard
//! AWS environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`; object_store's
//! `AmazonS3Builder::from_env`); an explicit `http://` endpoint is allowed as asked. Timeouts,
//! retries and concurrency live here and nowhere else, tunable by `ASTROBIO_S3_*` variables
//! ([`Settings`]). Every request has a per-attempt timeout and a total deadline, so no read hangs
//! forever; 5xx, throttling (429/503) and connection failures are retried with exponential
//! backoff. Errors name the object's URL (never a credential: none is ever in a URL here).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, PutPayload, RetryConfig};

use crate::error::{CoreError, CoreResult, Location, StorageFault};
use crate::runtime;

/// The URL scheme of object-store stores.
pub const S3_SCHEME: &str = "s3://";

/// Objects as they arrive: `(position in the requested keys, the object or None if absent)`.
pub type Arrivals = std::sync::mpsc::Receiver<(usize, CoreResult<Option<Bytes>>)>;

/// Whether `location` names an object-store store rather than a local path.
pub fn is_url(location: &str) -> bool {
    location.contains("://")
}

/// Timeouts, retries and concurrency, from `ASTROBIO_S3_*` variables (seconds) or defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// One request attempt, body included (`ASTROBIO_S3_TIMEOUT`, default 30 s).
    pub timeout: Duration,
    /// Opening a connection (`ASTROBIO_S3_CONNECT_TIMEOUT`, default 5 s).
    pub connect_timeout: Duration,
    /// Retries of a failed request (`ASTROBIO_S3_RETRIES`, default 5).
    pub retries: usize,
    /// No retry starts after this long from the first attempt (`ASTROBIO_S3_RETRY_TIMEOUT`, 60 s).
    pub retry_timeout: Duration,
    /// Requests in flight at once for one batch or scan (`ASTROBIO_S3_CONCURRENCY`, default 32).
    pub concurrency: usize,
    /// Most encoded bytes one read-ahead may hold (`ASTROBIO_S3_READAHEAD_MB`, default 512;
    /// 0 turns read-ahead off).
    pub readahead_bytes: u64,
}

impl Settings {
    pub fn from_env() -> CoreResult<Self> {
        fn secs(name: &str, default: f64) -> CoreResult<Duration> {
            match std::env::var(name) {
                Err(_) => Ok(Duration::from_secs_f64(default)),
                Ok(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s < 86_400.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| CoreError::InvalidArgument(format!("{name} must be a number of seconds > 0, not {v:?}"))),
            }
        }
        fn count(name: &str, default: usize, min: usize) -> CoreResult<usize> {
            match std::env::var(name) {
                Err(_) => Ok(default),
                Ok(v) => v
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= min && *n <= 4096)
                    .ok_or_else(|| CoreError::InvalidArgument(format!("{name} must be an integer >= {min}, not {v:?}"))),
            }
        }
        Ok(Settings {
            timeout: secs("ASTROBIO_S3_TIMEOUT", 30.0)?,
            connect_timeout: secs("ASTROBIO_S3_CONNECT_TIMEOUT", 5.0)?,
            retries: count("ASTROBIO_S3_RETRIES", 5, 0)?,
            retry_timeout: secs("ASTROBIO_S3_RETRY_TIMEOUT", 60.0)?,
            concurrency: count("ASTROBIO_S3_CONCURRENCY", 32, 1)?,
            readahead_bytes: count("ASTROBIO_S3_READAHEAD_MB", 512, 0)? as u64 * (1 << 20),
        })
    }

    /// The longest one operation may take, retries and backoff included: past it the read
    /// fails even if the client's own timers did not fire (the guard against any hang).
    fn deadline(&self) -> Duration {
        self.retry_timeout + self.timeout * 2 + Duration::from_secs(5)
    }
}

/// One store's location in a bucket, with the bucket's client.
#[derive(Clone)]
pub struct RemoteStore {
    url: String,
    prefix: String,
    client: Arc<AmazonS3>,
    settings: Settings,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore").field("url", &self.url).finish()
    }
}

/// Clients by (process, bucket, AWS/astrobio configuration): built once, rebuilt after a fork
/// (a client's pooled connections belong to the runtime of the process that built it) or when
/// the environment that configures it changed.
type ClientKey = (u32, String, Vec<(String, String)>);
static CLIENTS: Mutex<Option<HashMap<ClientKey, Arc<AmazonS3>>>> = Mutex::new(None);

fn config_env() -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_") || k.starts_with("ASTROBIO_S3_"))
        .collect();
    vars.sort();
    vars
}

impl RemoteStore {
    /// A store at `url` (`s3://bucket/prefix`); nothing is requested yet.
    pub fn open(url: &str) -> CoreResult<Self> {
        let Some(rest) = url.strip_prefix(S3_SCHEME) else {
            let scheme = url.split("://").next().unwrap_or_default();
            return Err(CoreError::InvalidArgument(format!(
                "unsupported store URL scheme {scheme:?}: astrobio reads local paths and s3://bucket/prefix"
            )));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.contains('@') || bucket.contains(':') {
            return Err(CoreError::InvalidArgument(
                "an s3:// URL must not carry credentials or a port; set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL".into(),
            ));
        }
        if bucket.is_empty() {
            return Err(CoreError::InvalidArgument(format!("no bucket in the store URL {url:?} (expected s3://bucket/prefix)")));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if prefix.split('/').any(|p| p == "." || p == "..") {
            return Err(CoreError::InvalidArgument(format!("the store URL {url:?} has '.' or '..' in its prefix")));
        }
        let settings = Settings::from_env()?;
        let url = if prefix.is_empty() { format!("{S3_SCHEME}{bucket}") } else { format!("{S3_SCHEME}{bucket}/{prefix}") };
        let client = client(bucket, &settings, &url)?;
        Ok(RemoteStore { url, prefix, client, settings })
    }

    /// The store's URL (`s3://bucket/prefix`, no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }
    pub fn settings(&self) -> Settings {
        self.settings
    }
    /// The URL of the object at `key` (relative to the store).
    pub fn key_url(&self, key: &str) -> String {
        format!("{}/{key}", self.url)
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    async fn get_async(&self, key: &str, max_len: u64) -> CoreResult<Option<Bytes>> {
        Ok(self.get_part_async(key, None, max_len).await?.map(|(bytes, _)| bytes))
    }

    /// The object at `key`, or the `range` of it: `(the bytes, the object's whole size)`; `None`
    /// when it does not exist. A part over `max_len` bytes is refused before its body is read,
    /// and the bytes received must be exactly the part the server says it sent.
    async fn get_part_async(&self, key: &str, range: Option<GetRange>, max_len: u64) -> CoreResult<Option<(Bytes, u64)>> {
        let what = if range.is_some() { "range" } else { "object" };
        let fetch = async {
            let got = match self.client.get_opts(&self.path(key), GetOptions { range, ..GetOptions::default() }).await {
                Ok(got) => got,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(storage_error(&self.key_url(key), e)),
            };
            let (size, expected) = (got.meta.size, got.range.end.saturating_sub(got.range.start));
            if expected > max_len {
                return Err(CoreError::integrity(
                    Location { chunk: Some(key.to_string()), ..Default::default() },
                    format!("{what} holds {expected} bytes, more than it may hold ({max_len})"),
                ));
            }
            let bytes = got.bytes().await.map_err(|e| storage_error(&self.key_url(key), e))?;
            if bytes.len() as u64 != expected {
                return Err(storage_error_text(
                    &self.key_url(key),
                    StorageFault::Unreachable,
                    format!("received {} of {expected} bytes", bytes.len()),
                ));
            }
            Ok(Some((bytes, size)))
        };
        self.guard(&self.key_url(key), fetch).await
    }

    /// Bound any operation by the total deadline, whatever the client's timers do.
    async fn guard<T>(&self, url: &str, fut: impl std::future::Future<Output = CoreResult<T>>) -> CoreResult<T> {
        let deadline = self.settings.deadline();
        match tokio::time::timeout(deadline, fut).await {
            Ok(done) => done,
            Err(_) => Err(storage_error_text(
                url,
                StorageFault::Unreachable,
                format!("no answer within {:.0} s (timeouts and retries exhausted)", deadline.as_secs_f64()),
            )),
        }
    }

    /// The object at `key` (`None` when it does not exist), refusing one over `max_len` bytes.
    pub fn get(&self, key: &str, max_len: u64) -> CoreResult<Option<Bytes>> {
        block_on(&self.url, self.get_async(key, max_len))?
    }

    /// The objects at `keys`, fetched concurrently (at most `settings.concurrency` in flight),
    /// results in the order of `keys`.
    pub fn get_many(&self, keys: &[String], max_len: u64) -> CoreResult<Vec<CoreResult<Option<Bytes>>>> {
        let fut = futures::stream::iter(keys.iter().map(|k| self.get_async(k, max_len)))
            .buffered(self.settings.concurrency)
            .collect::<Vec<_>>();
        block_on(&self.url, fut)
    }

    /// [`Self::get_part_async`] of each `(key, range)`, concurrently (at most
    /// `settings.concurrency` in flight), results in order.
    pub fn get_ranges(&self, requests: &[(String, GetRange)], max_len: u64) -> CoreResult<Vec<CoreResult<Option<(Bytes, u64)>>>> {
        let fut = futures::stream::iter(requests.iter().map(|(k, r)| self.get_part_async(k, Some(r.clone()), max_len)))
            .buffered(self.settings.concurrency)
            .collect::<Vec<_>>();
        block_on(&self.url, fut)
    }

    /// Start fetching the objects at `keys` in the background (as [`Self::get_many`]); the
    /// result is collected with [`Pending::wait`].
    pub fn spawn_get_many(&self, keys: Vec<String>, max_len: u64) -> CoreResult<Pending> {
        let rt = self.io_runtime()?;
        let requests = self.owned_requests(keys, max_len);
        let handle = rt.spawn(
            futures::stream::iter(requests).buffered(self.settings.concurrency).map(|(_, got)| got).collect::<Vec<_>>(),
        );
        Ok(Pending { pid: std::process::id(), url: self.url.clone(), handle: Some(handle) })
    }

    /// Fetch the objects at `keys` on the core's runtime (at most `settings.concurrency` in
    /// flight) and deliver each as soon as it arrives, as `(position in keys, result)`, over the
    /// returned channel; it closes once every object is delivered. The caller decodes early
    /// objects while later ones are still in flight. Dropping the receiver stops the fetch.
    pub fn stream_many(&self, keys: Vec<String>, max_len: u64) -> CoreResult<Arrivals> {
        let rt = self.io_runtime()?;
        let (tx, rx) = std::sync::mpsc::channel();
        let requests = self.owned_requests(keys, max_len);
        let concurrency = self.settings.concurrency;
        rt.spawn(async move {
            let mut arrivals = futures::stream::iter(requests).buffer_unordered(concurrency);
            while let Some(item) = arrivals.next().await {
                if tx.send(item).is_err() {
                    break; // the reader is gone: fetch no more
                }
            }
        });
        Ok(rx)
    }

    /// The process's I/O runtime (`runtime::runtime`), its failure as this store's error.
    fn io_runtime(&self) -> CoreResult<Arc<tokio::runtime::Runtime>> {
        runtime::runtime()
            .map_err(|e| storage_error_text(&self.url, StorageFault::Other, format!("cannot start the I/O runtime: {e}")))
    }

    /// One GET per key, each `(position in keys, result)`, each owning its store handle and key
    /// ('static, as a task spawned on the runtime must be).
    fn owned_requests(&self, keys: Vec<String>, max_len: u64)
                      -> Vec<impl std::future::Future<Output = (usize, CoreResult<Option<Bytes>>)> + Send + 'static> {
        keys.into_iter()
            .enumerate()
            .map(|(i, key)| {
                let this = self.clone();
                async move { (i, this.get_async(&key, max_len).await) }
            })
            .collect()
    }

    /// Write the object at `key` (one PUT: an object is never seen half-written).
    pub fn put(&self, key: &str, data: Vec<u8>) -> CoreResult<()> {
        let url = self.key_url(key);
        let fut = async {
            self.client.put(&self.path(key), PutPayload::from(data)).await.map(|_| ()).map_err(|e| storage_error(&url, e))
        };
        block_on(&self.url, self.guard(&url, fut))?
    }

    /// Delete the object at `key` (no error when it does not exist).
    pub fn delete(&self, key: &str) -> CoreResult<()> {
        let url = self.key_url(key);
        let fut = async {
            match self.client.delete(&self.path(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(storage_error(&url, e)),
            }
        };
        block_on(&self.url, self.guard(&url, fut))?
    }

    /// Every object under `key_prefix` (relative to the store; "" for all), as (key, size)
    /// sorted by key.
    pub fn list(&self, key_prefix: &str) -> CoreResult<Vec<(String, u64)>> {
        let base = self.path(key_prefix.trim_end_matches('/'));
        let strip = if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) };
        let url = self.key_url(key_prefix);
        let fut = async {
            let listed: Vec<_> = self.client.list(Some(&base)).try_collect().await.map_err(|e| storage_error(&url, e))?;
            let mut out: Vec<(String, u64)> = listed
                .into_iter()
                .map(|m| (m.location.as_ref().strip_prefix(strip.as_str()).unwrap_or(m.location.as_ref()).to_string(), m.size))
                .collect();
            out.sort();
            Ok(out)
        };
        block_on(&self.url, self.guard(&url, fut))?
    }
}

/// Objects being fetched in the background ([`RemoteStore::spawn_get_many`]). Dropping it
/// cancels the fetch.
pub struct Pending {
    pid: u32,
    url: String,
    handle: Option<tokio::task::JoinHandle<Vec<CoreResult<Option<Bytes>>>>>,
}

impl Pending {
    /// The fetched objects, in the order of the keys; `None` when this handle belongs to
    /// another process (inherited through fork: its task ran on the parent's runtime).
    pub fn wait(mut self) -> CoreResult<Option<Vec<CoreResult<Option<Bytes>>>>> {
        let Some(handle) = self.handle.take() else { return Ok(None) };
        if self.pid != std::process::id() {
            std::mem::forget(handle);
            return Ok(None);
        }
        match block_on(&self.url, handle)? {
            Ok(got) => Ok(Some(got)),
            Err(e) => Err(storage_error_text(&self.url, StorageFault::Other, format!("read-ahead task failed: {e}"))),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            if self.pid == std::process::id() {
                handle.abort();
            } else {
                std::mem::forget(handle);
            }
        }
    }
}

fn block_on<F: std::future::Future>(url: &str, fut: F) -> CoreResult<F::Output> {
    runtime::block_on(fut).map_err(|e| storage_error_text(url, StorageFault::Other, format!("cannot start the I/O runtime: {e}")))
}

fn client(bucket: &str, settings: &Settings, url: &str) -> CoreResult<Arc<AmazonS3>> {
    let key: ClientKey = (std::process::id(), bucket.to_string(), config_env());
    let mut slot = CLIENTS.lock().unwrap_or_else(|p| p.into_inner());
    let map = slot.get_or_insert_with(HashMap::new);
    if let Some(c) = map.get(&key) {
        return Ok(c.clone());
    }
    // Another process's clients (inherited through fork) are dropped without being used: their
    // connections belong to a runtime that does not run here.
    map.retain(|k, _| k.0 == key.0);
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").or_else(|_| std::env::var("AWS_ENDPOINT")).unwrap_or_default();
    if endpoint.starts_with("http://") {
        builder = builder.with_allow_http(true); // asked for explicitly by the endpoint itself
    }
    if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
        builder = builder.with_config(AmazonS3ConfigKey::Region, "us-east-1");
    }
    let options = ClientOptions::new()
        .with_timeout(settings.timeout)
        .with_connect_timeout(settings.connect_timeout)
        .with_allow_http(endpoint.starts_with("http://") || std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v == "true"));
    let retry = RetryConfig {
        backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(5), base: 2.0 },
        max_retries: settings.retries,
        retry_timeout: settings.retry_timeout,
    };
    let built = builder
        .with_client_options(options)
        .with_retry(retry)
        .build()
        .map_err(|e| storage_error_text(url, StorageFault::Config, format!("cannot configure the S3 client: {}", one_line(&e))))?;
    let built = Arc::new(built);
    map.insert(key, built.clone());
    Ok(built)
}

/// An object_store failure as a core error naming `url` (never a credential).
fn storage_error(url: &str, e: object_store::Error) -> CoreError {
    match e {
        object_store::Error::NotFound { .. } => CoreError::NotFound { path: url.into(), what: "no such object".into() },
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            storage_error_text(url, StorageFault::Denied, denied(None))
        }
        other => {
            let text = one_line(&other);
            if text.contains("403 Forbidden") || text.contains("SignatureDoesNotMatch") || text.contains("InvalidAccessKeyId") {
                storage_error_text(url, StorageFault::Denied, denied(s3_error_code(&text)))
            } else {
                storage_error_text(url, StorageFault::Unreachable, without_xml_body(&text))
            }
        }
    }
}

const CREDENTIALS_HINT: &str = "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN and the bucket's policy";

fn denied(code: Option<&str>) -> String {
    match code {
        Some(code) => format!("access denied ({code}; {CREDENTIALS_HINT})"),
        None => format!("access denied ({CREDENTIALS_HINT})"),
    }
}

/// The S3 error code (`<Code>...</Code>`) of a server's XML error body, if the text holds one.
fn s3_error_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    Some(text[start..end].trim()).filter(|c| !c.is_empty() && c.len() < 64)
}

/// object_store quotes the server's XML error body in its message: keep the S3 error code, drop the XML.
fn without_xml_body(text: &str) -> String {
    match text.find("<?xml").or_else(|| text.find("<Error>")) {
        None => text.to_string(),
        Some(i) => {
            let head = text[..i].trim_end_matches(|c: char| c == ':' || c.is_whitespace());
            match s3_error_code(&text[i..]) {
                Some(code) => format!("{head} ({code})"),
                None => head.to_string(),
            }
        }
    }
}

fn storage_error_text(url: &str, fault: StorageFault, reason: String) -> CoreError {
    CoreError::Storage { url: url.to_string(), fault, reason }
}

/// The error and its sources on one line (object_store's messages nest the HTTP cause).
fn one_line(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ").split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_any_request() {
        let bad = |u: &str| match RemoteStore::open(u) {
            Err(CoreError::InvalidArgument(m)) => m,
            other => panic!("{u}: expected InvalidArgument, got {other:?}"),
        };
        assert!(bad("gs://bucket/x").contains("unsupported"));
        assert!(bad("s3:///x").contains("no bucket"));
        assert!(bad("s3://KEY:hunter2@bucket/x").contains("credentials"));
        assert!(!bad("s3://KEY:hunter2@bucket/x").contains("hunter2"));
        assert!(bad("s3://bucket/a/../b").contains(".."));
        let r = RemoteStore::open("s3://bucket/a/b/").unwrap();
        assert_eq!(r.url(), "s3://bucket/a/b");
        assert_eq!(r.key_url("zarr.json"), "s3://bucket/a/b/zarr.json");
        assert!(is_url("s3://b") && !is_url("/tmp/x.zarr"));
    }

    #[test]
    fn a_server_error_body_becomes_its_code() {
        let body = "Client error with status 403 Forbidden: <?xml version=\"1.0\" encoding=\"UTF-8\"?> \
                    <Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>x</RequestId></Error>";
        assert_eq!(s3_error_code(body), Some("AccessDenied"));
        assert_eq!(without_xml_body(body), "Client error with status 403 Forbidden (AccessDenied)");
        assert_eq!(without_xml_body("Generic error: connection refused"), "Generic error: connection refused");
        assert_eq!(without_xml_body("status 500: <Error><Message>boom</Message></Error>"), "status 500");
        let msg = denied(s3_error_code(body));
        assert!(msg.starts_with("access denied (AccessDenied; check AWS_ACCESS_KEY_ID") && !msg.contains('<'));
    }
}
