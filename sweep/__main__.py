"""``python -m sweep [+grid=NAME] [overrides]``: the Hydra entry point.

Composes ``conf/config.yaml`` (plus ``conf/grid/NAME.yaml``), validates it into a typed
:class:`sweep.config.Sweep`, expands the trials and hands them to
:func:`sweep.runner.run_sweep`. Any configuration error — from Hydra (unknown grid, unknown
field, unparsable override) or from our validation — is printed as one sentence and exits
with status 2 before any MLflow run is created or Ray is started.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from sweep.config import ConfigError, load, register

__all__ = ["main"]

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def _options(group: str) -> list[str]:
    """The configs of a group; ``NAME`` and its ``NAME_smoke`` sibling as ``NAME[_smoke]``."""
    names = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
    twins = {n for n in names if f"{n}_smoke" in names}
    return [
        f"{n}[_smoke]" if n in twins else n
        for n in names
        if not (n.endswith("_smoke") and n[: -len("_smoke")] in twins)
    ]


def _yaml_error(exc: BaseException) -> BaseException | None:
    """The YAML syntax error behind ``exc`` (itself, or a cause/context), if any."""
    import yaml

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, yaml.YAMLError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _yaml_sentence(exc: BaseException) -> str:
    """``FILE: YAML syntax error at line L, column C: PROBLEM`` (1-based, as editors count)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = (getattr(exc, "problem", None) or str(exc).splitlines()[0]).strip().rstrip(".")
    context = (getattr(exc, "context", None) or "").strip()
    if mark is None:
        return f"a config file is not valid YAML: {problem}."
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    start = getattr(exc, "context_mark", None)
    if context and start is not None and start is not mark:
        context += f" started at line {start.line + 1}, column {start.column + 1}"
    detail = f"{problem} ({context})" if context else problem
    return f"{mark.name} is not valid YAML at {where}: {detail}; fix the file and run again."


def _sentence(exc: BaseException) -> str:
    """One sentence out of a Hydra / OmegaConf error."""
    if _yaml_error(exc) is not None:
        return _yaml_sentence(_yaml_error(exc))
    override_text = getattr(exc, "override", None)
    if isinstance(override_text, str) and "=" in override_text:  # OverrideParseException
        name = override_text.split("=", 1)[0].lstrip("+~")
        value = override_text.split("=", 1)[1]
        problem = str(getattr(exc, "message", exc)).splitlines()[0].rstrip(".")
        return (
            f"{name}: the command-line value {value!r} does not parse ({problem}); "
            f"write a list as '{name}=[v1,v2]' in quotes."
        )
    text = str(exc).strip()
    missing = re.search(r"Could not find '([\w\-]+)/([\w.\-]+)'", text)
    if missing:
        group, name = missing.groups()
        return (
            f"{group} '{name}' does not exist; available {group} configs: "
            f"{', '.join(_options(group))}."
        )
    override = re.search(r"Could not override '([^']+)'", text)
    if override and "No match in the defaults list" in text:
        name = override.group(1)
        return (
            f"{name} is not in the defaults list; append it with +{name}=NAME (e.g. +grid=smoke)."
        )
    if override:
        return f"{override.group(1)} names no config field (check the spelling of the override)."
    key = re.search(r"full_key: (\S+)", text)
    first = text.splitlines()[0].rstrip(".") if text else type(exc).__name__
    cause = str(exc.__cause__ or "").strip()
    if cause:
        first = f"{first}: {cause.splitlines()[0].rstrip('.')}"
    return f"{key.group(1)}: {first}." if key else f"{first}."


def _fail(message: str) -> None:
    print(f"config error: {message}", file=sys.stderr)
    sys.exit(2)


DRY_RUN_TAIL = 5  # trials a shortened dry run lists after the elided ones


