//! The `[object_store]` section: keeping segments and manifests in S3 (or an S3-compatible
//! server) instead of a local directory.
//!
//! With a URL set, `oriel serve` keeps its store under `<url>/store` and each ingest node under
//! `<url>/cluster/<partitions-…>`; the local disk (`data_dir`) then holds only a cache of segment files,
//! the store's lock and its deletion receipts. Without one, everything stays on local disk.

use serde::{Deserialize, Serialize};

use super::{ConfigError, check_range};

/// Object storage settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectStoreConfig {
    /// `s3://bucket` or `s3://bucket/prefix`; empty keeps segments on local disk.
    pub url: String,
    /// The S3 endpoint of a server other than AWS, e.g. `http://10.0.0.9:9000`; empty for AWS
    /// (or whatever `AWS_ENDPOINT` says).
    pub endpoint: String,
    /// The bucket's region; empty: `AWS_REGION`, else `us-east-1`.
    pub region: String,
    /// Access key id; empty: the usual AWS sources (`AWS_ACCESS_KEY_ID`, instance roles, ...).
    pub access_key_id: String,
    /// Secret access key; best set through `ORIEL_OBJECT_STORE__SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// Allow a plain `http://` endpoint (a server on a trusted network, or a test).
    pub allow_http: bool,
    /// Local disk the cache of segment files may use, in MiB.
    pub cache_mb: u64,
    /// How long one request to the object store may take, in seconds.
    pub request_timeout_seconds: u64,
}

impl Default for ObjectStoreConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            endpoint: String::new(),
            region: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            allow_http: false,
            cache_mb: 10_240,
            request_timeout_seconds: 30,
        }
    }
}

impl ObjectStoreConfig {
    /// Whether segments go to object storage.
    pub fn enabled(&self) -> bool {
        !self.url.is_empty()
    }

    pub(super) fn validate(&self, invalid: &impl Fn(&str, String, &str) -> ConfigError) -> Result<(), ConfigError> {
        check_range(invalid, "object_store.cache_mb", self.cache_mb, 64, 1 << 30)?;
        check_range(invalid, "object_store.request_timeout_seconds", self.request_timeout_seconds, 1, 3600)?;
        if !self.enabled() {
            return Ok(());
        }
        let bucket = self.url.strip_prefix("s3://").map(|rest| rest.split('/').next().unwrap_or_default());
        if bucket.is_none_or(str::is_empty) {
            return Err(invalid("object_store.url", format!("{:?}", self.url), "s3://bucket or s3://bucket/prefix"));
        }
        let scheme_ok = self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://");
        if !self.endpoint.is_empty() && !scheme_ok {
            return Err(invalid("object_store.endpoint", format!("{:?}", self.endpoint), "an http:// or https:// URL"));
        }
        if self.endpoint.starts_with("http://") && !self.allow_http {
            return Err(invalid(
                "object_store.endpoint",
                format!("{:?}", self.endpoint),
                "an https:// URL, or set object_store.allow_http = true for a server on a trusted network",
            ));
        }
        if self.access_key_id.is_empty() != self.secret_access_key.is_empty() {
            return Err(invalid(
                "object_store.secret_access_key",
                "(hidden)".into(),
                "set together with object_store.access_key_id, or leave both empty for the usual AWS sources",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(c: &ObjectStoreConfig) -> Result<(), String> {
        let invalid = |key: &str, value: String, allowed: &str| ConfigError::Invalid {
            origin: "test".into(),
            key: key.into(),
            value,
            allowed: allowed.into(),
        };
        c.validate(&invalid).map_err(|e| e.to_string())
    }

    #[test]
    fn urls_endpoints_and_keys_are_checked() {
        assert_eq!(check(&ObjectStoreConfig::default()), Ok(()));
        let s3 = ObjectStoreConfig { url: "s3://oriel/prod".into(), ..ObjectStoreConfig::default() };
        assert_eq!(check(&s3), Ok(()));
        for url in ["oriel", "s3://", "gs://b", "s3:///x"] {
            let bad = ObjectStoreConfig { url: url.into(), ..s3.clone() };
            assert!(check(&bad).unwrap_err().contains("s3://bucket"), "{url}");
        }
        let plain = ObjectStoreConfig { endpoint: "http://127.0.0.1:9000".into(), ..s3.clone() };
        assert!(check(&plain).unwrap_err().contains("allow_http"));
        assert_eq!(check(&ObjectStoreConfig { allow_http: true, ..plain }), Ok(()));
        let half = ObjectStoreConfig { access_key_id: "k".into(), ..s3 };
        assert!(check(&half).unwrap_err().contains("(hidden)"), "the secret is never shown");
    }
}
