"""An ICCAM-compatible bridge: ICCAM 3.0 REST shapes (as the open-source SCARt shows them), the mapping
of our classification schemes to ICCAM categories as data, and a client; no database. Built in #11.

ICCAM's API is closed. What this room knows of it was read (never copied) in SCARt,
``AbuseIO/SCART-application``: the plugin's ``classes/iccam/api3/`` folder (PHP namespace
``abuseio\\scart\\classes\\iccam\\api3``; paths below are within the plugin, as the namespaces give them):

- ``classes/iccam/api3/models/ScartICCAMapi.php``: every endpoint, relative to a base URL;
- ``classes/iccam/api3/classes/helpers/ICCAMAuthentication.php``: logging in and refreshing;
- ``classes/iccam/api3/classes/helpers/ICCAMcurl.php``: headers, status handling, errors;
- ``classes/iccam/api3/classes/ScartExportICCAMV3.php``: the report, assessment and action bodies;
- ``classes/iccam/api3/classes/ScartImportICCAMV3.php``: how queued content is fetched and marked;
- ``classes/iccam/api3/models/scartICCAMfieldsV3.php``: the codes (classification, age, gender ...);
- SCARt's constants (``SCART_ICCAM_ACTION_*``, ``SCART_ICCAM_CONTENTTYPE_*``, report stages): the
  action types and content types.

What they show (and this room implements, :mod:`meldpunt.iccam.shapes` / :mod:`.client`):

Authentication
    ``POST Authentication`` with JSON ``{"username", "password"}`` answers ``{"bearerToken",
    "refreshToken", "bearerTokenExpiresIn"}`` (seconds; SCARt assumes 1800 when absent). Every other
    call sends ``Authorization: Bearer <token>``, ``Content-Type``/``accept: application/json``.
    ``POST Authentication/refresh`` with ``{"bearerToken", "refreshToken"}`` renews; ``POST
    Authentication/logout`` ends. (SCARt also presents a TLS client certificate; that is the
    transport's business — an ``httpx`` transport with a client cert — not this room's.)
Errors
    ICCAM answers 400/401/403/500 with a JSON body whose ``errors`` holds the reason; SCARt logs any
    other non-200 as "offline" and tries again later. We: 2xx ok; 408, 425, 429, 5xx, timeouts and
    broken connections retryable; other 4xx refused for good with ICCAM's ``errors`` text; a 401 logs
    in again once before it counts as refused.
``POST rest/reports``
    ``{"reportingAnalystName", "hotlineReceivedDate" ("2026-12-01T10:00:00Z"), "hotlineReference"
    (SCARt makes it unique per post: ICCAM refuses one it has seen), "memo", "sourceUrlReferrer",
    "sourceUrlSiteType" (2 = website), "sourceUrlCommerciality" (1 = not determined),
    "sourceUrlPaymentMethods" ([1] = not determined), "urls": [...]}``, each URL ``{"urlString",
    "hotlineReference", "hostingCountryCode", "hostingIpAddress", "isSourceUrl", "memo",
    "contentType" (1 = media, 2 = website), "assessment", "actions": []}``. The answer is the new
    report's ID, a bare number. SCARt sends no ISP field: we put the provider in the URL's memo.
``GET rest/Reports/{id}``
    the report with ``reportContents: [{"contentId", "urlString"}]`` — how the content IDs of the
    URLs just posted are learnt (SCARt matches them by URL).
``PUT rest/Content/{id}/assessment``
    ``{"assessingAnalystName", "classification" (1 baseline, 2 national, 3 doubtful, 4 ignore = not
    illegal), "ageCategorization" (1 not determined, 2 infant, 3 pre-pubescent, 4 pubescent),
    "genderCategorization" (1 not determined, 2 female, 3 male, 4 both),
    "virtualContentCategorization", "userGeneratedContentCategorization",
    "childModelingCategorization" (booleans)}``.
``POST rest/Content/{id}/actions``
    ``{"actionType", "actioningAnalystName", "actionDate"}``, plus ``"reasonId"`` and
    ``"reasonText"`` for types above 3. Types: 1 LEA, 2 ISP, 3 content removed, 4 content
    unavailable, 5 moved, 7 not illegal (6 is not used by SCARt; 11 is SCARt's own "set hotline
    reference", done through the endpoint below). In 3.0 a move is also ``PUT
    rest/Content/{id}/url/hosting?newIpAddress=&newCountryCode=`` then ``PUT
    rest/Content/{id}/assigned-country?newCountryCode=``.
``PUT rest/Content/{id}/hotline-reference?reference=``
    the receiving hotline's own reference; SCARt sets it after importing, which takes the content
    out of the ``no-reference`` queue.
Work queues
    ``GET rest/Content/{queue}?maxResults=N&countryAssignmentStartDate=<ISO>`` for ``unassessed``,
    ``unactioned``, ``no-reference``, ``unassigned-to-hotline``, ``orphaned`` (``offline`` filters
    on ``hotlineAssignmentStartDate``); maxResults at most 200. Each answers a list of
    ``{"reportId", "contentId", ...}``; ``GET rest/Content/{id}`` gives the content item:
    ``{"contentId", "reportId", "url": {"urlString", "isSourceUrl", "hostingCountryCode",
    "hostingIpAddress"}, "assignedCountryCode", "hotlineReference", "assessment", "actions"}`` (an
    action as read back: ``actionType``, ``actioningAnalystName``, ``actionDate``).
Reference lists
    ``GET rest/classifications``, ``age-categories``, ``gender-categories``, ``action-types``,
    ``site-types``, ``commercialities``, ``payment-methods``, ``countries``, ``hotlines``.

Our mapping of these codes to the triage schemes is data: ``mapping.yaml`` beside this module
(:mod:`meldpunt.iccam.mapping`).
"""