def _dry_run(sweep, total: int) -> None:
    """Print the header (from the blocks: no expansion), then one line per trial: all of
    them (streamed) when ``sweep.dry_run_lines`` is 0/-1 or covers the grid, else the first
    ``dry_run_lines`` and the last :data:`DRY_RUN_TAIL`, then one line saying how many were
    not listed. Every point is checked either way (the unlisted by
    :func:`sweep.grid.check_points`, without making their trials)."""
    from itertools import islice

    from sweep.grid import axes, batch_count, check_points, iter_specs, tail_specs

    names = axes(sweep)
    limit = sweep.options.dry_run_lines
    short = 0 < limit and limit + DRY_RUN_TAIL < total
    out = sys.stdout

    def line(spec) -> str:
        p = spec.params()
        return spec.key + " " + " ".join(f"{a}={p[a]}" for a in names) + "\n"

    try:
        print(
            f"sweep '{sweep.grid}': {total} trials in "
            f"{batch_count(sweep, sweep.runner.batch_size)} batches; axes: "
            f"{', '.join(names) or 'none'}",
            flush=True,
        )
        for spec in islice(iter_specs(sweep), limit if short else None):
            out.write(line(spec))
        if short:
            out.flush()
            check_points(sweep)
            for spec in tail_specs(sweep, DRY_RUN_TAIL):
                out.write(line(spec))
            out.write(
                f"... {total - limit - DRY_RUN_TAIL} of the {total} trials not listed "
                f"(the first {limit} and the last {DRY_RUN_TAIL} are); "
                f"sweep.dry_run_lines=0 lists them all.\n"
            )
        from sweep.estimate import estimate_line
        from sweep.store import resolve_store

        estimate = estimate_line(iter_specs(sweep), resolve_store(sweep.tracking), sweep.grid)
        if estimate:
            out.write(estimate + "\n")
        out.flush()
    except BrokenPipeError:  # `python -m sweep ... sweep.dry_run=true | head`
        sys.stdout = open(os.devnull, "w")
    except ConfigError as exc:  # a bad point found while streaming
        out.flush()
        _fail(str(exc))


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)
def _app(cfg: DictConfig) -> None:
    from sweep.grid import check_size, expand

    raw = OmegaConf.to_container(cfg, resolve=True)
    try:
        sweep = load(raw)
        total = check_size(sweep)  # counted, not expanded: a too-big grid is refused at once
        specs = None if sweep.options.dry_run else expand(sweep)
        if specs is not None and sweep.runner.kind == "local":
            from sweep.runner import check_address

            check_address(sweep.runner)  # before the store: a dead cluster writes nothing
        from sweep.store import resolve_store

        resolve_store(sweep.tracking)  # a bad $MLFLOW_TRACKING_URI fails here, not later
    except ConfigError as exc:
        _fail(str(exc))
    if specs is None:
        _dry_run(sweep, total)
        return
    from sweep.runner import run_sweep
    from sweep.store import StoreError

    try:
        run_sweep(sweep, specs, config_text=OmegaConf.to_yaml(cfg))
    except StoreError as exc:  # checked before anything is written (sweep.store)
        print(f"store error: {exc}", file=sys.stderr)
        sys.exit(2)
    except ConfigError as exc:  # runner.address unreachable: checked before the parent run opens
        _fail(str(exc))


def _as_list(arg: str) -> str:
    """``a=1,2`` (Hydra's multirun sweep) as the list override ``'a=[1,2]'``; else ``arg``."""
    name, eq, value = arg.partition("=")
    if not eq or name.startswith(("hydra.", "+grid", "grid")) or "," not in value:
        return arg
    if value.startswith(("[", "{", "'", '"')) or re.match(r"\w+\(", value):  # list, dict, glob()
        return arg
    return f"{name}=[{value}]"


def _shell_word(arg: str) -> str:
    return f"'{arg}'" if re.search(r"[^\w@%+=:,./-]", arg) else arg


def _refuse_multirun(argv: list[str]) -> None:
    """Hydra's multirun (``-m``/``--multirun``, ``hydra.mode=MULTIRUN``) would start one separate
    sweep, store run and Ray instance per combination: refused in one sentence (exit 2) that
    gives the command with lists, which runs the same trials as one sweep."""
    flags = {"-m", "--multirun", "hydra.mode=MULTIRUN", "hydra.mode=multirun"}
    if not flags & set(argv):
        return
    rest = " ".join(_shell_word(_as_list(a)) for a in argv if a not in flags)
    _fail(
        "Hydra's multirun (-m) would launch a separate sweep per combination; write the values "
        f"as lists, the axes of one sweep: `python -m sweep {rest}`.".replace(" `.", "`.")
    )


def main() -> None:
    """Run the app; Hydra's own composition errors become exit status 2 with one sentence."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from sweep.interrupts import handle_sigterm

    _refuse_multirun(sys.argv[1:])
    handle_sigterm()  # SIGTERM stops the sweep as Ctrl-C does (exit 143)
    register()
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let composition errors reach us instead of exit(1)
    try:
        _app()
    except (HydraException, OmegaConfBaseException) as exc:
        _fail(_sentence(exc))
    except Exception as exc:  # a YAML syntax error in a config file reaches us unwrapped
        if _yaml_error(exc) is None:
            raise
        _fail(_yaml_sentence(_yaml_error(exc)))
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (sweep.interrupts.Terminated)
        from sweep.interrupts import Terminated

        term = isinstance(exc, Terminated)
        print(
            f"{'terminated (SIGTERM)' if term else 'interrupted'}: the trials that finished are "
            "recorded; run the same command to resume.",
            file=sys.stderr,
        )
        sys.exit(143 if term else 130)


if __name__ == "__main__":
    main()
