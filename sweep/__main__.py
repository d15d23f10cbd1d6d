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


def _sentence(exc: BaseException) -> str:
    """One sentence out of a Hydra / OmegaConf error."""
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


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)
def _app(cfg: DictConfig) -> None:
    from sweep.grid import expand

    raw = OmegaConf.to_container(cfg, resolve=True)
    text = OmegaConf.to_yaml(cfg)
    try:
        sweep = load(raw)
        specs = expand(sweep)
        from sweep.store import resolve_store

        resolve_store(sweep.tracking)  # a bad $MLFLOW_TRACKING_URI fails here, not later
    except ConfigError as exc:
        _fail(str(exc))
    if sweep.options.dry_run:
        from sweep.grid import batches, varying_fields

        print(
            f"sweep '{sweep.grid}': {len(specs)} trials in "
            f"{len(batches(specs, sweep.runner.batch_size))} batches; axes: "
            f"{', '.join(varying_fields(specs)) or 'none'}"
        )
        axes = varying_fields(specs)
        try:
            for spec in specs:
                p = spec.params()
                print(spec.key, " ".join(f"{a}={p[a]}" for a in axes))
        except BrokenPipeError:  # `python -m sweep ... sweep.dry_run=true | head`
            sys.stdout = open(os.devnull, "w")
        return
    from sweep.runner import run_sweep
    from sweep.store import StoreError

    try:
        run_sweep(sweep, specs, config_text=text)
    except StoreError as exc:  # checked before anything is written (sweep.store)
        print(f"store error: {exc}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    """Run the app; Hydra's own composition errors become exit status 2 with one sentence."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register()
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let composition errors reach us instead of exit(1)
    try:
        _app()
    except (HydraException, OmegaConfBaseException) as exc:
        _fail(_sentence(exc))
    except KeyboardInterrupt:
        print(
            "interrupted: the trials that finished are recorded; run the same command to resume.",
            file=sys.stderr,
        )
        sys.exit(130)


if __name__ == "__main__":
    main()
