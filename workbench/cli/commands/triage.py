"""``workbench triage``: folders of uploads, one sandboxed process per image, a summary and reports."""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from ...render.text import summary_counts
from ...render.textsafe import printable
from ...schema import MAX_BATCH
from ...triage.jobs import REMOTE_JOBS_PER_CPU, local_jobs, remote_jobs
from ._common import EPILOG, add_deep_options, add_guest_options, add_policy_options, policy_from, timeout_of, warn

if TYPE_CHECKING:  # imported when the command runs: the CLI's help needs none of them
    from ...inspector import Request
    from ...triage import run as triage
    from ...triage.outputs import Output

NAME = "triage"
INTERRUPTED = 130


def register(sub: Any) -> None:
    parser = sub.add_parser(
        NAME,
        help="inspect folders and many files, with a summary and reports",
        description="Walk folders and inspect every regular file in its own sandboxed process, print a summary and "
        "write the chosen reports. Symbolic links (to files or folders), device nodes, FIFOs and sockets are "
        "listed as failed and never opened; --follow-symlinks is refused (inspect a link's target by name).",
        epilog=EPILOG + "; any file that could not be inspected: 30; interrupted: 130",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="a file, a folder, an s3://bucket/prefix/ (listed) or a URL"
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=None,
        help=f"inspections in flight (default: one per CPU and one more, {local_jobs()}; with remote targets "
        f"{REMOTE_JOBS_PER_CPU} per CPU, as they mostly wait on the network)",
    )
    parser.add_argument(
        "--children",
        type=int,
        default=local_jobs(),
        help="engine processes at once, whatever --jobs (default: %(default)s, one per CPU and one more)",
    )
    parser.add_argument("--endpoint-url", metavar="URL", help="the S3 endpoint (else AWS_ENDPOINT_URL_S3 / _URL)")
    parser.add_argument("--shard", metavar="I/N", help="inspect only shard I of N (0 <= I < N), split by path")
    parser.add_argument(
        "--resume", metavar="FILE.jsonl", help="skip what this JSONL (an earlier run's --jsonl) already reports"
    )
    add_policy_options(parser)
    add_guest_options(parser)
    add_deep_options(parser)
    for kind, what in (
        ("json", "one JSON array of full reports"),
        ("jsonl", "JSON Lines, one report per line, written as results arrive"),
        ("csv", "one CSV row per file"),
        ("html", "one self-contained HTML page"),
    ):
        parser.add_argument(f"--{kind}", metavar="OUT", help=f"write {what}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar even on a terminal")
    parser.add_argument(
        "--no-zygote",
        action="store_true",
        help="start a fresh engine process per image instead of forking each from a sandboxed server",
    )
    parser.add_argument(
        "--isolation",
        type=isolation,
        default=1,
        metavar="image|batch:N",
        help="image (the default): each image in a sandboxed process of its own; batch:N (N from 2 to "
        f"{MAX_BATCH}): up to N local images in turn per sandboxed process, several times faster, but an image "
        "that took over its process could read and misreport the images after it in its batch (docs/sandbox.md); "
        "for uploads from one source",
    )


def isolation(text: str) -> int:
    """``--isolation``: images per engine process (1 for ``image``)."""
    if text == "image":
        return 1
    kind, _, count = text.partition(":")
    if kind == "batch" and count.isdigit() and 2 <= int(count) <= MAX_BATCH:
        return int(count)
    raise argparse.ArgumentTypeError(f"expected image or batch:N with N from 2 to {MAX_BATCH}, not {text[:40]!r}")


class Progress:
    """A one-line progress bar with counts and rate, drawn only on a terminal."""

    def __init__(self, stream: IO[str], enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.started = time.monotonic()
        self.last = 0.0

    def update(self, tally: triage.Tally, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < 0.1):
            return
        self.last = now
        rate = tally.total / max(now - self.started, 1e-6)
        self.stream.write(f"\r\x1b[2K{tally.total} done, {rate:.1f}/s  {summary_counts(tally.counts)}")
        if final:
            self.stream.write("\n")
        self.stream.flush()


def _open_outputs(args: argparse.Namespace) -> list[Output]:
    from ...triage.outputs import KINDS

    outputs = []
    for kind, cls in KINDS.items():
        target = getattr(args, kind)
        if target:
            outputs.append(cls(target, append=True) if kind == "jsonl" and args.resume else cls(target))
    return outputs


def _jobs(args: argparse.Namespace) -> int:
    """Inspections in flight: ``--jobs``, else enough to keep every child busy (a batch child takes N at once)."""
    from ...host.urls import is_remote

    if args.jobs is not None:
        return max(1, args.jobs)
    return remote_jobs() if any(is_remote(path) for path in args.paths) else local_jobs() * args.isolation


class Interrupt:
    """Ctrl-C, as this command sees it: a flag that ends the run at the next report even if some await on the
    way swallowed the cancellation, and the exit status 130 however the run then ended."""

    def __init__(self) -> None:
        self.requested = False

    def watch(self) -> None:
        """Take SIGINT from asyncio.run: on it, set the flag and cancel the running task (this command's)."""
        import asyncio
        import signal

        main = asyncio.current_task()

        def on_sigint() -> None:
            self.requested = True
            if main is not None:
                main.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError):  # no add_signal_handler on Windows
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, on_sigint)


