"""Hash banks: lists of hashes of already-classified material, and the labels that come with them.

``meldpunt.banks.formats`` reads and writes the list formats hotlines exchange (plain, ThreatExchange
lines, CSV, Project VIC VICS JSON); it is pure and streaming, and knows nothing of the database.
"""
