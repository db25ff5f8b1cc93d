"""An ICCAM-compatible bridge: ICCAM 3.0 REST shapes (as the open-source SCARt shows them), the mapping
of our classification schemes to ICCAM categories as data, and a client; no database. Built in #11."""