async def _triage(
    args: argparse.Namespace, outputs: list[Output], tally: triage.Tally, progress: Progress, interrupt: Interrupt
) -> None:
    interrupt.watch()
    from ...host.runner import FRESH, ForkServerRunner, Runner
    from ...inspector import Request, inspect
    from ...triage import run as triage
    from ...triage.targets import entries, selected

    policy = policy_from(args)
    shard = args.shard_parsed
    done = None
    if args.resume:
        from ...host.sources import done_keys

        done = done_keys(args.resume, only_shard=shard)
    async with contextlib.AsyncExitStack() as stack:
        runner: Runner = FRESH
        if not args.no_zygote:
            batch = {"guest": args.guest, "deep": args.deep}
            pool = await stack.enter_async_context(triage.engine_pool(policy.required_layers, warn, batch))
            runner = pool or FRESH
        full_reports = any(getattr(args, kind) for kind in triage.FULL_REPORT_OUTPUTS)
        gated = triage.GatedRunner(runner, args.children, full_reports)
        runner = gated
        if args.isolation > 1:
            if isinstance(gated.runner, ForkServerRunner):
                runner = triage.BatchRunner(gated, gated.runner, args.isolation)
            else:
                warn("--isolation batch:N needs the fork server: each image in a process of its own")

        def make_request(path: str) -> Request:
            return Request(
                path,
                args.declared_format,
                args.follow_symlinks,
                policy,
                timeout_of(args),
                include_bytes=False,
                guest=args.guest,
                guest_budget=args.guest_budget,
                endpoint_url=args.endpoint_url,
                deep=args.deep,
                deep_budget=args.deep_budget,
            )

        inspect_one = functools.partial(inspect, runner=runner)
        found = selected(entries(args.paths, timeout_of(args), args.endpoint_url), shard, done)
        results = triage.run(found, make_request, _jobs(args), inspect_one)
        try:
            async for report in results:
                summary = triage.summarise(report)
                tally.add(summary)
                for output in outputs:
                    output.write(report, summary)
                progress.update(tally)
                if interrupt.requested:
                    break
        finally:
            await results.aclose()


def _shard(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    from ...host.sources import parse_shard

    return parse_shard(text)


def _print_summary(tally: triage.Tally, elapsed: float) -> None:
    print(f"{tally.total} file(s) in {elapsed:.1f} s: {summary_counts(tally.counts)}")
    for item in tally.rejected:
        print(f"REJECT {printable(item['path'], 1024)}")
        for line in item["critical"]:
            print(f"    {printable(line, 1024)}")
    for item in tally.failed:
        print(f"FAILED {printable(item['path'], 1024)}: {printable(item['error'], 1024)}")
    for layers, count in tally.degraded.items():
        print(f"SANDBOX DEGRADED for {count} file(s): {printable(layers, 1024)} off or weaker (see sandbox-check)")


def run(args: argparse.Namespace) -> int:
    try:
        args.shard_parsed = _shard(args.shard)
    except ValueError as exc:
        print(f"workbench triage: --shard: {exc}", file=sys.stderr)
        return 2
    if args.follow_symlinks:
        print(
            "workbench triage: --follow-symlinks is refused: triage never follows symbolic links; "
            "inspect a link's target by its own name, or use `workbench inspect --follow-symlinks LINK`",
            file=sys.stderr,
        )
        return 2
    try:
        outputs = _open_outputs(args)
    except OSError as exc:
        print(f"workbench triage: cannot write output: {exc}", file=sys.stderr)
        return 2
    import asyncio

    from ...triage import run as triage

    tally = triage.Tally()
    progress = Progress(sys.stderr, sys.stderr.isatty() and not args.quiet)
    started = time.monotonic()
    interrupt = Interrupt()
    interrupted = False
    try:
        asyncio.run(_triage(args, outputs, tally, progress, interrupt))
    except (KeyboardInterrupt, asyncio.CancelledError):
        interrupted = True
    finally:
        for output in outputs:
            output.close()
    progress.update(tally, final=True)
    _print_summary(tally, time.monotonic() - started)
    if interrupted or interrupt.requested:
        print("interrupted: the reports written so far are complete and valid", file=sys.stderr)
        return INTERRUPTED
    return tally.exit_code() if tally.total else 0
