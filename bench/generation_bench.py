"""Generation speed of the default model (SmolLM2-135M-Instruct) through the real backend code path.

Prints tokens/s and items/s per batch size for each dtype asked for:

    python bench/generation_bench.py                      # dtype auto, batch sizes 1 4 16 32
    python bench/generation_bench.py --dtype float32 bfloat16 --threads 2 --repeat 2
    python bench/generation_bench.py --attn eager --static-cache

Each batch size generates for `max(batch, --min-items)` prompts that ask for a paragraph (so most
answers run to --max-new-tokens), after one warm-up batch; the best of --repeat runs is printed.
Needs the default model: `python manage.py fetch_model` first (or it is fetched on first use).
The machine's other load matters: on a shared 2-core box, run it when nothing else is running.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synthlab.settings.base")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TOPICS = [
    "cats",
    "rain",
    "music",
    "trains",
    "coffee",
    "chess",
    "bread",
    "rivers",
    "glaciers",
    "bees",
    "maps",
    "tea",
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dtype", nargs="+", default=["auto"], help="auto float32 bfloat16 ...")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 4, 16, 32])
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--min-items", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--attn", default="", help="attention implementation: sdpa (default) or eager")
    parser.add_argument("--static-cache", action="store_true", help="generate with a static KV cache")
    parser.add_argument("--compile", action="store_true", help="torch.compile the forward pass")
    args = parser.parse_args()

    import django

    django.setup()
    import torch

    from generation.backends import ChatRequest, Sampling, backend_for, backends_close

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads by default, cpu {torch.backends.cpu.get_cpu_capability()}"
    )
    for dtype in args.dtype:
        config = {"dtype": dtype, "batch_size": max(args.batch_sizes)}
        if args.threads:
            config["threads"] = args.threads
        started = time.monotonic()
        backend = backend_for(config)
        load = time.monotonic() - started
        if args.attn:
            backend.model.set_attn_implementation(args.attn)
        if args.static_cache:
            backend.model.generation_config.cache_implementation = "static"
        if args.compile:
            backend.model.forward = torch.compile(backend.model.forward, dynamic=False)
        info = backend.describe()
        print(
            f"\n{info['model']} on {info['device']}, dtype {info['dtype']}, {torch.get_num_threads()} threads, "
            f"attn {backend.model.config._attn_implementation}{', static cache' if args.static_cache else ''}"
            f"{', compiled' if args.compile else ''}; loaded in {load:.1f}s"
        )
        print(f"{'batch':>5} {'items':>5} {'tokens':>6} {'seconds':>8} {'tokens/s':>9} {'items/s':>8}")
        sampling = Sampling(max_new_tokens=args.max_new_tokens)
        for batch in args.batch_sizes:
            backend.batch_size = batch
            count = max(batch, args.min_items)
            requests = [
                ChatRequest(
                    messages=[
                        {
                            "role": "user",
                            "content": f"Write a paragraph about {TOPICS[i % len(TOPICS)]} ({i}).",
                        }
                    ],
                    sampling=sampling,
                )
                for i in range(count)
            ]
            backend.generate(requests[:batch])  # warm-up
            best = None
            for _ in range(args.repeat):
                began = time.monotonic()
                results = backend.generate(requests)
                seconds = time.monotonic() - began
                tokens = sum(r.tokens for r in results)
                if best is None or tokens / seconds > best[0] / best[1]:
                    best = (tokens, seconds)
            tokens, seconds = best
            print(
                f"{batch:>5} {count:>5} {tokens:>6} {seconds:>8.1f} {tokens / seconds:>9.1f} {count / seconds:>8.2f}"
            )
        backends_close()


if __name__ == "__main__":
    main()
