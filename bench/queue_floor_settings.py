"""Settings for bench/queue_floor.py: SynthLab's own settings (middleware, database pool, REST
framework, ASGI handler) with the floor's URLs in place of the app's."""

from synthlab.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench.queue_floor_urls"
