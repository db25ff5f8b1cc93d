"""Where content is hosted: an address -> network (prefix, ASN, owner), country, hosting provider
and abuse contact; a domain -> registrar and its abuse contact. Embedded geo data by default
(geoip2fast), the user's .mmdb files and IP-to-ASN tables, RDAP (#10 part "locate")."""
