"""Settings as data: one object (:class:`Settings`) holding every setting, each with a name, a
default, a unit, a line of help and its environment variable (``MELDPUNT_[<SECTION>_]<NAME>``).

``meldpunt settings`` lists them with where each value came from; ``docs/settings.md`` is
generated from :meth:`Settings.table` (``meldpunt settings --markdown``) and a test keeps it in step.
"""

from meldpunt.settings.core import Settings
from meldpunt.settings.sections import (
    ActSettings,
    AlertSettings,
    IccamSettings,
    KeySettings,
    LocateSettings,
    MailSettings,
    NoticeSettings,
    PartnerSettings,
    RecheckSettings,
    ReferralSettings,
    StaffSettings,
    TriageSettings,
    WebSettings,
)
from meldpunt.settings.table import (
    RENAMED,
    SUFFIXES,
    RenamedSettingWarning,
    Setting,
    SettingsError,
    env_name,
    show,
)

__all__ = [
    "RENAMED",
    "SUFFIXES",
    "ActSettings",
    "AlertSettings",
    "IccamSettings",
    "KeySettings",
    "LocateSettings",
    "MailSettings",
    "NoticeSettings",
    "PartnerSettings",
    "RecheckSettings",
    "ReferralSettings",
    "RenamedSettingWarning",
    "Setting",
    "Settings",
    "SettingsError",
    "StaffSettings",
    "TriageSettings",
    "WebSettings",
    "env_name",
    "show",
]
