import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.models import Project
from generation import services
from synthlab.errors import SynthLabError


class Command(BaseCommand):
    help = (
        "Run a generation job from the command line with a progress bar: the same job, recipes and "
        "bookkeeping as the web UI. By default it runs here (this process loads the model); with "
        "--enqueue it queues the job for a worker and follows its progress."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help="Project id or slug.")
        parser.add_argument("--recipe", default="weak_label")
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="Recipe parameter (repeatable); VALUE is read as JSON when it parses, e.g. --param n=4.",
        )
        parser.add_argument("--split", choices=["train", "eval"])
        parser.add_argument("--without-candidates", action="store_true")
        parser.add_argument("--limit", type=int)
        parser.add_argument(
            "--enqueue", action="store_true", help="Queue it for a worker instead of running here."
        )

    def handle(self, *args, **options):
        key = options["project"]
        project = (
            Project.objects.filter(pk=int(key)).first()
            if key.isdigit()
            else Project.objects.filter(slug=key).first()
        )
        if project is None:
            raise CommandError(f"No project {key!r}.")
        params = {}
        for pair in options["param"]:
            name, sep, raw = pair.partition("=")
            if not sep:
                raise CommandError(f"--param takes KEY=VALUE, not {pair!r}.")
            try:
                params[name] = json.loads(raw)
            except ValueError:
                params[name] = raw
        items = {"split": options.get("split"), "without_candidates": options["without_candidates"]}
        if options.get("limit"):
            items["limit"] = options["limit"]
        try:
            if options["enqueue"]:
                job = services.job_create(
                    project=project, user=None, recipe=options["recipe"], params=params, items=items
                )
            else:
                job = services.job_create_local(
                    project=project, recipe=options["recipe"], params=params, items=items
                )
        except SynthLabError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Job {job.pk}: {options['recipe']} over {job.progress_total} items of {project.name}."
        )
        bar = tqdm(total=job.progress_total, unit="item", file=self.stderr._out)

        def show(current):
            bar.n = current.progress_done
            rate = (current.timings or {}).get("tokens_per_second")
            bar.set_postfix(failures=current.failures_count, tok_s=rate, refresh=False)
            bar.refresh()

        if options["enqueue"]:
            job = services.job_follow(job_id=job.pk, on_progress=show)
        else:
            job = services.job_run(job_id=job.pk, on_progress=show) or job
        bar.close()
        job.refresh_from_db()
        self.stdout.write(
            f"Job {job.pk} {job.status}: {job.candidates_created} candidates, {job.failures_count} failures."
            + (f" {job.message}" if job.message else "")
        )
        if job.status == "failed":
            raise CommandError(job.message or "The job failed.")
