"""Police referral packages (VICS 2.0 JSON, CSV, HTML and PDF summary, a signed manifest) and the
CyberTipline-style XML export; pure formats, no database. Built in #11."""
