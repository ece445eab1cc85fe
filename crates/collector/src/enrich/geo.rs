//! IP address → country (and region, city) from any MaxMind-format database.
//!
//! Country databases such as the CC0 `geo-whois-asn-country` one hold `{"country_code": "US"}`;
//! GeoIP2 and DB-IP City databases hold `{"country": {"iso_code": "US"}, "subdivisions": [...],
//! "city": {"names": {"en": "..."}}}`. The record type accepts both.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

/// Where an IP address is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Location {
    /// ISO 3166 alpha-2 country code.
    pub country: Option<String>,
    /// Region: the first subdivision's ISO code, or its English name.
    pub region: Option<String>,
    /// City, in English.
    pub city: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Record {
    country_code: Option<String>,
    country: Option<Named>,
    subdivisions: Option<Vec<Named>>,
    city: Option<Named>,
}

#[derive(Debug, Deserialize)]
struct Named {
    iso_code: Option<String>,
    names: Option<BTreeMap<String, String>>,
}

impl Named {
    fn english(&self) -> Option<String> {
        self.names.as_ref()?.get("en").cloned()
    }
}

/// The CC0 country database of the npm package `@ip-location-db/geo-whois-asn-country-mmdb`,
/// gzipped (its NRO part is CC BY 4.0: the README and the UI credit the Number Resource
/// Organization). `scripts/update-geoip` refreshes it; a test checks it is that package's file.
const BUILT_IN: &[u8] = include_bytes!("../../geoip/geo-whois-asn-country.mmdb.gz");

/// How the built-in database is named to people.
const BUILT_IN_NAME: &str = "built-in geo-whois-asn-country (CC0; NRO data CC BY 4.0)";

/// An open GeoIP database.
pub(crate) struct Geo {
    reader: maxminddb::Reader<Vec<u8>>,
    source: String,
}

impl std::fmt::Debug for Geo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Geo").field("type", &self.reader.metadata.database_type).finish()
    }
}

impl Geo {
    /// Opens the database at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        let reader = maxminddb::Reader::open_readfile(path)
            .map_err(|e| format!("cannot open GeoIP database {}: {e} (set collector.geoip_database)", path.display()))?;
        Ok(Self { reader, source: path.display().to_string() })
    }

    /// The country database built into the binary.
    pub(crate) fn built_in() -> Result<Self, String> {
        let mut bytes = Vec::with_capacity(8 << 20);
        flate2::read::GzDecoder::new(BUILT_IN)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("the built-in GeoIP database does not unpack: {e}"))?;
        let reader =
            maxminddb::Reader::from_source(bytes).map_err(|e| format!("the built-in GeoIP database does not open: {e}"))?;
        Ok(Self { reader, source: BUILT_IN_NAME.to_string() })
    }

    /// Which database this is and when it was built, for people ("Your data").
    pub(crate) fn describe(&self) -> String {
        let meta = &self.reader.metadata;
        let built = i64::try_from(meta.build_epoch)
            .ok()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map_or_else(|| "an unknown date".to_string(), |t| t.format("%Y-%m-%d").to_string());
        format!("{} ({}), built {built}", self.source, meta.database_type)
    }

    /// Where `ip` is; empty when the database does not know.
    pub(crate) fn locate(&self, ip: IpAddr) -> Location {
        let record: Option<Record> = self.reader.lookup(ip).ok().and_then(|r| r.decode().ok().flatten());
        let Some(record) = record else { return Location::default() };
        let country = record.country_code.or_else(|| record.country.and_then(|c| c.iso_code));
        let region =
            record.subdivisions.and_then(|s| s.into_iter().next()).and_then(|s| s.iso_code.clone().or_else(|| s.english()));
        let city = record.city.and_then(|c| c.english());
        Location { country: country.filter(|c| c.len() == 2), region, city }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_database_is_the_npm_packages_file_and_locates_countries() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let package = root.join("node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb");
        let expected =
            std::fs::read(&package).unwrap_or_else(|e| panic!("{}: {e}; run `npm ci` (scripts/test does)", package.display()));
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(BUILT_IN).read_to_end(&mut unpacked).unwrap();
        assert!(unpacked == expected, "the built-in database differs from the npm package's: run scripts/update-geoip");

        let geo = Geo::built_in().unwrap();
        // A well-known US address, and an IPv6 one (the database covers both families).
        assert_eq!(geo.locate("8.8.8.8".parse().unwrap()).country.as_deref(), Some("US"));
        assert!(geo.locate("2a00:1450:4001::1".parse().unwrap()).country.is_some());
        assert_eq!(geo.locate("127.0.0.1".parse().unwrap()), Location::default());
        let described = geo.describe();
        assert!(described.starts_with("built-in geo-whois-asn-country") && described.contains("built 20"), "{described}");
    }
}
