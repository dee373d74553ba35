"""One command from a fresh checkout to a running app on the embedded default.

Migrates, creates the admin user (password from SYNTHLAB_ADMIN_PASSWORD, else generated and printed
once), creates a demo project with the sample items shipped in annotation/fixtures/, then serves
the app (ASGI, uvicorn) with one Celery worker beside it, until Ctrl-C.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from annotation.models import Project

DEMO_SLUG = "demo-poem-sentiment"
DEMO_FILE = Path(__file__).resolve().parents[2] / "fixtures" / "demo_items.jsonl"
DEMO_GUIDELINES = """\
Decide what feeling each **verse** expresses.

- *positive*: joy, hope, praise, love.
- *negative*: grief, fear, anger, despair.
- *no_impact*: description or narration with no clear feeling.

When unsure, skip the task and say why.
"""


class Command(BaseCommand):
    help = "Set up the embedded default (SQLite, no Redis) and serve SynthLab with one worker."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("SYNTHLAB_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("SYNTHLAB_PORT", "8000")))
        parser.add_argument("--username", default=os.environ.get("SYNTHLAB_ADMIN_USER", "admin"))
        parser.add_argument("--no-serve", action="store_true", help="Set up, then exit without serving.")
        parser.add_argument("--no-worker", action="store_true", help="Serve without starting a worker.")

    def handle(self, *args, **options):
        self.stdout.write("Preparing the database ...")
        call_command("migrate", interactive=False, verbosity=0)
        username, password = self._admin(options["username"])
        project = self._demo_project(username)
        self.stdout.write(self.style.SUCCESS(f"Demo project: {project.name} ({project.items.count()} items)"))
        if password:
            self.stdout.write(
                self.style.WARNING(f"Admin user: {username}  password: {password}  (shown once)")
            )
        elif os.environ.get("SYNTHLAB_ADMIN_PASSWORD"):
            self.stdout.write(f"Admin user: {username} (password from SYNTHLAB_ADMIN_PASSWORD)")
        else:
            self.stdout.write(f"Admin user: {username} (existing password kept)")
        if options["no_serve"]:
            return
        self._serve(options["host"], options["port"], start_worker=not options["no_worker"])

    def _admin(self, username: str) -> tuple[str, str | None]:
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        env_password = os.environ.get("SYNTHLAB_ADMIN_PASSWORD")
        if user is None:
            password = env_password or secrets.token_urlsafe(12)
            user_model.objects.create_superuser(username=username, password=password, email="")
            return username, None if env_password else password
        if env_password and not user.check_password(env_password):
            user.set_password(env_password)
            user.save(update_fields=["password"])
        return username, None

    @transaction.atomic
    def _demo_project(self, username: str) -> Project:
        from annotation.services.imports import items_import_file
        from annotation.services.projects import project_create

        existing = Project.objects.filter(options__demo=True).first()
        if existing is not None:
            return existing
        admin = get_user_model().objects.get(username=username)
        project = project_create(
            user=admin,
            data={
                "name": "Demo: poem sentiment",
                "description": "Verses from the poem_sentiment dataset (CC BY 4.0).",
                "task_type": "classification",
                "labels": ["positive", "negative", "no_impact"],
                "modes": ["label", "rate"],
                "overlap": 1,
                "guidelines": DEMO_GUIDELINES,
                "options": {"demo": True},
            },
        )
        with DEMO_FILE.open("rb") as demo:
            items_import_file(project=project, file=demo, filename=DEMO_FILE.name, user=admin)
        return project

    def _serve(self, host: str, port: int, *, start_worker: bool) -> None:
        env = {**os.environ, "SYNTHLAB_SERVE_STATIC": "1"}
        env.setdefault("DJANGO_SETTINGS_MODULE", "synthlab.settings.base")
        children: list[subprocess.Popen] = []
        if start_worker:
            from generation.worker import worker_start

            children.append(worker_start(env=env, loglevel="WARNING"))
            self.stdout.write("Worker started (queues default, gpu).")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "synthlab.asgi:application",
                "--host",
                host,
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
        )
        children.append(server)
        url = f"http://{host}:{port}/"
        self.stdout.write(
            self.style.SUCCESS(f"SynthLab is running at {url}  (data in {settings.DATA_DIR}; Ctrl-C stops)")
        )
        self.stdout.flush()

        def stop(*_):
            from generation.worker import worker_stop

            for child in children:
                if child is server:
                    child.terminate()
                else:
                    # The worker runs in its own process group; worker_stop ends its pool too.
                    worker_stop(child)
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()

        signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(0)))
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
            failed = [c for c in children if c.poll() not in (None, 0)]
            if failed:
                self.stderr.write(
                    f"A process stopped unexpectedly (exit {failed[0].returncode}); shutting down."
                )
        except KeyboardInterrupt:
            pass
        finally:
            stop()
