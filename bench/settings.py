"""Settings for the benchmarks' servers: the project's, plus a trivial view for ceilings."""

from crm.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
