"""``pydownloads URL...``, ``pydownloads status`` and ``pydownloads demo``: from arguments to an exit status."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from pydownloads.cli._access import (
    check_ca_bundle,
    check_netrc,
    load_cookies,
    netrc_choice,
    password_auth,
    user_auth,
)
from pydownloads.cli._args import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    build_parser,
    state_file_of,
)
from pydownloads.cli._dask import DaskUnavailableError, run_on_dask
from pydownloads.cli._input import InputError, InputItem
from pydownloads.cli._report import (
    Console,
    Outcome,
    report,
)
from pydownloads.cli._run import RunSettings, command_settings, few_malloc_arenas, run, threads_holding_exit
from pydownloads.cli._source import InputSource
from pydownloads.cli._status import show_status
from pydownloads.domain.errors import FileSystemError, InvalidArgumentError, StateFileError
from pydownloads.domain.models import FileConfig
from pydownloads.domain.redact import redact_text
from pydownloads.domain.retry import RetryConfig

#: Input problems listed before the rest are only counted.
_MAX_PROBLEMS = 20


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``) and return its exit status.

    0: every download completed (by this run or, with a state file, an earlier one); 1: some
    failed; 2: usage or input error, or an unusable state file; 130: interrupted.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if argv is None:  # the command's own process: its allocator is the command's to tune
        few_malloc_arenas()
    try:
        if args[:1] == ["demo"]:
            from pydownloads.cli._demo import run_demo  # the demo's imports are its own

            code, outcome = run_demo(args[1:])
        elif args[:1] == ["status"]:
            code, outcome = show_status(args[1:]), None
        else:
            code, outcome = _download(args)
    except KeyboardInterrupt:  # Ctrl-C before or after a batch ran
        sys.stderr.write("Interrupted.\n")
        return EXIT_INTERRUPTED
    if argv is None and outcome is not None and outcome.stopped_at_once and threads_holding_exit():
        # A download thread still waits for a server that sends nothing; it would hold the
        # process until its timeout.  The user asked to stop at once: leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def exit_status(outcome: Outcome) -> int:
    """130 if interrupted, else 1 if any download did not complete, else 0."""
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if not outcome.tally.all_completed:  # carried over too
        return EXIT_FAILED
    return EXIT_OK


def _download(argv: list[str]) -> tuple[int, Outcome | None]:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return (exit_.code if isinstance(exit_.code, int) else EXIT_USAGE), None
    console = Console(sys.stdout, sys.stderr, quiet=args.quiet)
    if not args.urls and args.input_file is None:
        return _usage_error(parser, "give at least one URL, or -i FILE"), None
    source = InputSource(args.urls, args.input_file, stdin=sys.stdin)
    try:
        return _checked_run(args, parser, source, console)
    finally:
        source.close()


def _checked_run(args: argparse.Namespace, parser: argparse.ArgumentParser, source: InputSource,
                 console: Console) -> tuple[int, Outcome | None]:
    """Check the input and the options, then run (see :func:`_download`)."""
    try:
        count = source.check()
    except InputError as error:
        _print_problems(console, error.problems)
        return EXIT_USAGE, None
    try:
        configs = _with_options(args, source, count)
    except ValueError as error:
        return _usage_error(parser, str(error)), None
    problem = _option_problem(args)
    if problem is not None:
        return _usage_error(parser, problem), None
    if not count:
        console.say("Nothing to download: the input has no URL.")
        return EXIT_OK, None
    try:
        settings = _settings(args)  # reads credentials, and may ask for a password: last
    except InvalidArgumentError as error:  # a value the library refuses, said as a run would say it
        console.error(f"{PROG}: error: {redact_text(str(error))}")
        return EXIT_USAGE, None
    except ValueError as error:  # an unusable credential, cookie, .netrc or CA file
        return _usage_error(parser, str(error)), None
    if settings.download.session.verify is False:
        console.error(f"{PROG}: WARNING: --insecure: TLS certificates are not verified; anyone on the network "
                      "path can read or alter the downloads")
    try:
        outcome = _run(args, configs, settings, console)
    except InputError as error:  # the input file changed after it was checked
        _print_problems(console, error.problems, after=f"{PROG}: stopped; what was queued before stays in the state "
                        "file, if any (a rerun goes on with it)")
        return EXIT_USAGE, None
    except (InvalidArgumentError, FileSystemError, DaskUnavailableError) as error:
        console.error(f"{PROG}: error: {redact_text(str(error))}")
        return EXIT_USAGE, None
    except StateFileError as error:
        console.error(f"{PROG}: error: {error}")
        console.error(f"{PROG}: nothing was downloaded: give another state file with --state FILE, "
                      "or none with --no-state")
        return EXIT_USAGE, None
    report(outcome, console, as_json=args.json)
    return exit_status(outcome), outcome


def _run(args: argparse.Namespace, configs: Iterable[FileConfig], settings: RunSettings, console: Console) -> Outcome:
    if args.dask_scheduler is not None:
        return run_on_dask(list(configs), settings, args.dask_scheduler, shard_size=args.shard_size)
    return run(configs, settings, console)


def _with_options(args: argparse.Namespace, items: Iterable[InputItem], count: int) -> Iterable[FileConfig]:
    """The configs of ``items`` (``count`` of them) with the options that change files (-o,
    --checksum, --if-changed, --continue) applied; a generator unless there is one item.

    :raises ValueError: an option that needs exactly one URL, or a bad file name.
    """
    single = [(option, value, change) for option, value, change in (
        ("-o/--output", args.output, _with_name), ("--checksum", args.checksum, _with_checksum))
        if value is not None]
    for option, _, _ in single:
        if count != 1:
            raise ValueError(f"{option} needs exactly one URL, not {count}")
    if single:
        items = list(items)  # the one item
        for option, value, change in single:
            try:
                items = [dataclasses.replace(items[0], config=change(items[0].config, value))]
            except ValueError as error:
                raise ValueError(f"{option}: {error}") from None
    return (_with_flags(args, item) for item in items)


def _with_flags(args: argparse.Namespace, item: InputItem) -> FileConfig:
    """The config of ``item`` with --if-changed and --continue, where its line did not say otherwise."""
    flags = (("if_changed", args.if_changed), ("continue_partial", args.continue_partial))
    changes: dict[str, Any] = {name: True for name, on in flags if on and name not in item.given}
    return dataclasses.replace(item.config, **changes) if changes else item.config


def _option_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with a combination of options, or None."""
    if args.netrc and args.no_netrc:
        return "-n/--netrc reads the .netrc: it cannot go with --no-netrc"
    if args.min_speed_time is not None and args.min_speed is None:
        return "--min-speed-time needs --min-speed"
    if args.retry_failed and args.no_state:
        return "--retry-failed needs a state file: it cannot go with --no-state"
    if args.shard_size is not None and args.dask_scheduler is None:
        return "--shard-size needs --dask-scheduler"
    if args.dask_scheduler is not None:
        given = [option for option, value in (("--state", args.state), ("--no-state", args.no_state),
                                              ("--retry-failed", args.retry_failed)) if value]
        if given:
            return (f"{given[0]} does not apply with --dask-scheduler: each shard keeps a state file of its own "
                    "in DIR/.pydownloads-shards/")
        if args.netrc_file is not None or args.no_netrc:
            return ("--netrc-file and --no-netrc do not reach the Dask workers: each reads its own ~/.netrc "
                    "(or $NETRC); use --user, or put the .netrc on the workers")
    return None


