"""Looking at data where it lives: profiles, histograms and the schema diagram.

Profiles and histograms are computed by aggregate queries in the database, over any query
:meth:`Workbench.frame` accepts; the schema comes from the app's models and the database's row
counts. These functions take the session (or the extension) and explicit options; the
Workbench's ``profile``, ``histogram`` and ``schema`` methods call them.
"""

from __future__ import annotations

from .histogram import Histogram as Histogram
from .histogram import histogram_query as histogram_query
from .profile import Profile as Profile
from .profile import profile_query as profile_query
from .schema import Schema as Schema
from .schema import build_schema as build_schema

__all__ = ["Histogram", "Profile", "Schema", "build_schema", "histogram_query", "profile_query"]
