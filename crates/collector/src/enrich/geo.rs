//! IP address → country (and region, city) from any MaxMind-format database.
//!
//! Country databases such as the CC0 `geo-whois-asn-country` one hold `{"country_code": "US"}`;
//! GeoIP2 and DB-IP City databases hold `{"country": {"iso_code": "US"}, "subdivisions": [...],
//! "city": {"names": {"en": "..."}}}`. The record type accepts both.

use std::collections::BTreeMap;
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

/// An open GeoIP database.
pub(crate) struct Geo {
    reader: maxminddb::Reader<Vec<u8>>,
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
        Ok(Self { reader })
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