def _settings(args: argparse.Namespace) -> RunSettings:
    """The run's settings; credentials are read (and a password asked for) last.

    :raises AccessError: an unusable --user, --password, --cookies, --netrc-file or --ca-bundle.
    :raises InvalidArgumentError: a value the library refuses (a header, say).
    """
    headers = dict(args.header)
    if args.user_agent is not None:
        headers["User-Agent"] = args.user_agent
    stateless = args.no_state or args.dask_scheduler is not None
    given: dict[str, Any] = {  # None: the library's default
        "timeout": args.timeout, "headers": headers or None, "max_segments": args.segments,
        "max_connections_per_host": args.max_per_host, "rate_limit": args.limit_rate, "min_speed": args.min_speed,
        "min_speed_window": args.min_speed_time, "deadline": args.deadline, "on_existing": args.on_existing,
        "state_file": None if stateless else state_file_of(args.state, args.dir),
        "proxies": None if args.proxy is None else {"http": args.proxy, "https": args.proxy},
    }
    options = {name: value for name, value in given.items() if value is not None}
    download = command_settings(args.jobs, retry_config=RetryConfig(max_retries=args.retries),
                                retry_failed=args.retry_failed, adaptive_workers=not args.fixed_jobs, **options,
                                **_access(args))
    return RunSettings(download_dir=args.dir, download=download,
                       progress=args.progress or (not args.quiet and sys.stderr.isatty()))


def _access(args: argparse.Namespace) -> dict[str, Any]:
    """The session settings of --user/--password, --cookies, -n/--netrc-file/--no-netrc,
    --ca-bundle/--insecure.

    :raises AccessError: one of them cannot be used (the message shows no secret).
    """
    if args.netrc_file is not None:
        check_netrc(args.netrc_file)
    if args.ca_bundle is not None:
        check_ca_bundle(args.ca_bundle)
    netrc = netrc_choice(netrc_file=args.netrc_file, no_netrc=args.no_netrc)
    auth: object = None
    if args.user is not None:
        auth = user_auth(args.user, can_ask=sys.stdin.isatty(), password=args.password)
    elif args.password is not None:
        auth = password_auth(args.password, netrc, no_challenge=args.auth_no_challenge)
    return {
        "verify": False if args.insecure else str(args.ca_bundle) if args.ca_bundle is not None else True,
        "cookies": None if args.cookies is None else load_cookies(args.cookies),
        "netrc": netrc, "auth": auth, "auth_no_challenge": args.auth_no_challenge,
    }


def _with_name(config: FileConfig, name: str) -> FileConfig:
    if any(sep in name for sep in "/\\"):
        raise ValueError(f"{name!r} is a path; give a file name, and the folder with -d")
    return dataclasses.replace(config, filename=name)


def _with_checksum(config: FileConfig, checksum: str) -> FileConfig:
    return dataclasses.replace(config, checksum=checksum)


def _usage_error(parser: argparse.ArgumentParser, message: str) -> int:
    parser.print_usage(sys.stderr)
    sys.stderr.write(f"{PROG}: error: {redact_text(message)}\n")
    return EXIT_USAGE


def _print_problems(console: Console, problems: list[str],
                    after: str = f"{PROG}: nothing was downloaded: fix the input and run again") -> None:
    for problem in problems[:_MAX_PROBLEMS]:
        console.error(redact_text(problem))
    if len(problems) > _MAX_PROBLEMS:
        console.error(f"... and {len(problems) - _MAX_PROBLEMS} more problems")
    console.error(after)
