"""Abuse contacts and routing rules as data, edited by seniors in the workspace, every change
audited (#10 part "routing")."""

from __future__ import annotations
