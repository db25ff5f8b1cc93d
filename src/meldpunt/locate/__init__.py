"""Where content is hosted: an address -> network (prefix, ASN, owner), country, hosting provider
and abuse contact; a domain -> registrar and its abuse contact. Embedded geo data by default
(geoip2fast), the user's .mmdb files and IP-to-ASN tables, RDAP (#10 part "locate").

No database here (the act room stores locations and implements the RDAP cache): ``geo`` reads geo
data, ``rdap`` asks the registries, ``cdn`` recognises CDNs, ``locator`` puts it together;
``deadline`` gives an HTTP exchange with an outside server one deadline in all (RDAP, webhooks).
"""

from meldpunt.locate.geo import GeoDataError, GeoFile, inspect_file
from meldpunt.locate.locator import FACT_NAMES, Location, Locator, Resolver, describe_sources, geo_dir
from meldpunt.locate.rdap import Cached, MemoryCache, RdapCache, RdapError

__all__ = [
    "FACT_NAMES",
    "Cached",
    "GeoDataError",
    "GeoFile",
    "Location",
    "Locator",
    "MemoryCache",
    "RdapCache",
    "RdapError",
    "Resolver",
    "describe_sources",
    "geo_dir",
    "inspect_file",
]
